// Connection: one QUIC connection, client or server side. Native events arrive through
// one typed method per kind (lib/native-events.ts) and become EventEmitter events and Stream data here.
import { X509Certificate } from 'node:crypto';
import { EventEmitter } from 'node:events';

import {
  kOnClose,
  kOnEarlyDataRejected,
  kOnHandshake,
  kOnHeaders,
  kOnKeylog,
  kOnMigrationFailed,
  kOnPathChange,
  kOnResumed,
  kOnStreamClose,
  kOnStreamData,
  kOnStreamDrain,
  kOnStreamOpen,
  kOnStreamReset,
  kOnStreamOpened,
  kOnStreamOpenFailed,
  kOnTicket,
  kOnTicketRejected,
  NativeConnectionEvents,
} from './native-events';
import { connectionLabel, debug } from './debug';
import { closedError, codedError, CodedError, checkOptionalBoolean, checkOptionalInteger, checkOptionalString, invalidArgType } from './errors';
import { Stream, StreamOptions, StreamOwner } from './stream';
import { encodeTicket } from './ticket';

/** setKeepAlive(true)'s delay: half the default idle timeout, as browsers ping open connections. */
const DEFAULT_KEEP_ALIVE = 15000;

const H3_NO_ERROR = 0x100;
/** The reason native code gives a silent close after the idle timeout. */
const IDLE_TIMEOUT_REASON = 'idle timeout';
/** How long close() waits by default for open streams to finish. */
const DEFAULT_CLOSE_TIMEOUT = 5000;

/** Options of {@link Connection.close}. */
export interface CloseOptions {
  /** Application error code sent in CONNECTION_CLOSE (default 0). */
  code?: number;
  /** Reason phrase sent in CONNECTION_CLOSE, for the peer's logs (default ''). */
  reason?: string;
  /** Milliseconds to wait for open streams to finish before closing anyway (default 5000). */
  timeout?: number;
}

/** What connection.stats() reports: ngtcp2's view of the path and this connection's counters. */
export interface ConnectionStats {
  /** Round-trip times in milliseconds (0 until measured). */
  rtt: {
    /** Smoothed RTT, the estimate loss recovery uses (RFC 9002 `smoothed_rtt`). */
    smoothed: number;
    /** Lowest RTT seen. */
    min: number;
    /** The most recent sample. */
    latest: number;
    /** RTT variation, the mean deviation of the samples (RFC 9002 `rttvar`). */
    variance: number;
  };
  /** Congestion window in bytes. */
  congestionWindow: number;
  /** Bytes sent and not yet acknowledged or declared lost. */
  bytesInFlight: number;
  /** UDP payload bytes sent (QUIC packets, headers included). */
  bytesSent: number;
  /** UDP payload bytes received (QUIC packets, headers included). */
  bytesReceived: number;
  /** QUIC packets sent. */
  packetsSent: number;
  /** QUIC packets received. */
  packetsReceived: number;
  /** Packets declared lost by loss detection (their data is sent again). */
  packetsLost: number;
  /** Streams opened by either side (HTTP/3's own control streams aside). */
  streamsOpened: number;
}

/**
 * What became of 0-RTT: `'accepted'` (a client sent early data and the server took it; on a server,
 * it took the client's), `'rejected'` (client only: the server refused the early data or the
 * handshake that carried it, and what the streams had sent was resent after the handshake), or
 * `'none'` (no 0-RTT).
 */
export type EarlyDataState = 'none' | 'accepted' | 'rejected';

/** The outcome of a completed handshake: what `connection.handshake` resolves with and 'handshake' carries. */
export interface HandshakeInfo {
  /** The ALPN protocol both sides agreed on. */
  alpn: string;
  /**
   * The server name: on a client, the one it verified the certificate against (an IP address is
   * not sent as SNI); on a server, the SNI the client sent ('' if none).
   */
  servername: string;
  /** True when the TLS session was resumed from a ticket instead of a full handshake. */
  resumed: boolean;
  /** What became of 0-RTT on this connection. */
  earlyData: EarlyDataState;
}

/** How a connection ended: what 'close' carries. */
export interface CloseInfo {
  /** The QUIC error code sent or received (0 for a clean close). */
  code: number;
  /** The reason phrase sent or received ('' if none; `'idle timeout'` after a silent idle close). */
  reason: string;
  /** Whether `code` is an application or a transport error code. */
  type: 'application' | 'transport';
  /** True when the peer closed the connection. */
  remote: boolean;
  /** Set when the connection ended because of an error. */
  error?: CodedError;
}

