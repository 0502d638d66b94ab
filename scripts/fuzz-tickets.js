#!/usr/bin/env node
// Feeds damaged tickets to connect(): random bytes, truncations, bit flips and the empty buffer,
// generated from one real ticket with a seeded PRNG. Every connection must complete and deliver
// its bytes; a thrown connect(), a failed connection, a lost byte or a hang is a failure.
//
//   node scripts/fuzz-tickets.js [--cases 10000] [--seed 1] [--concurrency 20] [--time-limit 240] [--resealed] [--trace]
//
// --resealed fuzzes tampered tickets instead: bit flips with the envelope digest recomputed, so the
// damage gets past the envelope checks into OpenSSL and ngtcp2. Damaged session data must still end
// in a working connection (a refused resumption is retried as a full handshake). Damaged 0-RTT
// transport parameters may also end in a clean ERR_QUIC_PROTOCOL / ERR_QUIC_TRANSPORT_ERROR once
// the server's real limits contradict the forged ones after it accepted the early data: counted
// as "failed-cleanly", not as a failure. --trace prints each case to stderr
// before it starts, to find the one that takes the process down.
//
// Needs the compiled library (npm run build:ts) and the test certificates (scripts/gen-certs.sh).
// Exits 0 when every case passed, 1 on any failure, 2 when the time limit cut the run short.
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const { Engine, SslConfig } = require('../dist');
const { decodeTicket } = require('../dist/ticket');
const { generateBadTickets } = require('../test/helpers/bad-tickets');

const ALPN = 'quicket-fuzz';
const HOST = '127.0.0.1';
const CASE_TIMEOUT_MS = 20000;

function parseArgs(argv) {
  const options = { cases: 10000, seed: 1, concurrency: 20, timeLimit: 240, resealed: false, trace: false };
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i].replace(/^--/, '').replace(/-(\w)/g, (_, c) => c.toUpperCase());
    if (name === 'resealed' || name === 'trace') {
      options[name] = true;
      i--;
      continue;
    }
    const value = Number(argv[i + 1]);
    if (!(name in options) || !Number.isInteger(value) || value < 0) {
      console.error('usage: fuzz-tickets.js [--cases N] [--seed N] [--concurrency N] [--time-limit SECONDS] [--resealed] [--trace]');
      process.exit(64);
    }
    options[name] = value;
  }
  return options;
}

const sha256 = (data) => crypto.createHash('sha256').update(data).digest('hex');

function readAll(stream) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    stream.on('data', (chunk) => chunks.push(chunk));
    stream.once('end', () => resolve(Buffer.concat(chunks)));
    stream.once('error', reject);
  });
}

function startServer(certDir) {
  const engine = new Engine({
    ssl: new SslConfig({
      alpn: [ALPN],
      cert: fs.readFileSync(path.join(certDir, 'server.pem')),
      key: fs.readFileSync(path.join(certDir, 'server-key.pem')),
      earlyData: true,
    }),
  });
  engine.on('connection', (connection) => {
    connection.on('error', () => {});
    connection.on('stream', (stream) => {
      stream.on('error', () => {});
      readAll(stream).then(
        (data) => stream.end(JSON.stringify({ length: data.length, sha256: sha256(data), early: stream.early })),
        () => {},
      );
    });
  });
  return engine;
}

