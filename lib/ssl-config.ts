// SslConfig: certificates, ALPN, ticket keys and 0-RTT policy, loaded into GnuTLS once and shared
// by every connection that uses it.
import { binding } from './binding';
import {
  checkObject,
  checkOptionalBoolean,
  checkOptionalBytes,
  checkOptionalInteger,
  invalidArgType,
  invalidArgValue,
} from './errors';

export interface SslConfigOptions {
  /** ALPN protocols in preference order (required, at least one). */
  alpn: string[];
  /** PEM certificate chain (server). */
  cert?: string | Buffer;
  /** PEM private key (server). */
  key?: string | Buffer;
  /** Roots that verify the peer; default: the system store. */
  ca?: string | Buffer | Array<string | Buffer>;
  /** Client: verify the server's chain and name (default true). */
  rejectUnauthorized?: boolean;
  /** Server: GnuTLS's 64-byte ticket master key; equal keys let servers resume each other's tickets. */
  ticketKeys?: Buffer;
  /** Server: ticket lifetime in seconds (default 7200). */
  ticketLifetime?: number;
  /** Server: accept 0-RTT (default false). Client: attempt 0-RTT when a ticket allows it (default true). */
  earlyData?: boolean;
  /** Server: anti-replay window in milliseconds (default 60000); see README "0-RTT and replay". */
  antiReplayWindow?: number;
  /**
   * Client: at least 16 secret bytes that seal the tickets this client emits (HMAC-SHA256) and
   * that the tickets it is given must carry. Use it when others can write to the ticket store.
   */
  ticketSecret?: Buffer;
}

export const TICKET_KEYS_LENGTH = 64;
export const kNativeSsl = Symbol('quicket.nativeSsl');

function toBuffer(value: string | Buffer): Buffer {
  return typeof value === 'string' ? Buffer.from(value) : value;
}

export class SslConfig {
  readonly alpn: readonly string[];
  readonly rejectUnauthorized: boolean;
  readonly earlyData: boolean | undefined;
  /** @internal */
  readonly ticketSecret: Buffer | undefined;
  /** @internal */
  readonly [kNativeSsl]: any; // eslint-disable-line @typescript-eslint/no-explicit-any

  constructor(options: SslConfigOptions) {
    checkObject('options', options);
    const { alpn, cert, key, ca, rejectUnauthorized, ticketKeys, ticketLifetime, earlyData, antiReplayWindow } = options;
    if (!Array.isArray(alpn)) throw invalidArgType('options.alpn', 'an array of strings', alpn);
    if (alpn.length === 0) throw invalidArgValue('options.alpn', 'must name at least one protocol');
    for (const name of alpn) {
      if (typeof name !== 'string') throw invalidArgType('options.alpn[]', 'a string', name);
      if (name.length === 0 || Buffer.byteLength(name) > 255) {
        throw invalidArgValue('options.alpn[]', 'must be 1 to 255 bytes long');
      }
    }
    checkOptionalBytes('options.cert', cert);
    checkOptionalBytes('options.key', key);
    if ((cert === undefined) !== (key === undefined)) {
      throw invalidArgValue('options.cert', 'and options.key must be given together');
    }
    const cas = ca === undefined ? undefined : Array.isArray(ca) ? ca : [ca];
    cas?.forEach((entry) => checkOptionalBytes('options.ca', entry));
    checkOptionalBoolean('options.rejectUnauthorized', rejectUnauthorized);
    checkOptionalBoolean('options.earlyData', earlyData);
    if (ticketKeys !== undefined) {
      if (!Buffer.isBuffer(ticketKeys)) throw invalidArgType('options.ticketKeys', 'a Buffer', ticketKeys);
      if (ticketKeys.length !== TICKET_KEYS_LENGTH) {
        throw invalidArgValue('options.ticketKeys', `must be exactly ${TICKET_KEYS_LENGTH} bytes. Received ${ticketKeys.length}`);
      }
    }
    checkOptionalInteger('options.ticketLifetime', ticketLifetime, 1, 604800);
    checkOptionalInteger('options.antiReplayWindow', antiReplayWindow, 1, 604800000);
    const { ticketSecret } = options;
    if (ticketSecret !== undefined) {
      if (!Buffer.isBuffer(ticketSecret)) throw invalidArgType('options.ticketSecret', 'a Buffer', ticketSecret);
      if (ticketSecret.length < 16) throw invalidArgValue('options.ticketSecret', `must be at least 16 bytes. Received ${ticketSecret.length}`);
    }
    this.ticketSecret = ticketSecret === undefined ? undefined : Buffer.from(ticketSecret);

    this.alpn = Object.freeze([...alpn]);
    this.rejectUnauthorized = rejectUnauthorized ?? true;
    this.earlyData = earlyData;
    this[kNativeSsl] = new binding.SslConfig({
      alpn: [...alpn],
      cert: cert === undefined ? undefined : toBuffer(cert),
      key: key === undefined ? undefined : toBuffer(key),
      ca: cas?.map(toBuffer),
      rejectUnauthorized: this.rejectUnauthorized,
      ticketKeys,
      ticketLifetime: ticketLifetime ?? 7200,
      earlyData: earlyData ?? false,
      antiReplayWindow: antiReplayWindow ?? 60000,
    });
  }

  /** The server's current 64-byte ticket key (like tls.Server#getTicketKeys). */
  getTicketKeys(): Buffer {
    return this[kNativeSsl].getTicketKeys();
  }
}
