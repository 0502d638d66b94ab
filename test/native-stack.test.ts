// The native stack: the addon carries its own OpenSSL, ngtcp2 and nghttp3, linked statically, and
// lives beside Node's own OpenSSL without disturbing it or loading shared TLS/QUIC libraries; it
// never reads OpenSSL's configuration file or provider-modules directory.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';

import { versions } from '../lib';
import { compileLib, CompiledLib } from './helpers/compile-lib';
import { runToExit } from './helpers/processes';
import { ALPN, HOST, pem, roundTrip, useEngines } from './helpers/index';

const ROOT = path.join(__dirname, '..');
const CERT_DIR = path.join(ROOT, 'test', 'fixtures', 'certs');

/** The addon file this test run loads (the same choice lib/binding.ts makes). */
function addonPath(): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return path.resolve(process.env.QUICKET_NATIVE ?? require('node-gyp-build').path(ROOT));
}

function which(tool: string): boolean {
  return (process.env.PATH ?? '').split(':').some((dir) => dir && fs.existsSync(path.join(dir, tool)));
}

describe('versions', () => {
  test('name OpenSSL 3.5, ngtcp2 >= 1.12, nghttp3 1.x and the package version', () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const pkg = require('../package.json') as { version: string };
    expect(Object.keys(versions).sort()).toEqual(['nghttp3', 'ngtcp2', 'openssl', 'quicket']);
    expect(versions.openssl).toMatch(/^3\.5\.\d+/);
    expect(versions.ngtcp2).toMatch(/^1\.(1[2-9]|[2-9]\d)\.\d+/);
    expect(versions.nghttp3).toMatch(/^1\.\d+\.\d+/);
    expect(versions.quicket).toBe(pkg.version);
    expect(Object.isFrozen(versions)).toBe(true);
  });
});

