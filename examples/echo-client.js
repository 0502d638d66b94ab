#!/usr/bin/env node
// An echo client that keeps its session ticket in a file: with a ticket there it resumes and
// sends its data as 0-RTT; it always saves the newest ticket it receives.
'use strict';
const fs = require('node:fs');
const { parseArgs } = require('node:util');
const { Engine, SslConfig } = require('..');

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string' },
    servername: { type: 'string', default: 'localhost' },
    ca: { type: 'string' },
    'ticket-file': { type: 'string' },
    bytes: { type: 'string', default: '65536' },
  },
});

async function main() {
  const ticketFile = values['ticket-file'];
  const ticket = ticketFile && fs.existsSync(ticketFile) ? fs.readFileSync(ticketFile) : undefined;
  const ssl = new SslConfig({ alpn: ['echo'], ca: values.ca ? fs.readFileSync(values.ca) : undefined });
  const engine = new Engine();
  const payload = Buffer.alloc(Number(values.bytes), 'quicket ');

  const started = process.hrtime.bigint();
  const ms = (from) => (Number(process.hrtime.bigint() - from) / 1e6).toFixed(2);
  const connection = engine.connect({ host: values.host, port: Number(values.port), servername: values.servername, ssl, ticket });
  connection.on('ticketRejected', (reason) => console.log(`   client: stored ticket not used (${reason})`));
  if (ticketFile) {
    connection.on('ticket', (fresh) => {
      // Write then rename: a reader never sees half a ticket.
      fs.writeFileSync(`${ticketFile}.tmp`, fresh);
      fs.renameSync(`${ticketFile}.tmp`, ticketFile);
    });
  }
  // Opened in the same tick as connect(): with a ticket, these bytes ride the first flight.
  const stream = connection.openStream();
  stream.end(payload);
  let received = 0;
  let firstByte;
  stream.on('data', (chunk) => {
    firstByte ??= ms(started);
    received += chunk.length;
  });
  const info = await connection.handshake;
  const handshakeMs = ms(started);
  await new Promise((resolve, reject) => {
    stream.on('end', resolve);
    stream.on('error', reject);
  });
  const totalMs = ms(started);
  if (received !== payload.length) throw new Error(`echo lost bytes: ${received} of ${payload.length}`);
  // Throughput only means something for a large echo.
  const rate = received >= 1024 * 1024 ? ` (${((received * 2) / 1e6 / (Number(totalMs) / 1e3)).toFixed(1)} MB/s both ways)` : '';
  console.log(`   client: handshake ${handshakeMs} ms (resumed: ${info.resumed}, 0-RTT: ${info.earlyData}), ` +
    `first echoed byte ${firstByte} ms, ${received} bytes echoed in ${totalMs} ms${rate}`);
  // Give the server a moment to deliver its tickets before closing.
  await new Promise((resolve) => setTimeout(resolve, 20));
  await connection.close();
  await engine.close();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
