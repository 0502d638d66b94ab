// Engine: one UDP endpoint, many QUIC connections, as a client, a server or both.
import dgram from 'node:dgram';
import dns from 'node:dns';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

import { binding, kOnConnection } from './binding';
import { Connection, kAttachNative, kFailStart, kStarted, kTargetPort, TicketRejectedReason } from './connection';
import {
  checkObject,
  checkOptionalBoolean,
  checkOptionalInteger,
  checkOptionalOneOf,
  checkOptionalString,
  closedError,
  CodedError,
  invalidArgType,
  invalidArgValue,
} from './errors';
import { checkAntiReplayStore, checkTicketKeys, kNativeSsl, SslConfig } from './ssl-config';
import { debug } from './debug';
import { decodeTicket, TicketContents } from './ticket';
import { TicketStore } from './ticket-store';

/**
 * Options of `new Engine()`. The transport settings apply to every connection of the engine, the
 * ones it accepts and the ones it starts.
 */
export interface EngineOptions {
  /** Server credentials and policy; also the default for connect(). */
  ssl?: SslConfig;
  /**
   * A replay-store file shared by every process that names it (see
   * {@link SslConfigOptions.antiReplayStore}); for the connections this engine accepts, it
   * overrides its SslConfig's. Default: the SslConfig's store.
   */
  antiReplayStore?: string;
  /**
   * Share the UDP port with other processes (SO_REUSEPORT, the kernel balancing clients between
   * them; default false). Where it cannot (`socketFeatures.reusePort` false), listen() rejects with
   * `ERR_QUIC_REUSEPORT_UNSUPPORTED`.
   */
  reusePort?: boolean;
  /** Milliseconds without traffic before a connection closes (default 30000). */
  idleTimeout?: number;
  /** Milliseconds a handshake may take (default 10000). */
  handshakeTimeout?: number;
  /**
   * Milliseconds without anything sent or received after which each connection sends a PING
   * (default 0: never), keeping NAT mappings and the idle timeout alive while the peer answers.
   * Per connection: `connection.setKeepAlive()`.
   */
  keepAlive?: number;
  /**
   * The congestion controller of the engine's connections (ngtcp2's): `'bbr'` (default; BBR v2:
   * paces to the measured bandwidth and round trip, keeps queues short, does not read random loss
   * as congestion), `'cubic'` (RFC 9438, with HyStart++) or `'reno'` (RFC 9002's NewReno). The
   * default is measured: at 50 ms RTT with 1% random loss Cubic was over 30 times slower than BBR
   * (bench/README.md, "lossy"); on loopback they were alike.
   */
  congestionControl?: CongestionControl;
  /** Bidirectional streams the peer may have open at once (default 128). */
  maxStreamsBidi?: number;
  /** Unidirectional streams the peer may have open at once (default 128). */
  maxStreamsUni?: number;
  /**
   * Initial flow-control window of each stream, in bytes (at least 1024): how much the peer may
   * send on a stream before it is read. Default 256 KiB for server connections (every client may
   * fill it) and 1 MiB for client connections. ngtcp2 grows it for fast readers, up to 6 MiB.
   */
  streamWindow?: number;
  /**
   * Initial flow-control window of the whole connection, in bytes (at least 1024; grows up to
   * 16 MiB). Default 1 MiB for server connections and 16 MiB for client connections, as browsers
   * start: downloads then need no round trips for the window to grow.
   */
  connectionWindow?: number;
  /** Directory to write one qlog file per connection into (a debugging aid; synchronous writes). */
  qlogDir?: string;
  /**
   * 32 secret bytes from which the engine derives its connections' stateless reset tokens (RFC 9000
   * 10.3; default: random per engine). Give a restarted server, and every member of a `reusePort`
   * cluster, the same key: a server that lost a connection's state then answers that
   * connection's packets with a stateless reset, and the client closes at once with
   * `ERR_QUIC_STATELESS_RESET` instead of waiting out its idle timeout. Keep it as secret as `ticketKeys`.
   */
  statelessResetKey?: Buffer;
  /**
   * When the server asks a new client to prove its address with a Retry (RFC 9000 8.1.2) before
   * creating any state for it: `'auto'` (default) once 100 handshakes are in progress (a flood of
   * first flights, which anyone can forge, then costs no memory), `'always'`, or `'never'`. A
   * client that holds an address token from an earlier connection (quicket clients keep it in
   * their tickets) skips the Retry, and the server's 3x anti-amplification limit, at once.
   * Tokens are sealed under a key derived from `statelessResetKey`: give restarts and cluster
   * members the same key and they accept each other's tokens.
   */
  addressValidation?: AddressValidationMode;
  /** Server connections the engine keeps at once (default 100000); beyond it new clients are refused with CONNECTION_REFUSED. */
  maxConnections?: number;
  /**
   * Server handshakes in progress at once (default 1000, about 60 KiB each); beyond it new clients
   * are refused with CONNECTION_REFUSED (they see `ERR_QUIC_CONNECTION_REFUSED` at once).
   */
  maxHandshakes?: number;
  /**
   * How long a Retry token verifies, in ms (default 10000): the client's answer to a Retry must
   * come back within it, or its handshake is closed with INVALID_TOKEN.
   */
  retryTokenLifetime?: number;
  /**
   * How long an address token sent in NEW_TOKEN verifies, in ms (default 7200000, two hours, as
   * long as a default ticket). An expired one counts as no token: that client gets a Retry when
   * `addressValidation` asks for one, and the 3x anti-amplification limit.
   */
  addressTokenLifetime?: number;
}

