// A seeded datagram fuzzer for a listening engine, shared by scripts/fuzz-datagrams.js (long runs)
// and test/fuzz-datagrams.test.ts (a short run in the suite).
//
// It captures real client traffic through the UDP relay (first flights with a full and with a
// resumed 0-RTT ClientHello, Handshake packets, 1-RTT packets of a live connection), then throws
// datagrams at the server while real clients keep working: random bytes; captured datagrams with
// bits flipped, truncated, oversized, header fields changed, replayed; and captured Initials that
// are opened (Initial keys are public), changed inside (ClientHello and transport parameter bytes,
// CRYPTO frame offsets, injected frames, packet numbers) and sealed again under a fresh connection
// ID, so the server really parses what was changed. Every choice comes from one seeded PRNG: a
// run replays with the same seed (up to timing).
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';

import { CloseInfo, Connection, Engine } from '../../lib';
import { clientSsl, HOST, serverSsl } from './index';
import { encodeVarint, findTransportParameters, InitialPacket, openInitial, parseFrames, sealInitial } from './quic-initial';
import { mulberry32, RelayedDatagram, UdpRelay } from './udp-relay';
import { exchange, resources, Tally, within } from './workloads';

type Random = () => number;

export interface Corpus {
  /** Client datagrams whose first packet is an Initial (ClientHello), full and resumed/0-RTT. */
  initials: Buffer[];
  /** The same, opened. */
  opened: InitialPacket[];
  /** Other client long-header datagrams (Handshake, 0-RTT). */
  longHeader: Buffer[];
  /** Client 1-RTT datagrams of the live connection (its DCID routes to a real connection). */
  shortHeader: Buffer[];
  /** Datagrams the server sent (thrown back at it). */
  fromServer: Buffer[];
}

const int = (random: Random, below: number): number => Math.floor(random() * below);
const pick = <T>(random: Random, list: T[]): T => list[int(random, list.length)];
function bytes(random: Random, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i++) out[i] = int(random, 256);
  return out;
}
function flipBits(random: Random, data: Buffer, start = 0, end = data.length, flips = 1 + int(random, 8)): Buffer {
  const out = Buffer.from(data);
  if (end <= start) return out;
  for (let i = 0; i < flips; i++) out[start + int(random, end - start)] ^= 1 << int(random, 8);
  return out;
}
const freshCid = (random: Random): Buffer => bytes(random, 8 + int(random, 13));

/** Re-seals an opened Initial with `payload` under a fresh DCID (keeping the SCID the ClientHello names). */
function reseal(random: Random, packet: InitialPacket, payload: Buffer, extra: Partial<InitialPacket> = {}): Buffer {
  return sealInitial({ ...packet, rest: undefined, dcid: freshCid(random), payload, padTo: 1200, ...extra });
}

/** The CRYPTO frame carrying the ClientHello, if the packet has one at crypto offset 0. */
function clientHelloFrame(packet: InitialPacket): { dataStart: number; end: number } | undefined {
  const frame = parseFrames(packet.payload).find((f) => f.type === 0x06 && f.cryptoOffset === 0);
  return frame && frame.dataStart !== undefined ? { dataStart: frame.dataStart, end: frame.end } : undefined;
}

function cryptoFrame(offset: number, data: Buffer): Buffer {
  return Buffer.concat([Buffer.from([0x06]), encodeVarint(offset), encodeVarint(data.length), data]);
}

type Mutation = (random: Random, corpus: Corpus) => Buffer | undefined;

