#!/usr/bin/env node
// quicket scale-out on one machine: N worker processes listen on ONE UDP port (`reusePort: true`,
// i.e. SO_REUSEPORT: the kernel hashes each client's address and port to one worker) and share
// ONE 48-byte `ticketKeys`, so a session ticket issued by any worker resumes, with 0-RTT, on any
// other.
//
//   node examples/cluster [--workers 4] [--port 0] [--serve] [--ticket-keys-file keys.bin]
//
// Without --serve it also plays the client: it connects from fresh client engines (each has its
// own source port, so the kernel spreads them over the workers) until every worker has served a
// connection, printing who served what; then it resumes tickets issued by one worker on another
// and prints whether the 0-RTT request was accepted; then it stops the workers. Exit code 0 when
// every cross-worker resumption was 0-RTT.
//
// With --serve it only runs the cluster (Ctrl-C stops it); point `quicket`-based clients at the
// printed port, ALPN "cluster-demo", servername "localhost", CA test/fixtures/certs/ca.pem.
//
// What is NOT shared between workers: connections (each lives in the process the kernel picked;
// its packets keep going there), and the 0-RTT anti-replay store (per process). A captured 0-RTT
// flight refused as a replay by one worker may be accepted once by another: do not do
// non-idempotent work on `stream.early` data (answer 425 Too Early in HTTP/3). See RELIABILITY.md.
'use strict';

const cluster = require('node:cluster');
const crypto = require('node:crypto');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { parseArgs } = require('node:util');

const { Engine, SslConfig } = require('../..');

const ALPN = 'cluster-demo';
const HOST = '127.0.0.1';
const root = path.join(__dirname, '..', '..');
const certs = path.join(root, 'test', 'fixtures', 'certs');
const read = (name) => fs.readFileSync(path.join(certs, name));

// ---- worker ------------------------------------------------------------------------------------

async function worker() {
  const id = Number(process.env.CLUSTER_WORKER_ID);
  const engine = new Engine({
    ssl: new SslConfig({
      alpn: [ALPN],
      cert: read('server.pem'),
      key: read('server-key.pem'),
      ticketKeys: Buffer.from(process.env.CLUSTER_TICKET_KEYS, 'hex'), // the same in every worker
      earlyData: true,
    }),
    reusePort: true,
  });
  engine.on('connection', (connection) => {
    connection.on('error', () => {});
    connection.on('handshake', (info) =>
      console.log(`  [worker ${id}] handshake: resumed=${info.resumed} 0-RTT=${info.earlyData}`),
    );
    connection.on('stream', (stream) => {
      const chunks = [];
      stream.on('error', () => {});
      stream.on('data', (chunk) => chunks.push(chunk));
      stream.on('end', () => {
        // A real server would refuse non-idempotent work here when stream.early is true.
        stream.end(JSON.stringify({ worker: id, pid: process.pid, early: stream.early, bytes: Buffer.concat(chunks).length }));
      });
    });
  });
  const { port } = await engine.listen({ host: HOST, port: Number(process.env.CLUSTER_PORT) });
  process.send({ listening: port });
  process.on('disconnect', () => engine.close());
}

// ---- primary -----------------------------------------------------------------------------------

function fork(id, keys, port) {
  const child = cluster.fork({ CLUSTER_WORKER_ID: String(id), CLUSTER_TICKET_KEYS: keys.toString('hex'), CLUSTER_PORT: String(port) });
  return new Promise((resolve, reject) => {
    child.once('message', (message) => resolve({ id, child, port: message.listening }));
    child.once('exit', (code) => reject(new Error(`worker ${id} exited with code ${code} before listening`)));
  });
}

async function request(connection, text) {
  const stream = connection.openStream();
  const chunks = [];
  const done = new Promise((resolve, reject) => {
    stream.on('data', (chunk) => chunks.push(chunk));
    stream.once('end', resolve);
    stream.once('error', reject);
  });
  stream.end(text);
  await done;
  return JSON.parse(Buffer.concat(chunks).toString());
}