/** See {@link EngineOptions.congestionControl}. */
export type CongestionControl = 'cubic' | 'bbr' | 'reno';
const CONGESTION_CONTROLS: readonly string[] = ['cubic', 'bbr', 'reno'];

/** See {@link EngineOptions.addressValidation}. */
export type AddressValidationMode = 'auto' | 'always' | 'never';

/** What {@link Engine.stats} reports: the server side of an engine. */
export interface EngineStats {
  /** Server connections open now. */
  connections: number;
  /** Server handshakes in progress now (counted against `maxHandshakes`). */
  handshakes: number;
  /** Retry packets sent (address validation) since the engine was made. */
  retriesSent: number;
  /** New clients refused with CONNECTION_REFUSED (over `maxConnections` or `maxHandshakes`). */
  connectionsRefused: number;
  /** Stateless resets sent (packets for connections this engine does not have). */
  statelessResetsSent: number;
}

/** Where {@link Engine.listen} binds. */
export interface ListenOptions {
  /** IP address to bind (default '0.0.0.0'); '::' also accepts IPv4 clients unless `ipv6Only`. */
  host?: string;
  /** UDP port (default 0: any free port). */
  port?: number;
  /** With host '::', IPv6 clients only (like net.Server#listen's `ipv6Only`). Default false. */
  ipv6Only?: boolean;
}

/** Resolves a server's name, with the signature of dns.lookup (net.connect's `lookup` option). */
export type LookupFunction = (
  hostname: string,
  options: dns.LookupAllOptions,
  callback: (error: NodeJS.ErrnoException | null, addresses: dns.LookupAddress[] | string, family?: number) => void,
) => void;