/**
 * Why a `ticket` given to connect() was not used: 'malformed' (not a quicket ticket, damaged, or
 * session data that does not decode), 'expired' (by this client's clock), 'mismatch' (another
 * servername or ALPN), 'refused' (the server refused the handshake that used it; the connection
 * started over as a full handshake and resent what was written).
 */
export type TicketRejectedReason = 'malformed' | 'expired' | 'mismatch' | 'refused';

/**
 * What 'pathChange' carries: the path the connection uses now and the one it used before. On a
 * server, the client's address changed (NAT rebinding, or the client migrated); on a client, its
 * own {@link Connection.migrate} moved it to a new local port.
 */
export interface PathChangeInfo {
  /** The peer's IP address now (what `connection.remoteAddress` says from now on). */
  remoteAddress: string;
  /** The peer's UDP port now (`connection.remotePort`). */
  remotePort: number;
  /** The peer's IP address before the change. */
  previousRemoteAddress: string;
  /** The peer's UDP port before the change. */
  previousRemotePort: number;
  /** The local address now (`connection.localAddress`). */
  localAddress: string;
  /** The local UDP port now (`connection.localPort`). */
  localPort: number;
  /** The local address before the change. */
  previousLocalAddress: string;
  /** The local UDP port before the change. */
  previousLocalPort: number;
}

/** The events of {@link Connection} and their listener arguments, for the typed `on`/`once`/`off`. */
export interface ConnectionEvents {
  /** The handshake completed. */
  handshake: [info: HandshakeInfo];
  /** Client: a session ticket from the server, to pass as `connect({ ticket })` later. */
  ticket: [ticket: Buffer];
  /** The peer opened a stream. */
  stream: [stream: Stream];
  /** Client: the server refused the 0-RTT data; it is resent after the handshake. */
  earlyDataRejected: [];
  /** Client: the ticket given to connect() was not used, and why. */
  ticketRejected: [reason: TicketRejectedReason];
  /** A TLS secret as an NSS key log line (ending in `'\n'`), for Wireshark. */
  keylog: [line: Buffer];
  /**
   * The connection moved to a new path, validated by the peer's PATH_RESPONSE: on a server, the
   * client's address or port changed (NAT rebinding); on a client, after {@link Connection.migrate}.
   */
  pathChange: [info: PathChangeInfo];
  /** The connection is closed; always the last event. */
  close: [info: CloseInfo];
  /** The connection failed; emitted before 'close', and only while someone listens. */
  error: [error: CodedError];
}

interface NativeAddress {
  address: string;
  port: number;
  family: string;
}

function emptyStats(): ConnectionStats {
  return {
    rtt: { smoothed: 0, min: 0, latest: 0, variance: 0 },
    congestionWindow: 0, bytesInFlight: 0, bytesSent: 0, bytesReceived: 0, packetsSent: 0, packetsReceived: 0, packetsLost: 0, streamsOpened: 0,
  };
}

/* eslint-disable @typescript-eslint/no-explicit-any */
export const kAttachNative = Symbol('quicket.attachNative');
/** @internal A client whose name is still being resolved failed to start (lookup error, engine closed). */
export const kFailStart = Symbol('quicket.failStart');
/** @internal Whether the native connection exists yet (false while the server's name resolves). */
export const kStarted = Symbol('quicket.started');
/** @internal Where a client connection was asked to go: remotePort before the native side says. */
export const kTargetPort = Symbol('quicket.targetPort');
/** @internal HTTP/3 plumbing used by lib/http3.ts. */
export const kSubmitRequest = Symbol('quicket.submitRequest');
export const kSubmitResponse = Symbol('quicket.submitResponse');
/** @internal Stream event carrying HTTP/3 header fields: (pairs: string[], trailers: boolean). */
export const kHeadersEvent = Symbol('quicket.headers');

const ignore = (): void => {};

