// HTTP/3 between quicket's own client and server: requests, bodies both ways, concurrency,
// status codes of the static file server, 0-RTT requests, GOAWAY on close.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';

import { CloseInfo, Engine, Http3HeaderLimits, Http3Request, Http3Response, Http3Server, request, SslConfig } from '../lib';
import { resolveStaticPath } from '../lib/cli/serve';
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

  async function start(handler: ConstructorParameters<typeof Http3Server>[1], earlyData = false, options: Http3HeaderLimits = {}) {
    const server = new Http3Server({ ssl: new SslConfig({ alpn: ['h3'], cert: pem('server.pem'), key: pem('server-key.pem'), earlyData }), ...options }, handler);
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
      res.writeHead(201, { 'x-echo-method': req.method, 'x-echo-path': req.path, 'x-echo-authority': req.authority, 'x-echo-custom': String(req.headers['x-custom']) });
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

  describe('like node:http', () => {
    const H3_EXCESSIVE_LOAD = 0x107;
    const H3_REQUEST_CANCELLED = 0x10c;
    const turn = () => new Promise((resolve) => setImmediate(resolve));
    /** Collects the quicCode of each error given to it; `first(n)` resolves once n arrived. */
    function resetCodes() {
      const codes: number[] = [];
      const waiters: Array<() => void> = [];
      return {
        record: (error: Error & { quicCode?: number }) => {
          codes.push(error.quicCode ?? -1);
          for (const wake of waiters.splice(0)) wake();
        },
        async first(count: number): Promise<number[]> {
          while (codes.length < count) await new Promise<void>((resolve) => waiters.push(resolve));
          return codes;
        },
      };
    }

    test('a body written for HEAD (or for 204 and 304) is dropped, and the connection keeps serving', async () => {
      const { connect } = await start((req, res) => {
        res.writeHead(req.path === '/204' ? 204 : req.path === '/304' ? 304 : 200, { 'content-type': 'text/plain' });
        res.end('a body these responses must not carry');
      });
      const connection = connect();
      const head = await request(connection, { method: 'HEAD', path: '/' });
      expect(head.status).toBe(200);
      expect(head.headers['content-type']).toBe('text/plain');
      expect((await body(head.body)).length).toBe(0);
      for (const path of ['/204', '/304']) {
        const empty = await request(connection, { path });
        expect(empty.status).toBe(Number(path.slice(1)));
        expect((await body(empty.body)).length).toBe(0);
      }
      const get = await request(connection, { path: '/' });
      expect((await body(get.body)).toString()).toBe('a body these responses must not carry');
      expect(connection.closed).toBe(false);
    });

    test('repeated headers stay separate: set-cookie is an array, rawHeaders keeps the wire order, both ways', async () => {
      const { connect } = await start((req, res) => {
        res.writeHead(200, {
          'set-cookie': ['a=1', 'b=2'],
          'x-list': ['1', '2'],
          'content-type': ['text/plain', 'text/html'],
        });
        res.end(JSON.stringify({ headers: req.headers, rawHeaders: req.rawHeaders }));
      });
      const response = await request(connect(), {
        method: 'POST',
        headers: { cookie: ['a=1', 'b=2'], 'x-list': ['1', '2'], 'User-Agent': ['first', 'second'], 'set-cookie': 'c=3' },
      });
      expect(response.headers['set-cookie']).toEqual(['a=1', 'b=2']);
      expect(response.headers['x-list']).toBe('1, 2');
      expect(response.headers['content-type']).toBe('text/plain');
      expect(response.rawHeaders).toEqual([
        'set-cookie', 'a=1', 'set-cookie', 'b=2', 'x-list', '1', 'x-list', '2',
        'content-type', 'text/plain', 'content-type', 'text/html',
      ]);
      const seen = JSON.parse((await body(response.body)).toString());
      expect(seen.headers).toEqual({ cookie: 'a=1; b=2', 'x-list': '1, 2', 'user-agent': 'first', 'set-cookie': ['c=3'] });
      expect(seen.rawHeaders).toEqual(['cookie', 'a=1', 'cookie', 'b=2', 'x-list', '1', 'x-list', '2', 'user-agent', 'first', 'user-agent', 'second', 'set-cookie', 'c=3']);
    });

    test("a request header section beyond the server's maxHeaderSize (16 KiB) or maxHeadersCount (128) is answered 431", async () => {
      const paths: string[] = [];
      const { connect } = await start((req, res) => {
        paths.push(req.path);
        res.end('ok');
      });
      const connection = connect();
      const big = await request(connection, { path: '/big', headers: { 'x-big': 'a'.repeat(16 * 1024) } });
      expect(big.status).toBe(431);
      const manyHeaders = Object.fromEntries(Array.from({ length: 130 }, (_, i) => [`x-h${i}`, 'v']));
      const many = await request(connection, { path: '/many', headers: manyHeaders });
      expect(many.status).toBe(431);
      const fine = await request(connection, { path: '/fine', headers: { 'x-h': 'a'.repeat(8 * 1024) } });
      expect(fine.status).toBe(200);
      expect((await body(fine.body)).toString()).toBe('ok');
      expect(paths).toEqual(['/fine']);
    });

    test('the server takes maxHeaderSize and maxHeadersCount options', async () => {
      const { connect } = await start((req, res) => res.end('ok'), false, { maxHeaderSize: 1024, maxHeadersCount: 8 });
      const connection = connect();
      expect((await request(connection, { headers: { 'x-big': 'a'.repeat(1024) } })).status).toBe(431);
      // Eight fields: the four pseudo-headers of a request, then a to e.
      expect((await request(connection, { headers: { a: '1', b: '2', c: '3', d: '4', e: '5' } })).status).toBe(431);
      expect((await request(connection, { headers: { a: '1', b: '2', c: '3', d: '4' } })).status).toBe(200);
      expect(() => new Http3Server({ ssl: new SslConfig({ alpn: ['h3'], cert: pem('server.pem'), key: pem('server-key.pem') }), maxHeaderSize: 0 })).toThrow(
        expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }),
      );
    });

    test('a response header section beyond the request\'s limits rejects it and resets the stream with H3_EXCESSIVE_LOAD', async () => {
      const server = resetCodes();
      const { connect } = await start((req, res) => {
        res.on('error', server.record);
        res.writeHead(200, req.path === '/big' ? { 'x-big': 'b'.repeat(16 * 1024) } : { a: '1', b: '2', c: '3', d: '4' });
        res.write('more is coming'); // never ended: only the client's reset ends it
      });
      const connection = connect();
      const tooLarge = { code: 'ERR_QUIC_HTTP3_HEADERS_TOO_LARGE', quicCode: H3_EXCESSIVE_LOAD };
      await expect(request(connection, { path: '/big' })).rejects.toMatchObject(tooLarge);
      await expect(request(connection, { path: '/four', maxHeadersCount: 4 })).rejects.toMatchObject(tooLarge);
      await expect(request(connection, { path: '/four', maxHeaderSize: 100 })).rejects.toMatchObject(tooLarge);
      const fine = await request(connection, { path: '/four' });
      expect(fine.headers).toMatchObject({ a: '1', d: '4' });
      fine.body.destroy();
      expect(await server.first(4)).toEqual([H3_EXCESSIVE_LOAD, H3_EXCESSIVE_LOAD, H3_EXCESSIVE_LOAD, H3_REQUEST_CANCELLED]);
    });

    test('a request whose body stream fails rejects with its error and resets the stream with H3_REQUEST_CANCELLED', async () => {
      let received!: () => void;
      const bodyArrived = new Promise<void>((resolve) => (received = resolve));
      let serverSaw!: (error: Error & { quicCode?: number }) => void;
      const serverError = new Promise<Error & { quicCode?: number }>((resolve) => (serverSaw = resolve));
      const { connect } = await start((req) => {
        req.on('error', serverSaw);
        req.once('data', () => received());
      });
      const upload = new Readable({ read() {} });
      upload.push('the first part');
      const pending = request(connect(), { method: 'POST', body: upload });
      await bodyArrived;
      const failure = new Error('the disk went away');
      upload.destroy(failure);
      await expect(pending).rejects.toBe(failure);
      expect((await serverError).quicCode).toBe(H3_REQUEST_CANCELLED);
    });

    test('request({ signal }) rejects with an AbortError and resets the stream with H3_REQUEST_CANCELLED', async () => {
      let arrived!: () => void;
      const requestArrived = new Promise<void>((resolve) => (arrived = resolve));
      const server = resetCodes();
      const { connect } = await start((req, res) => {
        res.on('error', server.record);
        arrived(); // and never answer
      });
      const connection = connect();
      const controller = new AbortController();
      const pending = request(connection, { path: '/slow', signal: controller.signal });
      await requestArrived;
      controller.abort();
      await expect(pending).rejects.toMatchObject({ name: 'AbortError', code: 'ABORT_ERR' });
      expect(await server.first(1)).toEqual([H3_REQUEST_CANCELLED]);

      await expect(request(connection, { signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError', code: 'ABORT_ERR' });
      expect(() => request(connection, { signal: {} as AbortSignal })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    });

    test('aborting after the response arrived fails its body with the AbortError', async () => {
      const { connect } = await start((req, res) => res.write(pattern(64 * 1024))); // never ended
      const controller = new AbortController();
      const response = await request(connect(), { signal: controller.signal });
      const reading = body(response.body);
      controller.abort();
      await expect(reading).rejects.toMatchObject({ name: 'AbortError', code: 'ABORT_ERR' });
    });

    test('a request made in the same tick as connect() to a server failing the handshake makes no unhandled rejection', async () => {
      const server = new Http3Server({ ssl: new SslConfig({ alpn: ['h3'], cert: pem('other-server.pem'), key: pem('other-server-key.pem') }) });
      closers.push(() => server.close());
      const { port } = await server.listen({ host: HOST, port: 0 });
      const client = new Engine();
      closers.push(() => client.close());
      const connection = client.connect({ host: HOST, port, servername: 'localhost', ssl: new SslConfig({ alpn: ['h3'], ca: pem('ca.pem') }) });
      const pending = request(connection, { path: '/' });
      const closed = new Promise<CloseInfo>((resolve) => connection.once('close', resolve));
      await expect(connection.handshake).rejects.toMatchObject({ code: expect.stringMatching(/^ERR_QUIC_/) });
      await closed;
      await turn();
      await turn(); // jest fails the test if the request's rejection went unhandled meanwhile
      await expect(pending).rejects.toMatchObject({ code: expect.stringMatching(/^ERR_QUIC_/) });
    });

    test.each([
      ['with an error', new Error('handler failed'), 0x102],
      ['without one', undefined, H3_REQUEST_CANCELLED],
    ])('a handler destroying its response %s resets the stream (code %#x); the connection keeps serving', async (_how, error, code) => {
      const { connect } = await start((req, res) => {
        if (req.path === '/broken') res.destroy(error);
        else res.end('fine');
      });
      const connection = connect();
      await expect(request(connection, { path: '/broken' })).rejects.toMatchObject({ code: 'ERR_QUIC_STREAM_RESET', quicCode: code });
      const again = await request(connection, { path: '/again' });
      expect((await body(again.body)).toString()).toBe('fine');
    });

    test('a response body nobody reads emits no unhandled error when the connection ends', async () => {
      const { connect } = await start((req, res) => res.end(pattern(1024 * 1024)));
      const connection = connect();
      const response = await request(connection, { path: '/' });
      expect(response.status).toBe(200);
      const closed = new Promise<CloseInfo>((resolve) => connection.once('close', resolve));
      connection.destroy();
      await closed;
      await turn();
      await turn(); // an 'error' nobody listens for would be an uncaught exception here
    });

    // The README's handler, run after its client went away (reset or vanished).
    const readmeHandler = (req: Http3Request, res: Http3Response): void => {
      if (req.early && req.method !== 'GET') {
        res.writeHead(425).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`hello ${req.path}\n`);
    };

    test.each(['reset by an aborted request', 'gone with its connection'])(
      "the README's handler answering a request whose client is %s does not crash the server",
      async (how) => {
        let arrived!: () => void;
        let answered!: () => void;
        const requestArrived = new Promise<void>((resolve) => (arrived = resolve));
        const lateAnswer = new Promise<void>((resolve) => (answered = resolve));
        const { connect } = await start((req, res) => {
          if (req.path === '/again') {
            readmeHandler(req, res);
            return;
          }
          res.once('close', () => {
            readmeHandler(req, res);
            answered();
          });
          arrived();
        });
        const connection = connect();
        const controller = new AbortController();
        const pending = request(connection, { path: '/late', signal: controller.signal });
        pending.catch(() => {});
        await requestArrived;
        if (how.startsWith('reset')) controller.abort();
        else connection.destroy();
        await lateAnswer;
        await turn();
        const again = await request(connect(), { path: '/again' });
        expect(again.status).toBe(200);
        await body(again.body);
      },
    );
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