/** What {@link Engine.connect} connects to, and with which TLS settings and ticket. */
export interface ConnectOptions {
  /**
   * The server: an IP address, or a name resolved with `lookup` (every address it returns is
   * tried in order, each for `autoSelectFamilyAttemptTimeout` ms while more remain, or until it
   * refuses). 'localhost' means ::1 and 127.0.0.1 without a lookup.
   */
  host: string;
  /** The server's UDP port (1 to 65535). */
  port: number;
  /** Name sent as SNI and checked against the certificate (default: host). */
  servername?: string;
  /** Resolves `host` when it is a name (default dns.lookup, asked for all addresses). */
  lookup?: LookupFunction;
  /** Milliseconds to wait for an answer from one address before trying the next (default 250, at least 10). */
  autoSelectFamilyAttemptTimeout?: number;
  /** Client credentials and policy (default: the engine's, else node:tls's default roots). */
  ssl?: SslConfig;
  /** Offer only this ALPN protocol instead of the SslConfig's list. */
  alpn?: string;
  /** A ticket from a 'ticket' event, to resume the session and send 0-RTT. */
  ticket?: Buffer;
  /**
   * Resumption without ticket code: the connection takes the newest ticket for its servername,
   * port and ALPN from the store (unless `ticket` is given, which wins) and puts every ticket it
   * receives back.
   */
  ticketStore?: TicketStore;
}

/** A bound UDP address, like node:dgram's `socket.address()`. */
export interface AddressInfo {
  /** The IP address, e.g. `'127.0.0.1'` or `'::'`. */
  address: string;
  /** The UDP port. */
  port: number;
  /** `'IPv4'` or `'IPv6'`. */
  family: string;
}

const MAX_U32 = 0xffffffff;
const DEFAULT_ATTEMPT_TIMEOUT = 250;
const STATELESS_RESET_KEY_LENGTH = 32;
const ADDRESS_VALIDATION_MODES: readonly string[] = ['auto', 'always', 'never'];
// RFC 6761: localhost is the loopback, whatever /etc/hosts lists (often only one of the two).
const LOCALHOST = ['127.0.0.1', '::1'];

function bindAddress(host: string): string {
  if (host === 'localhost') return '127.0.0.1';
  if (net.isIP(host) === 0) {
    throw invalidArgValue('options.host', `must be an IP address or 'localhost' to listen on. Received '${host}'`);
  }
  return host;
}

const warnedStores = new WeakSet<TicketStore>();

/**
 * A ticket store used on the user's behalf never fails a connection: a file it cannot read or
 * write (permissions, a full disk) costs resumption, and says so once per store as a process warning.
 */
function storeCall<T>(store: TicketStore, call: () => T): T | undefined {
  try {
    return call();
  } catch (error) {
    debug('engine: ticket store %s: %s', store.file ?? '(memory)', (error as Error).message);
    if (!warnedStores.has(store)) {
      warnedStores.add(store);
      process.emitWarning(`ticket store ${store.file ?? ''} failed: ${(error as Error).message}; connecting without it`, { code: 'QUICKET_TICKET_STORE' });
    }
    return undefined;
  }
}

/** The addresses to try, known without a lookup: an IP literal, or localhost. */
function knownAddresses(host: string, lookup: LookupFunction | undefined): string[] | undefined {
  if (net.isIP(host) !== 0) return [host];
  if (host === 'localhost' && !lookup) return LOCALHOST;
  return undefined;
}

/**
 * One UDP socket and the QUIC connections on it: a server once {@link Engine.listen} binds it, a
 * client through {@link Engine.connect} (the first connect() binds an ephemeral port), or both.
 * Closing the engine ({@link Engine.close}, or `await using`) closes every connection on it.
 *
 * Events (listener signatures in {@link EngineEvents}):
 * - `'connection'` `(connection: Connection)`: a client opened a connection. Emitted once the
 *   client's first Initial packet decrypts, while the handshake still runs (see `connection.handshake`).
 * - `'listening'` `()`: listen() bound the socket; emitted before its promise resolves.
 * - `'keylog'` `(line: Buffer, connection: Connection)`: a TLS secret of a server connection as an
 *   NSS key log line (ending in `'\n'`), like tls.Server's. Only connections accepted while a
 *   listener is attached report, from their first secret on.
 * - `'close'` `()`: close() finished: every connection and the socket are closed.
 * - `'error'` `(error: Error)`: not emitted by quicket today; failures throw, reject, or reach
 *   the connection concerned.
 */
