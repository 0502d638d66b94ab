// 0-RTT and replay: a server accepts the early data of honest resumptions (whose ticket ages a
// client reports in whole seconds), refuses the early data of every replayed first flight, refuses
// it for tickets older than its own replay store, and will not run with a window shorter than
// OpenSSL's ticket-age tolerance.
import { randomBytes } from 'node:crypto';

import { Engine, SslConfig } from '../lib';
import { mulberry32 } from './helpers/bad-tickets';
import { ALPN, pem, serverSsl } from './helpers/index';
import { clientEngine, exchange, ExchangeResult, fetchTicket, payload, Received, received, TestServer, useCleanup } from './helpers/ticket-harness';
import { startTicketServerProcess } from './helpers/ticket-server-process';
import { UdpRelay } from './helpers/udp-relay';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** `promise`, or a rejection naming `what` after `ms` milliseconds. */
async function within<T>(ms: number, promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves once every connection the server has seen so far has closed. */
async function allClosed(server: TestServer): Promise<void> {
  await Promise.all(server.connections.map((connection) => (connection.closed ? undefined : new Promise((resolve) => connection.once('close', resolve)))));
}

describe('honest clients', () => {
  const track = useCleanup();

  test('a client whose reported ticket ages are rounded to whole seconds gets 0-RTT accepted', async () => {
    // quicket's client stores tickets as serialised OpenSSL sessions, whose times are whole
    // seconds, so the ticket age it reports can be up to 1 s above the real one (as Go's and
    // BoringSSL's are). Random gaps put the resumptions at every offset within a second.
    const CHAINS = 8;
    const PER_CHAIN = 25;
    const SEED = 20261202;
    // Started before the first ticket is issued: the startup rule does not apply.
    const server = track(await TestServer.start({ earlyData: true }));
    const outcomes: Record<string, number> = {};
    const notAccepted: string[] = [];
    const failures: string[] = [];
    let resumed = 0;
    let total = 0;
    await Promise.all(
      Array.from({ length: CHAINS }, async (_, chain) => {
        const random = mulberry32(SEED + chain);
        const client = track(clientEngine());
        let ticket = await fetchTicket(client, server.port); // the full handshake: not counted
        for (let i = 0; i < PER_CHAIN; i++) {
          const gap = Math.floor(random() * 1000);
          await sleep(gap);
          const data = payload(600 + ((chain * PER_CHAIN + i) % 400), chain * PER_CHAIN + i);
          total++;
          let result: ExchangeResult;
          try {
            result = await within(20_000, exchange(client, server.port, data, { ticket }), `chain ${chain} #${i}`);
          } catch (error) {
            failures.push(`chain ${chain} #${i}: ${(error as Error).message}`);
            continue;
          }
          outcomes[result.earlyData] = (outcomes[result.earlyData] ?? 0) + 1;
          if (result.resumed) resumed++;
          if (result.earlyData !== 'accepted') notAccepted.push(`chain ${chain} #${i} after ${gap} ms: ${result.earlyData}`);
          if (result.reply.sha256 !== received(data, false).sha256) failures.push(`chain ${chain} #${i}: bytes altered`);
          ticket = result.tickets[result.tickets.length - 1]; // the newest ticket of the chain
        }
      }),
    );
    const accepted = outcomes.accepted ?? 0;
    const summary = { seed: SEED, total, resumed, accepted, outcomes, notAccepted: notAccepted.slice(0, 10), failures: failures.slice(0, 10) };
    expect(summary).toEqual({ ...summary, total: CHAINS * PER_CHAIN, resumed: CHAINS * PER_CHAIN, failures: [] });
    expect({ ...summary, atLeast99Percent: accepted >= 0.99 * total }).toEqual({ ...summary, atLeast99Percent: true });
  }, 120_000);
});

describe('replayed first flights', () => {
  const track = useCleanup();

  test('every replayed first flight has its 0-RTT refused', async () => {
    const N = 20;
    const ticketKeys = randomBytes(48);
    const ssl = serverSsl('server', { earlyData: true, ticketKeys });
    const server = track(await TestServer.start(ssl));
    // Another engine in this process, on another SslConfig with the same key (say, a second
    // listener, or a reloaded certificate): the replay store is the process's, it refuses them too.
    const sibling = track(await TestServer.start({ earlyData: true, ticketKeys }));
    // Control: same key, another process and so another replay store, started before any ticket:
    // each recorded flight is a valid 0-RTT flight for it. Proves the replays carry early data a
    // server would accept.
    const control = track(await startTicketServerProcess(ticketKeys));
    const relay = track(await UdpRelay.create({ targetPort: server.port, seed: 11 }));

    const flights: Buffer[][] = [];
    const secrets: Buffer[] = [];
    for (let i = 0; i < N; i++) {
      // One engine (one source port) per client: the relay tells first flights apart by address.
      const client = track(clientEngine());
      const ticket = await fetchTicket(client, server.port);
      const secret = Buffer.from(`transfer #${i} ${randomBytes(8).toString('hex')}`);
      const firstFlight = relay.captureFirstFlight();
      const original = await exchange(client, relay.port, secret, { ticket, waitForTicket: false });
      expect({ i, earlyData: original.earlyData, reply: original.reply }).toEqual({ i, earlyData: 'accepted', reply: received(secret, true) });
      flights.push(await within(5000, firstFlight, `first flight #${i}`));
      secrets.push(secret);
      // The client stays open until the test ends: a closed one's port could be handed to the
      // next client, which the relay would then take for the same client.
    }
    // The originals are gone on the server too, so each replay meets a fresh endpoint state.
    await within(10_000, allClosed(server), 'server connections closing');
    const deliveries = (target: { received: Received[] }): number[] =>
      secrets.map((secret) => target.received.filter((seen) => seen.sha256 === received(secret, true).sha256).length);
    expect(deliveries(server)).toEqual(secrets.map(() => 1));
    const connectionsBefore = server.connections.length;
    const openedBefore = server.opened.length;

    for (const [i, flight] of flights.entries()) {
      const [replay, siblingReplay, controlReplay] = await Promise.all([
        relay.replay(flight),
        relay.replay(flight, { targetPort: sibling.port }),
        relay.replay(flight, { targetPort: control.port }),
      ]);
      // The server answered: it took the replayed Initial as a new connection.
      await within(5000, replay.waitForResponses(1), `server's answer to replay #${i}`);
      await within(5000, siblingReplay.waitForResponses(1), `sibling's answer to replay #${i}`);
      await within(5000, controlReplay.waitForResponses(1), `control's answer to replay #${i}`);
    }
    await within(10_000, control.waitForReceived(N), 'the control receiving the replayed early data');
    await sleep(200); // the server had the same datagrams earlier; a margin for the last ones

    const secondDeliveries = deliveries(server).reduce((sum, count) => sum + count - 1, 0);
    expect({
      replays: N,
      newConnections: server.connections.length - connectionsBefore,
      secondDeliveries,
      earlyStreamsOpenedByReplays: server.opened.slice(openedBefore).filter(Boolean).length,
      siblingConnections: sibling.connections.length,
      siblingDeliveries: deliveries(sibling).reduce((sum, count) => sum + count, 0),
      siblingEarlyStreams: sibling.opened.filter(Boolean).length,
      controlDeliveries: deliveries(control),
      controlAllEarly: control.received.every((seen) => seen.early),
    }).toEqual({
      replays: N,
      newConnections: N,
      secondDeliveries: 0,
      earlyStreamsOpenedByReplays: 0,
      siblingConnections: N,
      siblingDeliveries: 0,
      siblingEarlyStreams: 0,
      controlDeliveries: secrets.map(() => 1),
      controlAllEarly: true,
    });

    // Still healthy: a new client completes a full handshake, then resumes with 0-RTT.
    const fresh = track(clientEngine());
    const first = await exchange(fresh, server.port, Buffer.from('after the replays'));
    expect(first.reply).toEqual(received(Buffer.from('after the replays'), false));
    const data = payload(5000, 21);
    const again = await exchange(fresh, server.port, data, { ticket: first.tickets[0] });
    expect({ resumed: again.resumed, earlyData: again.earlyData, reply: again.reply }).toEqual({
      resumed: true,
      earlyData: 'accepted',
      reply: received(data, true),
    });
  }, 60_000);
});

describe('a server that has just started', () => {
  const track = useCleanup();

  test('right after a server process starts, tickets issued before it get their 0-RTT refused but still resume', async () => {
    const ticketKeys = randomBytes(48);
    const issuer = track(await TestServer.start({ earlyData: true, ticketKeys }));
    const client = track(clientEngine());
    const ticket = await fetchTicket(client, issuer.port);
    await sleep(5); // the ticket's issue time (milliseconds) is strictly before the new server's start

    // A new process: its replay store never saw the ClientHellos made before it existed.
    const restarted = track(await startTicketServerProcess(ticketKeys));
    const data = payload(60_000, 22);
    const result = await exchange(client, restarted.port, data, { ticket });
    expect({ resumed: result.resumed, earlyData: result.earlyData, earlyDataRejected: result.earlyDataRejected, ticketRejected: result.ticketRejected }).toEqual({
      resumed: true,
      earlyData: 'rejected',
      earlyDataRejected: 1,
      ticketRejected: [],
    });
    expect(result.reply).toEqual(received(data, false));

    // The ticket it issued on that connection is newer than its store: 0-RTT accepted there.
    const renewed = await exchange(client, restarted.port, data, { ticket: result.tickets[0] });
    expect({ resumed: renewed.resumed, earlyData: renewed.earlyData }).toEqual({ resumed: true, earlyData: 'accepted' });
    expect(renewed.reply).toEqual(received(data, true));

    await restarted.waitForReceived(2);
    expect(restarted.received).toEqual([received(data, false), received(data, true)]);

    // A new SslConfig and engine in this process (a reloaded certificate, say): the process's
    // store has been recording all along, so the old ticket keeps its 0-RTT.
    const reloaded = track(await TestServer.start({ earlyData: true, ticketKeys }));
    const accepted = await exchange(client, reloaded.port, data, { ticket });
    expect({ resumed: accepted.resumed, earlyData: accepted.earlyData }).toEqual({ resumed: true, earlyData: 'accepted' });
    expect(accepted.reply).toEqual(received(data, true));
  });
});

describe('antiReplayWindow', () => {
  test('below 11000 ms (OpenSSL\'s ticket-age tolerance) throws RangeError ERR_OUT_OF_RANGE', () => {
    const options = { alpn: [ALPN], cert: pem('server.pem'), key: pem('server-key.pem'), earlyData: true };
    for (const window of [10_999, 10_000, 1000, 0, -1]) {
      let thrown: unknown;
      try {
        new SslConfig({ ...options, antiReplayWindow: window });
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(RangeError);
      expect(thrown).toHaveProperty('code', 'ERR_OUT_OF_RANGE');
    }
    const engine = new Engine({ ssl: new SslConfig({ ...options, antiReplayWindow: 11_000 }) });
    return engine.close();
  });
});