/** Every mutation, by name; the fuzzer picks one per datagram. */
export const MUTATIONS: Record<string, Mutation> = {
  'random bytes': (r) => bytes(r, 1 + int(r, 1500)),
  'random long header': (r) => {
    const out = bytes(r, 1 + int(r, 1500));
    out[0] |= 0xc0;
    return out;
  },
  'Initial look-alike': (r) => {
    const out = bytes(r, 1200 + int(r, 301));
    out[0] = 0xc0 | (out[0] & 0x0f);
    out.writeUInt32BE(1, 1);
    out[5] = 8 + int(r, 13);
    const scid = 6 + out[5];
    out[scid] = int(r, 21);
    const token = scid + 1 + out[scid];
    out[token] = 0;
    out.writeUInt16BE(0x4000 | (out.length - token - 3), token + 1);
    return out;
  },
  'captured, bits flipped': (r, c) => flipBits(r, pick(r, [...c.initials, ...c.longHeader, ...c.shortHeader])),
  'captured Initial, header bits flipped': (r, c) => {
    const d = pick(r, c.initials);
    return flipBits(r, d, 0, Math.min(d.length, 60), 1 + int(r, 3));
  },
  'captured, truncated': (r, c) => {
    const d = pick(r, [...c.initials, ...c.longHeader, ...c.shortHeader]);
    return Buffer.from(d.subarray(0, int(r, d.length)));
  },
  'captured, oversized': (r, c) => {
    const d = pick(r, [...c.initials, ...c.longHeader, ...c.shortHeader]);
    const target = r() < 0.8 ? d.length + 1 + int(r, 1500) : 9000 + int(r, 65507 - 9000);
    return Buffer.concat([d, bytes(r, Math.min(target, 65507) - d.length)]);
  },
  'captured Initial, version changed': (r, c) => {
    const d = Buffer.from(pick(r, c.initials));
    d.writeUInt32BE(pick(r, [0, 0xff00001d, 0x6b3343cf, 0x1a2a3a4a, 2, 0xffffffff, int(r, 2 ** 32)]) >>> 0, 1);
    return d;
  },
  'captured Initial, connection ID lengths changed': (r, c) => {
    const d = Buffer.from(pick(r, c.initials));
    const field = r() < 0.5 ? 5 : 6 + d[5];
    if (field < d.length) d[field] = pick(r, [0, 1, 7, 20, 21, 64, 255, int(r, 256)]);
    return d;
  },
  'captured Initial, token and length fields changed': (r, c) => {
    const d = pick(r, c.initials);
    const tokenAt = 7 + d[5] + d[6 + d[5]];
    if (tokenAt + 10 > d.length) return undefined;
    // Splice in a token length or packet length varint of any size.
    const value = pick(r, [0, 1, 63, 1199, 1200, 4000, 65535, 2 ** 30 - 1, int(r, 2 ** 30)]);
    const which = r() < 0.5 ? tokenAt : tokenAt + 1; // the token length, or (with no token) the length
    return Buffer.concat([d.subarray(0, which), encodeVarint(value), d.subarray(which + 1)]);
  },
  'captured, replayed unchanged': (r, c) => pick(r, [...c.initials, ...c.longHeader, ...c.shortHeader]),
  'server datagram sent back to the server': (r, c) => (c.fromServer.length ? pick(r, c.fromServer) : undefined),
  'captured Initial + garbage coalesced': (r, c) => Buffer.concat([pick(r, c.initials), bytes(r, 1 + int(r, 300))]),
  'resealed, ClientHello bytes flipped': (r, c) => {
    const p = pick(r, c.opened);
    const frame = clientHelloFrame(p);
    if (!frame) return undefined;
    return reseal(r, p, flipBits(r, p.payload, frame.dataStart, frame.end, 1 + int(r, 4)));
  },
  'resealed, transport parameters flipped': (r, c) => {
    const p = pick(r, c.opened);
    const frame = clientHelloFrame(p);
    const tp = frame && findTransportParameters(p.payload.subarray(frame.dataStart, frame.end));
    if (!frame || !tp) return undefined;
    return reseal(r, p, flipBits(r, p.payload, frame.dataStart + tp[0], frame.dataStart + tp[1], 1 + int(r, 3)));
  },
  'resealed, ClientHello truncated': (r, c) => {
    const p = pick(r, c.opened);
    const frame = clientHelloFrame(p);
    if (!frame) return undefined;
    const hello = p.payload.subarray(frame.dataStart, frame.end);
    return reseal(r, p, cryptoFrame(0, hello.subarray(0, int(r, hello.length))));
  },
  'resealed, CRYPTO split, reordered, overlapping or far': (r, c) => {
    const p = pick(r, c.opened);
    const frame = clientHelloFrame(p);
    if (!frame) return undefined;
    const hello = p.payload.subarray(frame.dataStart, frame.end);
    const frames: Buffer[] = [];
    for (let i = 0; i < 2 + int(r, 5); i++) {
      const start = int(r, hello.length);
      const end = Math.min(hello.length, start + 1 + int(r, hello.length));
      const offset = r() < 0.15 ? pick(r, [2 ** 20, 2 ** 30, 2 ** 53 - 1 - end, 4611686018427387903 - 1]) : start;
      frames.push(cryptoFrame(Math.max(0, Math.min(offset, 2 ** 53 - 1)), hello.subarray(start, end)));
    }
    return reseal(r, p, Buffer.concat(frames));
  },
  'resealed, a forbidden or unknown frame injected': (r, c) => {
    const p = pick(r, c.opened);
    // STREAM, MAX_DATA, NEW_CONNECTION_ID, HANDSHAKE_DONE, DATAGRAM, RESET_STREAM, NEW_TOKEN, unknown.
    const type = pick(r, [0x08, 0x0f, 0x10, 0x18, 0x1e, 0x30, 0x04, 0x07, 0x1f, 0x21, 0x40, 0x3fff]);
    const frame = Buffer.concat([encodeVarint(type), bytes(r, int(r, 40))]);
    const at = r() < 0.5 ? 0 : p.payload.length;
    return reseal(r, p, Buffer.concat([p.payload.subarray(0, at), frame, p.payload.subarray(at)]));
  },
  'resealed, bogus ACK': (r, c) => {
    const p = pick(r, c.opened);
    const ack = Buffer.concat([
      Buffer.from([0x02]),
      encodeVarint(pick(r, [0, 1, 1000, 2 ** 30])),
      encodeVarint(int(r, 1000)),
      encodeVarint(int(r, 3)),
      encodeVarint(int(r, 100)),
      bytes(r, int(r, 6)),
    ]);
    return reseal(r, p, Buffer.concat([ack, p.payload]));
  },
  'resealed, CONNECTION_CLOSE first': (r, c) => {
    const p = pick(r, c.opened);
    const reason = bytes(r, int(r, 30));
    const close = Buffer.concat([Buffer.from([0x1c]), encodeVarint(int(r, 0x200)), encodeVarint(int(r, 0x20)), encodeVarint(reason.length), reason]);
    return reseal(r, p, Buffer.concat([close, p.payload]));
  },
  'resealed, odd packet number or SCID': (r, c) => {
    const p = pick(r, c.opened);
    return reseal(r, p, p.payload, r() < 0.5 ? { packetNumber: pick(r, [1, 2 ** 31, 2 ** 32 - 1, int(r, 2 ** 32)]) } : { scid: bytes(r, int(r, 21)) });
  },
  'resealed, under 1200 bytes': (r, c) => {
    const p = pick(r, c.opened);
    return sealInitial({ ...p, rest: undefined, dcid: freshCid(r), payload: p.payload.subarray(0, 100 + int(r, 900)), padTo: 0 });
  },
  'resealed unchanged (a new handshake attempt)': (r, c) => {
    const p = pick(r, c.opened);
    return reseal(r, p, p.payload);
  },
};

