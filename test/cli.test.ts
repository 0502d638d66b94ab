// The `quicket` command run as a child process (bin/quicket on the dist/ that test/global-setup.js
// builds): --version, what it prints when things go wrong (one line, never a stack trace), a
// closed pipe, and a --ticket-file that holds something else.
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { Engine, Http3Server, request, SslConfig, Ticket, versions } from '../lib';
import { HOST, pattern, pem } from './helpers';
import { ExitResult, runToExit } from './helpers/processes';

const CLI = path.join(__dirname, '..', 'bin', 'quicket');
const CA = path.join(__dirname, 'fixtures', 'certs', 'ca.pem');
const HANG_MS = 30000;

function quicket(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<ExitResult> {
  return runToExit(process.execPath, [CLI, ...args], env, HANG_MS);
}

/** The failure a user sees: exactly one line on stderr, "quicket: ...", no stack trace. */
function expectOneLine(result: ExitResult): void {
  expect(result.stderr).toMatch(/^quicket: [^\n]+\n$/);
  expect(result.stderr).not.toMatch(/^\s+at /m);
}

describe('the quicket command', () => {
  let server: Http3Server;
  let base: string;
  let work: string;
  const big = pattern(4 * 1024 * 1024, 5);

  beforeAll(async () => {
    server = new Http3Server({ ssl: new SslConfig({ alpn: ['h3'], cert: pem('server.pem'), key: pem('server-key.pem') }) }, (req, res) => {
      res.end(req.path === '/big' ? big : 'hi');
    });
    const { port } = await server.listen({ host: HOST, port: 0 });
    base = `https://localhost:${port}`;
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'quicket-cli-'));
  });
  afterAll(async () => {
    await server.close();
    fs.rmSync(work, { recursive: true, force: true });
  });

  test('--version prints the versions of quicket and of its libraries', async () => {
    const result = await quicket(['--version']);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(`quicket ${versions.quicket} OpenSSL/${versions.openssl} ngtcp2/${versions.ngtcp2} nghttp3/${versions.nghttp3}\n`);
  });

  test('a server the default roots do not trust (no --ca) fails in one line', async () => {
    const env = { ...process.env };
    delete env.NODE_EXTRA_CA_CERTS;
    const result = await quicket(['get', `${base}/`], env);
    expect(result.code).toBe(1);
    expectOneLine(result);
    expect(result.stdout).toBe('');
  });

  test('a closed port fails in one line', async () => {
    const socket = dgram.createSocket('udp4');
    const port = await new Promise<number>((resolve) => socket.bind(0, HOST, () => resolve(socket.address().port)));
    await new Promise<void>((resolve) => socket.close(() => resolve()));
    const result = await quicket(['get', `https://${HOST}:${port}/`, '--ca', CA]);
    expect(result.code).not.toBe(0);
    expectOneLine(result);
  });

  test('-o into a missing folder fails in one line with exit code 23', async () => {
    const output = path.join(work, 'missing', 'out.bin');
    const result = await quicket(['get', `${base}/`, '--ca', CA, '-o', output]);
    expect(result.code).toBe(23);
    expectOneLine(result);
    expect(result.stderr).toContain(output);
  });

  test('-o writes the body to the file', async () => {
    const output = path.join(work, 'big.bin');
    const result = await quicket(['get', `${base}/big`, '--ca', CA, '-o', output]);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(fs.readFileSync(output).equals(big)).toBe(true);
  });

  test('a closed pipe (| head -c1) ends it quietly with exit code 23, like curl', async () => {
    const script = `"${process.execPath}" "${CLI}" get ${base}/big --ca "${CA}" | head -c1 > /dev/null; exit "\${PIPESTATUS[0]}"`;
    const result = await runToExit('bash', ['-c', script], process.env, HANG_MS);
    expect(result).toMatchObject({ code: 23, stderr: '' });
  });

  test('a --ticket-file holding something else is neither used nor overwritten', async () => {
    const file = path.join(work, 'notes.txt');
    fs.writeFileSync(file, 'not a ticket, and precious\n');
    const result = await quicket(['get', `${base}/`, '--ca', CA, '--ticket-file', file]);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe('hi');
    expectOneLine(result);
    expect(result.stderr).toContain(file);
    expect(fs.readFileSync(file, 'utf8')).toBe('not a ticket, and precious\n');
  });

  test('a missing --ticket-file receives a ticket, and the next run resumes from it', async () => {
    const file = path.join(work, 'ticket.bin');
    const first = await quicket(['get', `${base}/`, '--ca', CA, '--ticket-file', file, '--verbose']);
    expect(first.code).toBe(0);
    expect(JSON.parse(first.stderr)).toMatchObject({ status: 200, resumed: false });
    expect(Ticket.inspect(fs.readFileSync(file)).servername).toBe('localhost');
    const second = await quicket(['get', `${base}/`, '--ca', CA, '--ticket-file', file, '--verbose']);
    expect(second.code).toBe(0);
    expect(JSON.parse(second.stderr)).toMatchObject({ status: 200, resumed: true });
  });

  test('`quicket serve` whose request log reader goes away keeps serving', async () => {
    fs.writeFileSync(path.join(work, 'page.txt'), 'still here');
    const child = spawn(process.execPath, [CLI, 'serve', work, '--cert', path.join(__dirname, 'fixtures', 'certs', 'server.pem'),
      '--key', path.join(__dirname, 'fixtures', 'certs', 'server-key.pem'), '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    try {
      const first = await new Promise<string>((resolve) => child.stdout.once('data', (chunk) => resolve(String(chunk))));
      const { port } = JSON.parse(first.split('\n')[0]);
      child.stdout.destroy(); // the reader of the log is gone: the next log line meets EPIPE
      const engine = new Engine();
      try {
        for (let i = 0; i < 3; i++) {
          const connection = engine.connect({ host: HOST, port, servername: 'localhost', ssl: new SslConfig({ alpn: ['h3'], ca: pem('ca.pem') }) });
          const response = await request(connection, { path: '/page.txt' });
          const chunks: Buffer[] = [];
          for await (const chunk of response.body) chunks.push(chunk as Buffer);
          expect([response.status, Buffer.concat(chunks).toString()]).toEqual([200, 'still here']);
          await connection.close();
        }
      } finally {
        await engine.close();
      }
      expect(child.exitCode).toBeNull();
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    expect(stderr).toBe('');
  });
});