describe('beside Node\'s own OpenSSL', () => {
  const engines = useEngines();

  async function quicketEcho(): Promise<void> {
    const { connection } = await engines.pair();
    const data = crypto.randomBytes(20_000);
    expect((await roundTrip(connection, data)).equals(data)).toBe(true);
    await connection.close();
  }

  test('node:crypto and node:tls keep working in the same process after quicket handshakes', async () => {
    await quicketEcho();
    // Node's OpenSSL (process.versions.openssl) and the addon's are separate copies, whatever
    // their versions: each process-wide state stays its own.

    // node:tls, a TLS 1.3 handshake with the test certificates, and an echo.
    const server = tls.createServer({ cert: pem('server.pem'), key: pem('server-key.pem') }, (socket) => {
      socket.on('error', () => {});
      socket.pipe(socket);
    });
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, HOST, () => resolve());
      });
      const { port } = server.address() as { port: number };
      const socket = tls.connect({ host: HOST, port, ca: pem('ca.pem'), servername: 'localhost' });
      try {
        await new Promise<void>((resolve, reject) => {
          socket.once('secureConnect', resolve);
          socket.once('error', reject);
        });
        expect({ authorized: socket.authorized, protocol: socket.getProtocol() }).toEqual({ authorized: true, protocol: 'TLSv1.3' });
        const message = crypto.randomBytes(5000);
        const echoed = new Promise<Buffer>((resolve, reject) => {
          const chunks: Buffer[] = [];
          let length = 0;
          socket.on('data', (chunk: Buffer) => {
            chunks.push(chunk);
            length += chunk.length;
            if (length >= message.length) resolve(Buffer.concat(chunks));
          });
          socket.once('error', reject);
          socket.once('end', () => resolve(Buffer.concat(chunks)));
        });
        socket.write(message);
        expect((await echoed).equals(message)).toBe(true);
      } finally {
        socket.destroy();
      }
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }

    // Hashes, AEAD (with its tag checked) and X25519.
    expect(crypto.createHash('sha256').update('abc').digest('hex')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    const key = crypto.randomBytes(16);
    const iv = crypto.randomBytes(12);
    const plaintext = crypto.randomBytes(1000);
    const cipher = crypto.createCipheriv('aes-128-gcm', key, iv);
    const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    const tag = cipher.getAuthTag();
    const decipher = crypto.createDecipheriv('aes-128-gcm', key, iv);
    decipher.setAuthTag(tag);
    expect(Buffer.concat([decipher.update(ciphertext), decipher.final()]).equals(plaintext)).toBe(true);
    const forged = crypto.createDecipheriv('aes-128-gcm', key, iv);
    forged.setAuthTag(Buffer.from(tag.map((byte, i) => (i === 0 ? byte ^ 1 : byte))));
    forged.update(ciphertext);
    expect(() => forged.final()).toThrow();
    const alice = crypto.generateKeyPairSync('x25519');
    const bob = crypto.generateKeyPairSync('x25519');
    const shared = crypto.diffieHellman({ privateKey: alice.privateKey, publicKey: bob.publicKey });
    expect(shared.length).toBe(32);
    expect(shared.equals(crypto.diffieHellman({ privateKey: bob.privateKey, publicKey: alice.publicKey }))).toBe(true);

    // And quicket still works after Node's TLS ran.
    await quicketEcho();
  });

  const linux = process.platform === 'linux';
  (linux ? test : test.skip)(`no shared libssl, libcrypto, libgnutls, libngtcp2 or libnghttp3 is mapped into the process${linux ? '' : ' [skipped: /proc/self/maps is Linux-only]'}`, async () => {
    await quicketEcho();
    const mapped = new Set(
      fs
        .readFileSync('/proc/self/maps', 'utf8')
        .split('\n')
        .map((line) => line.split(/\s+/).slice(5).join(' '))
        .filter((file) => file.startsWith('/')),
    );
    // The addon itself is there: the maps are this process's, read after it loaded.
    expect([...mapped].map((file) => fs.existsSync(file) ? fs.realpathSync(file) : file)).toContain(fs.realpathSync(addonPath()));
    // A Node built against shared system libraries maps those itself; they are not the addon's.
    const node = process.config.variables as unknown as Record<string, unknown>;
    const forbidden = [
      ...(node.node_shared_openssl === true ? [] : ['ssl', 'crypto']),
      'gnutls',
      ...(node.node_shared_ngtcp2 === true ? [] : ['ngtcp2']),
      ...(node.node_shared_nghttp3 === true ? [] : ['nghttp3']),
    ];
    const pattern = new RegExp(`/lib(${forbidden.join('|')})[^/]*\\.so(\\.|$)`);
    expect([...mapped].filter((file) => pattern.test(file))).toEqual([]);
  });
});

