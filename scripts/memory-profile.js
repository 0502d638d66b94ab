#!/usr/bin/env node
// Where the memory of an idle quicket connection goes, by component, on the server and on the
// client: one server process and one client process (one Engine each, as bench/suites/memory.js
// uses them), N connections opened (handshake complete, no streams), then left idle.
//
//   node scripts/memory-profile.js [--connections 1000] [--concurrency 25] [--settle-ms 300]
//
// Each process runs with QUICKET_MEMORY_ACCOUNTING=1 (native/memory_accounting.h; set it to 0 to
// compare without), so the bytes ngtcp2 and OpenSSL hold are counted, and with --expose-gc. Before and after the connections are
// opened, after garbage collection, each reads: RSS, the JS heap, malloc's in-use and free bytes
// (glibc's mallinfo2) and the counters; the differences divided by the connections open are
// printed in bytes per connection. On glibc the counting leaves the heap as it is (block sizes
// come from malloc_usable_size), so the RSS here is the bench's; it has the node:tls baseline
// to compare with. 'other native' is malloc's in-use bytes less ngtcp2's and OpenSSL's: quicket's own
// objects, libuv's, Node's and N-API's, and ngtcp2_crypto_ossl's buffers (plain malloc).
// Loopback only; every wait is bounded, and both children are killed by PID at the end.
'use strict';

const { execFileSync, fork } = require('node:child_process');
const path = require('node:path');

const root = path.join(__dirname, '..');
const HOST = '127.0.0.1';
const ALPN = 'bench';
const TIME_LIMIT_MS = 60000;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---- the child processes ---------------------------------------------------------------------

async function snapshot() {
  for (let i = 0; i < 3; i++) {
    global.gc();
    await sleep(100);
  }
  const { binding } = require(path.join(root, 'dist', 'binding'));
  const { rss, heapUsed, heapTotal, external } = process.memoryUsage();
  return { rss, heapUsed, heapTotal, external, ...binding.memoryUsage() };
}

function certs() {
  const fs = require('node:fs');
  const dir = path.join(root, 'test', 'fixtures', 'certs');
  const read = (name) => fs.readFileSync(path.join(dir, name));
  return { ca: read('ca.pem'), cert: read('server.pem'), key: read('server-key.pem') };
}

async function runServer() {
  const { Engine, SslConfig } = require(path.join(root, 'dist'));
  const { cert, key } = certs();
  const engine = new Engine({ ssl: new SslConfig({ alpn: [ALPN], cert, key, earlyData: true }) });
  let open = 0;
  engine.on('connection', (connection) => {
    open++;
    connection.on('error', () => {});
    connection.once('close', () => open--);
  });
  const { port } = await engine.listen({ host: HOST, port: 0 });
  process.on('message', async (message) => {
    if (message.type === 'snapshot') process.send({ type: 'snapshot', ...(await snapshot()), open });
    if (message.type === 'exit') process.exit(0);
  });
  process.send({ type: 'listening', port });
}

async function runClient(port) {
  const { Engine, SslConfig } = require(path.join(root, 'dist'));
  const engine = new Engine();
  const ssl = new SslConfig({ alpn: [ALPN], ca: certs().ca, earlyData: false });
  const idle = [];
  const open = async (count, concurrency) => {
    let started = 0;
    let failed = 0;
    const deadline = Date.now() + TIME_LIMIT_MS / 2;
    const worker = async () => {
      while (started < count && Date.now() < deadline) {
        started++;
        const connection = engine.connect({ host: HOST, port, servername: 'localhost', ssl });
        connection.on('error', () => {});
        try {
          await connection.handshake;
          idle.push(connection);
        } catch {
          failed++;
        }
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    return failed;
  };
  process.on('message', async (message) => {
    if (message.type === 'open') process.send({ type: 'opened', failed: await open(message.count, message.concurrency) });
    if (message.type === 'closeAll') {
      await Promise.all(idle.splice(0).map((connection) => connection.close().catch(() => connection.destroy())));
      process.send({ type: 'closed' });
    }
    if (message.type === 'snapshot') process.send({ type: 'snapshot', ...(await snapshot()), open: idle.length });
    if (message.type === 'exit') process.exit(0);
  });
  process.send({ type: 'ready' });
}

// ---- the parent --------------------------------------------------------------------------------

function parseArgs(argv) {
  const options = { connections: 1000, concurrency: 25, settleMs: 300 };
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i].replace(/^--/, '').replace(/-(\w)/g, (_, c) => c.toUpperCase());
    if (!(name in options)) throw new Error(`unknown option ${argv[i]}`);
    options[name] = Number(argv[i + 1]);
  }
  return options;
}

