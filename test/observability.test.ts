// What a connection tells about itself: stats(), its addresses, the peer's certificate, and
// NODE_DEBUG=quicket lifecycle lines; socket errors shaped like node:dgram's.
import { X509Certificate } from 'node:crypto';
import path from 'node:path';

import { Connection, Engine } from '../lib';
import { quicketErrorCodes } from '../lib/errors';
import { ALPN, clientSsl, HOST, pem, readAll, serverSsl, useEngines } from './helpers';
import { DIST, runToExit } from './helpers/processes';

const engines = useEngines();

async function echoPair(size: number): Promise<{ client: Connection; server: Connection; port: number; clientEngine: Engine }> {
  const serverEngine = engines.engine({ ssl: serverSsl() });
  let accepted!: (connection: Connection) => void;
  const serverSide = new Promise<Connection>((resolve) => (accepted = resolve));
  serverEngine.on('connection', (connection: Connection) => {
    accepted(connection);
    connection.on('stream', (stream) => stream.pipe(stream));
  });
  const { port } = await serverEngine.listen({ host: HOST, port: 0 });
  const clientEngine = engines.engine();
  const client = clientEngine.connect({ host: HOST, port, servername: 'localhost', ssl: clientSsl() });
  const stream = client.openStream();
  let received = 0;
  stream.on('data', (chunk: Buffer) => (received += chunk.length));
  stream.end(Buffer.alloc(size, 7));
  await new Promise((resolve) => stream.once('end', resolve));
  expect(received).toBe(size);
  return { client, server: await serverSide, port, clientEngine };
}

test('stats() counts what the connection carried, in both directions, and still answers after the close', async () => {
  const { client, server } = await echoPair(256 * 1024);
  const stats = client.stats();
  expect(Object.keys(stats).sort()).toEqual(['bytesInFlight', 'bytesReceived', 'bytesSent', 'congestionWindow', 'packetsLost', 'packetsReceived', 'packetsSent', 'rtt', 'streamsOpened']);
  expect(Object.keys(stats.rtt).sort()).toEqual(['latest', 'min', 'smoothed', 'variance']);
  // Both directions carried the 256 KiB (plus headers): the numbers are real counts.
  expect(stats.bytesSent).toBeGreaterThan(256 * 1024);
  expect(stats.bytesReceived).toBeGreaterThan(256 * 1024);
  // At least one packet per 16 KiB (loopback's packet size once path MTU discovery confirmed it).
  expect(stats.packetsSent).toBeGreaterThanOrEqual((256 * 1024) / 16384);
  expect(stats.packetsReceived).toBeGreaterThanOrEqual((256 * 1024) / 16384);
  expect(stats.streamsOpened).toBe(1);
  expect(server.stats().streamsOpened).toBe(1);
  expect(stats.rtt.smoothed).toBeGreaterThan(0);
  expect(stats.rtt.min).toBeLessThanOrEqual(stats.rtt.smoothed * 4);
  expect(stats.congestionWindow).toBeGreaterThan(0);
  // What one side sent is about what the other received (loopback loses nothing).
  expect(Math.abs(server.stats().bytesReceived - stats.bytesSent)).toBeLessThan(stats.bytesSent * 0.05);
  await client.close();
  const after = client.stats();
  expect(after.bytesSent).toBeGreaterThanOrEqual(stats.bytesSent);
  expect(after.streamsOpened).toBe(1);
});

test('remote and local addresses on both sides; the peer certificate as an X509Certificate', async () => {
  const { client, server, port, clientEngine } = await echoPair(10);
  expect([client.remoteAddress, client.remotePort, client.remoteFamily]).toEqual([HOST, port, 'IPv4']);
  expect(client.localPort).toBe(clientEngine.address().port);
  expect([server.remoteAddress, server.remotePort]).toEqual([HOST, client.localPort]);
  expect(server.localPort).toBe(port);
  const certificate = client.getPeerCertificate();
  expect(certificate).toBeInstanceOf(X509Certificate);
  expect(certificate!.raw.equals(new X509Certificate(pem('server.pem')).raw)).toBe(true);
  expect(certificate!.checkHost('localhost')).toBe('localhost');
  expect(server.getPeerCertificate()).toBeUndefined(); // the client sent none
  await client.close();
  expect(client.getPeerCertificate()!.raw.equals(certificate!.raw)).toBe(true);
  expect(client.remotePort).toBe(port);
});

