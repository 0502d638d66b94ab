// quicket: QUIC for Node.js with TLS 1.3 session resumption and 0-RTT.
export { Engine } from './engine';
export type { EngineOptions, EngineEvents, EngineStats, AddressValidationMode, CongestionControl, ListenOptions, ConnectOptions, AddressInfo, LookupFunction } from './engine';
export { Connection } from './connection';
export type { HandshakeInfo, CloseInfo, CloseOptions, ConnectionStats, EarlyDataState, TicketRejectedReason, ConnectionEvents, PathChangeInfo } from './connection';
export { Stream } from './stream';
export type { StreamOptions } from './stream';
export { SslConfig } from './ssl-config';
export type { SslConfigOptions } from './ssl-config';
export { Ticket } from './ticket';
export { TicketStore } from './ticket-store';
export type { TicketStoreOptions, TicketIdentity, TicketLookup } from './ticket-store';
export type { TicketInfo } from './ticket';
export type { CodedError, SystemError, ErrorCode, QuicErrorCode, SystemErrorCode } from './errors';
export { quicketErrorCodes, nodeErrorCodes } from './errors';

import { binding } from './binding';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { version } = require('../package.json') as { version: string };
/** quicket's version and those of the native libraries linked into its addon. */
export const versions: {
  /** This package's version (package.json). */
  quicket: string;
  /** OpenSSL's (TLS 1.3), as linked into the addon, e.g. `'3.5.7'`. */
  openssl: string;
  /** ngtcp2's (the QUIC transport), as linked into the addon. */
  ngtcp2: string;
  /** nghttp3's (HTTP/3 framing and QPACK), as linked into the addon. */
  nghttp3: string;
} = Object.freeze({
  quicket: version,
  ...binding.versions,
});
/**
 * What this build's UDP layer uses: UDP GSO and GRO (several packets per system call), ICMP errors
 * (a closed port refuses a connection at once, ECONNREFUSED; without them the handshake times out
 * or the next address is tried) and a `reusePort` the kernel balances. All true on Linux; false
 * elsewhere (macOS) and in a QUICKET_PORTABLE_SOCKETS build.
 */
export const socketFeatures: {
  /** UDP generic segmentation offload: one sendmsg() for a burst of packets. */
  gso: boolean;
  /** UDP generic receive offload: one recvmsg() for a burst of packets. */
  gro: boolean;
  /** ICMP errors read off the socket: a refusing port fails a handshaking connection with ECONNREFUSED within a round trip. */
  icmpErrors: boolean;
  /** `reusePort` is available (the kernel balances clients between the sockets); without it listen() rejects it. */
  reusePort: boolean;
} = Object.freeze({
  ...binding.socketFeatures,
});
export { Http3Server, Http3Request, Http3Response, request } from './http3';
export type {
  Http3Handler,
  Http3ServerOptions,
  Http3RequestOptions,
  Http3ClientResponse,
  Http3Headers,
  Http3OutgoingHeaders,
  Http3HeaderLimits,
} from './http3';
export { fetch } from './fetch';
export type { Http3FetchInit, Http3FetchBody, Http3HeadersInit } from './fetch';
export { Http3Agent, getGlobalHttp3Agent, setGlobalHttp3Agent } from './http3-agent';
export type { Http3AgentOptions, Http3AgentEvents } from './http3-agent';