describe('OpenSSL configuration and modules', () => {
  const haveStrace = which('strace');
  if (!haveStrace && process.env.CI) throw new Error('strace is missing: scripts/setup.sh installs it');
  const onLinux = process.platform === 'linux';

  let lib: CompiledLib | undefined;
  let work: string | undefined;
  afterAll(() => {
    lib?.remove();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  /** The directories compiled into the addon's OpenSSL (OpenSSL_version's "OPENSSLDIR: ..." strings). */
  function compiledInDirs(addon: string): string[] {
    const text = fs.readFileSync(addon).toString('latin1');
    const dirs: string[] = [];
    for (const name of ['OPENSSLDIR', 'MODULESDIR', 'ENGINESDIR']) {
      const match = new RegExp(`${name}: "([^"\\0]+)"`).exec(text);
      if (match) dirs.push(match[1]);
    }
    return dirs;
  }

  // A child under strace: one quicket handshake with an echo and a 0-RTT resumption, plus a
  // client on the default roots (node:tls's) that fails to verify the test certificate.
  const CHILD = `
const path = require('path');
const fs = require('fs');
const [libDir, certDir] = process.argv.slice(2);
const { Engine, SslConfig } = require(libDir);
const pem = (name) => fs.readFileSync(path.join(certDir, name));
const alpn = [${JSON.stringify(ALPN)}];
const guard = setTimeout(() => { console.error('child timed out'); process.exit(2); }, 20000);
async function echo(client, port, ticket) {
  const connection = client.connect({ host: '127.0.0.1', port, servername: 'localhost', ticket });
  connection.on('error', () => {});
  const gotTicket = new Promise((resolve) => connection.once('ticket', resolve));
  const stream = connection.openStream();
  const chunks = [];
  stream.on('data', (chunk) => chunks.push(chunk));
  const ended = new Promise((resolve, reject) => { stream.once('end', resolve); stream.once('error', reject); });
  stream.end('hello over quic');
  await ended;
  const info = await connection.handshake;
  const next = await gotTicket;
  await connection.close();
  return { echo: Buffer.concat(chunks).toString(), resumed: info.resumed, earlyData: info.earlyData, ticket: next };
}
(async () => {
  const server = new Engine({ ssl: new SslConfig({ alpn, cert: pem('server.pem'), key: pem('server-key.pem'), earlyData: true }) });
  server.on('connection', (connection) => {
    connection.on('error', () => {});
    connection.on('stream', (stream) => { stream.on('error', () => {}); stream.pipe(stream); });
  });
  const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
  const client = new Engine({ ssl: new SslConfig({ alpn, ca: pem('ca.pem') }) });
  const first = await echo(client, port);
  const second = await echo(client, port, first.ticket);
  const defaultRoots = new Engine({ ssl: new SslConfig({ alpn }) });
  const refused = defaultRoots.connect({ host: '127.0.0.1', port, servername: 'localhost' });
  refused.on('error', () => {});
  const untrusted = await refused.handshake.then(() => 'verified', (error) => error.code);
  await Promise.all([client.close(), defaultRoots.close(), server.close()]);
  clearTimeout(guard);
  console.log(JSON.stringify({ first: [first.echo, first.resumed], second: [second.echo, second.resumed, second.earlyData], untrusted }));
})().catch((error) => { console.error(error); process.exit(1); });
`;

  (haveStrace && onLinux ? test : test.skip)(
    `the addon opens nothing under its OpenSSL prefix's ssl/ or lib/ossl-modules/ (strace)${
      !onLinux ? ' [skipped: strace and this prefix are Linux-only]' : haveStrace ? '' : ' [skipped: strace is not installed]'
    }`,
    async () => {
      lib = compileLib();
      work = fs.mkdtempSync(path.join(os.tmpdir(), 'quicket-strace-'));
      const script = path.join(work, 'child.js');
      const trace = path.join(work, 'trace.txt');
      fs.writeFileSync(script, CHILD);
      const addon = lib.env.QUICKET_NATIVE as string;
      const prefix = path.join(ROOT, 'deps', `${process.platform}-${process.arch}`);
      const watched = [...new Set([path.join(prefix, 'ssl'), path.join(prefix, 'lib', 'ossl-modules'), path.join(prefix, 'lib', 'engines-3'), ...compiledInDirs(addon)])];
      // The addon's OpenSSL names these as its defaults: the test watches what it would really open.
      expect(compiledInDirs(addon).length).toBeGreaterThanOrEqual(2);

      const result = await runToExit('strace', ['-f', '-qq', '-e', 'trace=%file', '-o', trace, process.execPath, script, lib!.dir, CERT_DIR], lib!.env, 40_000);
      expect(result).toEqual({
        code: 0,
        stdout: `${JSON.stringify({ first: ['hello over quic', false], second: ['hello over quic', true, 'accepted'], untrusted: 'ERR_QUIC_CERT_UNTRUSTED' })}\n`,
        stderr: '',
      });

      const paths = new Set<string>();
      for (const line of fs.readFileSync(trace, 'utf8').split('\n')) {
        for (const match of line.matchAll(/"((?:[^"\\]|\\.)*)"/g)) paths.add(match[1]);
      }
      // The trace is real: it saw the process open the addon it then used.
      expect([...paths]).toContain(addon);
      const touched = [...paths].filter((file) => watched.some((dir) => file === dir || file.startsWith(`${dir}/`)));
      expect({ watched, touched }).toEqual({ watched, touched: [] });
      expect([...paths].filter((file) => file.startsWith(`${prefix}/`) && /(\/ossl-modules|openssl\.cnf)$/.test(file))).toEqual([]);
    },
    60_000,
  );
});
