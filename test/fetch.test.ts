// fetch() over HTTP/3 against a quicket Http3Server: WHATWG Responses, pooled connections per
// origin, 0-RTT for GET and HEAD on a resumed connection (never for POST unless earlyData: true),
// 425 Too Early retried after the handshake, bodies of every kind, redirects, aborts, failures.
import { Readable } from 'node:stream';

import { fetch, Http3Agent, Http3Request, Http3Response, Http3Server, SslConfig } from '../lib';
import { HOST, pem } from './helpers';
import { DIST, runToExit } from './helpers/processes';

type Seen = { method: string; path: string; early: boolean; resumed: boolean; body: string; headers: Record<string, unknown> };

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
});

async function server(handler?: (req: Http3Request, res: Http3Response, body: string) => void): Promise<{ origin: string; seen: Seen[]; server: Http3Server }> {
  const seen: Seen[] = [];
  const h3 = new Http3Server({ ssl: new SslConfig({ alpn: ['h3'], cert: pem('server.pem'), key: pem('server-key.pem'), earlyData: true }) }, async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString();
    seen.push({ method: req.method, path: req.path, early: req.early, resumed: req.connection.resumed, body, headers: { ...req.headers } });
    if (handler) return handler(req, res, body);
    res.writeHead(200, { 'content-type': 'text/plain', 'set-cookie': ['a=1', 'b=2'], 'x-path': req.path });
    res.end(`${req.method} ${req.path} ${body}`);
  });
  closers.push(() => h3.close(1000));
  const { port } = await h3.listen({ host: HOST, port: 0 });
  return { origin: `https://localhost:${port}`, seen, server: h3 };
}

function agent(options: ConstructorParameters<typeof Http3Agent>[0] = {}): Http3Agent {
  const made = new Http3Agent({ ssl: new SslConfig({ alpn: ['h3'], ca: pem('ca.pem') }), ...options });
  closers.push(() => made.close());
  return made;
}

test('GET: a WHATWG Response with status, headers (repeated ones kept), url and a streamed body', async () => {
  const { origin } = await server();
  const response = await fetch(`${origin}/hello?x=1`, { agent: agent() });
  expect(response).toBeInstanceOf(Response);
  expect([response.status, response.statusText, response.ok, response.url, response.redirected]).toEqual([200, 'OK', true, `${origin}/hello?x=1`, false]);
  expect(response.headers.get('content-type')).toBe('text/plain');
  expect(response.headers.getSetCookie()).toEqual(['a=1', 'b=2']);
  expect(await response.text()).toBe('GET /hello?x=1 ');
});

test('requests to one origin share one pooled connection; a new connection resumes and its GET rides 0-RTT', async () => {
  const { origin, seen } = await server();
  const pool = agent();
  const made: string[] = [];
  pool.on('connection', (connection, at) => made.push(`${at} ${connection.servername}`));
  await (await fetch(`${origin}/1`, { agent: pool })).text();
  await (await fetch(`${origin}/2`, { agent: pool })).text();
  expect(pool.connections).toBe(1);
  expect(made).toEqual([`localhost:${new URL(origin).port} localhost`]);
  await pool.close();
  // A second agent with the first one's tickets: its first GET goes out as 0-RTT.
  const again = agent({ ticketStore: pool.ticketStore });
  expect(await (await fetch(`${origin}/3`, { agent: again })).text()).toBe('GET /3 ');
  expect(seen.map((s) => [s.path, s.resumed, s.early])).toEqual([['/1', false, false], ['/2', false, false], ['/3', true, true]]);
});

test('POST never rides 0-RTT unless earlyData: true; bodies as string, Buffer, Uint8Array, URLSearchParams, Readable and ReadableStream', async () => {
  const { origin, seen } = await server();
  const first = agent();
  await (await fetch(`${origin}/warm`, { agent: first })).text();
  await first.close();
  const store = first.ticketStore;
  const bodies: Array<[string, ConstructorParameters<typeof Response>[0] | Readable, string]> = [
    ['string', 'text body', 'text body'],
    ['buffer', Buffer.from('buffer body'), 'buffer body'],
    ['uint8array', new TextEncoder().encode('bytes body'), 'bytes body'],
    ['form', new URLSearchParams({ a: '1', b: 'two' }), 'a=1&b=two'],
    ['readable', Readable.from([Buffer.from('read'), Buffer.from('able')]), 'readable'],
    ['web', new Blob(['web ', 'stream']).stream(), 'web stream'],
  ];
  for (const [name, body, expected] of bodies) {
    const fresh = agent({ ticketStore: store });
    const response = await fetch(`${origin}/${name}`, { agent: fresh, method: 'post', body: body as never });
    expect(await response.text()).toBe(`POST /${name} ${expected}`);
    await fresh.close();
  }
  const opted = agent({ ticketStore: store });
  await (await fetch(`${origin}/opted`, { agent: opted, method: 'PUT', body: 'early', earlyData: true })).text();
  const posts = seen.filter((s) => s.path !== '/warm');
  expect(posts.map((s) => [s.path, s.resumed, s.early])).toEqual([
    ...bodies.map(([name]) => [`/${name}`, true, false]),
    ['/opted', true, true],
  ]);
  expect(seen.find((s) => s.path === '/string')!.headers['content-type']).toBe('text/plain;charset=UTF-8');
  expect(seen.find((s) => s.path === '/form')!.headers['content-type']).toBe('application/x-www-form-urlencoded;charset=UTF-8');
});

