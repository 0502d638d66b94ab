// Http3Agent: the connection pool behind fetch(), like undici's Agent. One HTTP/3 connection per
// origin, reused while it lives; new connections resume from the agent's TicketStore, so a request
// made on one rides 0-RTT when its ticket allows. The agent's engine holds the process only while
// requests are in flight, so a script that fetches exits once it is done (as with node's fetch).
import { EventEmitter } from 'node:events';

import { Connection } from './connection';
import { debug } from './debug';
import { Engine, LookupFunction } from './engine';
import { checkObject, checkOptionalInteger, invalidArgType } from './errors';
import { H3_ALPN } from './http3';
import { SslConfig } from './ssl-config';
import { TicketStore } from './ticket-store';

/** Options of `new Http3Agent()`. */
export interface Http3AgentOptions {
  /** Client TLS settings (CA roots, verification); their ALPN list is replaced by 'h3'. Default: node:tls's roots. */
  ssl?: SslConfig;
  /** Where tickets are kept between connections. Default: an in-memory store of the agent's own. */
  ticketStore?: TicketStore;
  /** Milliseconds a pooled connection with no request in flight stays open (default 30000). */
  idleTimeout?: number;
  /** Resolves origins' host names (default dns.lookup; see ConnectOptions.lookup). */
  lookup?: LookupFunction;
}

const DEFAULT_IDLE_TIMEOUT = 30000;

/** One origin's pooled connection and the requests it carries now. */
interface Pooled {
  connection: Connection;
  active: number;
  idleTimer?: NodeJS.Timeout;
}

/** @internal What fetch() gets from the agent for one request. */
export interface AgentLease {
  connection: Connection;
  /** True when the connection was made for this request (it may be in its 0-RTT phase). */
  fresh: boolean;
  /** Gives the lease back once the request and its response body are done. */
  release(): void;
}

/** The events of {@link Http3Agent} and their listener arguments, for the typed `on`/`once`. */
export interface Http3AgentEvents {
  /** A new pooled connection to `origin` ('host:port'), emitted in the tick of its connect(). */
  connection: [connection: Connection, origin: string];
}

/**
 * The connection pool behind {@link fetch}, like undici's Agent: one HTTP/3 connection per origin
 * (host and port), reused while it lives and closed after `idleTimeout` ms without a request in
 * flight. New connections resume from the agent's `ticketStore`, so their GET and HEAD requests go
 * out as 0-RTT when the ticket allows. The agent's engine, made on first use, holds the process
 * only while requests are in flight.
 *
 * Events (listener signatures in {@link Http3AgentEvents}):
 * - `'connection'` `(connection: Connection, origin: string)`: a new pooled connection to `origin`
 *   (`'host:port'`), emitted in the tick of its connect() (listen there for its 'keylog').
 */
export class Http3Agent extends EventEmitter {
  /** Where the agent keeps session tickets: `options.ticketStore`, else an in-memory store of its own. */
  readonly ticketStore: TicketStore;
  readonly #ssl: SslConfig;
  readonly #idleTimeout: number;
  readonly #lookup?: LookupFunction;
  readonly #pool = new Map<string, Pooled>();
  #engine?: Engine;
  #inFlight = 0;
  #closed = false;

  /**
   * Makes an agent; no engine or connection exists until its first request. Throws
   * `ERR_INVALID_ARG_TYPE` for an option of the wrong type and `ERR_OUT_OF_RANGE` for an
   * `idleTimeout` outside 0 to 3600000 ms.
   */
  constructor(options: Http3AgentOptions = {}) {
    super();
    checkObject('options', options);
    const { ssl, ticketStore, idleTimeout, lookup } = options;
    if (lookup !== undefined && typeof lookup !== 'function') throw invalidArgType('options.lookup', 'a function', lookup);
    if (ssl !== undefined && !(ssl instanceof SslConfig)) throw invalidArgType('options.ssl', 'an SslConfig', ssl);
    if (ticketStore !== undefined && !(ticketStore instanceof TicketStore)) {
      throw invalidArgType('options.ticketStore', 'a TicketStore', ticketStore);
    }
    checkOptionalInteger('options.idleTimeout', idleTimeout, 0, 3600000);
    this.#ssl = ssl ?? new SslConfig({ alpn: [H3_ALPN] });
    this.ticketStore = ticketStore ?? new TicketStore();
    this.#idleTimeout = idleTimeout ?? DEFAULT_IDLE_TIMEOUT;
    this.#lookup = lookup;
  }

