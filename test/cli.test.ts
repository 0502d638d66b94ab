// The `quicket` command run as a child process (bin/quicket on the dist/ that test/global-setup.js
// builds) against real servers on loopback: curl's options and what they send and print, curl's
// exit codes, the ticket file that makes the next run resume with 0-RTT, the progress meter under
// a pseudo-terminal, and `quicket serve`.
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { Engine, Http3Server, request, SslConfig, versions } from '../lib';
import { HOST, pattern, pem } from './helpers';
import { ExitResult, runToExit } from './helpers/processes';

const CLI = path.join(__dirname, '..', 'bin', 'quicket');
const CA = path.join(__dirname, 'fixtures', 'certs', 'ca.pem');
const HANG_MS = 15000;

function quicket(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<ExitResult> {
  return runToExit(process.execPath, [CLI, ...args], env, HANG_MS);
}

/** The failure a user sees: exactly one line on stderr, "quicket: ...", no stack trace. */
function expectOneLine(result: ExitResult, pattern?: RegExp): void {
  expect(result.stderr).toMatch(/^quicket: [^\n]+\n$/);
  expect(result.stderr).not.toMatch(/^\s+at /m);
  if (pattern) expect(result.stderr).toMatch(pattern);
}

/** What the echo route saw. */
interface Echo {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string;
}

/** A UDP port where nothing listens (bound, then closed). */
async function closedPort(): Promise<number> {
  const socket = dgram.createSocket('udp4');
  const port = await new Promise<number>((resolve) => socket.bind(0, HOST, () => resolve(socket.address().port)));
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

describe('the quicket command', () => {
  let server: Http3Server;
  let base: string;
  let work: string;
  let silent: dgram.Socket;
  const big = pattern(4 * 1024 * 1024, 5);

  beforeAll(async () => {
    const ssl = new SslConfig({ alpn: ['h3'], cert: pem('server.pem'), key: pem('server-key.pem'), earlyData: true });
    server = new Http3Server({ ssl }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const route = req.path.split('?')[0];
        if (route === '/big') {
          res.writeHead(200, { 'content-length': big.length });
          res.end(big);
        } else if (route === '/echo') {
          res.writeHead(200, { 'content-type': 'application/json', 'x-served-by': 'test' });
          res.end(JSON.stringify({ method: req.method, path: req.path, headers: req.headers, body: Buffer.concat(chunks).toString() }));
        } else if (route === '/moved') {
          res.writeHead(301, { location: '/echo?from=moved' });
          res.end('moved');
        } else if (route === '/loop') {
          res.writeHead(302, { location: '/loop' });
          res.end();
        } else if (route === '/missing') {
          res.writeHead(404, { 'content-type': 'text/plain' });
          res.end('no such thing');
        } else if (route !== '/never') {
          res.end('hi');
        }
      });
    });
    const { port } = await server.listen({ host: HOST, port: 0 });
    base = `https://localhost:${port}`;
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'quicket-cli-'));
    // A server that never answers: a socket that reads every datagram and says nothing.
    silent = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => silent.bind(0, HOST, () => resolve()));
  });
  afterAll(async () => {
    silent.close();
    await server.close();
    fs.rmSync(work, { recursive: true, force: true });
  });

  test('--version prints the versions of quicket and of its libraries', async () => {
    const result = await quicket(['--version']);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(`quicket ${versions.quicket} OpenSSL/${versions.openssl} ngtcp2/${versions.ngtcp2} nghttp3/${versions.nghttp3}\n`);
  });

  test('`quicket <url>` and `quicket get <url>` print the body; without a scheme, https:// is assumed', async () => {
    for (const args of [[`${base}/`], ['get', `${base}/`], [base.replace('https://', '')]]) {
      expect(await quicket([...args, '--cacert', CA])).toEqual({ code: 0, stdout: 'hi', stderr: '' });
    }
  });

  test('a request has curl\'s defaults: GET, User-Agent quicket/<version>, Accept */*', async () => {
    const echo: Echo = JSON.parse((await quicket([`${base}/echo?x=1`, '--cacert', CA])).stdout);
    expect(echo).toMatchObject({ method: 'GET', path: '/echo?x=1', body: '' });
    expect(echo.headers).toMatchObject({ 'user-agent': `quicket/${versions.quicket}`, accept: '*/*' });
  });

  test('-X, -H (set, replace, remove, empty) and -A reach the server', async () => {
    const result = await quicket([`${base}/echo`, '--cacert', CA, '-X', 'DELETE', '-H', 'X-Test: yes', '-H', 'X-Test: again',
      '-H', 'Accept:', '-H', 'X-Empty;', '-A', 'agent/7']);
    const echo: Echo = JSON.parse(result.stdout);
    expect(echo.method).toBe('DELETE');
    expect(echo.headers).toMatchObject({ 'x-test': 'yes, again', 'x-empty': '', 'user-agent': 'agent/7' });
    expect(echo.headers).not.toHaveProperty('accept');
  });

  test('-d (repeated, @file without its line breaks) and --data-binary (@file as it is) make a form POST', async () => {
    const file = path.join(work, 'form.txt');
    fs.writeFileSync(file, 'c=3\r\nd=4\n');
    const form: Echo = JSON.parse((await quicket([`${base}/echo`, '--cacert', CA, '-d', 'a=1', '-d', 'b=2', '-d', `@${file}`, '--data-binary', `@${file}`])).stdout);
    const sent = 'a=1&b=2&c=3d=4&c=3\r\nd=4\n';
    expect(form).toMatchObject({ method: 'POST', body: sent });
    expect(form.headers).toMatchObject({ 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(sent.length) });
    const json: Echo = JSON.parse((await quicket([`${base}/echo`, '--cacert', CA, '-X', 'PUT', '-H', 'Content-Type: application/json', '--data-binary', '{"a":1}'])).stdout);
    expect(json).toMatchObject({ method: 'PUT', body: '{"a":1}' });
    expect(json.headers['content-type']).toBe('application/json');
  });

  test('-I sends HEAD and prints the header section only; -i prints it before the body', async () => {
    const head = await quicket([`${base}/echo`, '--cacert', CA, '-I']);
    expect(head.code).toBe(0);
    expect(head.stdout).toMatch(/^HTTP\/3 200\r\n/);
    expect(head.stdout).toContain('content-type: application/json\r\nx-served-by: test\r\n');
    expect(head.stdout).toMatch(/\r\n\r\n$/);
    const include = await quicket([`${base}/echo`, '--cacert', CA, '-i']);
    const [section, body] = include.stdout.split('\r\n\r\n');
    expect(section).toMatch(/^HTTP\/3 200\r\n.*x-served-by: test/s);
    expect(JSON.parse(body)).toMatchObject({ method: 'GET' });
  });

  test('-L follows a 301 (-i shows both responses); without -L the 301 is the answer', async () => {
    const followed = await quicket([`${base}/moved`, '--cacert', CA, '-L']);
    expect(JSON.parse(followed.stdout)).toMatchObject({ method: 'GET', path: '/echo?from=moved' });
    const both = await quicket([`${base}/moved`, '--cacert', CA, '-L', '-i', '-w', '%{num_redirects} %{url_effective}']);
    expect(both).toMatchObject({ code: 0, stderr: '' }); // on failure, shows what the command said
    expect(both.stdout).toMatch(/^HTTP\/3 301\r\nlocation: \/echo\?from=moved\r\n\r\nHTTP\/3 200\r\n/);
    expect(both.stdout).toMatch(new RegExp(`\\}1 ${base}/echo\\?from=moved$`));
    expect(await quicket([`${base}/moved`, '--cacert', CA])).toEqual({ code: 0, stdout: 'moved', stderr: '' });
  });

  test('a redirect loop ends in exit 47 after --max-redirs (default 50)', async () => {
    const loop = await quicket([`${base}/loop`, '--cacert', CA, '-L']);
    expect(loop.code).toBe(47);
    expectOneLine(loop, /Maximum \(50\) redirects followed/);
    const three = await quicket([`${base}/loop`, '--cacert', CA, '-L', '--max-redirs', '3', '-w', '%{num_redirects}']);
    expect([three.code, three.stdout]).toEqual([47, '3']);
  });

  test('-f makes a 404 exit 22 without output; -s silences the line, -S brings it back', async () => {
    expect(await quicket([`${base}/missing`, '--cacert', CA])).toEqual({ code: 0, stdout: 'no such thing', stderr: '' });
    const failed = await quicket([`${base}/missing`, '--cacert', CA, '-f']);
    expect([failed.code, failed.stdout]).toEqual([22, '']);
    expectOneLine(failed, /returned error: 404/);
    expect(await quicket([`${base}/missing`, '--cacert', CA, '-f', '-s'])).toEqual({ code: 22, stdout: '', stderr: '' });
    const shown = await quicket([`${base}/missing`, '--cacert', CA, '-f', '-sS']);
    expect(shown.code).toBe(22);
    expectOneLine(shown, /returned error: 404/);
  });

  test('-v describes the connection, the request and the response on stderr', async () => {
    const result = await quicket([`${base}/echo`, '--cacert', CA, '-v', '-d', 'x=1', '-o', path.join(work, 'verbose.out')]);
    expect(result.code).toBe(0);
    const { port } = new URL(base);
    expect(result.stderr).toContain(`* Connected to localhost (127.0.0.1) port ${port}\n* ALPN: h3\n`);
    expect(result.stderr).toMatch(/^\* Server certificate: subject: .*CN=localhost; issuer: .*CN=quicket test CA; expire date: .+\d{4} GMT$/m);
    expect(result.stderr).toContain('* TLS session resumed: no\n* 0-RTT: not attempted\n');
    expect(result.stderr).toContain(`> POST /echo HTTP/3\n> Host: localhost:${port}\n> User-Agent: quicket/${versions.quicket}\n`);
    expect(result.stderr).toContain('> Content-Length: 3\n');
    expect(result.stderr).toMatch(/^< HTTP\/3 200\n< content-type: application\/json\n/m);
    expect(result.stderr).toMatch(/\* stats: rtt \d+\.\d+ ms, sent \d+ bytes, lost \d+ packets\n$/);
    expect(result.stdout).toBe('');
  });

  test('-w prints variables and %{json} on stdout, after the body', async () => {
    const result = await quicket([`${base}/big`, '--cacert', CA, '-o', path.join(work, 'big.bin'), '-w', '%{http_code} %{size_download} %{remote_ip} %{time_total}\\n%{json}\\n']);
    const [line, json] = result.stdout.split('\n');
    expect(line).toMatch(new RegExp(`^200 ${big.length} 127\\.0\\.0\\.1 \\d+\\.\\d{6}$`));
    expect(JSON.parse(json)).toMatchObject({
      http_code: 200, size_download: big.length, remote_ip: '127.0.0.1', remote_port: Number(new URL(base).port),
      alpn: 'h3', resumed: false, early_data: 'none', time_total: expect.any(Number), exitcode: 0,
    });
    const unknown = await quicket([`${base}/`, '--cacert', CA, '-w', '%{no_such_thing}|%%', '-o', '-']);
    expect(unknown.stdout).toBe('hi|%');
    expectOneLine(unknown, /unknown --write-out variable: 'no_such_thing'/);
  });

  test('-o writes the body to a file, -o - to stdout', async () => {
    const output = path.join(work, 'big.bin');
    expect(await quicket([`${base}/big`, '--cacert', CA, '-o', output])).toEqual({ code: 0, stdout: '', stderr: '' });
    expect(fs.readFileSync(output).equals(big)).toBe(true);
    expect((await quicket([`${base}/`, '--cacert', CA, '-o', '-'])).stdout).toBe('hi');
  });

  test('-o into a missing folder fails in one line with exit code 23', async () => {
    const output = path.join(work, 'missing', 'out.bin');
    const result = await quicket([`${base}/`, '--ca', CA, '-o', output]);
    expect(result.code).toBe(23);
    expectOneLine(result);
    expect(result.stderr).toContain(output);
  });

  test('a closed pipe (| head -c1) ends it quietly with exit code 23, like curl', async () => {
    const script = `"${process.execPath}" "${CLI}" ${base}/big --cacert "${CA}" | head -c1 > /dev/null; exit "\${PIPESTATUS[0]}"`;
    const result = await runToExit('bash', ['-c', script], process.env, HANG_MS);
    expect(result).toMatchObject({ code: 23, stderr: '' });
  });

  test('a server the roots do not trust exits 60 (verification) unless -k', async () => {
    const env = { ...process.env };
    delete env.NODE_EXTRA_CA_CERTS;
    const result = await quicket([`${base}/`], env);
    expect([result.code, result.stdout]).toEqual([60, '']);
    expectOneLine(result, /SSL certificate problem/);
    expect(await quicket([`${base}/`, '-k'], env)).toEqual({ code: 0, stdout: 'hi', stderr: '' });
  });

  test('a server without h3 fails the TLS handshake: exit 35', async () => {
    const engine = new Engine({ ssl: new SslConfig({ alpn: ['not-h3'], cert: pem('server.pem'), key: pem('server-key.pem') }) });
    try {
      const { port } = await engine.listen({ host: HOST, port: 0 });
      const result = await quicket([`https://localhost:${port}/`, '--cacert', CA]);
      expect(result.code).toBe(35);
      expectOneLine(result, /TLS handshake/);
    } finally {
      await engine.close();
    }
  });

  test.each([
    { what: 'an http:// URL', args: ['http://localhost/'], code: 1, message: /Protocol "http" not supported/ },
    { what: 'an unknown option', args: ['--no-such-option', 'https://localhost/'], code: 2, message: /unknown option/ },
    { what: 'no URL', args: [], code: 2, message: /no URL/ },
    { what: 'a number that is not one', args: ['-m', 'soon', 'https://localhost/'], code: 2, message: /max-time/ },
    { what: '-I with -d', args: ['-I', '-d', 'x', 'https://localhost/'], code: 2, message: /only select one HTTP request method/ },
    { what: 'a malformed URL', args: ['https://exa%mple/'], code: 3, message: /Malformed/ },
    { what: 'a name that does not resolve', args: ['https://no-such-host.invalid/'], code: 6, message: /Could not resolve host: no-such-host\.invalid/ },
    { what: '-d @ a missing file', args: ['-d', '@/no/such/file', 'https://localhost/'], code: 26, message: /no such file/ },
    { what: 'a --cacert that does not exist', args: ['--cacert', '/no/such/ca.pem', 'https://localhost/'], code: 77, message: /certificate file/ },
  ])('$what exits $code in one line', async ({ args, code, message }) => {
    const result = await quicket(args);
    expect([result.code, result.stdout]).toEqual([code, '']);
    expectOneLine(result, message);
  });

  test('a closed port exits 7 in one line', async () => {
    const result = await quicket([`https://${HOST}:${await closedPort()}/`, '--cacert', CA]);
    expect(result.code).toBe(7);
    expectOneLine(result, /ECONNREFUSED/);
  });

  test('--connect-timeout against a server that never answers, and -m against one that never responds, exit 28', async () => {
    const connect = await quicket([`https://${HOST}:${silent.address().port}/`, '--cacert', CA, '--connect-timeout', '0.3']);
    expect(connect.code).toBe(28);
    expectOneLine(connect, /Connection timed out after 300 milliseconds/);
    const total = await quicket([`${base}/never`, '--cacert', CA, '-m', '0.3', '-w', '%{exitcode}']);
    expect([total.code, total.stdout]).toEqual([28, '28']);
    expectOneLine(total, /Operation timed out after 300 milliseconds/);
  });

  test('--ticket-file, in two processes: the second run resumes and its GET rides 0-RTT', async () => {
    const file = path.join(work, 'tickets.json');
    const run = async () => JSON.parse((await quicket([`${base}/`, '--cacert', CA, '--ticket-file', file, '-o', '/dev/null', '-w', '%{json}'])).stdout);
    expect(await run()).toMatchObject({ http_code: 200, resumed: false, early_data: 'none' });
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toMatchObject({ version: 1, tickets: [expect.objectContaining({ servername: 'localhost' })] });
    expect(await run()).toMatchObject({ http_code: 200, resumed: true, early_data: 'accepted' });
  });

  test('a --ticket-file holding a ticket of the earlier format is taken over and resumes', async () => {
    const file = path.join(work, 'ticket.bin');
    const engine = new Engine();
    try {
      const connection = engine.connect({ host: HOST, port: Number(new URL(base).port), servername: 'localhost', ssl: new SslConfig({ alpn: ['h3'], ca: pem('ca.pem') }) });
      const ticket = new Promise<Buffer>((resolve) => connection.once('ticket', resolve));
      await connection.handshake;
      fs.writeFileSync(file, await ticket);
      await connection.close();
    } finally {
      await engine.close();
    }
    const result = await quicket([`${base}/`, '--cacert', CA, '--ticket-file', file, '-o', '/dev/null', '-w', '%{json}']);
    expect(JSON.parse(result.stdout)).toMatchObject({ resumed: true, early_data: 'accepted' });
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toMatchObject({ version: 1 });
  });

  test('a --ticket-file holding something else is neither used nor overwritten', async () => {
    const file = path.join(work, 'notes.txt');
    fs.writeFileSync(file, 'not a ticket, and precious\n');
    const result = await quicket([`${base}/`, '--cacert', CA, '--ticket-file', file]);
    expect([result.code, result.stdout]).toEqual([0, 'hi']);
    expectOneLine(result);
    expect(result.stderr).toContain(file);
    expect(fs.readFileSync(file, 'utf8')).toBe('not a ticket, and precious\n');
  });

  test('under a terminal, a progress meter shows when the body goes to a file, not with -s nor when the body goes to the terminal', async () => {
    // script(1) runs the command on a pseudo-terminal; its stdout carries what the command wrote there.
    const inTerminal = (args: string) => runToExit('script', ['-qfec', `"${process.execPath}" "${CLI}" ${args}`, '/dev/null'], process.env, HANG_MS);
    const output = path.join(work, 'meter.bin');
    const meter = await inTerminal(`${base}/big --cacert "${CA}" -o "${output}"`);
    expect(meter.code).toBe(0);
    expect(meter.stdout).toContain('% Total    % Received % Xferd  Average Speed');
    expect(meter.stdout).toMatch(/\r100 4096k {2}100 4096k {4}0 {5}0 /);
    expect(fs.readFileSync(output).equals(big)).toBe(true);
    expect((await inTerminal(`${base}/big --cacert "${CA}" -o "${output}" -s`)).stdout).not.toContain('% Total');
    expect((await inTerminal(`${base}/ --cacert "${CA}"`)).stdout).not.toContain('% Total');
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
