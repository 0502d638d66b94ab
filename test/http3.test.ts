// HTTP/3 between quicket's own client and server: requests, bodies both ways, concurrency,
// status codes of the static file server, 0-RTT requests, GOAWAY on close.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { Engine, Http3Server, request, SslConfig } from '../lib';
import { resolveStaticPath } from '../lib/cli';
import { HOST, pattern, pem } from './helpers';

async function body(readable: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of readable) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe('HTTP/3', () => {
  const closers: Array<() => Promise<void>> = [];
  afterEach(async () => {
    await Promise.all(closers.splice(0).map((close) => close()));
  });

  async function start(handler: ConstructorParameters<typeof Http3Server>[1], earlyData = false) {
    const server = new Http3Server({ ssl: new SslConfig({ alpn: ['h3'], cert: pem('server.pem'), key: pem('server-key.pem'), earlyData }) }, handler);
    closers.push(() => server.close());
    const { port } = await server.listen({ host: HOST, port: 0 });
    const client = new Engine();
    closers.push(() => client.close());
    const ssl = new SslConfig({ alpn: ['h3'], ca: pem('ca.pem') });
    const connect = (ticket?: Buffer) => client.connect({ host: HOST, port, servername: 'localhost', ssl, ticket });
    return { server, port, connect };
  }

  test('a request carries method, path, authority and headers; the response carries status, headers and body', async () => {
    const { port, connect } = await start((req, res) => {
      res.writeHead(201, { 'x-echo-method': req.method, 'x-echo-path': req.path, 'x-echo-authority': req.authority, 'x-echo-custom': req.headers['x-custom'] });
      res.end('created');
    });
    const connection = connect();
    const response = await request(connection, { method: 'PUT', path: '/things/1?x=y', headers: { 'X-Custom': 'value' } });
    expect(response.status).toBe(201);
    expect(response.headers).toMatchObject({
      'x-echo-method': 'PUT',
      'x-echo-path': '/things/1?x=y',
      'x-echo-authority': `localhost:${port}`,
      'x-echo-custom': 'value',
    });
    expect((await body(response.body)).toString()).toBe('created');
    expect(connection.alpn).toBe('h3');
  });

  test('large bodies travel both ways byte-exact', async () => {
    const { connect } = await start(async (req, res) => {
      const received = await body(req);
      res.writeHead(200);
      res.end(Buffer.concat([received, pattern(3 * 1024 * 1024, 9)]));
    });
    const upload = pattern(2 * 1024 * 1024, 4);
    const response = await request(connect(), { method: 'POST', path: '/upload', body: upload });
    const reply = await body(response.body);
    expect(reply.length).toBe(5 * 1024 * 1024);
    expect(reply.subarray(0, upload.length).equals(upload)).toBe(true);
    expect(reply.subarray(upload.length).equals(pattern(3 * 1024 * 1024, 9))).toBe(true);
  });

  test('many concurrent requests share one connection', async () => {
    const { connect } = await start((req, res) => res.end(`you asked for ${req.path}`));
    const connection = connect();
    const replies = await Promise.all(
      Array.from({ length: 200 }, async (_, i) => (await body((await request(connection, { path: `/item/${i}` })).body)).toString()),
    );
    replies.forEach((reply, i) => expect(reply).toBe(`you asked for /item/${i}`));
  });

  test('a request made with a ticket in the same tick as connect() arrives as 0-RTT', async () => {
    const early: boolean[] = [];
    const { connect } = await start((req, res) => {
      early.push(req.early);
      res.end('ok');
    }, true);
    const first = connect();
    const ticket = new Promise<Buffer>((resolve) => first.once('ticket', resolve));
    await body((await request(first, { path: '/' })).body);
    const stored = await ticket;
    await first.close();

    const second = connect(stored);
    const response = await request(second, { path: '/again' });
    expect((await body(response.body)).toString()).toBe('ok');
    expect(second.earlyData).toBe('accepted');
    expect(second.resumed).toBe(true);
    expect(early).toEqual([false, true]);
  });

  test('0-RTT requests refused by the server are re-sent and answered', async () => {
    const early: boolean[] = [];
    // Tickets from a server that allows 0-RTT, presented to one with the same key that refuses it.
    const keys = Buffer.alloc(48, 7);
    const makeServer = async (earlyData: boolean) => {
      const server = new Http3Server({ ssl: new SslConfig({ alpn: ['h3'], cert: pem('server.pem'), key: pem('server-key.pem'), earlyData, ticketKeys: keys }) }, (req, res) => {
        early.push(req.early);
        res.end(`hello ${req.path}`);
      });
      closers.push(() => server.close());
      return (await server.listen({ host: HOST, port: 0 })).port;
    };
    const accepting = await makeServer(true);
    const refusing = await makeServer(false);
    const client = new Engine();
    closers.push(() => client.close());
    const ssl = new SslConfig({ alpn: ['h3'], ca: pem('ca.pem') });
    const first = client.connect({ host: HOST, port: accepting, servername: 'localhost', ssl });
    const ticket = new Promise<Buffer>((resolve) => first.once('ticket', resolve));
    await body((await request(first, { path: '/' })).body);
    const second = client.connect({ host: HOST, port: refusing, servername: 'localhost', ssl, ticket: await ticket });
    const rejected = new Promise<void>((resolve) => second.once('earlyDataRejected', resolve));
    const replies = await Promise.all([1, 2, 3].map(async (i) => (await body((await request(second, { path: `/${i}` })).body)).toString()));
    await rejected;
    expect(replies).toEqual(['hello /1', 'hello /2', 'hello /3']);
    expect(second.earlyData).toBe('rejected');
    expect(second.resumed).toBe(true);
    expect(early).toEqual([false, false, false, false]);
  });

  test('closing the server sends GOAWAY and the client sees a clean close', async () => {
    const { server, connect } = await start((req, res) => res.end('bye'));
    const connection = connect();
    await body((await request(connection, { path: '/' })).body);
    const closed = new Promise<{ code: number; remote: boolean }>((resolve) => connection.once('close', resolve));
    await server.close();
    const info = await closed;
    expect(info.remote).toBe(true);
    expect(info.code).toBe(0x100); // H3_NO_ERROR
  });
});

describe('static file paths of `quicket serve`', () => {
  let root: string;
  beforeAll(() => {
    root = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'quicket-static-')));
    fs.writeFileSync(path.join(root, 'a.txt'), 'a');
    fs.mkdirSync(path.join(root, 'sub'));
    fs.writeFileSync(path.join(root, 'sub', 'index.html'), '<p>');
    fs.symlinkSync('/etc', path.join(root, 'escape'));
  });
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  test.each([
    ['/a.txt', 'a.txt'],
    ['/sub/', 'sub/index.html'],
    ['/sub/../a.txt', 'a.txt'],
    ['/a.txt?query=1', 'a.txt'],
  ])('%s is served from inside the directory', (requestPath, file) => {
    expect(resolveStaticPath(root, requestPath)).toEqual({ file: path.join(root, file) });
  });

  test.each([
    ['/../../etc/passwd', 404],
    ['/%2e%2e/%2e%2e/etc/passwd', 404],
    ['/escape/passwd', 403],
    ['relative', 400],
    ['/bad%zzescape', 400],
    ['/nul%00byte', 400],
    ['/missing', 404],
  ])('%s is refused with %d', (requestPath, status) => {
    expect(resolveStaticPath(root, requestPath)).toEqual({ status });
  });
});
