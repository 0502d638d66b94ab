// Names and address families: connect({ host }) with a name (dns.lookup or a `lookup` option),
// every address tried in order (a refusing or silent one gives way to the next, on the same
// Connection and streams, 0-RTT included), 'localhost' whichever loopback the server is on, and
// one dual-stack engine for IPv4 and IPv6 peers.
import dgram from 'node:dgram';
import dns from 'node:dns';

import { Connection, Engine, fetch, Http3Agent, Http3Server, LookupFunction, socketFeatures, SslConfig } from '../lib';
import { clientSsl, echo, next, pattern, pem, readAll, roundTrip, serverSsl, useEngines } from './helpers';

/** A lookup that answers `addresses` for any name, after `delayMs`, and counts its calls. */
function fixedLookup(addresses: string[], delayMs = 0): LookupFunction & { calls: string[] } {
  const calls: string[] = [];
  const lookup = ((hostname, _options, callback) => {
    calls.push(hostname);
    const answer = addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
    setTimeout(() => callback(null, answer), delayMs);
  }) as LookupFunction & { calls: string[] };
  lookup.calls = calls;
  return lookup;
}

describe('names and address families', () => {
  const engines = useEngines();

  /** An echo server on `host` (port 0 unless given). */
  async function echoServer(host: string, port = 0, ipv6Only = false): Promise<{ engine: Engine; port: number; connections: Connection[] }> {
    const engine = engines.engine({ ssl: serverSsl('server', { earlyData: true }) });
    const connections: Connection[] = [];
    engine.on('connection', (connection: Connection) => {
      connection.on('error', () => {});
      connections.push(connection);
      echo(connection);
    });
    const bound = await engine.listen({ host, port, ipv6Only });
    return { engine, port: bound.port, connections };
  }

  test("'localhost' reaches a server that listens on ::1 only, and one on 127.0.0.1 only", async () => {
    const v6 = await echoServer('::1');
    const v4 = await echoServer('127.0.0.1');
    const client = engines.client();
    const toV6 = client.connect({ host: 'localhost', port: v6.port });
    expect((await roundTrip(toV6, Buffer.from('six'))).toString()).toBe('six');
    expect({ address: toV6.remoteAddress, family: toV6.remoteFamily }).toEqual({ address: '::1', family: 'IPv6' });
    const toV4 = client.connect({ host: 'localhost', port: v4.port });
    expect((await roundTrip(toV4, Buffer.from('four'))).toString()).toBe('four');
    expect({ address: toV4.remoteAddress, family: toV4.remoteFamily }).toEqual({ address: '127.0.0.1', family: 'IPv4' });
    // One engine, one dual-stack socket, both families.
    expect(client.address().family).toBe('IPv6');
  });

  test('a name resolves through `lookup` (servername defaults to it); streams opened before the answer arrive byte-exact', async () => {
    const server = await echoServer('127.0.0.1');
    const lookup = fixedLookup(['127.0.0.1'], 20);
    const connection = engines.client().connect({ host: 'localhost.quicket.test', servername: 'localhost', port: server.port, lookup });
    const data = pattern(300 * 1024, 3);
    const stream = connection.openStream();
    const reply = readAll(stream);
    stream.end(data);
    expect((await reply).equals(data)).toBe(true);
    expect(lookup.calls).toEqual(['localhost.quicket.test']);
  });

  test('servername defaults to the name, so a certificate for another name fails verification', async () => {
    const server = await echoServer('127.0.0.1');
    const connection = engines.client().connect({ host: 'elsewhere.quicket.test', port: server.port, lookup: fixedLookup(['127.0.0.1']) });
    await expect(connection.handshake).rejects.toMatchObject({ code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
  });

  test('the default lookup is dns.lookup: an unknown name fails like net.connect (ENOTFOUND), streams too', async () => {
    const connection = engines.client().connect({ host: 'no-such-host.invalid', port: 4433 });
    const stream = connection.openStream();
    stream.on('error', () => {});
    const errors: Error[] = [];
    connection.on('error', (error) => errors.push(error));
    const streamClosed = next(stream, 'close');
    const info = await next<{ error?: Error }>(connection, 'close');
    await streamClosed;
    expect(info.error).toMatchObject({ code: 'ENOTFOUND', syscall: 'getaddrinfo', hostname: 'no-such-host.invalid' });
    expect(errors).toHaveLength(1);
    await expect(connection.handshake).rejects.toMatchObject({ code: 'ENOTFOUND' });
    // What dns.lookup itself says, so this test is about quicket passing it on.
    await expect(dns.promises.lookup('no-such-host.invalid')).rejects.toMatchObject({ code: 'ENOTFOUND' });
  });

  test('an address that refuses gives way to the next one, and 0-RTT rides the retry', async () => {
    const server = await echoServer('::1');
    const client = engines.client();
    // The first connection (to ::1 directly) leaves a ticket.
    const first = client.connect({ host: '::1', servername: 'localhost', port: server.port });
    const ticket = next<Buffer>(first, 'ticket');
    await roundTrip(first, Buffer.from('first'));
    // 127.0.0.1 has nobody on this port: ICMP port unreachable, then ::1.
    const connection = client.connect({ host: 'twice.quicket.test', servername: 'localhost', port: server.port, ticket: await ticket, lookup: fixedLookup(['127.0.0.1', '::1']) });
    const data = pattern(20000, 9);
    const reply = roundTrip(connection, data);
    expect((await reply).equals(data)).toBe(true);
    const info = await connection.handshake;
    expect({ resumed: info.resumed, earlyData: info.earlyData, remote: connection.remoteAddress }).toEqual({ resumed: true, earlyData: 'accepted', remote: '::1' });
  });

  test('a silent address is abandoned after autoSelectFamilyAttemptTimeout', async () => {
    const server = await echoServer('::1');
    // Something holds 127.0.0.1 on the same port and never answers (no ICMP either).
    const silent = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => silent.bind(server.port, '127.0.0.1', resolve));
    let swallowed = 0;
    silent.on('message', () => swallowed++);
    try {
      const connection = engines.client().connect({
        host: 'silent.quicket.test', servername: 'localhost', port: server.port,
        lookup: fixedLookup(['127.0.0.1', '::1']), autoSelectFamilyAttemptTimeout: 100,
      });
      expect((await roundTrip(connection, Buffer.from('late'))).toString()).toBe('late');
      expect(connection.remoteAddress).toBe('::1');
      expect(swallowed).toBeGreaterThan(0);
    } finally {
      silent.close();
    }
  });

  // Without ICMP errors (macOS, a portable build) a refusing port is a silent one: a handshake timeout.
  const withIcmp = socketFeatures.icmpErrors ? test : test.skip;

  withIcmp('every address refusing ends in ECONNREFUSED for the last one', async () => {
    const probe = dgram.createSocket('udp6');
    await new Promise<void>((resolve) => probe.bind(0, '::1', resolve));
    const { port } = probe.address();
    probe.close(); // a port nobody holds, on either family
    const connection = engines.client().connect({ host: 'nobody.quicket.test', port, lookup: fixedLookup(['127.0.0.1', '::1']) });
    const info = await next<{ error?: Error }>(connection, 'close');
    expect(info.error).toMatchObject({ code: 'ECONNREFUSED' });
  });

  test("listen('::') serves IPv4 and IPv6 clients; ipv6Only serves IPv6 only", async () => {
    const both = await echoServer('::');
    const client = engines.client();
    const v4 = client.connect({ host: '127.0.0.1', servername: 'localhost', port: both.port });
    const v6 = client.connect({ host: '::1', servername: 'localhost', port: both.port });
    expect((await roundTrip(v4, Buffer.from('a'))).toString()).toBe('a');
    expect((await roundTrip(v6, Buffer.from('b'))).toString()).toBe('b');
    expect(both.connections.map((c) => c.remoteFamily).sort()).toEqual(['IPv4', 'IPv6']);
    expect(both.connections.find((c) => c.remoteFamily === 'IPv4')?.remoteAddress).toBe('127.0.0.1');

    if (!socketFeatures.icmpErrors) return; // the refusal below is an ICMP error
    const only = await echoServer('::', 0, true);
    const refused = client.connect({ host: '127.0.0.1', servername: 'localhost', port: only.port });
    expect((await next<{ error?: Error }>(refused, 'close')).error).toMatchObject({ code: 'ECONNREFUSED' });
  });

  test('an engine bound to IPv4 skips IPv6 addresses, and refuses a connect with none left', async () => {
    const server = await echoServer('127.0.0.1');
    const v4only = engines.engine({ ssl: serverSsl() });
    await v4only.listen({ host: '127.0.0.1', port: 0 });
    const connection = v4only.connect({ host: 'mixed.quicket.test', servername: 'localhost', port: server.port, ssl: clientSsl(), lookup: fixedLookup(['::1', '127.0.0.1']) });
    expect((await roundTrip(connection, Buffer.from('v4'))).toString()).toBe('v4');
    expect(() => v4only.connect({ host: '::1', port: server.port, ssl: clientSsl() })).toThrow(expect.objectContaining({ code: 'ERR_QUIC_ADDRESS_FAMILY' }));
  });

  test('close(), destroy() and engine.close() while the name resolves end the connection cleanly', async () => {
    const server = await echoServer('127.0.0.1');
    const client = engines.client();
    const slow = fixedLookup(['127.0.0.1'], 100);
    const closed = client.connect({ host: 'slow.quicket.test', servername: 'localhost', port: server.port, lookup: slow });
    await closed.close();
    expect(closed.closed).toBe(true);

    const destroyed = client.connect({ host: 'slow.quicket.test', servername: 'localhost', port: server.port, lookup: slow });
    const stream = destroyed.openStream();
    stream.on('error', () => {});
    destroyed.destroy(Object.assign(new Error('changed my mind'), { code: 'ERR_TEST' }));
    expect((await next<{ error?: Error }>(destroyed, 'close')).error).toMatchObject({ code: 'ERR_TEST' });

    // close() with a stream that never opened: like on an address, the stream fails, nothing hangs.
    const graceful = client.connect({ host: 'slow.quicket.test', servername: 'localhost', port: server.port, lookup: slow });
    const reply = roundTrip(graceful, Buffer.from('before close'));
    await graceful.close();
    await expect(reply).rejects.toMatchObject({ code: 'ERR_QUIC_CONNECTION_CLOSED' });

    const orphan = client.connect({ host: 'slow.quicket.test', servername: 'localhost', port: server.port, lookup: slow });
    orphan.on('error', () => {});
    const orphanClosed = next<{ error?: Error }>(orphan, 'close');
    await client.close();
    expect((await orphanClosed).error).toMatchObject({ code: 'ERR_QUIC_ENGINE_CLOSED' });
    await new Promise((resolve) => setTimeout(resolve, 150)); // the lookup answers into a closed engine
    expect(server.connections.length).toBeLessThanOrEqual(1); // only `graceful` got as far as a handshake
  });

  test('fetch() of https://localhost against an HTTP/3 server on ::1 only; a named origin through the agent\'s lookup', async () => {
    const server = new Http3Server({ ssl: new SslConfig({ alpn: ['h3'], cert: pem('server.pem'), key: pem('server-key.pem') }) }, (req, res) => res.end(`hello ${req.path}`));
    const { port } = await server.listen({ host: '::1', port: 0 });
    const ssl = new SslConfig({ alpn: ['h3'], ca: pem('ca.pem') });
    const agent = new Http3Agent({ ssl });
    const lookup = fixedLookup(['::1']);
    const resolving = new Http3Agent({ ssl, lookup });
    try {
      expect(await (await fetch(`https://localhost:${port}/a`, { agent })).text()).toBe('hello /a');
      expect(await (await fetch(`https://localhost:${port}/b`, { agent: resolving })).text()).toBe('hello /b');
      expect(lookup.calls).toEqual(['localhost']);
    } finally {
      await agent.close();
      await resolving.close();
      await server.close();
    }
  });
});