/**
 * One QUIC connection, client side (from {@link Engine.connect}) or server side (from the engine's
 * 'connection' event). Streams come from {@link Connection.openStream} or the 'stream' event; an
 * HTTP/3 connection (ALPN `'h3'`) carries requests instead, see {@link request} and {@link Http3Server}.
 *
 * Events (listener signatures in {@link ConnectionEvents}):
 * - `'handshake'` `(info: HandshakeInfo)`: the handshake completed (`handshake` resolves with the same).
 * - `'stream'` `(stream: Stream)`: the peer opened a stream; `stream.early` tells if its data came as 0-RTT.
 * - `'ticket'` `(ticket: Buffer)`: client: a session ticket from the server, an opaque Buffer for a
 *   later `connect({ ticket })` (see {@link Ticket.inspect}). Tickets are only built while a listener is attached.
 * - `'ticketRejected'` `(reason: TicketRejectedReason)`: client: the ticket given to connect() was
 *   not used; the connection goes on with a full handshake. Emitted in a later tick than connect().
 * - `'earlyDataRejected'` `()`: client: the server refused the 0-RTT data; every stream's data
 *   is resent after the handshake, without the application doing anything.
 * - `'keylog'` `(line: Buffer)`: a TLS secret as an NSS key log line (ending in `'\n'`), like
 *   tls.TLSSocket's; on a client, listen in the tick of connect() to get every line.
 * - `'pathChange'` `(info: PathChangeInfo)`: the connection uses a new path, once the peer proved
 *   it answers there: on a server, the client's address or port changed mid-connection (NAT
 *   rebinding) and nothing was lost; on a client, {@link Connection.migrate} moved it.
 *   `remoteAddress`/`remotePort` (and `localPort`) follow the new path.
 * - `'close'` `(info: CloseInfo)`: the connection is closed, cleanly or not; always emitted, last.
 * - `'error'` `(error: CodedError)`: the connection failed (a TLS or transport error, a timeout,
 *   a failed name lookup, destroy(error)); emitted just before 'close' and only while someone listens, so an unlistened
 *   failure never throws. The `handshake` promise and `info.error` carry the error too.
 */
export class Connection extends EventEmitter {
  /** Resolves when the handshake completes; rejects if the connection fails first. */
  readonly handshake: Promise<HandshakeInfo>;
  #native: any;
  #server: boolean;
  #servername: string;
  #alpnOffered: string[];
  #info?: HandshakeInfo;
  #closed = false;
  #closing = false;
  #resumedEarly = false;
  #closeInfo?: CloseInfo;
  #streams = new Map<bigint, Stream>();
  /** Streams waiting for the peer (or the handshake) to allow them, by native token (negative); made on first use. */
  #pendingStreams?: Map<bigint, Stream>;
  /** Streams and requests opened while the server's name resolves, opened natively on attach. */
  #beforeStart: Array<{ stream: Stream; unidirectional: boolean; headers?: string[] }> = [];
  #closeBeforeStart?: [code: number, reason: string, timeout: number];
  #failure?: CodedError;
  #addresses?: { local: NativeAddress; remote: NativeAddress };
  #label: string;
  /** @internal */
  [kTargetPort]?: number;
  #peerCertificate?: X509Certificate | null;
  #resolveHandshake!: (info: HandshakeInfo) => void;
  #rejectHandshake!: (error: Error) => void;
  #closeWaiters: Array<() => void> = [];
  #onClosed: (connection: Connection) => void;
  #ticketSecret?: Buffer;
  #migration?: { port: number; resolve: (info: PathChangeInfo) => void; reject: (error: Error) => void };
  /** setKeepAlive() before the native connection exists (while the server's name resolves). */
  #keepAliveBeforeStart?: number;

  /** @internal Created by Engine; applications use engine.connect() or the 'connection' event. */
  constructor(
    server: boolean,
    servername: string,
    alpnOffered: string[],
    onClosed: (connection: Connection) => void,
    ticketSecret?: Buffer,
  ) {
    super();
    this.#label = debug.enabled ? connectionLabel(server) : '';
    this.#ticketSecret = ticketSecret;
    this.#server = server;
    this.#servername = servername;
    this.#alpnOffered = alpnOffered;
    this.#onClosed = onClosed;
    this.handshake = new Promise<HandshakeInfo>((resolve, reject) => {
      this.#resolveHandshake = resolve;
      this.#rejectHandshake = reject;
    });
    // Applications that never await the promise must not get unhandled rejections.
    this.handshake.catch(ignore);
    // Tickets are only built while someone listens for them. One function for every connection
    // (EventEmitter calls it on `this`): no closures kept per idle connection.
    this.on('newListener', Connection.#onNewListener);
    this.on('removeListener', Connection.#onRemoveListener);
  }

  static #onNewListener(this: Connection, event: string | symbol): void {
    if (event === 'ticket' && this.listenerCount('ticket') === 0) this.#native?.setWantTickets(true);
    if (event === 'keylog' && this.listenerCount('keylog') === 0) this.#native?.setWantKeylog(true);
  }

  static #onRemoveListener(this: Connection, event: string | symbol): void {
    if (event === 'ticket' && this.listenerCount('ticket') === 0) this.#native?.setWantTickets(false);
    if (event === 'keylog' && this.listenerCount('keylog') === 0) this.#native?.setWantKeylog(false);
  }