  /** Connections open now, one per origin. */
  get connections(): number {
    return this.#pool.size;
  }

  /** True from close() on: fetch() through the agent then rejects (its `cause.code` is `ERR_QUIC_ENGINE_CLOSED`). */
  get closed(): boolean {
    return this.#closed;
  }

  /** @internal A connection to `url`'s origin for one request: the pooled one, or a new one. */
  lease(url: URL): AgentLease {
    if (this.#closed) throw Object.assign(new Error('the Http3Agent is closed'), { code: 'ERR_QUIC_ENGINE_CLOSED' as const });
    const port = url.port === '' ? 443 : Number(url.port);
    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    const origin = `${host}:${port}`;
    let pooled = this.#pool.get(origin);
    let fresh = false;
    if (!pooled || pooled.connection.closed || pooled.connection.closing) {
      const connection = this.#engineNow().connect({ host, port, servername: host, ssl: this.#ssl, alpn: H3_ALPN, ticketStore: this.ticketStore, lookup: this.#lookup });
      // Failures reach the requests on it; the pool only forgets the connection.
      connection.on('error', () => {});
      const entry: Pooled = { connection, active: 0 };
      connection.once('close', () => {
        clearTimeout(entry.idleTimer);
        if (this.#pool.get(origin) === entry) this.#pool.delete(origin);
      });
      this.#pool.set(origin, entry);
      pooled = entry;
      fresh = true;
      debug('agent: new connection to %s', origin);
      this.emit('connection', connection, origin);
    }
    const entry = pooled;
    clearTimeout(entry.idleTimer);
    entry.active++;
    this.#setInFlight(+1);
    let released = false;
    return {
      connection: entry.connection,
      fresh,
      release: () => {
        if (released) return;
        released = true;
        this.#setInFlight(-1);
        if (--entry.active > 0 || entry.connection.closed) return;
        entry.idleTimer = setTimeout(() => {
          if (entry.active === 0) void entry.connection.close();
        }, this.#idleTimeout);
        entry.idleTimer.unref();
      },
    };
  }

  /** Closes every pooled connection gracefully, then the agent's engine; later requests fail. */
  async close(): Promise<void> {
    this.#closed = true;
    const pooled = [...this.#pool.values()];
    this.#pool.clear();
    for (const entry of pooled) clearTimeout(entry.idleTimer);
    await Promise.all(pooled.map((entry) => entry.connection.close()));
    await this.#engine?.close();
  }

  /** `await using agent = new Http3Agent()` closes it at the end of the scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #engineNow(): Engine {
    if (!this.#engine) {
      this.#engine = new Engine();
      this.#engine.unref();
    }
    return this.#engine;
  }

  // The engine keeps the process alive exactly while some request is in flight.
  #setInFlight(delta: number): void {
    this.#inFlight += delta;
    if (this.#inFlight === 1 && delta > 0) this.#engine?.ref();
    if (this.#inFlight === 0) this.#engine?.unref();
  }
}

// Typed listeners for the events above.
export interface Http3Agent {
  /** Adds a listener for one of the {@link Http3AgentEvents}, its arguments typed. */
  on<E extends keyof Http3AgentEvents>(event: E, listener: (...args: Http3AgentEvents[E]) => void): this;
  /** Adds a listener for any event, untyped (EventEmitter's signature). */
  on(event: string | symbol, listener: (...args: any[]) => void): this; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** Adds a one-time listener for one of the {@link Http3AgentEvents}, its arguments typed. */
  once<E extends keyof Http3AgentEvents>(event: E, listener: (...args: Http3AgentEvents[E]) => void): this;
  /** Adds a one-time listener for any event, untyped (EventEmitter's signature). */
  once(event: string | symbol, listener: (...args: any[]) => void): this; // eslint-disable-line @typescript-eslint/no-explicit-any
}

let globalAgent: Http3Agent | undefined;

/** The agent fetch() uses when `init.agent` is not given (made on first use). */
export function getGlobalHttp3Agent(): Http3Agent {
  globalAgent ??= new Http3Agent();
  return globalAgent;
}

/** Replaces the agent fetch() uses by default (the old one is not closed). */
export function setGlobalHttp3Agent(agent: Http3Agent): void {
  if (!(agent instanceof Http3Agent)) throw invalidArgType('agent', 'an Http3Agent', agent);
  globalAgent = agent;
}
