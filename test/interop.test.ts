// Interop with an independent QUIC/HTTP/3 stack: ngtcp2's GnuTLS example tools (gtlsclient,
// gtlsserver from Debian's ngtcp2-client/ngtcp2-server), in both directions, with resumption and
// 0-RTT, plus the status codes of `quicket serve` for hostile requests.
import { ChildProcess, execFile, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { promisify } from 'node:util';

import { CloseInfo, Engine, request, SslConfig } from '../lib';
import { HOST } from './helpers';

const run = promisify(execFile);
const ROOT = path.join(__dirname, '..');
const CERTS = path.join(ROOT, 'test', 'fixtures', 'certs');
const CLI = path.join(ROOT, 'bin', 'quicket');

function which(tool: string): boolean {
  return (process.env.PATH ?? '').split(':').some((dir) => fs.existsSync(path.join(dir, tool)));
}
const haveTools = which('gtlsclient') && which('gtlsserver');
if (!haveTools && process.env.CI) throw new Error('gtlsclient/gtlsserver are missing: scripts/setup.sh installs them');
const describeInterop = haveTools ? describe : describe.skip;

async function body(readable: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of readable) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describeInterop('interop with ngtcp2 gtlsclient / gtlsserver', () => {
  let work: string;
  let htdocs: string;
  const children: ChildProcess[] = [];
  const files: Record<string, Buffer> = {};

  beforeAll(() => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'quicket-interop-'));
    htdocs = path.join(work, 'htdocs');
    fs.mkdirSync(htdocs);
    files['1k.bin'] = crypto.randomBytes(1024);
    files['10m.bin'] = crypto.randomBytes(10 * 1024 * 1024);
    for (const [name, data] of Object.entries(files)) fs.writeFileSync(path.join(htdocs, name), data);
  });

  afterEach(() => {
    for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGTERM');
  });

  afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

  /** Starts `quicket serve`; resolves with its port and a reader of its JSON request log. */
  async function quicketServe(): Promise<{ port: number; log: Array<Record<string, unknown>> }> {
    const child = spawn(process.execPath, [CLI, 'serve', htdocs, '--cert', path.join(CERTS, 'server.pem'),
      '--key', path.join(CERTS, 'server-key.pem'), '--host', HOST, '--port', '0', '--early-data'], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(child);
    const lines = readline.createInterface({ input: child.stdout! });
    const log: Array<Record<string, unknown>> = [];
    const port = await new Promise<number>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`quicket serve exited with ${code}`)));
      lines.on('line', (line) => {
        const entry = JSON.parse(line);
        if (entry.port !== undefined && entry.method === undefined) resolve(entry.port);
        else log.push(entry);
      });
    });
    return { port, log };
  }

  /** Starts gtlsserver on a free port (retrying if the port was taken meanwhile). */
  async function gtlsServer(): Promise<number> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const port = 20000 + crypto.randomInt(30000);
      const child = spawn('gtlsserver', ['-q', '-d', htdocs, HOST, String(port), path.join(CERTS, 'server-key.pem'), path.join(CERTS, 'server.pem')], { stdio: 'ignore' });
      children.push(child);
      const exited = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), 300);
        child.once('exit', () => {
          clearTimeout(timer);
          resolve(true);
        });
      });
      if (!exited) return port;
    }
    throw new Error('gtlsserver did not start');
  }

  async function gtlsGet(port: number, file: string, download: string): Promise<void> {
    fs.mkdirSync(download, { recursive: true });
    await run('gtlsclient', ['-q', '--exit-on-all-streams-close', '--wait-for-ticket',
      `--session-file=${path.join(work, 'gtls-session')}`, `--tp-file=${path.join(work, 'gtls-tp')}`,
      `--download=${download}`, `--timeout=10s`, HOST, String(port), `https://localhost:${port}/${file}`], { cwd: work, timeout: 30000 });
  }

  test('gtlsclient downloads from quicket byte-exact, and its second request resumes with 0-RTT', async () => {
    const { port, log } = await quicketServe();
    const first = path.join(work, 'dl1');
    const second = path.join(work, 'dl2');
    await gtlsGet(port, '1k.bin', first);
    await gtlsGet(port, '10m.bin', second);
    expect(fs.readFileSync(path.join(first, '1k.bin')).equals(files['1k.bin'])).toBe(true);
    expect(fs.readFileSync(path.join(second, '10m.bin')).equals(files['10m.bin'])).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 100)); // the log line follows the response
    expect(log).toEqual([
      expect.objectContaining({ method: 'GET', path: '/1k.bin', status: 200, bytes: 1024, early: false, resumed: false }),
      expect.objectContaining({ method: 'GET', path: '/10m.bin', status: 200, bytes: 10 * 1024 * 1024, early: true, resumed: true }),
    ]);
  });

  test('quicket downloads from gtlsserver byte-exact, and its second connection resumes with 0-RTT', async () => {
    const port = await gtlsServer();
    const engine = new Engine();
    try {
      const ssl = new SslConfig({ alpn: ['h3'], ca: fs.readFileSync(path.join(CERTS, 'ca.pem')) });
      const first = engine.connect({ host: HOST, port, servername: 'localhost', ssl });
      const ticket = new Promise<Buffer>((resolve) => first.once('ticket', resolve));
      const small = await request(first, { path: '/1k.bin' });
      expect(small.status).toBe(200);
      expect((await body(small.body)).equals(files['1k.bin'])).toBe(true);
      expect(first.earlyData).toBe('none');
      const stored = await ticket;
      await first.close();

      const second = engine.connect({ host: HOST, port, servername: 'localhost', ssl, ticket: stored });
      const large = await request(second, { path: '/10m.bin' });
      expect(large.status).toBe(200);
      expect((await body(large.body)).equals(files['10m.bin'])).toBe(true);
      expect(second.resumed).toBe(true);
      expect(second.earlyData).toBe('accepted');
      await second.close();
    } finally {
      await engine.close();
    }
  });

  test('the CLI keeps tickets: a second `quicket get` resumes with 0-RTT against gtlsserver', async () => {
    const port = await gtlsServer();
    const ticketFile = path.join(work, 'cli-ticket');
    const output = path.join(work, 'cli-out');
    const get = () => run(process.execPath, [CLI, 'get', `https://localhost:${port}/10m.bin`, '--ca', path.join(CERTS, 'ca.pem'),
      '--ticket-file', ticketFile, '-o', output, '-w', '%{json}'], { timeout: 30000 });
    const facts = async () => JSON.parse((await get()).stdout);
    expect(await facts()).toMatchObject({ http_code: 200, size_download: 10 * 1024 * 1024, resumed: false, early_data: 'none', alpn: 'h3' });
    expect(await facts()).toMatchObject({ http_code: 200, resumed: true, early_data: 'accepted' });
    expect(fs.readFileSync(output).equals(files['10m.bin'])).toBe(true);
  });

  test('quicket serve answers hostile requests with proper status codes and serves nothing outside', async () => {
    fs.writeFileSync(path.join(work, 'secret.txt'), 'secret');
    const { port } = await quicketServe();
    const engine = new Engine();
    try {
      const ssl = new SslConfig({ alpn: ['h3'], ca: fs.readFileSync(path.join(CERTS, 'ca.pem')) });
      const connection = engine.connect({ host: HOST, port, servername: 'localhost', ssl });
      const ask = async (method: string, requestPath: string) => {
        const response = await request(connection, { method, path: requestPath });
        return { status: response.status, body: (await body(response.body)).toString() };
      };
      expect((await ask('GET', '/1k.bin')).status).toBe(200);
      expect(await ask('GET', '/missing.bin')).toMatchObject({ status: 404 });
      expect(await ask('BREW', '/1k.bin')).toMatchObject({ status: 405 });
      expect(await ask('GET', '/bad%zz')).toMatchObject({ status: 400 });
      for (const sneaky of ['/../secret.txt', '/%2e%2e/secret.txt', '/..%2fsecret.txt']) {
        const reply = await ask('GET', sneaky);
        expect(reply.status).toBeGreaterThanOrEqual(400);
        expect(reply.body).not.toContain('secret');
      }
      // A path without the leading slash is a malformed HTTP/3 request (RFC 9114 §4.1.2). nghttp3
      // (since 1.12) treats it as a connection error: the server closes with H3_MESSAGE_ERROR.
      const closed = new Promise<CloseInfo>((resolve) => connection.once('close', resolve));
      connection.on('error', () => {});
      await expect(ask('GET', 'no-leading-slash')).rejects.toMatchObject({ code: 'ERR_QUIC_CONNECTION_CLOSED' });
      expect(await closed).toMatchObject({ code: 0x10e, remote: true });
    } finally {
      await engine.close();
    }
  });
});