export class Engine extends EventEmitter {
  #native: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  #ssl?: SslConfig;
  #defaultClientSsl?: SslConfig;
  #reusePort: boolean;
  #address?: AddressInfo;
  #closed = false;
  #closing?: Promise<void>;
  #connections = new Set<Connection>();
  #ref = true;
  // process.getActiveResourcesInfo() lists only Node's own handle types, never an addon's: an
  // unbound node:dgram handle (no file descriptor, never active, so it holds nothing itself) stands
  // in for the native socket there, ref'd exactly when the socket is. A bound engine shows as
  // 'UDPWrap', as a node:dgram socket does.
  #resourceEntry?: dgram.Socket;

  /**
   * Makes an engine; nothing is bound until listen() or the first connect(). Throws
   * `ERR_INVALID_ARG_TYPE` for an option of the wrong type, `ERR_OUT_OF_RANGE` for a number out of
   * its range, `ERR_INVALID_ARG_VALUE` for a `qlogDir` that is not an existing directory, and
   * `ERR_QUIC_ANTI_REPLAY_STORE` when the `antiReplayStore` file cannot be used (as in SslConfig).
   */
  constructor(options: EngineOptions = {}) {
    super();
    checkObject('options', options);
    const { ssl, reusePort, idleTimeout, handshakeTimeout, keepAlive, congestionControl, maxStreamsBidi, maxStreamsUni, streamWindow, connectionWindow, qlogDir, statelessResetKey,
      addressValidation, maxConnections, maxHandshakes, retryTokenLifetime, addressTokenLifetime } = options;
    if (ssl !== undefined && !(ssl instanceof SslConfig)) throw invalidArgType('options.ssl', 'an SslConfig', ssl);
    checkOptionalBoolean('options.reusePort', reusePort);
    const antiReplayStore = checkAntiReplayStore('options.antiReplayStore', options.antiReplayStore);
    checkOptionalInteger('options.idleTimeout', idleTimeout, 1, 3600000);
    checkOptionalInteger('options.handshakeTimeout', handshakeTimeout, 1, 3600000);
    checkOptionalInteger('options.keepAlive', keepAlive, 0, 3600000);
    checkOptionalOneOf('options.congestionControl', congestionControl, CONGESTION_CONTROLS);
    checkOptionalInteger('options.maxStreamsBidi', maxStreamsBidi, 0, 1 << 30);
    checkOptionalInteger('options.maxStreamsUni', maxStreamsUni, 0, 1 << 30);
    checkOptionalInteger('options.streamWindow', streamWindow, 1024, MAX_U32);
    checkOptionalInteger('options.connectionWindow', connectionWindow, 1024, MAX_U32);
    checkOptionalString('options.qlogDir', qlogDir);
    if (qlogDir !== undefined && !fs.statSync(qlogDir, { throwIfNoEntry: false })?.isDirectory()) {
      throw invalidArgValue('options.qlogDir', `must be an existing directory. Received '${qlogDir}'`);
    }
    if (statelessResetKey !== undefined) {
      if (!Buffer.isBuffer(statelessResetKey)) throw invalidArgType('options.statelessResetKey', 'a Buffer', statelessResetKey);
      if (statelessResetKey.length !== STATELESS_RESET_KEY_LENGTH) {
        throw invalidArgValue('options.statelessResetKey', `must be exactly ${STATELESS_RESET_KEY_LENGTH} bytes. Received ${statelessResetKey.length}`);
      }
    }
    checkOptionalOneOf('options.addressValidation', addressValidation, ADDRESS_VALIDATION_MODES);
    checkOptionalInteger('options.maxConnections', maxConnections, 1, MAX_U32);
    checkOptionalInteger('options.maxHandshakes', maxHandshakes, 1, MAX_U32);
    checkOptionalInteger('options.retryTokenLifetime', retryTokenLifetime, 1, 3600000);
    checkOptionalInteger('options.addressTokenLifetime', addressTokenLifetime, 1, 30 * 24 * 3600000);
    this.#ssl = ssl;
    this.#reusePort = reusePort ?? false;
    this.on('newListener', (event) => {
      if (event === 'keylog' && this.listenerCount('keylog') === 0) this.#native.setWantKeylog(true);
    });
    this.on('removeListener', (event) => {
      if (event === 'keylog' && this.listenerCount('keylog') === 0) this.#native.setWantKeylog(false);
    });
    this.#native = new binding.Engine(this, {
      ssl: ssl?.[kNativeSsl],
      antiReplayStore,
      idleTimeout,
      handshakeTimeout,
      keepAlive,
      congestionControl,
      maxStreamsBidi,
      maxStreamsUni,
      streamWindow,
      connectionWindow,
      qlogDir: qlogDir === undefined ? undefined : path.resolve(qlogDir),
      statelessResetKey,
      addressValidation,
      maxConnections,
      maxHandshakes,
      retryTokenLifetime,
      addressTokenLifetime,
    });
  }

  /**
   * Binds the UDP socket and accepts connections; resolves with the bound address. Rejects with
   * `ERR_QUIC_NO_CERTIFICATE` when the engine has no SslConfig with cert and key,
   * `ERR_QUIC_ALREADY_BOUND` once listen() or a connect() bound the socket, `ERR_QUIC_ENGINE_CLOSED`
   * after close(), `ERR_INVALID_ARG_VALUE` for a host that is not an IP address or 'localhost',
   * `ERR_QUIC_REUSEPORT_UNSUPPORTED` for `reusePort` where the kernel cannot balance, and a
   * {@link SystemError} (`EADDRINUSE`, syscall `'bind'`) when the bind fails, which leaves the
   * engine unbound and usable.
   */
  async listen(options: ListenOptions = {}): Promise<AddressInfo> {
    checkObject('options', options);
    checkOptionalString('options.host', options.host);
    checkOptionalInteger('options.port', options.port, 0, 65535);
    checkOptionalBoolean('options.ipv6Only', options.ipv6Only);
    this.#throwIfClosed();
    if (!this.#ssl) throw invalidArgValue('options', 'cannot listen: the engine has no SslConfig with cert and key', 'ERR_QUIC_NO_CERTIFICATE');
    if (this.#address) throw Object.assign(new Error('the engine is already bound'), { code: 'ERR_QUIC_ALREADY_BOUND' });
    const host = bindAddress(options.host ?? '0.0.0.0');
    // Bound first: a failed bind (or a socket connect() already bound) leaves the engine not listening.
    this.#address = this.#native.bind(host, options.port ?? 0, this.#reusePort, options.ipv6Only ?? false);
    this.#bound();
    this.#native.listen();
    debug('engine: listening on %s:%d', this.#address!.address, this.#address!.port);
    this.emit('listening');
    return this.address();
  }

  /**
   * What the engine's server side is doing: open connections and handshakes (against
   * `maxConnections` and `maxHandshakes`), Retry packets, refusals and stateless resets sent.
   */
  stats(): EngineStats {
    return this.#native.counters();
  }

  /**
   * The bound UDP address: after listen(), or after the first connect() bound the socket. Throws
   * `ERR_QUIC_NOT_BOUND` before that, and after close() unless listen() had bound it.
   */
  address(): AddressInfo {
    const bound: AddressInfo | undefined = this.#closed ? this.#address : this.#native.address() ?? this.#address;
    if (!bound) throw Object.assign(new Error('the engine is not bound'), { code: 'ERR_QUIC_NOT_BOUND' });
    return { ...bound };
  }

  /**
   * Starts a connection, returned at once. Streams opened in the same tick ride the first flight;
   * when `host` is a name they wait for its lookup (a failed lookup is the connection's 'error',
   * ENOTFOUND like net.connect's).
   *
   * Throws `ERR_INVALID_ARG_TYPE`, `ERR_OUT_OF_RANGE` or `ERR_INVALID_ARG_VALUE` for bad options
   * (`alpn` is required when neither `ssl` nor the engine has an SslConfig), `ERR_QUIC_ENGINE_CLOSED`
   * after close(); for an IP address (or localhost), `ERR_QUIC_ADDRESS_FAMILY` when the engine's
   * socket cannot reach it and `ERR_QUIC_CONNECT` when the connection cannot start (after a lookup,
   * those become the connection's 'error'). A ticket it cannot use never throws: see 'ticketRejected'.
   */
  connect(options: ConnectOptions): Connection {
    checkObject('options', options);
    const { host, port, servername, ssl, alpn, ticketStore, lookup, autoSelectFamilyAttemptTimeout } = options;
    let { ticket } = options;
    if (typeof host !== 'string') throw invalidArgType('options.host', 'a string', host);
    if (typeof port !== 'number') throw invalidArgType('options.port', 'a number', port);
    checkOptionalInteger('options.port', port, 1, 65535);
    checkOptionalString('options.servername', servername);
    checkOptionalString('options.alpn', alpn);
    if (ssl !== undefined && !(ssl instanceof SslConfig)) throw invalidArgType('options.ssl', 'an SslConfig', ssl);
    if (ticket !== undefined && !Buffer.isBuffer(ticket)) throw invalidArgType('options.ticket', 'a Buffer', ticket);
    if (ticketStore !== undefined && !(ticketStore instanceof TicketStore)) throw invalidArgType('options.ticketStore', 'a TicketStore', ticketStore);
    if (lookup !== undefined && typeof lookup !== 'function') throw invalidArgType('options.lookup', 'a function', lookup);
    checkOptionalInteger('options.autoSelectFamilyAttemptTimeout', autoSelectFamilyAttemptTimeout, 10, 3600000);
    if (host.length === 0) throw invalidArgValue('options.host', 'must not be empty');
    this.#throwIfClosed();
    const known = knownAddresses(host, lookup);
    const clientSsl = ssl ?? this.#ssl ?? this.#defaultSsl(alpn);
    const offered = alpn !== undefined ? [alpn] : [...clientSsl.alpn];
    const name = servername ?? host;
    if (ticket === undefined && ticketStore) ticket = storeCall(ticketStore, () => ticketStore.take({ servername: name, port, alpn: offered }));

    let usable: TicketContents | undefined;
    let rejection: TicketRejectedReason | undefined;
    if (ticket !== undefined) {
      try {
        usable = decodeTicket(ticket, clientSsl.ticketSecret);
        if (usable.expiresAt.getTime() <= Date.now()) rejection = 'expired';
        else if (usable.servername !== name || !offered.includes(usable.alpn)) rejection = 'mismatch';
      } catch {
        rejection = 'malformed';
      }
      if (rejection) usable = undefined;
      debug('engine: connect %s:%d: ticket %s', host, port, rejection ? `not used (${rejection})` : usable?.earlyData ? 'used, with 0-RTT' : 'used');
    }

    const connection = new Connection(false, name, offered, (closed) => this.#connections.delete(closed), clientSsl.ticketSecret);
    const start = (addresses: string[]): void => {
      let native;
      try {
        native = this.#native.connect(connection, {
          addresses,
          port,
          attemptTimeout: autoSelectFamilyAttemptTimeout ?? DEFAULT_ATTEMPT_TIMEOUT,
          servername: name,
          ssl: clientSsl[kNativeSsl],
          alpn: offered,
          sessionData: usable?.sessionData,
          transportParams: usable?.earlyData ? usable.transportParams : undefined,
          earlyData: clientSsl.earlyData ?? true,
          addressToken: usable?.addressToken,
        });
      } finally {
        this.#bound(); // the first connect() binds the socket, even if the connection then fails to start
      }
      connection[kAttachNative](native);
    };
    if (known) start(known); // throws synchronously, as before any connection exists
    connection[kTargetPort] = port;
    if (ticketStore) connection.on('ticket', (fresh: Buffer) => storeCall(ticketStore, () => ticketStore.put({ servername: name, port }, fresh)));
    this.#connections.add(connection);
    if (!known) this.#resolveThenStart(connection, host, lookup ?? dns.lookup, start);
    if (rejection) {
      // After connect() returns, so the caller can listen for it.
      const reason = rejection;
      process.nextTick(() => connection.emit('ticketRejected', reason));
    }
    return connection;
  }

  #resolveThenStart(connection: Connection, host: string, lookup: LookupFunction, start: (addresses: string[]) => void): void {
    debug('engine: looking up %s', host);
    lookup(host, { all: true }, (error, found) => {
      if (connection.closed) return; // destroyed while the name resolved
      if (this.#closed) return connection[kFailStart](closedError('engine'));
      // A lookup in dns.lookup's one-address form (some custom ones ignore `all`) works too.
      const addresses = typeof found === 'string' ? [found] : (found ?? []).map((entry) => entry.address);
      if (error || addresses.length === 0) {
        const failure = error ?? Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND', syscall: 'getaddrinfo', hostname: host });
        debug('engine: lookup %s failed: %s', host, failure.code);
        return connection[kFailStart](failure as CodedError);
      }
      debug('engine: %s is %s', host, addresses.join(', '));
      try {
        start(addresses);
      } catch (startError) {
        connection[kFailStart](startError as CodedError);
      }
    });
  }

  /**
   * The server's current 48-byte ticket key, the newest of its ring (like tls.Server#getTicketKeys()).
   * Throws `ERR_QUIC_NO_SSL_CONFIG` when the engine has no SslConfig.
   */
  getTicketKeys(): Buffer {
    this.#throwIfNoSsl();
    return this.#native.getTicketKeys();
  }

  /**
   * Replaces this engine's ticket keys for future handshakes (like tls.Server#setTicketKeys()): one
   * 48-byte key, after which older tickets stop resuming, or a ring `[newest, ...older]`, which
   * keeps the older keys' tickets resuming (and renews them) while the newest encrypts. Throws
   * `ERR_INVALID_ARG_TYPE` / `ERR_INVALID_ARG_VALUE` for anything but 48-byte Buffers, and
   * `ERR_QUIC_NO_SSL_CONFIG` when the engine has no SslConfig.
   */
  setTicketKeys(keys: Buffer | Buffer[]): void {
    const ring = checkTicketKeys('keys', keys);
    this.#throwIfNoSsl();
    this.#native.setTicketKeys(ring);
  }

  /**
   * Lets the bound socket keep the process alive again (the default), like net.Server#ref().
   * Called before the socket is bound, it applies once it is.
   */
  ref(): this {
    this.#setRef(true);
    return this;
  }

  /**
   * Lets the process exit while this engine is its only work, like net.Server#unref(): its socket
   * and its connections' timers no longer hold the event loop (connections then end with the process).
   */
  unref(): this {
    this.#setRef(false);
    return this;
  }

  /**
   * Closes every connection at once (CONNECTION_CLOSE without waiting for their streams) and the
   * UDP socket; resolves, and emits 'close', once both are closed. Idempotent: later calls return
   * the same promise. For a graceful end, close the connections first (`connection.close()`).
   */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closed = true;
    debug('engine: closing (%d connections)', this.#connections.size);
    // Connections still resolving their server's name have nothing native to close.
    for (const connection of this.#connections) {
      if (!connection[kStarted]) connection[kFailStart](closedError('engine'));
    }
    this.#closing = new Promise<void>((resolve) => {
      this.#native.close(() => {
        // Unlisted at once: a closing handle is listed until libuv's close callback.
        this.#resourceEntry?.unref().close();
        this.#resourceEntry = undefined;
        resolve();
        this.emit('close');
      });
    });
    return this.#closing;
  }

  /** `await using engine = new Engine()` closes it (and its connections) at the end of the scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** True from close() on. */
  get closed(): boolean {
    return this.#closed;
  }

  /** @internal A peer opened a connection. */
  [kOnConnection](native: any): Connection { // eslint-disable-line @typescript-eslint/no-explicit-any
    const ssl = this.#ssl as SslConfig;
    const connection = new Connection(true, '', [...ssl.alpn], (closed) => this.#connections.delete(closed));
    connection[kAttachNative](native);
    this.#connections.add(connection);
    // Like tls.Server's 'keylog': (line, connection), from the connection's first secret on.
    if (this.listenerCount('keylog') > 0) connection.on('keylog', (line: Buffer) => this.emit('keylog', line, connection));
    try {
      this.emit('connection', connection);
    } catch (error) {
      // A throwing 'connection' listener is the application's bug, reported like any other
      // listener's (an uncaughtException), but native code must still get the connection back:
      // without it the connection would never hear of its events again. (Not process.nextTick:
      // ticks run before native code's callback scope closes, so that throw would reach it too.)
      setImmediate(() => {
        throw error;
      });
    }
    return connection;
  }

  #setRef(ref: boolean): void {
    this.#ref = ref;
    this.#native.setRef(ref);
    if (ref) this.#resourceEntry?.ref();
    else this.#resourceEntry?.unref();
  }

  #bound(): void {
    if (this.#resourceEntry || this.#closed || this.#native.address() === undefined) return;
    this.#resourceEntry = dgram.createSocket('udp4');
    if (!this.#ref) this.#resourceEntry.unref();
  }

  #defaultSsl(alpn: string | undefined): SslConfig {
    if (alpn === undefined) throw invalidArgValue('options.alpn', 'is required when neither the engine nor connect() has an SslConfig');
    // Parsing the default roots costs milliseconds: once per engine.
    if (!this.#defaultClientSsl || !this.#defaultClientSsl.alpn.includes(alpn)) {
      this.#defaultClientSsl = new SslConfig({ alpn: [alpn] });
    }
    return this.#defaultClientSsl;
  }

  #throwIfClosed(): void {
    if (this.#closed) throw closedError('engine');
  }

  #throwIfNoSsl(): void {
    if (!this.#ssl) throw Object.assign(new Error('the engine has no SslConfig'), { code: 'ERR_QUIC_NO_SSL_CONFIG' });
  }
}

