// TLS: the client verifies the server's chain and name (DNS names and IP addresses) unless told
// not to, ALPN must match, and a refused handshake fails cleanly on both sides with a coded error.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

import { CloseInfo, Connection, Engine } from '../lib';
import { ALPN, HOST, Server, clientSsl, next, pem, roundTrip, serverSsl, useEngines } from './helpers';
import { compileLib } from './helpers/compile-lib';

const execFileAsync = promisify(execFile);

type CodedError = Error & { code?: string };

describe('tls', () => {
  const engines = useEngines();

  /** Connects and returns the client connection plus what the server saw of it. */
  async function attempt(server: Server, client: Engine, servername?: string) {
    const accepted = server.nextConnection();
    const connection = client.connect({ host: HOST, port: server.port, servername });
    const clientClosed = next<CloseInfo>(connection, 'close');
    const outcome = await connection.handshake.then(
      () => undefined,
      (error: CodedError) => error,
    );
    return { connection, error: outcome, clientClosed, serverConnection: await accepted };
  }

  test('a server certificate from an unknown CA is refused with ERR_QUIC_CERT_UNTRUSTED; the server sees the alert', async () => {
    const server = await engines.server({ ssl: serverSsl('other-server') });
    const { error, clientClosed, serverConnection } = await attempt(server, engines.client(), 'localhost');
    // (Errors made by the addon come from Node's realm, not jest's sandbox: no toBeInstanceOf(Error) here.)
    expect(error).toMatchObject({ code: 'ERR_QUIC_CERT_UNTRUSTED', message: expect.any(String) });
    const info = await clientClosed;
    expect(info.error).toBe(error);
    expect(info.remote).toBe(false);

    // The client told the server why: a TLS alert as a QUIC CRYPTO_ERROR (0x100 + alert).
    const serverInfo = await server.closed(serverConnection);
    expect(serverInfo.remote).toBe(true);
    expect(serverInfo.type).toBe('transport');
    expect(serverInfo.code).toBeGreaterThanOrEqual(0x100);
    expect(serverInfo.code).toBeLessThan(0x200);
    await expect(serverConnection.handshake).rejects.toHaveProperty('code');

    // Nothing broke: the same server serves a client that trusts its CA.
    const trusting = engines.engine({ ssl: clientSsl({ ca: pem('other-ca.pem') }) });
    const good = trusting.connect({ host: HOST, port: server.port, servername: 'localhost' });
    expect((await roundTrip(good, Buffer.from('trusted'))).toString()).toBe('trusted');
  });

  test('a certificate for another name is refused with ERR_TLS_CERT_ALTNAME_INVALID', async () => {
    const server = await engines.server({ ssl: serverSsl('wrong-name') });
    const { error, serverConnection } = await attempt(server, engines.client(), 'localhost');
    expect(error?.code).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
    expect((await server.closed(serverConnection)).remote).toBe(true);
  });

  test('the name check uses servername, not host: servername "wrong.example" accepts the wrong-name certificate', async () => {
    const server = await engines.server({ ssl: serverSsl('wrong-name') });
    const { error, connection } = await attempt(server, engines.client(), 'wrong.example');
    expect(error).toBeUndefined();
    expect(connection.servername).toBe('wrong.example');
  });

  test('rejectUnauthorized: false connects to a server whose CA is unknown', async () => {
    const server = await engines.server({ ssl: serverSsl('other-server') });
    const client = engines.engine({ ssl: clientSsl({ rejectUnauthorized: false }) });
    const connection = client.connect({ host: HOST, port: server.port, servername: 'localhost' });
    expect((await connection.handshake).alpn).toBe(ALPN);
    expect((await roundTrip(connection, Buffer.from('unverified'))).toString()).toBe('unverified');
  });

  test('rejectUnauthorized: false also skips the name check', async () => {
    const server = await engines.server({ ssl: serverSsl('wrong-name') });
    const client = engines.engine({ ssl: clientSsl({ rejectUnauthorized: false }) });
    await expect(client.connect({ host: HOST, port: server.port, servername: 'localhost' }).handshake).resolves.toMatchObject({
      alpn: ALPN,
    });
  });

  test('no common ALPN protocol: the handshake fails with a coded error on both sides', async () => {
    const server = await engines.server({ ssl: serverSsl('server', { alpn: ['only-this'] }) });
    const client = engines.engine({ ssl: clientSsl({ alpn: ['something-else'] }) });
    const accepted = server.nextConnection();
    const connection: Connection = client.connect({ host: HOST, port: server.port, servername: 'localhost' });
    const error = await connection.handshake.then(
      () => undefined,
      (failure: CodedError) => failure,
    );
    expect(error).toMatchObject({ code: expect.stringMatching(/^ERR_QUIC_(ALPN_MISMATCH|TLS_ALERT)$/) });
    // The server is the side that decides: it reports the mismatch itself.
    const serverInfo = await server.closed(await accepted);
    expect(serverInfo.error?.code).toBe('ERR_QUIC_ALPN_MISMATCH');
    expect(serverInfo.remote).toBe(false);
  });

  test('IP addresses are verified against IP SANs: servername "127.0.0.1" works with server.pem', async () => {
    const server = await engines.server();
    const { error, connection } = await attempt(server, engines.client(), '127.0.0.1');
    expect(error).toBeUndefined();
    expect((await roundTrip(connection, Buffer.from('by address'))).toString()).toBe('by address');
  });

  test('an IP address the certificate does not list is refused with ERR_TLS_CERT_ALTNAME_INVALID', async () => {
    const server = await engines.server();
    const { error } = await attempt(server, engines.client(), '192.0.2.1');
    expect(error?.code).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
  });

  test("without `ca` the client uses node:tls's default roots, which do not know the test CA", async () => {
    const server = await engines.server();
    const client = engines.engine(); // no SslConfig: connect({ alpn }) builds one on the default roots
    const connection = client.connect({ host: HOST, port: server.port, servername: 'localhost', alpn: ALPN });
    await expect(connection.handshake).rejects.toMatchObject({ code: 'ERR_QUIC_CERT_UNTRUSTED' });
  });

  test('NODE_EXTRA_CA_CERTS extends the default roots, as it does for node:tls', async () => {
    const server = await engines.server();
    const lib = compileLib();
    try {
      // A process of its own: Node reads the variable once per process.
      const script = `
        const { Engine } = require(${JSON.stringify(lib.dir)});
        const engine = new Engine();
        const connection = engine.connect({ host: '${HOST}', port: ${server.port}, servername: 'localhost', alpn: '${ALPN}' });
        connection.on('error', () => {});
        connection.handshake.then(() => 'verified', (error) => error.code).then(async (outcome) => {
          console.log(outcome);
          await engine.close();
        });`;
      const run = (env: NodeJS.ProcessEnv) => execFileAsync(process.execPath, ['-e', script], { env, timeout: 20_000 });
      const withExtra = await run({ ...lib.env, NODE_EXTRA_CA_CERTS: path.join(__dirname, 'fixtures', 'certs', 'ca.pem') });
      expect(withExtra.stdout.trim()).toBe('verified');
      const { NODE_EXTRA_CA_CERTS: _, ...without } = lib.env;
      expect((await run(without)).stdout.trim()).toBe('ERR_QUIC_CERT_UNTRUSTED');
    } finally {
      lib.remove();
    }
  });
});
