// NODE_DEBUG=quicket: connection lifecycle on stderr through util.debuglog, like node:net's and
// node:tls's NODE_DEBUG sections. Nothing is formatted unless the section is enabled.
import { debuglog } from 'node:util';

/** @internal */
export const debug = debuglog('quicket');

let nextId = 1;
/** @internal A short name for a connection in the log: 'client 3', 'server 4'. */
export function connectionLabel(server: boolean): string {
  return `${server ? 'server' : 'client'} ${nextId++}`;
}
