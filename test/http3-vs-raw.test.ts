// HTTP/3 and raw streams do not mix on one connection: request() needs a connection that
// negotiated 'h3' and leaves a raw one working; openStream() on an HTTP/3 connection is refused.
import { Engine, Http3Server, request, SslConfig } from '../lib';
import { ALPN, HOST, pem, roundTrip, serverSsl, useEngines } from './helpers';

describe('HTTP/3 vs raw streams', () => {
  const engines = useEngines();
  const closers: Array<() => Promise<void>> = [];
  afterEach(async () => {
    await Promise.all(closers.splice(0).map((close) => close()));
  });

  test('request() on a raw connection rejects with ERR_QUIC_HTTP3_UNAVAILABLE; its raw streams keep working', async () => {
    const { connection } = await engines.pair();
    await expect(request(connection, { path: '/' })).rejects.toMatchObject({ code: 'ERR_QUIC_HTTP3_UNAVAILABLE' });
    expect((await roundTrip(connection, Buffer.from('still raw'))).toString()).toBe('still raw');
    expect(connection.closed).toBe(false);
  });

  test('a request made before the handshake rejects once the handshake chose another protocol', async () => {
    // The server speaks only the raw test protocol; the client offers h3 as well.
    const server = await engines.server({ ssl: serverSsl('server', { alpn: [ALPN] }) });
    const client = engines.client();
    const connection = client.connect({
      host: HOST,
      port: server.port,
      servername: 'localhost',
      ssl: new SslConfig({ alpn: ['h3', ALPN], ca: pem('ca.pem') }),
    });
    const pending = request(connection, { path: '/' });
    await expect(pending).rejects.toMatchObject({ code: 'ERR_QUIC_HTTP3_UNAVAILABLE' });
    expect((await connection.handshake).alpn).toBe(ALPN);
    expect((await roundTrip(connection, Buffer.from('raw after all'))).toString()).toBe('raw after all');
  });

  test('openStream() on an HTTP/3 connection throws ERR_QUIC_HTTP3_CONNECTION; requests keep working', async () => {
    const h3 = new Http3Server({ ssl: new SslConfig({ alpn: ['h3'], cert: pem('server.pem'), key: pem('server-key.pem') }) }, (req, res) => {
      res.end(`hello ${req.path}`);
    });
    closers.push(() => h3.close());
    const { port } = await h3.listen({ host: HOST, port: 0 });
    const client = new Engine();
    closers.push(() => client.close());
    const connection = client.connect({ host: HOST, port, servername: 'localhost', ssl: new SslConfig({ alpn: ['h3'], ca: pem('ca.pem') }) });
    // Before the handshake (only h3 offered) and after it.
    expect(() => connection.openStream()).toThrow(expect.objectContaining({ code: 'ERR_QUIC_HTTP3_CONNECTION' }));
    await connection.handshake;
    expect(() => connection.openStream()).toThrow(expect.objectContaining({ code: 'ERR_QUIC_HTTP3_CONNECTION' }));
    const response = await request(connection, { path: '/x' });
    const chunks: Buffer[] = [];
    for await (const chunk of response.body) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('hello /x');
  });
});
