// Stateless reset (RFC 9000 10.3): a server that lost a connection's state (killed and restarted
// on the same port) answers that connection's packets with a reset the client can verify, when
// the restarted process has the same `statelessResetKey`. Resets are smaller than what triggered
// them and rate-limited, so they cannot amplify.
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';

import { CloseInfo, Connection, Engine } from '../lib';
import { HOST, next, readAll, useEngines } from './helpers';
import { startServerPeer, usePeers } from './helpers/processes';

/* eslint-disable @typescript-eslint/no-explicit-any */

async function ask(connection: Connection, body: string): Promise<any> {
  const stream = connection.openStream();
  const answer = readAll(stream);
  stream.end(body);
  return JSON.parse((await answer).toString());
}

describe('stateless reset', () => {
  const engines = useEngines();
  const peers = usePeers();

  /** A connection to a peer.js server that is then killed and restarted on its port; resolves with how the connection closed after a write. */
  async function closeAfterRestart(firstKey: string | undefined, secondKey: string | undefined, idleTimeout: number): Promise<CloseInfo> {
    const first = await startServerPeer(peers, { statelessResetKey: firstKey });
    const client = engines.client({ idleTimeout });
    const connection = client.connect({ host: HOST, port: first.port, servername: 'localhost' });
    connection.on('error', () => {});
    expect((await ask(connection, 'hello')).pid).toBe(first.peer.pid);

    await first.peer.kill('SIGKILL');
    const second = await startServerPeer(peers, { statelessResetKey: secondKey, port: first.port });
    expect(second.port).toBe(first.port);

    const closed = next<CloseInfo>(connection, 'close');
    const orphan = connection.openStream();
    orphan.on('error', () => {});
    orphan.end('anyone there?');
    const info = await closed;

    // The restarted server still serves new connections.
    const fresh = client.connect({ host: HOST, port: first.port, servername: 'localhost' });
    expect((await ask(fresh, 'hello again')).pid).toBe(second.peer.pid);
    return info;
  }

  test('a restart with the same statelessResetKey closes the client connection with ERR_QUIC_STATELESS_RESET, long before its idle timeout', async () => {
    const key = randomBytes(32).toString('hex');
    const info = await closeAfterRestart(key, key, 600000);
    expect(info.remote).toBe(true);
    expect(info.error).toMatchObject({ code: 'ERR_QUIC_STATELESS_RESET' });
  });

  test('a restart with another key cannot reset: the client ignores the forged reset and waits out its idle timeout', async () => {
    const info = await closeAfterRestart(randomBytes(32).toString('hex'), randomBytes(32).toString('hex'), 1500);
    expect(info.error?.code).not.toBe('ERR_QUIC_STATELESS_RESET');
    expect(info.reason).toBe('idle timeout');
  });

  test('resets are smaller than the packets that trigger them, never answer tiny ones, and are rate-limited', async () => {
    const server = await engines.server();
    const socket = dgram.createSocket('udp4');
    const answers: Buffer[] = [];
    socket.on('message', (message) => answers.push(message));
    await new Promise<void>((resolve) => socket.bind(0, HOST, resolve));
    const send = (packet: Buffer): Promise<void> =>
      new Promise((resolve, reject) => socket.send(packet, server.port, HOST, (error) => (error ? reject(error) : resolve())));
    /** A short-header packet for a connection ID the server never issued. */
    const shortPacket = (length: number): Buffer => Buffer.concat([Buffer.from([0x40 | (randomBytes(1)[0] & 0x3f)]), randomBytes(length - 1)]);
    const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 300));
    try {
      // Too small to be answered by anything smaller that still looks like a short-header packet.
      for (let i = 0; i < 20; i++) await send(shortPacket(21));
      await settle();
      expect(answers).toHaveLength(0);

      const SENT = 500;
      for (let i = 0; i < SENT; i++) await send(shortPacket(i % 2 ? 1252 : 60));
      await settle();
      expect(answers.length).toBeGreaterThan(0);
      // 100 a second: a burst that straddles a second boundary gets at most two windows' worth.
      expect(answers.length).toBeLessThanOrEqual(200);
      for (const answer of answers) {
        expect(answer[0] & 0xc0).toBe(0x40); // looks like a short-header packet
        expect(answer.length).toBeLessThan(1252);
        expect(answer.length).toBeLessThanOrEqual(1200);
      }
      expect(answers.some((answer) => answer.length < 60)).toBe(true);
    } finally {
      socket.close();
    }
  });

  test('statelessResetKey must be a 32-byte Buffer', () => {
    expect(() => new Engine({ statelessResetKey: 'secret' as any })).toThrow(
      expect.objectContaining({ name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' }),
    );
    expect(() => new Engine({ statelessResetKey: randomBytes(31) })).toThrow(
      expect.objectContaining({ name: 'RangeError', code: 'ERR_INVALID_ARG_VALUE' }),
    );
  });
});