test('an idle connection still answers about its handshake and still carries streams after its TLS state is released', async () => {
  const { client, server } = await echoPair(10);
  // Well past the client's release (3 PTOs after the handshake is confirmed; the server's is at once).
  await new Promise((resolve) => setTimeout(resolve, 1000));
  expect(client.getPeerCertificate()!.raw.equals(new X509Certificate(pem('server.pem')).raw)).toBe(true);
  expect(server.getPeerCertificate()).toBeUndefined();
  expect([client.alpn, server.alpn, client.resumed, server.resumed]).toEqual([ALPN, ALPN, false, false]);
  const stream = client.openStream();
  const echoed = readAll(stream);
  stream.end(Buffer.alloc(100 * 1024, 3));
  expect((await echoed).equals(Buffer.alloc(100 * 1024, 3))).toBe(true);
  await client.close();
});

test('a port in use fails listen() like node:dgram: EADDRINUSE with errno, syscall, address and port', async () => {
  const first = engines.engine({ ssl: serverSsl() });
  const { port } = await first.listen({ host: HOST, port: 0 });
  const second = engines.engine({ ssl: serverSsl() });
  await expect(second.listen({ host: HOST, port })).rejects.toMatchObject({
    code: 'EADDRINUSE', errno: -98, syscall: 'bind', address: HOST, port, message: `bind EADDRINUSE ${HOST}:${port}`,
  });
});

test('every ERR_ code the native sources and lib/ throw is in the exported union', () => {
  const fs = jest.requireActual<typeof import('node:fs')>('node:fs');
  const root = path.join(__dirname, '..');
  const files = ['native', 'lib'].flatMap((dir) => fs.readdirSync(path.join(root, dir), { recursive: true, encoding: 'utf8' }).map((file) => path.join(root, dir, file)));
  const used = new Set<string>();
  for (const file of files.filter((name) => /\.(cc|h|ts)$/.test(name))) {
    for (const match of fs.readFileSync(file, 'utf8').matchAll(/["'](ERR_QUIC_[A-Z0-9_]+)["']/g)) used.add(match[1]);
  }
  expect(used.size).toBeGreaterThan(20);
  expect([...used].filter((code) => !(quicketErrorCodes as readonly string[]).includes(code))).toEqual([]);
});

test('NODE_DEBUG=quicket logs the connection lifecycle on stderr', async () => {
  const script = `
    const q = require(${JSON.stringify(DIST)});
    const fs = require('fs');
    const certs = ${JSON.stringify(path.join(__dirname, 'fixtures', 'certs'))};
    const read = (name) => fs.readFileSync(certs + '/' + name);
    (async () => {
      const server = new q.Engine({ ssl: new q.SslConfig({ alpn: ['echo'], cert: read('server.pem'), key: read('server-key.pem') }) });
      const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
      const client = new q.Engine();
      const connection = client.connect({ host: '127.0.0.1', port, servername: 'localhost', ssl: new q.SslConfig({ alpn: ['echo'], ca: read('ca.pem') }) });
      await connection.handshake;
      await connection.close();
      await client.close();
      await server.close();
    })();`;
  const { code, stderr } = await runToExit(process.execPath, ['-e', script], { ...process.env, NODE_DEBUG: 'quicket' }, 30000);
  expect(code).toBe(0);
  expect(stderr).toMatch(/QUICKET \d+: engine: listening on 127\.0\.0\.1:\d+/);
  expect(stderr).toMatch(/QUICKET \d+: client \d+: connecting to 127\.0\.0\.1:\d+/);
  expect(stderr).toMatch(/QUICKET \d+: client \d+: handshake done: alpn echo, servername localhost, resumed false, 0-RTT none/);
  expect(stderr).toMatch(/QUICKET \d+: server \d+: accepted from 127\.0\.0\.1:\d+/);
  expect(stderr).toMatch(/QUICKET \d+: client \d+: closed by us: application code 0/);
  const quiet = await runToExit(process.execPath, ['-e', script], { ...process.env, NODE_DEBUG: '' }, 30000);
  expect(quiet.stderr).not.toMatch(/QUICKET/);
});
