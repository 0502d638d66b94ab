// Scale-out on one machine: several processes listen on one UDP port with `reusePort: true`
// (SO_REUSEPORT: the kernel picks a process per client 4-tuple) and share one `ticketKeys`, so a
// ticket issued by any worker resumes, with 0-RTT, on any other. Also what is *not* shared: the
// anti-replay store is per process, so one captured 0-RTT flight can be accepted by another worker.
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import path from 'node:path';

import { Connection, Engine } from '../lib';
import { HOST, readAll, useEngines } from './helpers';
import { Peer, startServerPeer, usePeers } from './helpers/processes';
import { UdpRelay } from './helpers/udp-relay';

/* eslint-disable @typescript-eslint/no-explicit-any */
const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

/** A request to a test/fixtures/peer.js server: sends `body`, resolves with its JSON answer. */
async function ask(connection: Connection, body: Buffer): Promise<any> {
  const stream = connection.openStream();
  const answer = readAll(stream);
  stream.end(body);
  return JSON.parse((await answer).toString());
}

function nextTicket(connection: Connection): Promise<Buffer> {
  return new Promise((resolve) => connection.once('ticket', resolve));
}

describe('scale-out: reusePort workers sharing one ticket key', () => {
  const engines = useEngines();
  const peers = usePeers();

  /** Two peer.js workers on one port with one key. */
  async function startWorkers(keys: string): Promise<{ workers: Peer[]; port: number }> {
    const first = await startServerPeer(peers, { reusePort: true, ticketKeys: keys, host: HOST });
    const second = await startServerPeer(peers, { reusePort: true, ticketKeys: keys, host: HOST, port: first.port });
    expect(second.port).toBe(first.port);
    return { workers: [first.peer, second.peer], port: first.port };
  }

  /**
   * Client engines, each on its own source port, until both workers have served one; the kernel
   * keeps sending an engine's packets to the same worker. Resolves with one engine per worker pid
   * and the ticket its first connection received.
   */
  async function engineForEachWorker(port: number, pids: number[]): Promise<Map<number, { engine: Engine; ticket: Buffer }>> {
    const found = new Map<number, { engine: Engine; ticket: Buffer }>();
    // The chance that 40 engines all land on one of two workers is 2^-39.
    for (let attempt = 0; attempt < 40 && found.size < pids.length; attempt++) {
      const engine = engines.client();
      const connection = engine.connect({ host: HOST, port, servername: 'localhost' });
      const ticket = nextTicket(connection);
      const answer = await ask(connection, Buffer.from(`probe ${attempt}`));
      expect(pids).toContain(answer.pid);
      expect(await connection.handshake).toMatchObject({ resumed: false });
      if (!found.has(answer.pid)) found.set(answer.pid, { engine, ticket: await ticket });
      await connection.close();
    }
    expect([...found.keys()].sort()).toEqual([...pids].sort());
    return found;
  }

  test('a ticket issued by either worker resumes with 0-RTT on the other (2 workers, one port, one key)', async () => {
    const { workers, port } = await startWorkers(randomBytes(48).toString('hex'));
    const [a, b] = workers.map((worker) => worker.pid);
    const byWorker = await engineForEachWorker(port, [a, b]);

    for (const [issuer, resumer] of [
      [a, b],
      [b, a],
    ]) {
      const ticket = byWorker.get(issuer)!.ticket;
      const body = randomBytes(30000);
      // From the engine the kernel sends to the *other* worker, with the issuer's ticket.
      const connection = byWorker.get(resumer)!.engine.connect({ host: HOST, port, servername: 'localhost', ticket });
      const answer = ask(connection, body); // same tick: rides the first flight as 0-RTT
      expect(await connection.handshake).toMatchObject({ resumed: true, earlyData: 'accepted' });
      expect(await answer).toMatchObject({ pid: resumer, early: true, length: body.length, sha256: sha256(body) });
      await connection.close();
    }
  });

  test('anti-replay is per process: a worker never accepts one 0-RTT flight twice, but another worker can accept it once', async () => {
    const { workers, port } = await startWorkers(randomBytes(48).toString('hex'));
    const pids = workers.map((worker) => worker.pid);
    const byWorker = await engineForEachWorker(port, pids);
    const [original, other] = pids;

    // A resumed connection with a 0-RTT request, through a relay that captures its first flight.
    const relay = await UdpRelay.create({ targetPort: port });
    try {
      const flight = relay.captureFirstFlight();
      const body = Buffer.from(`transfer 100 to account 42 (${randomBytes(8).toString('hex')})`);
      const connection = byWorker.get(original)!.engine.connect({
        host: HOST,
        port: relay.port,
        servername: 'localhost',
        ticket: byWorker.get(original)!.ticket,
      });
      const answer = ask(connection, body);
      expect(await connection.handshake).toMatchObject({ resumed: true, earlyData: 'accepted' });
      const served = await answer;
      expect(served).toMatchObject({ early: true, sha256: sha256(body) });
      // The relay's upstream port decides the worker; note which one served the original.
      const servedBy = served.pid as number;
      const notServedBy = servedBy === original ? other : original;
      const datagrams = await flight;

      // An attacker re-sends the captured flight from 20 new source ports: the kernel spreads
      // them over both workers (all 20 on one worker: probability 2^-19).
      for (let i = 0; i < 20; i++) await relay.replay(datagrams);
      const requests = (worker: Peer): any[] =>
        worker.reports.filter((report) => report.event === 'request' && report.sha256 === sha256(body));
      const byPid = new Map(workers.map((worker) => [worker.pid, worker]));
      // The other worker has never seen this ClientHello: it accepts the early data once.
      await byPid.get(notServedBy)!.waitFor((report) => report.event === 'request' && report.sha256 === sha256(body), 'the replayed request');
      // Let the remaining replays be processed (a settle delay for counting, not a timing assertion).
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(requests(byPid.get(servedBy)!)).toHaveLength(1); // only the original: its replays were refused
      expect(requests(byPid.get(notServedBy)!)).toHaveLength(1); // exactly once, as 0-RTT
      expect(requests(byPid.get(notServedBy)!)[0]).toMatchObject({ early: true });
      await connection.close();
    } finally {
      await relay.close();
    }
  });

  test('examples/cluster runs 2 workers and shows cross-worker 0-RTT resumption', async () => {
    const script = path.join(__dirname, '..', 'examples', 'cluster', 'index.js');
    const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [script, '--workers', '2'], { timeout: 50000, killSignal: 'SIGKILL' }, (error, out, err) =>
        resolve({ code: error ? ((error as any).code ?? 1) : 0, stdout: out, stderr: err }),
      );
    });
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    expect(stdout).toMatch(/served by worker 1/);
    expect(stdout).toMatch(/served by worker 2/);
    expect(stdout).toMatch(/ticket from worker 1 resumed on worker 2: resumed=true 0-RTT=accepted/);
    expect(stdout).toMatch(/ticket from worker 2 resumed on worker 1: resumed=true 0-RTT=accepted/);
  });
});