/** Weights: the resealed kinds reach the deepest code; plain replays create half-open state, so fewer. */
const WEIGHTS: Record<string, number> = {
  'captured, replayed unchanged': 0.5,
  'resealed unchanged (a new handshake attempt)': 0.5,
  'resealed, ClientHello bytes flipped': 3,
  'resealed, transport parameters flipped': 3,
  'resealed, CRYPTO split, reordered, overlapping or far': 2,
  'resealed, a forbidden or unknown frame injected': 2,
};

export interface FuzzReport {
  seed: number;
  sent: number;
  byMutation: Tally;
  skipped: number;
  corpus: { initials: number; longHeader: number; shortHeader: number; fromServer: number };
  /** Server connections the fuzz datagrams created (their Initial decrypted), by how they closed. */
  fuzzConnections: { created: number; closed: Tally; open: number };
  realTraffic: { liveEchoes: number; liveFailures: Tally; newConnections: number; newFailures: Tally; resumed: number; early: number };
  liveConnectionOpen: boolean;
  serverStillServes: boolean;
  rssGrowthMiB: number;
  ms: number;
  pass: boolean;
}

/**
 * Runs the fuzzer: `count` datagrams (or until `timeLimitMs`) at a fresh listening engine while
 * real clients keep echoing. Resolves with a report; `pass` says whether nothing real failed.
 */
