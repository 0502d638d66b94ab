// A fault-injecting UDP relay for tests: clients talk to the relay's port, the relay forwards to
// one server port and back, dropping, duplicating, reordering and delaying datagrams as told.
// Every random choice comes from a seeded PRNG, one per direction, so a failing run replays with
// the same seed: each direction's n-th datagram meets the same fate whatever the interleaving.
// It can also capture a client's first flight and re-send it to the server from a new source
// port, as an attacker replaying 0-RTT would.
//
// Each client address (ip:port) gets its own upstream socket, so the server sees one distinct
// peer per client, and many clients can share one relay. rebind() gives a client a new upstream
// socket mid-connection: the server sees its peer's port change, as behind a NAT that rebinds.
import dgram from 'node:dgram';
import { mulberry32 } from './bad-tickets';

export type Direction = 'toServer' | 'toClient';

export interface FaultOptions {
  /** Probability (0..1) that a datagram is dropped. */
  drop?: number;
  /** Probability (0..1) that a datagram is sent twice. */
  duplicate?: number;
  /** Probability (0..1) that a datagram is held back and sent after the next one in its direction. */
  reorder?: number;
  /** Milliseconds every datagram is delayed. */
  delay?: number;
  /** Extra random delay, uniform in [0, jitter) milliseconds. */
  jitter?: number;
}

export interface UdpRelayOptions extends FaultOptions {
  /** The server's port (on 127.0.0.1 unless targetHost says otherwise). */
  targetPort: number;
  targetHost?: string;
  /** Seed of the PRNG behind every fault decision (default 1). */
  seed?: number;
  /** Faults for one direction only; they override the shared ones above. */
  toServer?: FaultOptions;
  toClient?: FaultOptions;
}

export interface RelayedDatagram {
  direction: Direction;
  /** The client address the datagram belongs to ("127.0.0.1:54321"). */
  client: string;
  /** The relay's upstream port the server sees for that client (changes with rebind()). */
  upstreamPort: number;
  data: Buffer;
}

/** Options of {@link UdpRelay.rebind}. */
export interface RebindOptions {
  /** Which client (its "ip:port" at the relay); default: the only one, or the most recent. */
  client?: string;
  /**
   * Keep relaying what the server still sends to the old port, as a NAT whose old mapping has
   * not expired yet (default false: the old socket closes, as a NAT that forgot it).
   */
  keepPrevious?: boolean;
}

/** What the relay did, per direction. */
export interface RelayStats {
  received: number;
  forwarded: number;
  dropped: number;
  duplicated: number;
  reordered: number;
  blackedOut: number;
}

/**
 * A tap sees every datagram before faults are applied; returning 'drop' drops it, 'pass' forwards
 * it untouched by this direction's faults (the PRNG still advances, so the datagrams after it meet
 * the same fates as without the tap).
 */
export type RelayTap = (datagram: RelayedDatagram) => 'drop' | 'pass' | void;

/** mulberry32: a tiny, good-enough seeded PRNG returning floats in [0, 1) (one copy, in bad-tickets.js). */
export { mulberry32 };

interface ClientSession {
  key: string;
  address: string;
  port: number;
  upstream: dgram.Socket;
  upstreamPort: number;
  previous: dgram.Socket[];
  answered: boolean;
  firstFlight: Buffer[];
}

/** Datagrams re-sent from a fresh socket; collects whatever the server answers. */
export class Replay {
  readonly responses: Buffer[] = [];
  #socket: dgram.Socket;
  #waiters: Array<() => void> = [];
  #closed = false;

