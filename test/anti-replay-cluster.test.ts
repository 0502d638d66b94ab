// 0-RTT replay across a reusePort cluster on one host: workers that name one `antiReplayStore` file
// share one replay store, so a captured first flight replayed from many source ports (which the
// kernel spreads over every worker) is accepted at most once in total; without it, once per worker.
// The store survives a worker killed with SIGKILL mid-load, and refuses files it did not make.
import { randomBytes, createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { Connection, Engine, SslConfig } from '../lib';
import { ALPN, clientSsl, HOST, readAll, serverSsl, useEngines } from './helpers';
import { Peer, startServerPeer, usePeers } from './helpers/processes';
import { UdpRelay } from './helpers/udp-relay';

/* eslint-disable @typescript-eslint/no-explicit-any */
const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const WORKERS = 4;
const REPLAYS = 20;
const ROUNDS = 2;
const HANDSHAKE_TIMEOUT = 1500; // the workers': ends the replays' connections between rounds

interface AttackResult {
  served: number;
  replaysAccepted: number;
  connections: number;
  workersReached: number;
  /** Workers other than the original's that a replay reached: each would accept it once on its own. */
  otherWorkersReached: number;
}

/** A request to a test/fixtures/peer.js server: sends `body`, resolves with its JSON answer. */
async function ask(connection: Connection, body: Buffer): Promise<any> {
  const stream = connection.openStream();
  const answer = readAll(stream);
  stream.end(body);
  return JSON.parse((await answer).toString());
}

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quicket-replay-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
let files = 0;
const newStorePath = (): string => path.join(dir, `store-${files++}`);

describe('a reusePort cluster of 4 workers', () => {
  const engines = useEngines();
  const peers = usePeers();

  /**
   * `count` peer.js workers on one port with one ticket key; with a `store`, half of them name it
   * on their SslConfig and half on their Engine (both ways share the one file).
   */
  async function startWorkers(count: number, keys: string, store?: string, port?: number): Promise<{ workers: Peer[]; port: number }> {
    const workers: Peer[] = [];
    for (let i = 0; i < count; i++) {
      const where = store === undefined ? {} : i % 2 === 0 ? { antiReplayStore: store } : { engineAntiReplayStore: store };
      const started = await startServerPeer(peers, { reusePort: true, ticketKeys: keys, host: HOST, port, handshakeTimeout: HANDSHAKE_TIMEOUT, ...where });
      port = started.port;
      workers.push(started.peer);
    }
    return { workers, port: port! };
  }

  const reportsOf = (workers: Peer[], event: string): Array<{ pid: number; report: any }> =>
    workers.flatMap((worker) => worker.reports.filter((report) => report.event === event).map((report) => ({ pid: worker.pid, report })));

  const count = (worker: Peer, event: string): number => worker.reports.filter((report) => report.event === event).length;

  /** A ticket for the cluster (any worker's: they share the key). */
  async function ticketFor(client: Engine, port: number): Promise<Buffer> {
    const connection = client.connect({ host: HOST, port, servername: 'localhost' });
    const ticket = new Promise<Buffer>((resolve) => connection.once('ticket', resolve));
    await ask(connection, Buffer.from('hello'));
    const got = await ticket;
    await connection.close();
    return got;
  }

  /**
   * A resumed connection sends a request as 0-RTT through a relay that captures its first flight;
   * once the server has forgotten that connection, an attacker replays the flight from REPLAYS new
   * source ports, twice (ROUNDS). While a worker still has a connection for a replay, it routes the
   * next replays it gets (same client connection ID) there, so each round opens about one
   * connection per worker reached; the rounds are apart by the workers' handshake timeout, so the
   * second round meets fresh connections again, well within the captured ClientHello's freshness.
   * Resolves with how often the request was served, how often from a replay, and what the replays reached.
   */
  async function replayAttack(client: Engine, workers: Peer[], port: number): Promise<AttackResult> {
    const ticket = await ticketFor(client, port);
    const relay = await UdpRelay.create({ targetPort: port });
    try {
      const flight = relay.captureFirstFlight();
      const body = Buffer.from(`transfer 100 to account 42 (${randomBytes(8).toString('hex')})`);
      const connection = client.connect({ host: HOST, port: relay.port, servername: 'localhost', ticket });
      const answer = ask(connection, body);
      expect(await connection.handshake).toMatchObject({ resumed: true, earlyData: 'accepted' });
      const original = await answer;
      expect(original).toMatchObject({ early: true, sha256: sha256(body) });
      const datagrams = await flight;
      // The replays must reach fresh connections, not the original's (still routed by its CIDs).
      const closesBefore = reportsOf(workers, 'close').length;
      await connection.close();
      const servedBy = workers.find((worker) => worker.pid === original.pid)!;
      await servedBy.waitFor(() => reportsOf(workers, 'close').length > closesBefore, 'the original connection closed');

      const opened: number[] = []; // the pid of each connection a replay opened
      for (let round = 0; round < ROUNDS; round++) {
        const connectionsBefore = workers.map((worker) => count(worker, 'connection'));
        const closesAtStart = reportsOf(workers, 'close').length;
        for (let i = 0; i < REPLAYS; i++) await relay.replay(datagrams);
        // Let the replays be processed (a settle delay for counting, not a timing assertion).
        await sleep(500);
        const thisRound = workers.flatMap((worker, i) => Array<number>(count(worker, 'connection') - connectionsBefore[i]).fill(worker.pid));
        opened.push(...thisRound);
        // Each replay connection ends at the handshake timeout (bounded wait).
        for (let waited = 0; reportsOf(workers, 'close').length < closesAtStart + thisRound.length && waited < 10000; waited += 50) await sleep(50);
      }
      const served = reportsOf(workers, 'request').filter(({ report }) => report.sha256 === sha256(body)).length;
      const reached = new Set(opened);
      return {
        served,
        replaysAccepted: served - 1,
        connections: opened.length,
        workersReached: reached.size,
        otherWorkersReached: reached.size - (reached.has(original.pid) ? 1 : 0),
      };
    } finally {
      await relay.close();
    }
  }

  const describeResult = (result: AttackResult): string =>
    `${ROUNDS * REPLAYS} replays from ${ROUNDS * REPLAYS} source ports at ${WORKERS} workers (${result.connections} connections opened on ${result.workersReached} workers): accepted ${result.replaysAccepted}`;

  test(`sharing one antiReplayStore: a 0-RTT flight replayed from ${ROUNDS} x ${REPLAYS} source ports at ${WORKERS} workers is accepted at most once in total`, async () => {
    const { workers, port } = await startWorkers(WORKERS, randomBytes(48).toString('hex'), newStorePath());
    const result = await replayAttack(engines.client(), workers, port);
    console.log(`antiReplayStore shared: ${describeResult(result)}`);
    // All 20 replays of a round on one worker of 4: probability 4^-19.
    expect(result.workersReached).toBeGreaterThan(1);
    expect(result.served).toBe(1); // the original only: every replay's 0-RTT was refused
  });

  test('without it (the default, one store per process) each other worker the replays reach accepts the flight once', async () => {
    const { workers, port } = await startWorkers(WORKERS, randomBytes(48).toString('hex'));
    const result = await replayAttack(engines.client(), workers, port);
    console.log(`per-process stores: ${describeResult(result)}`);
    expect(result.workersReached).toBeGreaterThan(1);
    expect(result.replaysAccepted).toBe(result.otherWorkersReached);
  });

  test('a worker killed with SIGKILL mid-load wedges nothing: the others keep admitting fresh 0-RTT and refusing replays, and a new worker joins the file', async () => {
    const keys = randomBytes(48).toString('hex');
    const store = newStorePath();
    const { workers, port } = await startWorkers(WORKERS, keys, store);
    const client = engines.client();
    const ticketsLoad = await Promise.all(Array.from({ length: 4 }, () => ticketFor(client, port)));

    // Load: resumptions with 0-RTT from several client engines at once, while one worker dies.
    const victim = workers[1];
    let stop = false;
    const outcomes: string[] = [];
    const ssl = clientSsl();
    const load = Promise.all(
      ticketsLoad.map(async (ticket) => {
        for (let i = 0; i < 200 && !stop; i++) {
          const engine = new Engine({ ssl, handshakeTimeout: 2000, idleTimeout: 2000 });
          try {
            const connection = engine.connect({ host: HOST, port, servername: 'localhost', ticket });
            connection.on('error', () => {});
            const answer = ask(connection, Buffer.from(`load ${i}`)).catch(() => undefined);
            const info = await connection.handshake.catch(() => undefined);
            await answer;
            outcomes.push(info ? info.earlyData : 'failed');
          } finally {
            await engine.close();
          }
        }
      }),
    );
    for (let waited = 0; outcomes.length < 10 && waited < 20000; waited += 20) await sleep(20);
    await victim.kill('SIGKILL');
    const beforeKill = outcomes.length;
    for (let waited = 0; outcomes.length < beforeKill + 10 && waited < 20000; waited += 20) await sleep(20);
    stop = true;
    await load;
    const accepted = (list: string[]): number => list.filter((outcome) => outcome === 'accepted').length;
    console.log(`SIGKILL mid-load: ${accepted(outcomes.slice(0, beforeKill))}/${beforeKill} 0-RTT accepted before, ${accepted(outcomes.slice(beforeKill))}/${outcomes.length - beforeKill} after`);
    expect(accepted(outcomes.slice(beforeKill))).toBeGreaterThan(0);

    const survivors = workers.filter((worker) => worker !== victim);
    // A new worker opens the same file after the kill, and takes part.
    survivors.push((await startWorkers(1, keys, store, port)).workers[0]);
    const fresh: string[] = [];
    for (let i = 0; i < 10; i++) {
      const engine = engines.client();
      const connection = engine.connect({ host: HOST, port, servername: 'localhost', ticket: await ticketFor(engine, port) });
      const answer = ask(connection, Buffer.from(`fresh ${i}`));
      fresh.push((await connection.handshake).earlyData);
      await answer;
      await connection.close();
    }
    expect(fresh).toEqual(Array(10).fill('accepted'));
    const result = await replayAttack(engines.client(), survivors, port);
    console.log(`after the SIGKILL, 3 survivors + 1 new worker: ${describeResult(result)}`);
    expect(result.served).toBe(1);
  });
});

describe('antiReplayStore: in one process', () => {
  const engines = useEngines();

  test('a new store file refuses 0-RTT on tickets issued before it (for one window); an Engine option overrides its SslConfig', async () => {
    const keys = randomBytes(48);
    const ssl = serverSsl('server', { earlyData: true, ticketKeys: keys });
    const issuer = await engines.server({ ssl });
    const client = engines.client();
    const first = client.connect({ host: HOST, port: issuer.port, servername: 'localhost' });
    const ticket = await new Promise<Buffer>((resolve) => first.once('ticket', resolve));
    await first.close();

    // The same SslConfig, but this engine records in a file created after the ticket was issued.
    const younger = await engines.server({ ssl, engine: { antiReplayStore: newStorePath() } });
    const resumed = client.connect({ host: HOST, port: younger.port, servername: 'localhost', ticket });
    resumed.openStream().end('early');
    expect(await resumed.handshake).toMatchObject({ resumed: true, earlyData: 'rejected' });
    await resumed.close();
  });

  test("a process joining an existing file takes the file's age, not its own", async () => {
    // A store file made an hour ago (format 1's header, written by hand): it has recorded every
    // ClientHello since, so it covers tickets issued before this process opened it.
    const file = newStorePath();
    const header = Buffer.alloc(128);
    header.write('QKREPLAY', 0, 'latin1');
    header.writeUInt32LE(1, 8);
    header.writeUInt32LE(40, 12);
    header.writeBigUInt64LE(BigInt(1 << 17), 16);
    header.writeBigUInt64LE(BigInt(Date.now() - 3600_000), 24);
    randomBytes(32).copy(header, 32);
    fs.writeFileSync(file, Buffer.concat([header, Buffer.alloc((1 << 17) * 40)]));

    const keys = randomBytes(48);
    const issuer = await engines.server({ ssl: serverSsl('server', { earlyData: true, ticketKeys: keys }) });
    const client = engines.client();
    const first = client.connect({ host: HOST, port: issuer.port, servername: 'localhost' });
    const ticket = await new Promise<Buffer>((resolve) => first.once('ticket', resolve));
    await first.close();

    const joiner = await engines.server({ ssl: serverSsl('server', { earlyData: true, ticketKeys: keys, antiReplayStore: file }) });
    const resumed = client.connect({ host: HOST, port: joiner.port, servername: 'localhost', ticket });
    resumed.openStream().end('early');
    expect(await resumed.handshake).toMatchObject({ resumed: true, earlyData: 'accepted' });
    await resumed.close();
  });

  test('SslConfigs and engines naming one file (by any path) share one mapping of it', () => {
    const file = newStorePath();
    const configs = [
      new SslConfig({ alpn: [ALPN], antiReplayStore: file }),
      new SslConfig({ alpn: [ALPN], antiReplayStore: path.join(path.dirname(file), '.', path.basename(file)) }),
    ];
    engines.engine({ antiReplayStore: file });
    const maps = fs.readFileSync('/proc/self/maps', 'utf8').split('\n').filter((line) => line.endsWith(file));
    expect(maps).toHaveLength(1);
    expect(configs).toHaveLength(2);
  });
});

describe('antiReplayStore: bad input', () => {
  const engines = useEngines();
  const storeError = (extra: object): unknown => expect.objectContaining({ name: 'Error', code: 'ERR_QUIC_ANTI_REPLAY_STORE', ...extra });
  const thrown = (fn: () => unknown): unknown => {
    try {
      fn();
    } catch (error) {
      return error;
    }
    throw new Error('expected a throw');
  };

  test('a non-string is a TypeError ERR_INVALID_ARG_TYPE, an empty string ERR_INVALID_ARG_VALUE (SslConfig and Engine)', () => {
    for (const bad of [1, true, {}, Buffer.from('x'), null]) {
      expect(thrown(() => new SslConfig({ alpn: [ALPN], antiReplayStore: bad as any }))).toEqual(expect.objectContaining({ name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' }));
      expect(thrown(() => engines.engine({ antiReplayStore: bad as any }))).toEqual(expect.objectContaining({ name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' }));
    }
    expect(thrown(() => new SslConfig({ alpn: [ALPN], antiReplayStore: '' }))).toEqual(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
  });

  test('a path that cannot be opened throws ERR_QUIC_ANTI_REPLAY_STORE with path, syscall and errno', () => {
    const missing = path.join(dir, 'no-such-dir', 'store');
    expect(thrown(() => new SslConfig({ alpn: [ALPN], antiReplayStore: missing }))).toEqual(
      storeError({ path: missing, syscall: 'open', errno: -os.constants.errno.ENOENT, message: expect.stringContaining(missing) }),
    );
    expect(thrown(() => engines.engine({ antiReplayStore: dir }))).toEqual(storeError({ path: dir, syscall: 'open', errno: -os.constants.errno.EISDIR }));
  });

  test('a file of another format is refused and left untouched (short garbage, garbage of a store\'s size, a newer format)', () => {
    const short = newStorePath();
    fs.writeFileSync(short, 'not a replay store');
    const sized = newStorePath();
    const garbage = randomBytes(128 + (1 << 17) * 40);
    fs.writeFileSync(sized, garbage);
    const newer = newStorePath();
    const header = Buffer.alloc(128 + (1 << 17) * 40);
    header.write('QKREPLAY', 0, 'latin1');
    header.writeUInt32LE(2, 8);
    fs.writeFileSync(newer, header);
    expect(thrown(() => new SslConfig({ alpn: [ALPN], antiReplayStore: short }))).toEqual(storeError({ path: short, message: expect.stringMatching(/is not a quicket anti-replay store \(18 bytes/) }));
    expect(thrown(() => engines.engine({ antiReplayStore: sized }))).toEqual(storeError({ path: sized, message: expect.stringMatching(/unknown header/) }));
    expect(thrown(() => engines.engine({ antiReplayStore: newer }))).toEqual(storeError({ message: expect.stringMatching(/format 2, this quicket reads format 1/) }));
    expect(fs.readFileSync(short, 'utf8')).toBe('not a replay store');
    expect(fs.readFileSync(sized).equals(garbage)).toBe(true);
  });
});