export async function runDatagramFuzz(options: {
  count: number;
  seed: number;
  timeLimitMs: number;
  /** Only these mutations (names from MUTATIONS); default all. */
  only?: string[];
  /** Called with each datagram before it is sent (to record a crashing case). */
  trace?: (name: string, datagram: Buffer) => void;
  log?: (line: string) => void;
}): Promise<FuzzReport> {
  const started = Date.now();
  const random = mulberry32(options.seed);
  const log = options.log ?? (() => {});
  const engines: Engine[] = [];
  const sockets: dgram.Socket[] = [];
  let relay: UdpRelay | undefined;
  const report: FuzzReport = {
    seed: options.seed,
    sent: 0,
    byMutation: {},
    skipped: 0,
    corpus: { initials: 0, longHeader: 0, shortHeader: 0, fromServer: 0 },
    fuzzConnections: { created: 0, closed: {}, open: 0 },
    realTraffic: { liveEchoes: 0, liveFailures: {}, newConnections: 0, newFailures: {}, resumed: 0, early: 0 },
    liveConnectionOpen: false,
    serverStillServes: false,
    rssGrowthMiB: 0,
    ms: 0,
    pass: false,
  };
  const tally = (t: Tally, key: string): void => void (t[key] = (t[key] ?? 0) + 1);
  try {
    // The server: 0-RTT on, a short handshake timeout so half-open fuzz connections go soon.
    const server = new Engine({ ssl: serverSsl('server', { earlyData: true }), handshakeTimeout: 2000 });
    engines.push(server);
    const real = new Set<Connection>();
    const fuzzOpen = new Set<Connection>();
    server.on('connection', (connection: Connection) => {
      connection.on('error', () => {});
      connection.on('stream', (stream) => {
        stream.on('error', () => {});
        stream.pipe(stream);
      });
      // Real clients complete their handshakes; count the others as the fuzzer's.
      fuzzOpen.add(connection);
      connection.handshake.then(
        () => {
          if (fuzzOpen.delete(connection)) real.add(connection);
        },
        () => {},
      );
      connection.once('close', (info: CloseInfo) => {
        if (fuzzOpen.delete(connection)) {
          report.fuzzConnections.created++;
          tally(report.fuzzConnections.closed, info.error?.code ?? `code ${info.code}`);
        }
      });
    });
    const { port } = await server.listen({ host: HOST, port: 0 });
    relay = await UdpRelay.create({ targetPort: port });
    const client = new Engine({ ssl: clientSsl() });
    engines.push(client);

    // 1. Capture: a full handshake, a resumed one with 0-RTT, and a live connection's traffic.
    const recording = relay.record();
    let ticket: Buffer | undefined;
    for (let i = 0; i < 3; i++) {
      const connection = client.connect({ host: HOST, port: relay.port, servername: 'localhost', ticket });
      connection.on('error', () => {});
      const next = new Promise<Buffer>((resolve) => connection.once('ticket', resolve));
      await exchange(connection, randomBytes(i === 1 ? 20000 : 3000));
      ticket = await next;
      await connection.close();
    }
    const live = client.connect({ host: HOST, port: relay.port, servername: 'localhost', ticket });
    live.on('error', () => {});
    await exchange(live, randomBytes(50000));
    recording.stop();
    const corpus: Corpus = { initials: [], opened: [], longHeader: [], shortHeader: [], fromServer: [] };
    for (const { direction, data } of recording.datagrams as RelayedDatagram[]) {
      if (direction === 'toClient') corpus.fromServer.push(data);
      else if ((data[0] & 0xf0) === 0xc0) {
        corpus.initials.push(data);
        const opened = openInitial(data);
        if (opened && clientHelloFrame(opened)) corpus.opened.push(opened);
      } else if (data[0] & 0x80) corpus.longHeader.push(data);
      else corpus.shortHeader.push(data);
    }
    report.corpus = { initials: corpus.initials.length, longHeader: corpus.longHeader.length, shortHeader: corpus.shortHeader.length, fromServer: corpus.fromServer.length };
    if (corpus.opened.length === 0 || corpus.shortHeader.length === 0) throw new Error('capturing real traffic failed');
    log(`corpus: ${JSON.stringify(report.corpus)}, ${corpus.opened.length} ClientHellos opened`);
    const before = await resources();

    // 2. Real traffic while fuzzing: echoes on the live connection, and new connections (half
    //    resumed with 0-RTT) one after another, directly to the server.
    let fuzzing = true;
    const liveLoop = (async () => {
      for (let i = 0; fuzzing; i++) {
        const data = randomBytes(1 + ((i * 7919) % 32768));
        try {
          const reply = await within(20000, 'live echo', exchange(live, data));
          if (!reply.equals(data)) throw new Error('wrong bytes');
          report.realTraffic.liveEchoes++;
        } catch (error) {
          tally(report.realTraffic.liveFailures, (error as { code?: string }).code ?? String((error as Error).message));
          if (live.closed) return;
        }
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    })();
    const newLoop = (async () => {
      let fresh = ticket;
      for (let i = 0; fuzzing; i++) {
        const connection = client.connect({ host: HOST, port, servername: 'localhost', ticket: i % 2 ? fresh : undefined });
        connection.on('error', () => {});
        connection.once('ticket', (t: Buffer) => (fresh = t));
        try {
          const data = randomBytes(2000);
          const reply = exchange(connection, data);
          const info = await within(20000, 'new connection', connection.handshake);
          if (!(await within(20000, 'new connection echo', reply)).equals(data)) throw new Error('wrong bytes');
          report.realTraffic.newConnections++;
          if (info.resumed) report.realTraffic.resumed++;
          if (info.earlyData === 'accepted') report.realTraffic.early++;
          await connection.close();
        } catch (error) {
          tally(report.realTraffic.newFailures, (error as { code?: string }).code ?? String((error as Error).message));
          connection.destroy();
        }
      }
    })();

    // 3. Fuzz, from 4 source ports, in batches so the engine reads between them.
    for (let i = 0; i < 4; i++) {
      const socket = dgram.createSocket('udp4');
      socket.on('error', () => {});
      socket.on('message', () => {}); // answers (version negotiation, CONNECTION_CLOSE, handshakes) are dropped
      await new Promise<void>((resolve) => socket.bind(0, HOST, resolve));
      sockets.push(socket);
    }
    const names = options.only ?? Object.keys(MUTATIONS);
    for (const name of names) if (!MUTATIONS[name]) throw new Error(`no mutation named "${name}"`);
    const weights = names.map((name) => WEIGHTS[name] ?? 1);
    const total = weights.reduce((a, b) => a + b, 0);
    const choose = (): string => {
      let x = random() * total;
      for (let i = 0; i < names.length; i++) if ((x -= weights[i]) < 0) return names[i];
      return names[names.length - 1];
    };
    const stopAt = started + options.timeLimitMs;
    while (report.sent < options.count && Date.now() < stopAt) {
      const sends: Array<Promise<void>> = [];
      for (let k = 0; k < 50 && report.sent < options.count; k++) {
        const name = choose();
        const datagram = MUTATIONS[name](random, corpus);
        if (!datagram || datagram.length === 0) {
          report.skipped++;
          continue;
        }
        tally(report.byMutation, name);
        report.sent++;
        options.trace?.(name, datagram);
        const socket = sockets[int(random, sockets.length)];
        sends.push(new Promise((resolve) => socket.send(datagram, port, HOST, () => resolve())));
      }
      await Promise.all(sends);
      await new Promise((resolve) => setImmediate(resolve));
      if (report.sent % 5000 < 50) log(`sent ${report.sent}`);
    }
    fuzzing = false;
    await within(30000, 'the real clients to finish', Promise.all([liveLoop, newLoop]));

    // 4. Afterwards: the live connection is still fine, and a new client is served.
    report.liveConnectionOpen = !live.closed;
    if (!live.closed) {
      const data = randomBytes(100000);
      report.liveConnectionOpen = (await within(20000, 'final live echo', exchange(live, data))).equals(data);
    }
    const after = client.connect({ host: HOST, port, servername: 'localhost' });
    after.on('error', () => {});
    const probe = randomBytes(5000);
    report.serverStillServes = (await within(20000, 'final new connection', exchange(after, probe))).equals(probe);
    await after.close();
    await live.close();
    // Half-open fuzz connections expire after the server's handshake timeout.
    await new Promise((resolve) => setTimeout(resolve, 2500));
    report.fuzzConnections.open = fuzzOpen.size;
    report.rssGrowthMiB = Math.round(((await resources()).rss - before.rss) / 104857.6) / 10;
    const failures =
      Object.keys(report.realTraffic.liveFailures).length + Object.keys(report.realTraffic.newFailures).length;
    report.pass =
      failures === 0 &&
      report.liveConnectionOpen &&
      report.serverStillServes &&
      report.realTraffic.liveEchoes > 0 &&
      report.realTraffic.newConnections > 0 &&
      report.fuzzConnections.open === 0;
  } finally {
    await Promise.all(sockets.map((socket) => new Promise<void>((resolve) => socket.close(() => resolve()))));
    await relay?.close();
    await Promise.all(engines.map((engine) => engine.close()));
    report.ms = Date.now() - started;
  }
  return report;
}
