#!/usr/bin/env node
// The whole quicket story on loopback: an echo server; a first client process that does a full
// handshake, measures throughput and saves its session ticket to a file; then a second, new
// process that resumes from that file and sends its request as 0-RTT early data.
'use strict';
const { execFileSync, spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Engine, SslConfig, Ticket } = require('..');

const root = path.join(__dirname, '..');
const certs = path.join(root, 'test', 'fixtures', 'certs');

function runClient(args) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(__dirname, 'echo-client.js'), ...args], { stdio: 'inherit' });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`client exited with ${code}`))));
  });
}

async function main() {
  // Throwaway certificates made by our own script (not anyone's real keys).
  execFileSync('bash', [path.join(root, 'scripts', 'gen-certs.sh')], { stdio: 'inherit' });
  const server = new Engine({
    ssl: new SslConfig({
      alpn: ['echo'],
      cert: fs.readFileSync(path.join(certs, 'server.pem')),
      key: fs.readFileSync(path.join(certs, 'server-key.pem')),
      earlyData: true,
    }),
  });
  server.on('connection', (connection) => {
    connection.on('stream', (stream) => {
      if (stream.early) console.log('server: stream %d arrived as 0-RTT early data', stream.id);
      stream.pipe(stream);
    });
    connection.on('error', () => {});
  });
  const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
  console.log(`server: echo over QUIC on 127.0.0.1:${port}\n`);

  const ticketFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'quicket-demo-')), 'ticket.bin');
  const common = ['--port', String(port), '--ca', path.join(certs, 'ca.pem'), '--ticket-file', ticketFile];
  console.log('1) first process: full handshake, 16 MiB echo, ticket saved');
  await runClient([...common, '--bytes', String(16 * 1024 * 1024)]);
  const info = Ticket.inspect(fs.readFileSync(ticketFile));
  console.log(`   ticket file: ${ticketFile} (for ${info.servername}/${info.alpn}, 0-RTT ${info.earlyData ? 'allowed' : 'not allowed'}, expires ${info.expiresAt.toISOString()})\n`);
  console.log('2) new process: resume from the ticket file, request sent as 0-RTT');
  await runClient([...common, '--bytes', '64']);
  await server.close();
  fs.rmSync(path.dirname(ticketFile), { recursive: true, force: true });
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
