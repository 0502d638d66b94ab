// congestionControl: the engine's connections use the named ngtcp2 controller. Each one carries a
// transfer through loss byte-exact; BBR, which sizes its window to the measured bandwidth-delay
// product instead of growing it until loss, ends a loss-free loopback download with a smaller
// window than Reno's (which is how the option is seen to reach ngtcp2).
import { Connection, CongestionControl, Engine, Stream } from '../lib';
import { HOST, pattern, roundTrip, useEngines } from './helpers';
import { UdpRelay } from './helpers/udp-relay';

const MIB = 1024 * 1024;

describe('congestion control', () => {
  const engines = useEngines();
  const relays: UdpRelay[] = [];
  afterEach(async () => {
    await Promise.all(relays.splice(0).map((relay) => relay.close()));
  });

  test.each<CongestionControl>(['cubic', 'bbr', 'reno'])('%s: 2 MiB echo through 3%% loss, every byte', async (congestionControl) => {
    const server = await engines.server({ engine: { congestionControl } });
    const relay = await UdpRelay.create({ targetPort: server.port, drop: 0.03, seed: 7 });
    relays.push(relay);
    const connection = engines.client({ congestionControl }).connect({ host: HOST, port: relay.port, servername: 'localhost' });
    const data = pattern(2 * MIB, 9);
    expect((await roundTrip(connection, data)).equals(data)).toBe(true);
    expect(relay.stats.toServer.dropped + relay.stats.toClient.dropped).toBeGreaterThan(0);
    expect(connection.stats().packetsLost).toBeGreaterThan(0);
  }, 30000);

  /** The server connection's congestion window once it has sent `size` bytes on loopback. */
  async function windowAfterDownload(congestionControl: CongestionControl, size: number): Promise<number> {
    const server = await engines.server({
      engine: { congestionControl },
      onConnection: (connection: Connection) => {
        connection.on('stream', (stream: Stream) => {
          stream.on('data', () => {});
          stream.on('end', () => stream.end(Buffer.alloc(size)));
        });
      },
    });
    const accepted = server.nextConnection();
    const connection = engines.client().connect({ host: HOST, port: server.port, servername: 'localhost' });
    const stream = connection.openStream();
    let received = 0;
    stream.on('data', (chunk: Buffer) => {
      received += chunk.length;
    });
    const ended = new Promise((resolve) => stream.once('end', resolve));
    stream.end('get');
    await ended;
    expect(received).toBe(size);
    return (await accepted).stats().congestionWindow;
  }

  test('the option reaches ngtcp2: after 8 MiB without loss BBR holds a smaller window than Reno', async () => {
    // Reno without loss stays in slow start, its window growing by every byte acknowledged; BBR's
    // follows the measured bandwidth-delay product. Medians of three, as both vary with load.
    const median = (values: number[]): number => values.sort((a, b) => a - b)[1];
    const reno: number[] = [];
    const bbr: number[] = [];
    for (let i = 0; i < 3; i++) {
      reno.push(await windowAfterDownload('reno', 8 * MIB));
      bbr.push(await windowAfterDownload('bbr', 8 * MIB));
    }
    expect(median(bbr)).toBeLessThan(0.8 * median(reno));
  }, 60000);

  test('the option is checked', () => {
    expect(() => new Engine({ congestionControl: 'vegas' as never })).toThrow(expect.objectContaining({ name: 'RangeError', code: 'ERR_INVALID_ARG_VALUE' }));
    expect(() => new Engine({ congestionControl: 1 as never })).toThrow(expect.objectContaining({ name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' }));
  });
});