  /** @internal */
  [kAttachNative](native: any): void {
    this.#native = native;
    if (debug.enabled) debug('%s: %s %s:%d', this.#label, this.#server ? 'accepted from' : 'connecting to', this.remoteAddress, this.remotePort);
    if (this.listenerCount('ticket') > 0) native.setWantTickets(true);
    if (this.listenerCount('keylog') > 0) native.setWantKeylog(true);
    if (this.#keepAliveBeforeStart !== undefined) native.setKeepAlive(this.#keepAliveBeforeStart);
    // In the order they were opened, so stream IDs follow it.
    for (const { stream, unidirectional, headers } of this.#beforeStart.splice(0)) {
      this.#adopt(stream, headers ? native.submitRequest(headers) : native.openStream(!unidirectional));
    }
    if (this.#closeBeforeStart) native.close(...this.#closeBeforeStart);
  }

  /** @internal */
  get [kStarted](): boolean {
    return this.#native !== undefined;
  }

  /** @internal */
  [kFailStart](error: CodedError): void {
    if (this.#closed && this.#closeInfo) return;
    this.#failBeforeStart(error);
  }

  #failBeforeStart(error?: CodedError): void {
    const waiting = this.#beforeStart.splice(0);
    if (waiting.length > 0) {
      const unsent = error ?? codedError('ERR_QUIC_CONNECTION_CLOSED', 'the connection closed before the stream could open');
      for (const { stream } of waiting) stream.connectionClosed(unsent);
    }
    this.#finish({ code: 0, reason: '', type: 'transport', remote: false, error });
  }

  /** A stream made while the name resolved, given its native ID (or pending token) at last. */
  #adopt(stream: Stream, id: bigint): void {
    if (id >= 0n) {
      this.#streams.set(id, stream);
      stream.opened(id);
    } else {
      (this.#pendingStreams ??= new Map()).set(id, stream);
      stream.once('close', () => {
        if (this.#pendingStreams?.delete(id) && !this.#closed) this.#native.cancelPending(id);
      });
    }
  }

  /** Before the native connection exists: a stream that opens once it does. */
  #deferStream(unidirectional: boolean, headers?: string[]): Stream {
    const stream = new Stream(this, null, { local: true, unidirectional, early: false });
    const entry = { stream, unidirectional, headers };
    this.#beforeStart.push(entry);
    stream.once('close', () => {
      const index = this.#beforeStart.indexOf(entry);
      if (index >= 0) this.#beforeStart.splice(index, 1);
    });
    return stream;
  }

  /** True for a connection a listening engine accepted, false for one from connect(). */
  get server(): boolean {
    return this.#server;
  }
  /** True once the TLS session was resumed from a ticket (like tls.TLSSocket#isSessionReused()). */
  get resumed(): boolean {
    // A server knows from the ClientHello on, before 0-RTT data is delivered.
    return this.#info?.resumed ?? this.#resumedEarly;
  }
  /** What became of 0-RTT ({@link EarlyDataState}); `'none'` until the handshake completes. */
  get earlyData(): EarlyDataState {
    return this.#info?.earlyData ?? 'none';
  }
  /** The negotiated ALPN protocol; undefined until the handshake completes. */
  get alpn(): string | undefined {
    return this.#info?.alpn;
  }
  /**
   * The server name: on a client, connect()'s `servername` (else `host`), sent as SNI and checked
   * against the certificate; on a server, the client's SNI once the handshake completes ('' before).
   */
  get servername(): string {
    return this.#info?.servername ?? this.#servername;
  }
  /** True from destroy() on, and once the connection closed (just before 'close'). */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * The peer's IP address (like socket.remoteAddress); undefined while connect()'s host name
   * resolves, and on a client it moves to the server's next address while earlier ones fail.
   */
  get remoteAddress(): string | undefined {
    return this.#addressesNow()?.remote.address;
  }
  /**
   * The peer's UDP port (like socket.remotePort): on a client, connect()'s `port`. On a server it
   * follows the client to a new address or port ('pathChange').
   */
  get remotePort(): number | undefined {
    return this.#addressesNow()?.remote.port ?? this[kTargetPort];
  }
  /** 'IPv4' or 'IPv6' (like socket.remoteFamily). */
  get remoteFamily(): string | undefined {
    return this.#addressesNow()?.remote.family;
  }
  /** The local end of the engine's UDP socket this connection uses. */
  get localAddress(): string | undefined {
    return this.#addressesNow()?.local.address;
  }
  /** The UDP port this connection uses (like socket.localPort): the engine's socket's, or after migrate() its own. */
  get localPort(): number | undefined {
    return this.#addressesNow()?.local.port;
  }

  /**
   * Round-trip times, congestion window, bytes and packets sent, received and lost, and streams
   * opened. Still answers after the close, with the connection's last numbers.
   */
  stats(): ConnectionStats {
    if (!this.#native) return emptyStats();
    return this.#native.stats();
  }

  /**
   * Like socket.setKeepAlive(): with `enable`, the connection sends a PING once `initialDelay` ms
   * (0, the default: 15000) passed without anything sent or received, so that NATs and firewalls
   * keep their mapping and the idle timeout never fires while the peer answers; without it, no
   * PINGs (the engine's `keepAlive` option sets the starting value). Useful only below the idle
   * timeout. Does nothing once the connection is closed.
   */
  setKeepAlive(enable = false, initialDelay = 0): this {
    checkOptionalBoolean('enable', enable);
    checkOptionalInteger('initialDelay', initialDelay, 0, 3600000);
    const ms = enable ? initialDelay || DEFAULT_KEEP_ALIVE : 0;
    if (this.#native) this.#native.setKeepAlive(ms);
    else this.#keepAliveBeforeStart = ms;
    return this;
  }

  /**
   * Client: moves the connection to a new local UDP port, as a device that changed networks would
   * (RFC 9000 9.2). The engine opens a socket of its own for it (on the address of the engine's
   * socket); the connection moves there at once (as soon as the handshake is confirmed) and asks the
   * server to answer there (PATH_CHALLENGE). Streams and their data carry on; nothing has to be
   * written again. Resolves with the 'pathChange' info once the server answered on the new path.
   * Rejects with `ERR_QUIC_MIGRATION` (a server connection, a handshake not yet complete, a
   * migration already under way), `ERR_QUIC_MIGRATION_FAILED` (no answer on the new path, no spare
   * connection ID from the server, or a server that disabled migration: the connection is back on
   * its previous path), or the connection's error if it closes first. The previous socket, unless
   * it is the engine's, closes once the move is confirmed; the new one closes when the connection
   * moves on or ends, or with the engine.
   */
  migrate(): Promise<PathChangeInfo> {
    if (this.#closed) return Promise.reject(closedError('connection'));
    if (this.#server) return Promise.reject(codedError('ERR_QUIC_MIGRATION', 'only a client connection can migrate'));
    if (!this.#native || !this.#info) return Promise.reject(codedError('ERR_QUIC_MIGRATION', 'the handshake has not completed yet'));
    if (this.#migration) return Promise.reject(codedError('ERR_QUIC_MIGRATION', 'a migration is already in progress'));
    let local: NativeAddress;
    try {
      local = this.#native.migrate();
    } catch (error) {
      return Promise.reject(error);
    }
    debug('%s: migrating to local port %d', this.#label, local.port);
    return new Promise<PathChangeInfo>((resolve, reject) => {
      this.#migration = { port: local.port, resolve, reject };
    });
  }

  /**
   * The certificate the peer presented (a server's on a client connection, a client's if it sent
   * one), or undefined: none yet (before the handshake) or none at all. Like
   * tlsSocket.getPeerX509Certificate().
   */
  getPeerCertificate(): X509Certificate | undefined {
    if (this.#peerCertificate) return this.#peerCertificate;
    const der: Buffer | undefined = this.#native?.peerCertificate();
    if (!der) return undefined;
    this.#peerCertificate = new X509Certificate(der);
    return this.#peerCertificate;
  }

  /**
   * Opens a stream (bidirectional unless `unidirectional`). Allowed before the handshake: on a
   * resumed connection its data is 0-RTT. When the peer's stream limit is reached, the stream
   * waits (its `id` is -1n) and its writes are buffered. Throws `ERR_QUIC_CONNECTION_CLOSED` on a
   * closed connection, `ERR_QUIC_CONNECTION_CLOSING` after close(), and `ERR_QUIC_HTTP3_CONNECTION`
   * on an HTTP/3 connection (use {@link request}); a waiting stream whose handshake then picks
   * HTTP/3 fails with that error instead.
   */
  openStream(options: StreamOptions = {}): Stream {
    if (options === null || typeof options !== 'object') throw invalidArgType('options', 'an object', options);
    checkOptionalBoolean('options.unidirectional', options.unidirectional);
    this.#throwIfNoNewStreams();
    const unidirectional = options.unidirectional ?? false;
    if (!this.#native) return this.#deferStream(unidirectional);
    return this.#track(this.#native.openStream(!unidirectional), unidirectional);
  }

  /**
   * Closes gracefully, like http2session.close(): no new streams from now on; the open ones finish
   * on their own (for at most `timeout` ms, default 5000) and the peer acknowledges everything
   * sent; then CONNECTION_CLOSE goes out. Streams still open at the deadline end with 'aborted'.
   * On HTTP/3, GOAWAY goes first. Resolves once the connection is closed (at once if it already
   * is); never rejects.
   */
  close(options: CloseOptions = {}): Promise<void> {
    if (options === null || typeof options !== 'object') throw invalidArgType('options', 'an object', options);
    checkOptionalInteger('options.code', options.code, 0, Number.MAX_SAFE_INTEGER);
    checkOptionalString('options.reason', options.reason);
    checkOptionalInteger('options.timeout', options.timeout, 0, 3600000);
    if (this.#closed) return Promise.resolve();
    const done = new Promise<void>((resolve) => this.#closeWaiters.push(resolve));
    if (!this.#closing) {
      this.#closing = true;
      const args: [number, string, number] = [options.code ?? 0, options.reason ?? '', options.timeout ?? DEFAULT_CLOSE_TIMEOUT];
      if (this.#native) this.#native.close(...args);
      else if (this.#beforeStart.length === 0) process.nextTick(() => this.#failBeforeStart()); // nothing to wait for
      else this.#closeBeforeStart = args;
    }
    return done;
  }

  /**
   * `await using connection = engine.connect(...)` closes it gracefully at the end of the scope
   * (close() with its defaults; an already closed connection resolves at once).
   */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** True from close() on: the connection takes no new streams. */
  get closing(): boolean {
    return this.#closing;
  }

  /** Closes at once. With an error, 'error' is emitted (when listened for) and pending work fails with it. */
  destroy(error?: Error): void {
    if (this.#closed) return;
    if (error !== undefined && !(error instanceof Error)) throw invalidArgType('error', 'an Error', error);
    if (error) this.#failure = error as CodedError;
    if (this.#native) this.#native.destroy(error ? 1 : 0);
    else process.nextTick(() => this.#failBeforeStart(error as CodedError | undefined));
    // Closed from now on (like socket.destroyed), although 'close' is emitted on the next turn.
    this.#closed = true;
  }

  /** @internal Starts an HTTP/3 request; the returned stream carries its body. */
  [kSubmitRequest](headers: string[]): Stream {
    this.#throwIfNoNewStreams();
    if (!this.#native) return this.#deferStream(false, headers);
    let id: bigint;
    try {
      id = this.#native.submitRequest(headers);
    } catch (error) {
      // ERR_QUIC_HTTP3_UNAVAILABLE: request() rejects with it.
      const stream = new Stream(this, null, { local: true, unidirectional: false, early: false });
      stream.failOpen(error as Error);
      return stream;
    }
    return this.#track(id, false);
  }

  /** A stream of ours from native's answer: its ID, or a negative token while it waits to open. */
  #track(id: bigint, unidirectional: boolean): Stream {
    const opened = id >= 0n;
    const stream = new Stream(this, opened ? id : null, { local: true, unidirectional, early: false });
    if (opened) {
      this.#streams.set(id, stream);
    } else {
      (this.#pendingStreams ??= new Map()).set(id, stream);
      // Destroyed before it could open: native forgets it.
      stream.once('close', () => {
        if (this.#pendingStreams?.delete(id) && !this.#closed) this.#native.cancelPending(id);
      });
    }
    return stream;
  }

  /** @internal */
  [kSubmitResponse](stream: Stream, headers: string[]): void {
    if (this.#closed) throw closedError('connection');
    this.#native.submitResponse(stream.id, headers);
  }

  // ---- StreamOwner ----
  /** @internal */
  nativeWrite(id: bigint, chunk: Buffer | undefined, fin: boolean): number {
    if (this.#closed) throw closedError('connection');
    return this.#native.write(id, chunk, fin);
  }
  /** @internal */
  nativeShutdown(id: bigint, code: number): void {
    if (!this.#closed) this.#native.shutdownStream(id, code);
  }
  /** @internal */
  nativeConsume(id: bigint, bytes: number): void {
    if (!this.#closed) this.#native.consume(id, bytes);
  }

  // ---- native events (lib/native-events.ts), once per loop turn ----
  /** @internal */
  [kOnStreamData](id: bigint, data: Buffer, fin: boolean): boolean {
    const stream = this.#streams.get(id);
    return stream ? stream.receive(data, fin) : true;
  }
  /** @internal */
  [kOnStreamOpen](id: bigint, early: boolean): void {
    const stream = new Stream(this, id, { local: false, unidirectional: (id & 2n) !== 0n, early });
    this.#streams.set(id, stream);
    this.emit('stream', stream);
  }
  /** @internal */
  [kOnStreamDrain](id: bigint): void {
    this.#streams.get(id)?.drained();
  }
  /** @internal */
  [kOnStreamReset](id: bigint, code: number, stopSending: boolean): void {
    this.#streams.get(id)?.reset(code, stopSending);
  }
  /** @internal */
  [kOnStreamClose](id: bigint, code: number): void {
    const stream = this.#streams.get(id);
    this.#streams.delete(id);
    stream?.nativeClose(code);
  }
  /** @internal */
  [kOnStreamOpened](token: bigint, id: bigint): void {
    const stream = this.#pendingStreams?.get(token);
    this.#pendingStreams?.delete(token);
    if (!stream) {
      this.#native.shutdownStream(id, 0); // destroyed while native was opening it
      return;
    }
    this.#streams.set(id, stream);
    stream.opened(id);
  }
  /** @internal */
  [kOnStreamOpenFailed](token: bigint, error: CodedError): void {
    const stream = this.#pendingStreams?.get(token);
    this.#pendingStreams?.delete(token);
    stream?.failOpen(error);
  }
  /** @internal */
  [kOnHandshake](info: HandshakeInfo): void {
    this.#info = info;
    if (debug.enabled) debug('%s: handshake done: alpn %s, servername %s, resumed %s, 0-RTT %s', this.#label, info.alpn, info.servername, info.resumed, info.earlyData);
    this.#resolveHandshake(info);
    this.emit('handshake', info);
  }
  /** @internal */
  [kOnHeaders](id: bigint, fields: string[], trailers: boolean): void {
    this.#streams.get(id)?.emit(kHeadersEvent, fields, trailers);
  }
  /** @internal */
  [kOnTicket](sessionData: Buffer, transportParams: Buffer, lifetimeSeconds: number, earlyData: boolean, addressToken?: Buffer): void {
    this.#emitTicket(sessionData, transportParams, lifetimeSeconds, earlyData, addressToken);
  }
  /** @internal */
  [kOnTicketRejected](reason: TicketRejectedReason): void {
    debug('%s: ticket rejected: %s', this.#label, reason);
    this.emit('ticketRejected', reason);
  }
  /** @internal */
  [kOnEarlyDataRejected](): void {
    debug('%s: 0-RTT rejected; resending', this.#label);
    this.emit('earlyDataRejected');
  }
  /** @internal */
  [kOnResumed](): void {
    this.#resumedEarly = true;
  }
  /** @internal */
  [kOnKeylog](line: Buffer): void {
    this.emit('keylog', line);
  }
  /** @internal */
  [kOnPathChange](info: PathChangeInfo): void {
    this.#addresses = this.#native.addresses();
    if (debug.enabled) {
      debug('%s: path changed: peer %s:%d -> %s:%d, local port %d -> %d', this.#label, info.previousRemoteAddress,
        info.previousRemotePort, info.remoteAddress, info.remotePort, info.previousLocalPort, info.localPort);
    }
    const migration = this.#migration;
    if (migration && migration.port === info.localPort) this.#migration = undefined;
    this.emit('pathChange', info);
    if (migration && migration.port === info.localPort) migration.resolve(info);
  }
  /** @internal */
  [kOnMigrationFailed](error: CodedError): void {
    debug('%s: migration failed: %s', this.#label, error.message);
    const migration = this.#migration;
    this.#migration = undefined;
    migration?.reject(error);
  }
  /** @internal */
  [kOnClose](info: CloseInfo): void {
    this.#finish(info);
  }

  #addressesNow(): { local: NativeAddress; remote: NativeAddress } | undefined {
    // Read again until the handshake completes: a client may move on to the server's next address.
    if (this.#native && (!this.#addresses || (!this.#info && !this.#closed))) this.#addresses = this.#native.addresses();
    return this.#addresses;
  }

  #throwIfNoNewStreams(): void {
    if (this.#closed) throw closedError('connection');
    if (this.#closing) throw codedError('ERR_QUIC_CONNECTION_CLOSING', 'the connection is closing: no new streams');
  }

  #emitTicket(sessionData: Buffer, transportParams: Buffer, lifetimeSeconds: number, earlyData: boolean, addressToken?: Buffer): void {
    if (this.listenerCount('ticket') === 0) return;
    const issuedAt = new Date();
    const expiresAt = new Date(issuedAt.getTime() + lifetimeSeconds * 1000);
    const ticket = encodeTicket({
      servername: this.#servername,
      alpn: this.#info?.alpn ?? this.#alpnOffered[0],
      issuedAt,
      expiresAt,
      earlyData,
      sessionData,
      transportParams,
      addressToken,
    }, this.#ticketSecret);
    this.emit('ticket', ticket);
  }

  #finish(info: CloseInfo): void {
    this.#closed = true;
    if (debug.enabled) {
      debug('%s: closed by %s: %s code %d%s%s', this.#label, info.remote ? 'the peer' : 'us', info.type, info.code,
        info.reason ? ` (${info.reason})` : '', info.error ? `, ${info.error.code}: ${info.error.message}` : '');
    }
    if (this.#failure && !info.error) info.error = this.#failure;
    this.#closeInfo = info;
    // A clean close (either side's close() or destroy() without an error, like http2session's)
    // aborts the streams still open, like a peer's reset: 'aborted' and 'close', no 'error'. An
    // error, an error code from the peer or an idle timeout (the peer vanished) fails them.
    // Streams that never opened lost their writes: they fail either way.
    let streamError: Error | undefined = info.error;
    const cleanCode = info.code === 0 || (info.code === H3_NO_ERROR && this.#info?.alpn === 'h3');
    if (!streamError && (!cleanCode || info.reason === IDLE_TIMEOUT_REASON) && this.#streams.size > 0) {
      streamError = codedError('ERR_QUIC_CONNECTION_CLOSED', 'the connection closed');
    }
    for (const stream of this.#streams.values()) stream.connectionClosed(streamError);
    if (this.#pendingStreams && this.#pendingStreams.size > 0) {
      // Only made when needed: an Error captures a stack.
      const unsent = info.error ?? codedError('ERR_QUIC_CONNECTION_CLOSED', 'the connection closed before the stream could open');
      for (const stream of this.#pendingStreams.values()) stream.connectionClosed(unsent);
    }
    this.#streams.clear();
    this.#pendingStreams?.clear();
    if (!this.#info) {
      this.#rejectHandshake(info.error ?? codedError('ERR_QUIC_CONNECTION_CLOSED', 'the connection closed before the handshake completed'));
    }
    if (this.#migration) {
      this.#migration.reject(info.error ?? codedError('ERR_QUIC_CONNECTION_CLOSED', 'the connection closed before the migration completed'));
      this.#migration = undefined;
    }
    this.#onClosed(this);
    try {
      if (info.error && this.listenerCount('error') > 0) this.emit('error', info.error);
    } finally {
      // A throwing 'error' listener must not leave close() pending or swallow 'close'.
      for (const resolve of this.#closeWaiters.splice(0)) resolve();
      this.emit('close', info);
    }
  }
}

// What Stream and native code call on a Connection, checked here rather than with `implements`:
// both are internal, and the published .d.ts leaves them out (stripInternal).
type Implements<T extends Contract, Contract> = T;
type _ConnectionContracts = [Implements<Connection, StreamOwner>, Implements<Connection, NativeConnectionEvents>];

// Typed listeners for the events above (the untyped EventEmitter signatures remain available).
export interface Connection {
  /** Adds a listener for one of the {@link ConnectionEvents}, its arguments typed. */
  on<E extends keyof ConnectionEvents>(event: E, listener: (...args: ConnectionEvents[E]) => void): this;
  /** Adds a listener for any event, untyped (EventEmitter's signature). */
  on(event: string | symbol, listener: (...args: any[]) => void): this; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** Adds a one-time listener for one of the {@link ConnectionEvents}, its arguments typed. */
  once<E extends keyof ConnectionEvents>(event: E, listener: (...args: ConnectionEvents[E]) => void): this;
  /** Adds a one-time listener for any event, untyped (EventEmitter's signature). */
  once(event: string | symbol, listener: (...args: any[]) => void): this; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** Removes a listener added for one of the {@link ConnectionEvents}. */
  off<E extends keyof ConnectionEvents>(event: E, listener: (...args: ConnectionEvents[E]) => void): this;
  /** Removes a listener of any event (EventEmitter's signature). */
  off(event: string | symbol, listener: (...args: any[]) => void): this; // eslint-disable-line @typescript-eslint/no-explicit-any
}
