// 'keylog': NSS key log lines (as node:tls emits them), for decrypting captures with Wireshark.
import { Connection, Stream } from '../lib';
import { HOST, clientSsl, roundTrip, serverSsl, useEngines } from './helpers';

const label = (line: Buffer): string => line.toString().split(' ')[0];

describe('keylog', () => {
  const engines = useEngines();

  test('the client connection and the server engine emit the same TLS 1.3 secrets, one line each', async () => {
    const server = engines.engine({ ssl: serverSsl() });
    const serverLines: Buffer[] = [];
    const seenOn: Connection[] = [];
    server.on('keylog', (line: Buffer, connection: Connection) => {
      serverLines.push(line);
      seenOn.push(connection);
    });
    server.on('connection', (connection: Connection) => connection.on('stream', (stream: Stream) => stream.pipe(stream)));
    const { port } = await server.listen({ host: HOST, port: 0 });
    const connection = engines.client().connect({ host: HOST, port, servername: 'localhost', ssl: clientSsl() });
    const clientLines: Buffer[] = [];
    connection.on('keylog', (line: Buffer) => clientLines.push(line));
    expect((await roundTrip(connection, Buffer.from('secret'))).toString()).toBe('secret');

    const expected = ['CLIENT_HANDSHAKE_TRAFFIC_SECRET', 'SERVER_HANDSHAKE_TRAFFIC_SECRET', 'CLIENT_TRAFFIC_SECRET_0', 'SERVER_TRAFFIC_SECRET_0'];
    expect(clientLines.map(label)).toEqual(expect.arrayContaining(expected));
    expect(serverLines.map(label)).toEqual(expect.arrayContaining(expected));
    for (const line of clientLines) expect(line.toString()).toMatch(/^[A-Z_0-9]+ [0-9a-f]{64} [0-9a-f]+\n$/);
    // Both ends derive the same secrets.
    expect(new Set(serverLines.map(String))).toEqual(new Set(clientLines.map(String)));
    expect(new Set(seenOn).size).toBe(1);
  });
});
