// Address validation (RFC 9000 8.1) and connection caps: Retry with stateless tokens under load
// ('auto') or always, NEW_TOKEN tokens kept in tickets so a resumed connection skips the Retry and
// the 3x anti-amplification limit, and CONNECTION_REFUSED beyond maxHandshakes / maxConnections.
import { randomBytes } from 'node:crypto';

import { CloseInfo, Connection, Engine, Stream } from '../lib';
import { decodeTicket, encodeTicket } from '../lib/ticket';
import { HOST, pattern, roundTrip, serverSsl, useEngines } from './helpers';
import { RelayedDatagram, UdpRelay } from './helpers/udp-relay';

/* eslint-disable @typescript-eslint/no-explicit-any */

/** QUIC v1 long-header packet types (RFC 9000 17.2): the Retry packets a relay saw. */
const isRetry = (datagram: Buffer): boolean => (datagram[0] & 0xf0) === 0xf0;

function nextTicket(connection: Connection): Promise<Buffer> {
  return new Promise((resolve) => connection.once('ticket', resolve));
}

/** Resolves once `condition()` holds; rejects after `ms` (a hang guard, not a timing assertion). */
async function until(condition: () => boolean, what: string, ms = 10000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('address validation', () => {
  const engines = useEngines();
  const relays = new Set<UdpRelay>();
  afterEach(async () => {
    await Promise.all([...relays].map((relay) => relay.close()));
    relays.clear();
  });
  const relayTo = async (port: number): Promise<UdpRelay> => {
    const relay = await UdpRelay.create({ targetPort: port });
    relays.add(relay);
    return relay;
  };

  /** A server answering every stream with `responseSize` bytes as soon as the stream opens (no wait for its end). */
  function responder(responseSize: number) {
    return (connection: Connection): void => {
      connection.on('stream', (stream: Stream) => {
        stream.on('data', () => {});
        stream.end(pattern(responseSize, 3));
      });
    };
  }

  test("'always': a first connection is retried; its ticket carries a token, so the resumed connection skips the Retry and rides 0-RTT", async () => {
    const server = await engines.server({ ssl: serverSsl('server', { earlyData: true }), engine: { addressValidation: 'always' } });
    const relay = await relayTo(server.port);
    const seen = relay.record();

    const first = engines.client().connect({ host: HOST, port: relay.port, servername: 'localhost' });
    const ticket = nextTicket(first);
    const data = pattern(3000, 1);
    expect((await roundTrip(first, data)).equals(data)).toBe(true);
    expect(seen.datagrams.filter((d) => d.direction === 'toClient' && isRetry(d.data))).toHaveLength(1);
    expect(server.engine.stats()).toMatchObject({ retriesSent: 1, connectionsRefused: 0 });
    const stored = await ticket;
    expect(decodeTicket(stored).addressToken?.length).toBeGreaterThan(0);

    // Another engine: another source port, the same address. The token proves it.
    const resumed = engines.client().connect({ host: HOST, port: relay.port, servername: 'localhost', ticket: stored });
    const echoed = roundTrip(resumed, data);
    expect(await resumed.handshake).toMatchObject({ resumed: true, earlyData: 'accepted' });
    expect((await echoed).equals(data)).toBe(true);
    expect(server.engine.stats().retriesSent).toBe(1);
    expect(seen.datagrams.filter((d) => d.direction === 'toClient' && isRetry(d.data))).toHaveLength(1);
    seen.stop();
  });

  test('a ticket without a token (or with a foreign, garbage or other-address one) is retried, then resumes with 0-RTT', async () => {
    const server = await engines.server({ ssl: serverSsl('server', { earlyData: true }), engine: { addressValidation: 'always' } });
    const first = engines.client().connect({ host: HOST, port: server.port, servername: 'localhost' });
    const ticket = decodeTicket(await nextTicket(first));
    await first.close();

    // A token from an engine with another statelessResetKey (its token secret derives from it).
    const other = await engines.server({ ssl: serverSsl('server', { earlyData: true }), engine: { addressValidation: 'always' } });
    const foreign = engines.client().connect({ host: HOST, port: other.port, servername: 'localhost' });
    const foreignToken = decodeTicket(await nextTicket(foreign)).addressToken!;
    await foreign.close();

    const variants: Record<string, Buffer | undefined> = {
      none: undefined,
      garbage: randomBytes(40),
      foreign: foreignToken,
      'regular magic, random body': Buffer.concat([Buffer.from([0x36]), randomBytes(56)]),
    };
    let retries = server.engine.stats().retriesSent;
    for (const [name, addressToken] of Object.entries(variants)) {
      const forged = encodeTicket({ ...ticket, addressToken });
      const connection = engines.client().connect({ host: HOST, port: server.port, servername: 'localhost', ticket: forged });
      const data = pattern(2000, 2);
      const echoed = roundTrip(connection, data);
      expect({ name, info: await connection.handshake }).toMatchObject({ name, info: { resumed: true, earlyData: 'accepted' } });
      expect((await echoed).equals(data)).toBe(true);
      expect({ name, retries: server.engine.stats().retriesSent }).toEqual({ name, retries: retries + 1 });
      retries++;
    }
  });

  test('an expired address token counts as no token: the resumed client is retried again (addressTokenLifetime)', async () => {
    const server = await engines.server({ ssl: serverSsl('server', { earlyData: true }), engine: { addressValidation: 'always', addressTokenLifetime: 300 } });
    const first = engines.client().connect({ host: HOST, port: server.port, servername: 'localhost' });
    const ticket = await nextTicket(first);
    const issued = Date.now();
    await first.close();
    expect(server.engine.stats().retriesSent).toBe(1);

    const fresh = engines.client().connect({ host: HOST, port: server.port, servername: 'localhost', ticket });
    expect(await fresh.handshake).toMatchObject({ resumed: true });
    await fresh.close();
    // Only meaningful if the token was still young: a slow machine may not get here within 300 ms.
    if (Date.now() - issued < 250) expect(server.engine.stats().retriesSent).toBe(1);

    await new Promise((resolve) => setTimeout(resolve, Math.max(0, issued + 450 - Date.now())));
    const before = server.engine.stats().retriesSent;
    const late = engines.client().connect({ host: HOST, port: server.port, servername: 'localhost', ticket });
    const data = pattern(2000, 7);
    const echoed = roundTrip(late, data);
    expect(await late.handshake).toMatchObject({ resumed: true, earlyData: 'accepted' });
    expect((await echoed).equals(data)).toBe(true);
    expect(server.engine.stats().retriesSent).toBe(before + 1);
  });

  test('a Retry token answered after retryTokenLifetime is refused with INVALID_TOKEN, never a connection', async () => {
    const server = await engines.server({ engine: { addressValidation: 'always', retryTokenLifetime: 150 } });
    const relay = await relayTo(server.port);
    // Once the Retry has gone to the client, everything it sends reaches the server 400 ms late.
    relay.tap(({ direction, data }) => {
      if (direction === 'toClient' && isRetry(data)) relay.setFaults({ delay: 400 }, 'toServer');
      return undefined;
    });
    const connection = engines.client({ handshakeTimeout: 5000 }).connect({ host: HOST, port: relay.port, servername: 'localhost' });
    connection.on('error', () => {});
    const closed = new Promise<CloseInfo>((resolve) => connection.once('close', resolve));
    await expect(connection.handshake).rejects.toMatchObject({ code: 'ERR_QUIC_TRANSPORT_ERROR' });
    // INVALID_TOKEN (RFC 9000 20.1), from the server.
    expect(await closed).toMatchObject({ code: 0x0b, type: 'transport', remote: true });
    expect(server.engine.stats()).toMatchObject({ retriesSent: 1, connections: 0 });
    expect(server.connections).toHaveLength(0);
  });

  test('a token is bound to the client address: from ::1 a 127.0.0.1 token is retried', async () => {
    const engine = engines.engine({ ssl: serverSsl('server', { earlyData: true }), addressValidation: 'always' });
    engine.on('connection', (connection: Connection) => {
      connection.on('error', () => {});
      connection.on('stream', (stream: Stream) => stream.pipe(stream));
    });
    const { port } = await engine.listen({ host: '::' });
    const first = engines.client().connect({ host: '127.0.0.1', port, servername: 'localhost' });
    const ticket = await nextTicket(first);
    await first.close();
    expect(engine.stats().retriesSent).toBe(1);

    const client = engines.client();
    const same = client.connect({ host: '127.0.0.1', port, servername: 'localhost', ticket });
    expect(await same.handshake).toMatchObject({ resumed: true });
    expect(engine.stats().retriesSent).toBe(1);

    const moved = client.connect({ host: '::1', port, servername: 'localhost', ticket });
    const data = pattern(1000, 4);
    expect((await roundTrip(moved, data)).equals(data)).toBe(true);
    expect(await moved.handshake).toMatchObject({ resumed: true });
    expect(engine.stats().retriesSent).toBe(2);
  });

  test('a validated address lifts the 3x amplification limit: a 0-RTT response fills the congestion window at once', async () => {
    const server = await engines.server({ ssl: serverSsl('server', { earlyData: true }), engine: { addressValidation: 'never' }, onConnection: responder(200_000) });
    const first = engines.client().connect({ host: HOST, port: server.port, servername: 'localhost' });
    const ticket = decodeTicket(await nextTicket(first));
    await first.close();
    expect(ticket.addressToken?.length).toBeGreaterThan(0);

    /** Bytes each way before the client's second flight: the relay passes the client's first flight only (until the server answers). */
    async function firstFlight(addressToken: Buffer | undefined): Promise<{ fromClient: number; fromServer: number }> {
      const relay = await relayTo(server.port);
      let fromClient = 0;
      let fromServer = 0;
      relay.tap((datagram: RelayedDatagram) => {
        if (datagram.direction === 'toServer') {
          if (fromServer > 0) return 'drop';
          fromClient += datagram.data.length;
          return 'pass';
        }
        fromServer += datagram.data.length;
        return 'pass';
      });
      const connection = engines.client().connect({ host: HOST, port: relay.port, servername: 'localhost', ticket: encodeTicket({ ...ticket, addressToken }) });
      connection.on('error', () => {});
      const stream = connection.openStream();
      stream.on('error', () => {});
      stream.on('data', () => {});
      stream.end('GET');
      // Long enough for the server's first flight and its retransmissions; the client stays silent.
      await new Promise((resolve) => setTimeout(resolve, 600));
      connection.destroy();
      return { fromClient, fromServer };
    }

    const withToken = await firstFlight(ticket.addressToken);
    const withoutToken = await firstFlight(undefined);
    expect(withToken.fromClient).toBeGreaterThanOrEqual(1200);
    expect(withoutToken.fromClient).toBeGreaterThanOrEqual(1200);
    expect(withoutToken.fromServer).toBeLessThanOrEqual(3 * withoutToken.fromClient);
    expect(withToken.fromServer).toBeGreaterThan(3 * withToken.fromClient);
  });

  test("'auto': once 100 handshakes are in progress new clients are retried, and still connect", async () => {
    const server = await engines.server({ engine: { handshakeTimeout: 20000 } });
    const relay = await relayTo(server.port);
    relay.setBlackout(true, 'toClient'); // half-open: the server's answers never arrive
    const stalled = engines.client({ handshakeTimeout: 20000 });
    for (let i = 0; i < 110; i++) {
      stalled.connect({ host: HOST, port: relay.port, servername: 'localhost' }).on('error', () => {});
    }
    await until(() => server.engine.stats().handshakes >= 100, '100 half-open handshakes');
    await new Promise((resolve) => setTimeout(resolve, 200));
    const loaded = server.engine.stats();
    expect(loaded.handshakes).toBe(100);
    expect(loaded.retriesSent).toBeGreaterThanOrEqual(10); // the ten beyond the threshold

    const legit = engines.client().connect({ host: HOST, port: server.port, servername: 'localhost' });
    const data = pattern(5000, 5);
    expect((await roundTrip(legit, data)).equals(data)).toBe(true);
    expect(server.engine.stats().retriesSent).toBeGreaterThan(loaded.retriesSent);
    expect(server.engine.stats().connectionsRefused).toBe(0);
  });

  test('beyond maxHandshakes a new client is refused at once with ERR_QUIC_CONNECTION_REFUSED', async () => {
    const server = await engines.server({ engine: { addressValidation: 'never', maxHandshakes: 3, handshakeTimeout: 20000 } });
    const relay = await relayTo(server.port);
    relay.setBlackout(true, 'toClient');
    const stalled = engines.client({ handshakeTimeout: 20000 });
    for (let i = 0; i < 3; i++) stalled.connect({ host: HOST, port: relay.port, servername: 'localhost' }).on('error', () => {});
    await until(() => server.engine.stats().handshakes === 3, '3 half-open handshakes');

    const refused = engines.client({ handshakeTimeout: 20000 }).connect({ host: HOST, port: server.port, servername: 'localhost' });
    refused.on('error', () => {});
    await expect(refused.handshake).rejects.toMatchObject({ code: 'ERR_QUIC_CONNECTION_REFUSED' });
    expect(server.engine.stats()).toMatchObject({ handshakes: 3, connectionsRefused: 1 });
  });

  test('beyond maxConnections a new client is refused; once one closes, the next is accepted', async () => {
    const server = await engines.server({ engine: { maxConnections: 2 } });
    const client = engines.client();
    const open = [0, 1].map(() => client.connect({ host: HOST, port: server.port, servername: 'localhost' }));
    await Promise.all(open.map((connection) => connection.handshake));
    await until(() => server.engine.stats().connections === 2 && server.engine.stats().handshakes === 0, 'two established connections');

    const refused = client.connect({ host: HOST, port: server.port, servername: 'localhost' });
    refused.on('error', () => {});
    const error: any = await refused.handshake.catch((failure) => failure);
    expect(error).toMatchObject({ code: 'ERR_QUIC_CONNECTION_REFUSED' });
    expect(server.engine.stats().connectionsRefused).toBe(1);

    await open[0].close();
    await until(() => server.engine.stats().connections === 1, 'a closed connection released');
    const accepted = client.connect({ host: HOST, port: server.port, servername: 'localhost' });
    const data = pattern(1000, 6);
    expect((await roundTrip(accepted, data)).equals(data)).toBe(true);
  });

  test('options are checked', () => {
    expect(() => new Engine({ addressValidation: 'sometimes' as any })).toThrow(expect.objectContaining({ name: 'RangeError', code: 'ERR_INVALID_ARG_VALUE' }));
    expect(() => new Engine({ addressValidation: true as any })).toThrow(expect.objectContaining({ name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => new Engine({ maxConnections: 0 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => new Engine({ maxHandshakes: '5' as any })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => new Engine({ retryTokenLifetime: 0 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => new Engine({ addressTokenLifetime: 1.5 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => new Engine({ addressTokenLifetime: '1' as any })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
  });
});
