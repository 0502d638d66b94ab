// Where nobody listens: the kernel's ICMP "port unreachable" fails a handshake at once with
// node:net's ECONNREFUSED instead of waiting for handshakeTimeout, and ICMP errors about peers of
// established connections (easily forged) end nothing and cost nothing.
import dgram from 'node:dgram';
import os from 'node:os';

import { CloseInfo, Connection, SystemError } from '../lib';
import { HOST, clientSsl, next, readAll, roundTrip, serverSsl, useEngines } from './helpers';
import { UdpRelay } from './helpers/udp-relay';

/** A UDP port on `host` that was free a moment ago and has nobody listening now. */
async function unusedPort(type: 'udp4' | 'udp6', host: string): Promise<number> {
  const socket = dgram.createSocket(type);
  await new Promise<void>((resolve) => socket.bind(0, host, resolve));
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

describe('connect() where nobody listens', () => {
  const engines = useEngines();

  describe.each([
    ['127.0.0.1', 'udp4'],
    ['::1', 'udp6'],
  ] as const)('on %s', (host, type) => {
    // The test's own timeout is far below handshakeTimeout: only the ICMP error can end it in time.
    test("the handshake rejects with ECONNREFUSED like node:net's, 'error' and 'close' carry it, and the engine connects elsewhere afterwards", async () => {
      const port = await unusedPort(type, host);
      const client = engines.client({ handshakeTimeout: 30000 });
      const connection = client.connect({ host, port, servername: 'localhost' });
      const failed = next<SystemError>(connection, 'error');
      const closed = next<CloseInfo>(connection, 'close');

      const error = (await connection.handshake.catch((caught) => caught)) as SystemError;
      expect(error).toMatchObject({
        code: 'ECONNREFUSED',
        errno: -os.constants.errno.ECONNREFUSED,
        syscall: 'connect',
        address: host,
        port,
        message: `connect ECONNREFUSED ${host}:${port}`,
      });
      expect(await failed).toBe(error);
      expect((await closed).error).toBe(error);
      expect(connection.closed).toBe(true);

      // The socket survived its error queue: the same engine reaches a server.
      const server = engines.engine({ ssl: serverSsl() });
      server.on('connection', (accepted: Connection) => accepted.on('stream', (stream) => stream.pipe(stream)));
      const { port: serverPort } = await server.listen({ host, port: 0 });
      const working = client.connect({ host, port: serverPort, servername: 'localhost' });
      expect((await roundTrip(working, Buffer.from('after ECONNREFUSED'))).toString()).toBe('after ECONNREFUSED');
    }, 5000);
  });

  test('several connections to the closed port all fail, and one to a live server on the same engine is untouched', async () => {
    const port = await unusedPort('udp4', HOST);
    const server = await engines.server();
    const client = engines.client({ handshakeTimeout: 30000 });
    const live = client.connect({ host: HOST, port: server.port, servername: 'localhost' });
    const refused = [1, 2, 3].map(() => client.connect({ host: HOST, port, servername: 'localhost' }).handshake.catch((error) => error));
    for (const error of await Promise.all(refused)) expect(error).toMatchObject({ code: 'ECONNREFUSED', port });
    expect((await roundTrip(live, Buffer.from('live'))).toString()).toBe('live');
  }, 5000);
});

describe('ICMP errors about the peer of an established connection', () => {
  const engines = useEngines();
  const IDLE = 1500;

  test('neither side fails on them nor spins: both connections end by their idle timeout, without an error, and the server keeps serving', async () => {
    const server = await engines.server({
      engine: { idleTimeout: IDLE },
      onConnection: (connection) =>
        connection.on('stream', (stream) => {
          stream.on('error', () => {});
          stream.pipe(stream);
        }),
    });
    const relay = await UdpRelay.create({ targetPort: server.port });
    try {
      const accepted = server.nextConnection();
      const connection = engines.client({ idleTimeout: IDLE }).connect({ host: HOST, port: relay.port, servername: 'localhost' });
      connection.on('error', () => {});
      const stream = connection.openStream();
      stream.on('error', () => {});
      stream.write('first');
      await new Promise((resolve) => stream.once('data', resolve));
      const serverConnection = await accepted;
      const closes = [next<CloseInfo>(connection, 'close'), server.closed(serverConnection)];

      // Every port the two sides talk to is closed now: what each sends next is answered by ICMP
      // port unreachable, and both keep sending (retransmissions and probes) until they give up.
      await relay.close();
      stream.write('into the void');
      const serverStream = serverConnection.openStream();
      serverStream.on('error', () => {});
      serverStream.write(Buffer.alloc(64 * 1024));
      const cpu = process.cpuUsage();
      const started = process.hrtime.bigint();

      const [clientInfo, serverInfo] = await Promise.all(closes);
      const elapsedUs = Number((process.hrtime.bigint() - started) / 1000n);
      const { user, system } = process.cpuUsage(cpu);
      expect(clientInfo.error).toBeUndefined();
      expect(serverInfo.error).toBeUndefined();
      expect(elapsedUs).toBeGreaterThanOrEqual((IDLE / 2) * 1000); // waited for the idle timeout
      // An undrained error queue would wake the loop on every turn: ~100% of a core.
      expect((user + system) / elapsedUs).toBeLessThan(0.5);
    } finally {
      await relay.close();
    }

    const fresh = engines.client().connect({ host: HOST, port: server.port, servername: 'localhost' });
    const echoed = fresh.openStream();
    const reply = readAll(echoed);
    echoed.end('still serving');
    expect((await reply).toString()).toBe('still serving');
  });
});
