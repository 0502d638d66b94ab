// The events native code delivers to a Connection, one function per kind (see
// native/quic/connection_events.h, which lists the same kinds). Connection implements each under
// its symbol; lib/binding.ts hands native code one small function per kind that calls it.
import type { CloseInfo, HandshakeInfo, PathChangeInfo, TicketRejectedReason } from './connection';
import type { CodedError } from './errors';

export const kOnHandshake: unique symbol = Symbol('quicket.onHandshake');
export const kOnResumed: unique symbol = Symbol('quicket.onResumed');
export const kOnStreamOpen: unique symbol = Symbol('quicket.onStreamOpen');
export const kOnStreamData: unique symbol = Symbol('quicket.onStreamData');
export const kOnStreamReset: unique symbol = Symbol('quicket.onStreamReset');
export const kOnStreamClose: unique symbol = Symbol('quicket.onStreamClose');
export const kOnStreamDrain: unique symbol = Symbol('quicket.onStreamDrain');
export const kOnStreamOpened: unique symbol = Symbol('quicket.onStreamOpened');
export const kOnStreamOpenFailed: unique symbol = Symbol('quicket.onStreamOpenFailed');
export const kOnHeaders: unique symbol = Symbol('quicket.onHeaders');
export const kOnTicket: unique symbol = Symbol('quicket.onTicket');
export const kOnTicketRejected: unique symbol = Symbol('quicket.onTicketRejected');
export const kOnEarlyDataRejected: unique symbol = Symbol('quicket.onEarlyDataRejected');
export const kOnKeylog: unique symbol = Symbol('quicket.onKeylog');
export const kOnPathChange: unique symbol = Symbol('quicket.onPathChange');
export const kOnMigrationFailed: unique symbol = Symbol('quicket.onMigrationFailed');
export const kOnClose: unique symbol = Symbol('quicket.onClose');

/** @internal What a Connection owner must implement to hear from native code. */
export interface NativeConnectionEvents {
  [kOnHandshake](info: HandshakeInfo): void;
  /** Server: the ClientHello's PSK was accepted (before any 0-RTT stream is delivered). */
  [kOnResumed](): void;
  [kOnStreamOpen](id: bigint, early: boolean): void;
  /** Returns true when the bytes can be credited to flow control at once. */
  [kOnStreamData](id: bigint, data: Buffer, fin: boolean): boolean;
  [kOnStreamReset](id: bigint, code: number, stopSending: boolean): void;
  [kOnStreamClose](id: bigint, code: number): void;
  [kOnStreamDrain](id: bigint): void;
  /** A stream that waited (by its negative token) is open now, or can never open. */
  [kOnStreamOpened](token: bigint, id: bigint): void;
  [kOnStreamOpenFailed](token: bigint, error: CodedError): void;
  /** HTTP/3 header fields as name/value pairs. */
  [kOnHeaders](id: bigint, fields: string[], trailers: boolean): void;
  [kOnTicket](sessionData: Buffer, transportParams: Buffer, lifetimeSeconds: number, earlyData: boolean, addressToken?: Buffer): void;
  [kOnTicketRejected](reason: TicketRejectedReason): void;
  [kOnEarlyDataRejected](): void;
  [kOnKeylog](line: Buffer): void;
  /** The connection uses a new, validated path (the peer moved, or migrate() moved us). */
  [kOnPathChange](info: PathChangeInfo): void;
  /** migrate()'s new path did not validate; the connection stays on its path. */
  [kOnMigrationFailed](error: CodedError): void;
  [kOnClose](info: CloseInfo): void;
}

type Owner = NativeConnectionEvents;

/** @internal The per-kind functions native code calls, each with the connection's owner first. */
export const nativeEventCallbacks = {
  handshake: (owner: Owner, info: HandshakeInfo) => owner[kOnHandshake](info),
  resumed: (owner: Owner) => owner[kOnResumed](),
  streamOpen: (owner: Owner, id: bigint, early: boolean) => owner[kOnStreamOpen](id, early),
  streamData: (owner: Owner, id: bigint, data: Buffer, fin: boolean) => owner[kOnStreamData](id, data, fin),
  streamReset: (owner: Owner, id: bigint, code: number, stopSending: boolean) => owner[kOnStreamReset](id, code, stopSending),
  streamClose: (owner: Owner, id: bigint, code: number) => owner[kOnStreamClose](id, code),
  streamDrain: (owner: Owner, id: bigint) => owner[kOnStreamDrain](id),
  streamOpened: (owner: Owner, token: bigint, id: bigint) => owner[kOnStreamOpened](token, id),
  streamOpenFailed: (owner: Owner, token: bigint, error: CodedError) => owner[kOnStreamOpenFailed](token, error),
  headers: (owner: Owner, id: bigint, fields: string[], trailers: boolean) => owner[kOnHeaders](id, fields, trailers),
  ticket: (owner: Owner, sessionData: Buffer, transportParams: Buffer, lifetimeSeconds: number, earlyData: boolean, addressToken?: Buffer) =>
    owner[kOnTicket](sessionData, transportParams, lifetimeSeconds, earlyData, addressToken),
  ticketRejected: (owner: Owner, reason: TicketRejectedReason) => owner[kOnTicketRejected](reason),
  earlyDataRejected: (owner: Owner) => owner[kOnEarlyDataRejected](),
  keylog: (owner: Owner, line: Buffer) => owner[kOnKeylog](line),
  pathChange: (owner: Owner, info: PathChangeInfo) => owner[kOnPathChange](info),
  migrationFailed: (owner: Owner, error: CodedError) => owner[kOnMigrationFailed](error),
  close: (owner: Owner, info: CloseInfo) => owner[kOnClose](info),
};
