// Keep-alive (RFC 9000 10.1.2): a connection with keepAlive sends a PING after that much silence,
// so a quiet connection outlives its idle timeout while the peer answers, and a NAT keeps its
// mapping; without it the same quiet connection closes on the idle timeout.
import { CloseInfo, Connection, Engine } from '../lib';
import { HOST, useEngines } from './helpers';

const IDLE_TIMEOUT = 1000;
/** Long enough for the idle timeout to have closed a connection without keep-alive, twice over. */
const QUIET = 2.5 * IDLE_TIMEOUT;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('keep-alive', () => {
  const engines = useEngines();

  async function quietPair(clientOptions: { keepAlive?: number } = {}): Promise<{ connection: Connection; serverConnection: Connection }> {
    const server = await engines.server({ engine: { idleTimeout: IDLE_TIMEOUT } });
    const accepted = server.nextConnection();
    const connection = engines.client({ idleTimeout: IDLE_TIMEOUT, ...clientOptions }).connect({ host: HOST, port: server.port, servername: 'localhost' });
    await connection.handshake;
    const serverConnection = await accepted;
    await serverConnection.handshake;
    return { connection, serverConnection };
  }

  const closeInfo = (connection: Connection): Promise<CloseInfo> => new Promise((resolve) => connection.once('close', resolve));

  test("the engine's keepAlive keeps a quiet connection open past the idle timeout, on both sides", async () => {
    const { connection, serverConnection } = await quietPair({ keepAlive: 200 });
    const sentBefore = connection.stats().packetsSent;
    await sleep(QUIET);
    expect(connection.closed).toBe(false);
    expect(serverConnection.closed).toBe(false);
    // About one PING (and its ACK) per 200 ms of silence.
    expect(connection.stats().packetsSent - sentBefore).toBeGreaterThanOrEqual(5);
    await connection.close();
  });

  test('without keep-alive the same quiet connection closes on its idle timeout', async () => {
    const { connection } = await quietPair();
    const info = await closeInfo(connection);
    expect(info).toMatchObject({ reason: 'idle timeout', remote: false });
  });

  test('setKeepAlive(true, ms) turns it on for one connection, setKeepAlive(false) off again', async () => {
    const { connection, serverConnection } = await quietPair();
    expect(connection.setKeepAlive(true, 200)).toBe(connection);
    await sleep(QUIET);
    expect(connection.closed).toBe(false);
    expect(serverConnection.closed).toBe(false);

    connection.setKeepAlive(false);
    const info = await closeInfo(connection);
    expect(info).toMatchObject({ reason: 'idle timeout' });
  });

  test('setKeepAlive() before the server name resolves applies once the connection starts', async () => {
    const server = await engines.server({ engine: { idleTimeout: IDLE_TIMEOUT } });
    const connection = engines.client({ idleTimeout: IDLE_TIMEOUT }).connect({
      host: 'quicket.test',
      port: server.port,
      servername: 'localhost',
      lookup: (_hostname, _options, callback) => setTimeout(() => callback(null, [{ address: HOST, family: 4 }]), 20),
    });
    connection.setKeepAlive(true, 200);
    await connection.handshake;
    await sleep(QUIET);
    expect(connection.closed).toBe(false);
    await connection.close();
  });

  test('arguments are checked; a closed connection ignores it', async () => {
    expect(() => new Engine({ keepAlive: -1 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => new Engine({ keepAlive: '5' as never })).toThrow(expect.objectContaining({ name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' }));
    const { connection } = await engines.pair();
    expect(() => connection.setKeepAlive('yes' as never)).toThrow(expect.objectContaining({ name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => connection.setKeepAlive(true, 1.5)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    await connection.close();
    expect(connection.setKeepAlive(true, 100)).toBe(connection);
  });
});