  /** @internal */
  constructor(socket: dgram.Socket) {
    this.#socket = socket;
    socket.on('message', (data) => {
      this.responses.push(data);
      for (const wake of this.#waiters.splice(0)) wake();
    });
  }

  /** @internal */
  send(data: Buffer, port: number, host: string): Promise<void> {
    return new Promise((resolve, reject) => this.#socket.send(data, port, host, (error) => (error ? reject(error) : resolve())));
  }

  /** The replay socket's local port (a new source port, unknown to the server). */
  get port(): number {
    return this.#socket.address().port;
  }

  /** Resolves once the server has answered at least `count` datagrams in total. */
  async waitForResponses(count = 1): Promise<void> {
    while (this.responses.length < count) {
      if (this.#closed) throw new Error('replay socket closed before the server answered');
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    for (const wake of this.#waiters.splice(0)) wake();
    return new Promise((resolve) => this.#socket.close(() => resolve()));
  }
}

export class UdpRelay {
  #front: dgram.Socket;
  #targetHost: string;
  #targetPort: number;
  #random: Record<Direction, () => number>;
  #faults: Record<Direction, FaultOptions>;
  #blackout: Record<Direction, boolean> = { toServer: false, toClient: false };
  #held: Record<Direction, (() => void) | undefined> = { toServer: undefined, toClient: undefined };
  #heldTimers: Record<Direction, NodeJS.Timeout | undefined> = { toServer: undefined, toClient: undefined };
  #sessions = new Map<string, ClientSession>();
  #timers = new Set<NodeJS.Timeout>();
  #taps = new Set<RelayTap>();
  #flightWaiters: Array<(flight: Buffer[]) => void> = [];
  #replays = new Set<Replay>();
  #onClose = new Set<() => void>();
  #closed = false;
  readonly stats: Record<Direction, RelayStats> = { toServer: emptyStats(), toClient: emptyStats() };

  private constructor(front: dgram.Socket, options: UdpRelayOptions) {
    this.#front = front;
    this.#targetHost = options.targetHost ?? '127.0.0.1';
    this.#targetPort = options.targetPort;
    const seed = options.seed ?? 1;
    this.#random = { toServer: mulberry32(seed), toClient: mulberry32(seed ^ 0x9e3779b9) };
    const shared: FaultOptions = pickFaults(options);
    this.#faults = {
      toServer: { ...shared, ...options.toServer },
      toClient: { ...shared, ...options.toClient },
    };
    front.on('message', (data, remote) => this.#fromClient(data, remote));
  }

  /** Opens a relay on 127.0.0.1 (a free port) in front of the server at targetPort. */
  static async create(options: UdpRelayOptions): Promise<UdpRelay> {
    if (!Number.isInteger(options.targetPort)) throw new TypeError('targetPort must be an integer');
    const front = await bindSocket();
    return new UdpRelay(front, options);
  }

  /** The port clients connect to. */
  get port(): number {
    return this.#front.address().port;
  }

  /** Replaces the faults of one direction (or both); other directions keep theirs. */
  setFaults(faults: FaultOptions, direction: Direction | 'both' = 'both'): void {
    const checked = pickFaults(faults);
    for (const dir of directions(direction)) this.#faults[dir] = { ...checked };
  }

  /** Starts (true) or ends (false) a blackout: every datagram in that direction is dropped. */
  setBlackout(on: boolean, direction: Direction | 'both' = 'both'): void {
    for (const dir of directions(direction)) this.#blackout[dir] = on;
  }

  /** Drops everything in `direction` for `ms` milliseconds; resolves when the blackout ends (or the relay closes). */
  blackout(ms: number, direction: Direction | 'both' = 'both'): Promise<void> {
    this.setBlackout(true, direction);
    return new Promise((resolve) => {
      this.#onClose.add(resolve);
      this.#later(ms, () => {
        this.#onClose.delete(resolve);
        this.setBlackout(false, direction);
        resolve();
      });
    });
  }

  /** Adds a tap that sees (and may drop) every datagram; returns a function removing it. */
  tap(tap: RelayTap): () => void {
    this.#taps.add(tap);
    return () => this.#taps.delete(tap);
  }

  /** Records every datagram (as seen before faults) until the returned stop function is called. */
  record(): { datagrams: RelayedDatagram[]; stop: () => void } {
    const datagrams: RelayedDatagram[] = [];
    const stop = this.tap((datagram) => {
      datagrams.push({ ...datagram, data: Buffer.from(datagram.data) });
    });
    return { datagrams, stop };
  }

  /**
   * Resolves with the first flight of the next client that appears: every datagram it sent
   * before the server's first answer reached the relay.
   */
  captureFirstFlight(): Promise<Buffer[]> {
    return new Promise((resolve) => this.#flightWaiters.push(resolve));
  }

  /**
   * Sends datagrams to the server (or another port) from a new socket, i.e. a source port the
   * server has never seen, without faults. The returned Replay collects the server's answers.
   */
  async replay(datagrams: Buffer[], options: { targetPort?: number; targetHost?: string } = {}): Promise<Replay> {
    if (this.#closed) throw new Error('the relay is closed');
    const replay = new Replay(await bindSocket());
    this.#replays.add(replay);
    const port = options.targetPort ?? this.#targetPort;
    const host = options.targetHost ?? this.#targetHost;
    for (const data of datagrams) await replay.send(data, port, host);
    return replay;
  }

  /**
   * Moves a client to a new upstream socket: from now on the server sees its datagrams come from
   * a new port (NAT rebinding), while the client keeps talking to the same relay port. Resolves
   * with the new upstream port once the socket is bound.
   */
  async rebind(options: RebindOptions = {}): Promise<number> {
    if (this.#closed) throw new Error('the relay is closed');
    const sessions = [...this.#sessions.values()];
    const session = options.client ? this.#sessions.get(options.client) : sessions[sessions.length - 1];
    if (!session) throw new Error(options.client ? `no client ${options.client}` : 'no client yet');
    const upstream = await bindSocket();
    if (this.#closed) {
      await closeSocket(upstream);
      throw new Error('the relay is closed');
    }
    const old = session.upstream;
    session.upstream = upstream;
    const port = upstream.address().port;
    session.upstreamPort = port;
    upstream.on('message', (data) => this.#fromServer(session, data, port));
    if (options.keepPrevious) {
      session.previous.push(old);
    } else {
      void closeSocket(old);
    }
    return session.upstreamPort;
  }

  /** The upstream port the server sees for a client (default: the most recent one). */
  upstreamPort(client?: string): number | undefined {
    const sessions = [...this.#sessions.values()];
    return (client ? this.#sessions.get(client) : sessions[sessions.length - 1])?.upstreamPort;
  }

  /** Stops relaying and closes every socket and timer. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    for (const settle of this.#onClose) settle();
    this.#onClose.clear();
    for (const dir of directions('both')) {
      if (this.#heldTimers[dir]) clearTimeout(this.#heldTimers[dir]);
      this.#held[dir] = undefined;
    }
    const closing: Array<Promise<void>> = [];
    closing.push(closeSocket(this.#front));
    for (const session of this.#sessions.values()) {
      for (const socket of [session.upstream, ...session.previous]) closing.push(closeSocket(socket));
    }
    for (const replay of this.#replays) closing.push(replay.close());
    this.#sessions.clear();
    await Promise.all(closing);
  }

  #fromClient(data: Buffer, remote: dgram.RemoteInfo): void {
    if (this.#closed) return;
    const key = `${remote.address}:${remote.port}`;
    const session = this.#sessions.get(key) ?? this.#openSession(key, remote);
    if (!session.answered) session.firstFlight.push(Buffer.from(data));
    const upstream = session.upstream;
    this.#relay('toServer', key, session.upstreamPort, data, () => upstream.send(data, this.#targetPort, this.#targetHost));
  }

  #openSession(key: string, remote: dgram.RemoteInfo): ClientSession {
    // Binding is asynchronous in node:dgram, but send() before 'listening' binds implicitly; an
    // explicit bind to 127.0.0.1 keeps every packet on loopback.
    const upstream = dgram.createSocket('udp4');
    upstream.bind(0, '127.0.0.1');
    const session: ClientSession = {
      key, address: remote.address, port: remote.port, upstream, upstreamPort: 0, previous: [], answered: false, firstFlight: [],
    };
    upstream.once('listening', () => {
      if (session.upstream === upstream) session.upstreamPort = upstream.address().port;
    });
    upstream.on('message', (data) => this.#fromServer(session, data, upstream.address().port));
    upstream.on('error', () => {});
    this.#sessions.set(key, session);
    return session;
  }

  #fromServer(session: ClientSession, data: Buffer, upstreamPort: number): void {
    if (this.#closed) return;
    if (!session.answered) {
      session.answered = true;
      const waiter = this.#flightWaiters.shift();
      waiter?.(session.firstFlight);
    }
    this.#relay('toClient', session.key, upstreamPort, data, () => this.#front.send(data, session.port, session.address));
  }

  #relay(direction: Direction, client: string, upstreamPort: number, data: Buffer, send: () => void): void {
    const stats = this.stats[direction];
    stats.received++;
    let pass = false;
    for (const tap of this.#taps) {
      const verdict = tap({ direction, client, upstreamPort, data });
      if (verdict === 'drop') {
        stats.dropped++;
        return;
      }
      if (verdict === 'pass') pass = true;
    }
    if (this.#blackout[direction]) {
      stats.blackedOut++;
      return;
    }
    // Always draw the same number of random values per datagram, so one decision does not shift
    // the others and a seed reproduces the same pattern.
    const random = this.#random[direction];
    const [dropRoll, duplicateRoll, reorderRoll, jitterRoll] = [random(), random(), random(), random()];
    if (pass) {
      send();
      stats.forwarded++;
      return;
    }
    const faults = this.#faults[direction];
    if (dropRoll < (faults.drop ?? 0)) {
      stats.dropped++;
      return;
    }
    const copies = duplicateRoll < (faults.duplicate ?? 0) ? 2 : 1;
    if (copies === 2) stats.duplicated++;
    const emit = (): void => {
      if (this.#closed) return;
      for (let i = 0; i < copies; i++) {
        send();
        stats.forwarded++;
      }
    };
    const delay = (faults.delay ?? 0) + jitterRoll * (faults.jitter ?? 0);
    const deliver = (): void => this.#reorderOrSend(direction, reorderRoll < (faults.reorder ?? 0), emit);
    if (delay > 0) {
      this.#later(delay, deliver);
    } else {
      deliver();
    }
  }

  // A held datagram goes out right after the next one in its direction, or after 20 ms if none comes.
  #reorderOrSend(direction: Direction, hold: boolean, emit: () => void): void {
    const held = this.#held[direction];
    if (hold && !held) {
      this.stats[direction].reordered++;
      this.#held[direction] = emit;
      this.#heldTimers[direction] = setTimeout(() => this.#releaseHeld(direction), 20);
      return;
    }
    emit();
    this.#releaseHeld(direction);
  }

  #releaseHeld(direction: Direction): void {
    const held = this.#held[direction];
    if (this.#heldTimers[direction]) clearTimeout(this.#heldTimers[direction]);
    this.#held[direction] = undefined;
    this.#heldTimers[direction] = undefined;
    held?.();
  }

  #later(ms: number, fn: () => void): void {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      if (!this.#closed) fn();
    }, ms);
    this.#timers.add(timer);
  }
}

function emptyStats(): RelayStats {
  return { received: 0, forwarded: 0, dropped: 0, duplicated: 0, reordered: 0, blackedOut: 0 };
}

function pickFaults(options: FaultOptions): FaultOptions {
  const { drop, duplicate, reorder, delay, jitter } = options;
  for (const [name, value] of Object.entries({ drop, duplicate, reorder })) {
    if (value !== undefined && !(value >= 0 && value <= 1)) throw new RangeError(`${name} must be within 0..1`);
  }
  return { drop, duplicate, reorder, delay, jitter };
}

function directions(direction: Direction | 'both'): Direction[] {
  return direction === 'both' ? ['toServer', 'toClient'] : [direction];
}

function bindSocket(): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket('udp4');
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => {
      socket.off('error', reject);
      socket.on('error', () => {});
      resolve(socket);
    });
  });
}

function closeSocket(socket: dgram.Socket): Promise<void> {
  return new Promise((resolve) => {
    try {
      socket.close(() => resolve());
    } catch {
      resolve(); // already closed
    }
  });
}