/** The events of {@link Engine} and their listener arguments, for the typed `on`/`once`/`off`. */
export interface EngineEvents {
  /** A client opened a connection (server side), while its handshake still runs. */
  connection: [connection: Connection];
  /** listen() bound the socket. */
  listening: [];
  /** close() finished: every connection and the socket are closed. */
  close: [];
  /** Not emitted by quicket today: failures throw, reject, or reach the connection concerned. */
  error: [error: Error];
  /** A server connection's TLS secret as an NSS key log line, for Wireshark (like tls.Server's 'keylog'). */
  keylog: [line: Buffer, connection: Connection];
}

// Typed listeners for the events above (the untyped EventEmitter signatures remain available).
export interface Engine {
  /** Adds a listener for one of the {@link EngineEvents}, its arguments typed. */
  on<E extends keyof EngineEvents>(event: E, listener: (...args: EngineEvents[E]) => void): this;
  /** Adds a listener for any event, untyped (EventEmitter's signature). */
  on(event: string | symbol, listener: (...args: any[]) => void): this; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** Adds a one-time listener for one of the {@link EngineEvents}, its arguments typed. */
  once<E extends keyof EngineEvents>(event: E, listener: (...args: EngineEvents[E]) => void): this;
  /** Adds a one-time listener for any event, untyped (EventEmitter's signature). */
  once(event: string | symbol, listener: (...args: any[]) => void): this; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** Removes a listener added for one of the {@link EngineEvents}. */
  off<E extends keyof EngineEvents>(event: E, listener: (...args: EngineEvents[E]) => void): this;
  /** Removes a listener of any event (EventEmitter's signature). */
  off(event: string | symbol, listener: (...args: any[]) => void): this; // eslint-disable-line @typescript-eslint/no-explicit-any
}