test('425 Too Early for a 0-RTT request is retried once the handshake completes', async () => {
  const { origin, seen } = await server((req, res) => {
    if (req.early) {
      res.writeHead(425);
      res.end();
      return;
    }
    res.writeHead(200);
    res.end('after the handshake');
  });
  const first = agent();
  await (await fetch(`${origin}/warm`, { agent: first })).text();
  await first.close();
  const again = agent({ ticketStore: first.ticketStore });
  const response = await fetch(`${origin}/guarded`, { agent: again });
  expect([response.status, await response.text()]).toEqual([200, 'after the handshake']);
  expect(seen.filter((s) => s.path === '/guarded').map((s) => s.early)).toEqual([true, false]);
});

test('HEAD and 204 have no body; redirects are followed (303 becomes GET), or returned with redirect: manual', async () => {
  const { origin, seen } = await server((req, res) => {
    if (req.path === '/moved') {
      res.writeHead(303, { location: '/target' });
      res.end();
    } else if (req.path === '/empty') {
      res.writeHead(204);
      res.end();
    } else {
      res.writeHead(200, { 'content-length': '6' });
      res.end('target');
    }
  });
  const pool = agent();
  const head = await fetch(`${origin}/target`, { agent: pool, method: 'HEAD' });
  expect([head.status, head.headers.get('content-length'), head.body]).toEqual([200, '6', null]);
  const empty = await fetch(`${origin}/empty`, { agent: pool });
  expect([empty.status, empty.body]).toEqual([204, null]);
  const followed = await fetch(`${origin}/moved`, { agent: pool, method: 'POST', body: 'form' });
  expect([followed.status, followed.redirected, followed.url, await followed.text()]).toEqual([200, true, `${origin}/target`, 'target']);
  expect(seen.slice(-2).map((s) => [s.method, s.path, s.body])).toEqual([['POST', '/moved', 'form'], ['GET', '/target', '']]);
  const manual = await fetch(`${origin}/moved`, { agent: pool, redirect: 'manual' });
  expect([manual.status, manual.headers.get('location')]).toEqual([303, '/target']);
});

test('failures: TypeError("fetch failed") with the cause; an abort rejects with AbortError; bad input throws', async () => {
  const pool = agent();
  const refused = fetch('https://127.0.0.1:9/', { agent: pool });
  await expect(refused).rejects.toMatchObject({ name: 'TypeError', message: 'fetch failed', cause: expect.objectContaining({ code: 'ECONNREFUSED' }) });
  const { origin } = await server((_req, res) => setTimeout(() => res.end('late'), 2000).unref());
  const controller = new AbortController();
  const aborted = fetch(`${origin}/slow`, { agent: pool, signal: controller.signal });
  setTimeout(() => controller.abort(), 50);
  await expect(aborted).rejects.toMatchObject({ name: 'AbortError' });
  await expect(fetch('http://localhost/', { agent: pool })).rejects.toMatchObject({ name: 'TypeError', code: 'ERR_INVALID_URL_SCHEME' });
  await expect(fetch('not a url', { agent: pool })).rejects.toMatchObject({ code: 'ERR_INVALID_URL' });
  await expect(fetch(`${origin}/`, { agent: pool, method: 'GET', body: 'x' })).rejects.toThrow(TypeError);
  expect(() => new Http3Agent({ idleTimeout: -1 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
});

test('a script that fetches with the global agent exits by itself once done (the pool does not hold the process)', async () => {
  const { origin } = await server();
  const script = `
    const q = require(${JSON.stringify(DIST)});
    const fs = require('fs');
    q.setGlobalHttp3Agent(new q.Http3Agent({ ssl: new q.SslConfig({ alpn: ['h3'], ca: fs.readFileSync(${JSON.stringify(require('node:path').join(__dirname, 'fixtures', 'certs', 'ca.pem'))}) }) }));
    q.fetch('${origin}/from-a-script').then((response) => response.text()).then((text) => console.log(text));`;
  const { code, stdout, stderr } = await runToExit(process.execPath, ['-e', script], process.env, 20000);
  expect({ code, stdout: stdout.trim(), stderr }).toEqual({ code: 0, stdout: 'GET /from-a-script', stderr: '' });
});
