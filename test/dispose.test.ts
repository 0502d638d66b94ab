// `await using` (Symbol.asyncDispose) on Engine, Connection and Http3Server: leaving the scope
// closes them, the connection gracefully (its echo completes first), also when the scope throws.
import { Connection, Engine, Http3Server, request, SslConfig } from '../lib';
import { clientSsl, HOST, pem, serverSsl } from './helpers';

test('await using closes a connection gracefully, then its engines, at the end of the scope', async () => {
  let server!: Engine;
  let client!: Engine;
  let connection!: Connection;
  let echoed = '';
  {
    await using serverEngine = new Engine({ ssl: serverSsl() });
    server = serverEngine;
    server.on('connection', (accepted: Connection) => accepted.on('stream', (stream) => stream.pipe(stream)));
    const { port } = await server.listen({ host: HOST, port: 0 });
    await using clientEngine = new Engine();
    client = clientEngine;
    await using scoped = client.connect({ host: HOST, port, servername: 'localhost', ssl: clientSsl() });
    connection = scoped;
    const stream = connection.openStream();
    stream.on('data', (chunk: Buffer) => (echoed += chunk));
    stream.end('disposed in order');
    await new Promise((resolve) => stream.once('end', resolve));
  }
  expect(echoed).toBe('disposed in order');
  expect([connection.closed, client.closed, server.closed]).toEqual([true, true, true]);
});

test('a scope that throws still disposes its engine and connection', async () => {
  let engine!: Engine;
  let connection!: Connection;
  const failing = async () => {
    await using scopedEngine = new Engine();
    engine = scopedEngine;
    await using scoped = engine.connect({ host: HOST, port: 9, servername: 'localhost', ssl: clientSsl() });
    connection = scoped;
    throw new Error('the scope failed');
  };
  await expect(failing()).rejects.toThrow('the scope failed');
  expect([connection.closed, engine.closed]).toEqual([true, true]);
});

test('await using closes an Http3Server after its requests are answered', async () => {
  let server!: Http3Server;
  let status = 0;
  {
    await using scoped = new Http3Server({ ssl: new SslConfig({ alpn: ['h3'], cert: pem('server.pem'), key: pem('server-key.pem') }) }, (_req, res) => {
      res.writeHead(204);
      res.end();
    });
    server = scoped;
    const { port } = await server.listen({ host: HOST, port: 0 });
    await using client = new Engine();
    await using connection = client.connect({ host: HOST, port, servername: 'localhost', ssl: new SslConfig({ alpn: ['h3'], ca: pem('ca.pem') }) });
    status = (await request(connection, { path: '/' })).status;
  }
  expect(status).toBe(204);
  expect(server.engine.closed).toBe(true);
});