async function demonstrate(port, count) {
  const ssl = new SslConfig({ alpn: [ALPN], ca: read('ca.pem') });
  const engines = [];
  const byWorker = new Map(); // worker id -> { engine, ticket }: the engine the kernel sends to that worker
  let ok = true;
  try {
    console.log(`\n1) fresh client engines (new source ports) until all ${count} workers have served one`);
    for (let attempt = 1; attempt <= 20 * count && byWorker.size < count; attempt++) {
      const engine = new Engine({ ssl });
      engines.push(engine);
      const connection = engine.connect({ host: HOST, port, servername: 'localhost' });
      const ticket = new Promise((resolve) => connection.once('ticket', resolve));
      const answer = await request(connection, `hello ${attempt}`);
      console.log(`connection ${attempt} (client engine ${attempt}): served by worker ${answer.worker} (pid ${answer.pid})`);
      if (!byWorker.has(answer.worker)) byWorker.set(answer.worker, { engine, ticket: await ticket });
      await connection.close();
    }
    if (byWorker.size < count) throw new Error(`only ${byWorker.size} of ${count} workers were reached`);

    console.log('\n2) each worker resumes a ticket issued by another worker, with the request as 0-RTT');
    const ids = [...byWorker.keys()].sort((a, b) => a - b);
    for (let i = 0; i < ids.length; i++) {
      const issuer = ids[i];
      const resumer = ids[(i + 1) % ids.length];
      const { engine } = byWorker.get(resumer);
      const connection = engine.connect({ host: HOST, port, servername: 'localhost', ticket: byWorker.get(issuer).ticket });
      const pending = request(connection, 'an idempotent GET-like request'); // same tick: 0-RTT
      const info = await connection.handshake;
      const answer = await pending;
      const good = info.resumed && info.earlyData === 'accepted' && answer.early && answer.worker === resumer;
      ok &&= good;
      console.log(
        `ticket from worker ${issuer} resumed on worker ${answer.worker}: resumed=${info.resumed} 0-RTT=${info.earlyData}` +
          ` (request arrived as early data: ${answer.early})${good ? '' : '  <-- NOT 0-RTT'}`,
      );
      await connection.close();
    }
  } finally {
    await Promise.all(engines.map((engine) => engine.close()));
  }
  console.log(ok ? '\nevery cross-worker resumption was 0-RTT' : '\nsome cross-worker resumptions were not 0-RTT');
  return ok;
}

async function primary() {
  const { values } = parseArgs({
    options: {
      workers: { type: 'string', default: '4' },
      port: { type: 'string', default: '0' },
      serve: { type: 'boolean', default: false },
      'ticket-keys-file': { type: 'string' },
    },
  });
  const count = Number(values.workers);
  if (!Number.isInteger(count) || count < 1 || count > 64) throw new Error('--workers must be 1..64');
  // Throwaway test certificates made by the repository's own script.
  execFileSync('bash', [path.join(root, 'scripts', 'gen-certs.sh')], { stdio: ['ignore', 'ignore', 'inherit'] });
  const keys = values['ticket-keys-file'] ? fs.readFileSync(values['ticket-keys-file']) : crypto.randomBytes(48);
  if (keys.length !== 48) throw new Error("the ticket keys file must hold exactly 48 bytes");

  cluster.setupPrimary({ exec: __filename, args: [], silent: false });
  // The first worker picks the port (0: any free one); the others join it.
  const first = await fork(1, keys, Number(values.port));
  const rest = await Promise.all(Array.from({ length: count - 1 }, (_, i) => fork(i + 2, keys, first.port)));
  const workers = [first, ...rest];
  console.log(`${count} workers (pids ${workers.map((w) => w.child.process.pid).join(', ')}) listen on udp ${HOST}:${first.port}, one shared ticket key`);

  const stop = () => Promise.all(workers.map((w) => new Promise((resolve) => (w.child.isDead() ? resolve() : (w.child.once('exit', resolve), w.child.disconnect())))));
  if (values.serve) {
    process.once('SIGINT', () => stop().then(() => process.exit(0)));
    return;
  }
  let ok = false;
  try {
    ok = await demonstrate(first.port, count);
  } finally {
    await stop();
  }
  process.exitCode = ok ? 0 : 1;
}

if (cluster.isPrimary) {
  primary().catch((error) => {
    console.error(error);
    process.exit(1);
  });
} else {
  worker().catch((error) => {
    console.error(error);
    process.exit(1);
  });
}
