// qlogDir: one qlog file per connection, named after the connection ID both sides share.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { Connection, Engine, Stream } from '../lib';
import { HOST, clientSsl, roundTrip, serverSsl, useEngines } from './helpers';

describe('qlog', () => {
  const engines = useEngines();
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quicket-qlog-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('each side writes a qlog of the connection into qlogDir', async () => {
    const server = engines.engine({ ssl: serverSsl(), qlogDir: dir });
    server.on('connection', (connection: Connection) => connection.on('stream', (stream: Stream) => stream.pipe(stream)));
    const { port } = await server.listen({ host: HOST, port: 0 });
    const client = engines.engine({ qlogDir: dir });
    const connection = client.connect({ host: HOST, port, servername: 'localhost', ssl: clientSsl() });
    expect((await roundTrip(connection, Buffer.from('logged'))).toString()).toBe('logged');
    await connection.close();
    await engines.closeAll();
    const files = fs.readdirSync(dir).sort();
    expect(files).toHaveLength(2);
    const [clientFile, serverFile] = files;
    expect(clientFile.replace('client-', '')).toBe(serverFile.replace('server-', ''));
    const first = JSON.parse(fs.readFileSync(path.join(dir, clientFile), 'utf8').split('\n')[0].replace(/^\x1e/, ''));
    expect(first.trace.vantage_point.type).toBe('client');
  });

  test('a qlogDir that is not a directory is refused', () => {
    expect(() => new Engine({ qlogDir: path.join(dir, 'missing') })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(() => new Engine({ qlogDir: 42 as unknown as string })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
  });
});