// One connection with `ticket`; resolves with what happened, rejects on any failure.
async function runCase(client, port, ticket, payload) {
  const connection = client.connect({ host: HOST, port, servername: 'localhost', ticket });
  const outcome = { rejected: undefined, resumed: false, earlyData: 'none' };
  connection.on('ticketRejected', (reason) => (outcome.rejected = reason));
  connection.on('error', () => {});
  let timer;
  let closing = false;
  const failed = new Promise((_, reject) => {
    connection.once('close', (info) => {
      if (info.error || !closing) reject(info.error || new Error('connection closed before the reply'));
    });
    timer = setTimeout(() => reject(new Error(`no reply within ${CASE_TIMEOUT_MS} ms`)), CASE_TIMEOUT_MS);
  });
  failed.catch(() => {});
  try {
    const stream = connection.openStream();
    stream.end(payload);
    const reply = JSON.parse((await Promise.race([readAll(stream), failed])).toString());
    if (reply.length !== payload.length || reply.sha256 !== sha256(payload)) {
      throw new Error(`bytes altered: sent ${payload.length}, server got ${reply.length}`);
    }
    const info = await connection.handshake;
    outcome.resumed = info.resumed;
    outcome.earlyData = info.earlyData;
    closing = true;
    await Promise.race([connection.close(), failed]);
    return outcome;
  } finally {
    clearTimeout(timer);
    connection.destroy();
  }
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  const certDir = path.join(__dirname, '..', 'test', 'fixtures', 'certs');
  const started = Date.now();
  const deadline = started + options.timeLimit * 1000;
  const server = startServer(certDir);
  const client = new Engine({ ssl: new SslConfig({ alpn: [ALPN], ca: fs.readFileSync(path.join(certDir, 'ca.pem')) }) });
  const counts = {};
  const failures = [];
  let ran = 0;
  try {
    const { port } = await server.listen({ host: HOST, port: 0 });
    const ticket = await new Promise((resolve, reject) => {
      const connection = client.connect({ host: HOST, port, servername: 'localhost' });
      const onClose = (info) => reject(info.error || new Error('closed before a ticket arrived'));
      connection.once('close', onClose);
      connection.once('ticket', (t) => {
        connection.off('close', onClose);
        connection.close().then(() => resolve(t));
      });
      connection.openStream().end('first');
    });
    const cases = generateBadTickets(ticket, options.cases, options.seed, options.resealed ? { kinds: ['resealed'] } : {});
    // The transport parameters are the envelope's last field, just before its digest.
    const paramsEnd = ticket.length - 32;
    const paramsStart = paramsEnd - decodeTicket(ticket).transportParams.length;
    const inParams = (positions) => (positions || []).some((bit) => bit >> 3 >= paramsStart && bit >> 3 < paramsEnd);
    let next = 0;
    const worker = async () => {
      while (next < cases.length && Date.now() < deadline) {
        const index = next++;
        const { kind, ticket: bad, positions } = cases[index];
        const payload = Buffer.from(`case ${index} `.repeat(1 + (index % 50)));
        let label;
        if (options.trace) fs.writeSync(2, `case ${index} ${kind} ${JSON.stringify(positions || [])}\n`);
        try {
          const outcome = await runCase(client, port, bad, payload);
          label = outcome.rejected ? `rejected:${outcome.rejected}` : outcome.resumed ? `resumed:${outcome.earlyData}` : 'full-handshake';
        } catch (error) {
          if (inParams(positions) && ['ERR_QUIC_PROTOCOL', 'ERR_QUIC_TRANSPORT_ERROR'].includes(error.code)) {
            label = `failed-cleanly:${error.code}`;
          } else {
            label = `FAILED:${error.code || error.message}`;
            failures.push({ index, kind, positions, length: bad.length, error: `${error.code || ''} ${error.message}` });
          }
        }
        ran++;
        counts[kind] ??= {};
        counts[kind][label] = (counts[kind][label] || 0) + 1;
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, options.concurrency) }, worker));
  } finally {
    await client.close();
    await server.close();
  }
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  console.log(`seed ${options.seed}: ${ran}/${options.cases} cases in ${seconds} s, ${failures.length} failed`);
  for (const [kind, labels] of Object.entries(counts)) {
    console.log(`  ${kind.padEnd(10)} ${Object.entries(labels).map(([label, n]) => `${label}=${n}`).join('  ')}`);
  }
  for (const failure of failures.slice(0, 20)) console.log('  failure:', JSON.stringify(failure));
  if (failures.length > 20) console.log(`  ... and ${failures.length - 20} more`);
  if (failures.length > 0) process.exitCode = 1;
  else if (ran < options.cases) {
    console.log(`time limit of ${options.timeLimit} s reached before every case ran`);
    process.exitCode = 2;
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