function start(role, args = []) {
  const child = fork(__filename, ['--child', role, ...args], {
    execArgv: ['--expose-gc'],
    env: { QUICKET_MEMORY_ACCOUNTING: '1', ...process.env },
  });
  const waiters = [];
  child.on('message', (message) => {
    const index = waiters.findIndex((w) => w.type === message.type);
    if (index >= 0) waiters.splice(index, 1)[0].resolve(message);
  });
  child.next = (type, ms = TIME_LIMIT_MS) => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${role}: no '${type}' within ${ms} ms`)), ms);
    waiters.push({ type, resolve: (message) => { clearTimeout(timer); resolve(message); } });
  });
  child.ask = (message, answer) => {
    const reply = child.next(answer);
    child.send(message);
    return reply;
  };
  return child;
}

function perConnection(before, after, count) {
  const each = (field) => Math.round((after[field] - before[field]) / count);
  const heap = each('heapInUse');
  const ngtcp2 = each('ngtcp2');
  const openssl = each('openssl');
  return {
    rss: each('rss'),
    jsHeapUsed: each('heapUsed'),
    jsHeapTotal: each('heapTotal'),
    nativeHeapInUse: heap,
    ngtcp2,
    openssl,
    otherNative: heap - ngtcp2 - openssl,
    mallocFree: each('heapFree'),
    rest: each('rss') - heap - each('heapFree') - each('heapTotal'),
  };
}

function print(label, parts) {
  const rows = [
    ['RSS', parts.rss],
    ['  JS heap used (heap pages reserved)', `${parts.jsHeapUsed} (${parts.jsHeapTotal})`],
    ['  native heap in use (malloc)', parts.nativeHeapInUse],
    ['    ngtcp2 (ngtcp2_conn and what it allocates)', parts.ngtcp2],
    ['    OpenSSL (SSL objects, sessions, cipher contexts)', parts.openssl],
    ['    other native (quicket, N-API, libuv, crypto_ossl buffers)', parts.otherNative],
    ['  malloc free bytes kept (fragmentation)', parts.mallocFree],
    ['  rest (RSS outside malloc and the JS heap pages)', parts.rest],
  ];
  console.log(`${label}, bytes per idle connection`);
  for (const [name, value] of rows) console.log(`  ${name.padEnd(64)} ${String(value).padStart(8)}`);
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  // The test certificates (made once; the script leaves existing ones alone).
  execFileSync('bash', [path.join(root, 'scripts', 'gen-certs.sh')], { stdio: ['ignore', 'ignore', 'inherit'] });
  const children = [];
  const deadline = setTimeout(() => {
    console.error('memory-profile: time limit reached');
    for (const child of children) child.kill('SIGKILL');
    process.exit(2);
  }, 3 * TIME_LIMIT_MS);
  try {
    const server = start('server');
    children.push(server);
    const { port } = await server.next('listening');
    const client = start('client', [String(port)]);
    children.push(client);
    await client.next('ready');
    // Warm-up: one-time allocations (the engine's tables, OpenSSL's method caches) stay out.
    await client.ask({ type: 'open', count: 20, concurrency: options.concurrency }, 'opened');
    await client.ask({ type: 'closeAll' }, 'closed');
    await sleep(options.settleMs);
    const serverBefore = await server.ask({ type: 'snapshot' }, 'snapshot');
    const clientBefore = await client.ask({ type: 'snapshot' }, 'snapshot');
    const { failed } = await client.ask({ type: 'open', count: options.connections, concurrency: options.concurrency }, 'opened');
    await sleep(options.settleMs);
    const serverAfter = await server.ask({ type: 'snapshot' }, 'snapshot');
    const clientAfter = await client.ask({ type: 'snapshot' }, 'snapshot');
    if (!serverAfter.counting) console.log('note: OpenSSL allocations were not counted (the allocator could not be replaced)');
    console.log(`${clientAfter.open} connections open on the client, ${serverAfter.open} on the server, ${failed} failed`);
    const result = {
      connections: options.connections,
      server: perConnection(serverBefore, serverAfter, serverAfter.open - serverBefore.open),
      client: perConnection(clientBefore, clientAfter, clientAfter.open - clientBefore.open),
    };
    print('server', result.server);
    print('client', result.client);
    console.log(JSON.stringify(result));
    for (const child of children) child.send({ type: 'exit' });
  } finally {
    clearTimeout(deadline);
    await sleep(200);
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  }
}

if (process.argv[2] === '--child') {
  (process.argv[3] === 'server' ? runServer() : runClient(Number(process.argv[4]))).catch((error) => {
    console.error(error);
    process.exit(1);
  });
} else {
  main().catch((error) => {
    console.error(`memory-profile: ${error.message}`);
    process.exit(1);
  });
}
