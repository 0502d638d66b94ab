#!/usr/bin/env node
// A flood of first flights at a listening engine (RELIABILITY.md, "Flood of first flights"):
//
//   node scripts/flood.js [--flights 50000] [--ports 1000] [--seconds 10] [--engine '{"addressValidation":"auto"}']
//
// 1. Makes `flights` real client Initials (a real ClientHello each, its own connection IDs) by
//    starting quicket client connections at a UDP socket that only records their first datagram.
// 2. Starts a quicket server in a child process with the `--engine` options and sends the
//    recorded Initials to it from `ports` source ports, spread evenly over `seconds`. Anyone can
//    make such packets; none of their senders ever answers the server.
// 3. Meanwhile a legitimate client makes a full handshake every 200 ms and times it.
// Prints a table and writes flood-results/latest.json: the server's RSS before, at its peak and
// after, its engine.stats(), the legitimate handshake times. Every child is ended by its PID.
'use strict';

const { spawn } = require('node:child_process');
const dgram = require('node:dgram');
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');
const { Engine, SslConfig } = require(path.join(ROOT, 'dist'));
const CERTS = path.join(ROOT, 'test', 'fixtures', 'certs');
const ALPN = 'quicket-test';

function option(name, fallback) {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 ? process.argv[at + 1] : fallback;
}
const FLIGHTS = Math.min(Number(option('flights', 50000)), 200000);
const PORTS = Math.min(Number(option('ports', 1000)), 4000);
const SECONDS = Math.min(Number(option('seconds', 10)), 60);
const ENGINE = JSON.parse(option('engine', '{}'));

const SERVER = `
const { Engine, SslConfig } = require(${JSON.stringify(path.join(ROOT, 'dist'))});
const fs = require('node:fs');
const read = (name) => fs.readFileSync(require('node:path').join(${JSON.stringify(CERTS)}, name));
const engine = new Engine({ ...JSON.parse(process.argv[1]),
  ssl: new SslConfig({ alpn: [${JSON.stringify(ALPN)}], cert: read('server.pem'), key: read('server-key.pem') }) });
engine.on('connection', (connection) => { connection.on('error', () => {}); connection.on('stream', (s) => s.pipe(s)); });
const report = () => process.stdout.write(JSON.stringify({ rss: process.memoryUsage().rss, stats: engine.stats() }) + '\\n');
engine.listen({ host: '127.0.0.1' }).then(({ port }) => process.stdout.write(JSON.stringify({ port }) + '\\n'));
process.stdin.on('data', report);
process.stdin.on('end', () => engine.close().then(() => process.exit(0)));
`;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** `count` first datagrams of real client connections. */
async function recordInitials(count) {
  const catcher = dgram.createSocket('udp4');
  const initials = [];
  const seen = new Set();
  catcher.on('message', (message, from) => {
    const key = message.subarray(6, 6 + message[5]).toString('hex'); // the DCID: one per connection
    if (message.length >= 1200 && (message[0] & 0xf0) === 0xc0 && !seen.has(key)) {
      seen.add(key);
      initials.push(message);
    }
  });
  await new Promise((resolve) => catcher.bind(0, '127.0.0.1', resolve));
  const port = catcher.address().port;
  const ssl = new SslConfig({ alpn: [ALPN], rejectUnauthorized: false });
  const engines = Array.from({ length: 8 }, () => new Engine({ ssl, handshakeTimeout: 1000 }));
  const deadline = Date.now() + 180000; // about 400 a second on 2 cores
  while (initials.length < count && Date.now() < deadline) {
    const batch = [];
    for (const engine of engines) {
      for (let i = 0; i < 50; i++) {
        const connection = engine.connect({ host: '127.0.0.1', port, servername: 'localhost' });
        connection.on('error', () => {});
        batch.push(connection);
      }
    }
    await sleep(5);
    for (const connection of batch) connection.destroy();
  }
  await Promise.all(engines.map((engine) => engine.close()));
  catcher.close();
  return initials.slice(0, count);
}

function vmRss(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)[1]) * 1024;
}

function percentile(values, p) {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function main() {
  const madeAt = Date.now();
  const initials = await recordInitials(FLIGHTS);
  const generateSeconds = (Date.now() - madeAt) / 1000;

  const server = spawn(process.execPath, ['-e', SERVER, JSON.stringify(ENGINE)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = [];
  let waiting;
  let pending = '';
  server.stdout.on('data', (chunk) => {
    pending += chunk;
    let newline;
    while ((newline = pending.indexOf('\n')) >= 0) {
      lines.push(JSON.parse(pending.slice(0, newline)));
      pending = pending.slice(newline + 1);
      if (waiting) waiting();
    }
  });
  const nextLine = async () => {
    const deadline = Date.now() + 10000;
    while (lines.length === 0) {
      if (Date.now() > deadline) throw new Error('the server did not answer');
      await new Promise((resolve) => { waiting = resolve; setTimeout(resolve, 100); });
    }
    return lines.shift();
  };
  const ask = async () => { server.stdin.write('?\n'); return nextLine(); };
  try {
    const { port } = await nextLine();
    await sleep(300);
    const before = await ask();

    const sockets = await Promise.all(Array.from({ length: PORTS }, async () => {
      const socket = dgram.createSocket('udp4');
      socket.on('message', () => {}); // the server's answers are never read: nobody answers back
      await new Promise((resolve) => socket.bind(0, '127.0.0.1', resolve));
      return socket;
    }));

    // The legitimate client, every 200 ms during the flood.
    const handshakes = [];
    const failures = [];
    let flooding = true;
    const legit = (async () => {
      const ssl = new SslConfig({ alpn: [ALPN], ca: fs.readFileSync(path.join(CERTS, 'ca.pem')) });
      while (flooding) {
        const engine = new Engine({ ssl, handshakeTimeout: 5000 });
        const started = process.hrtime.bigint();
        const connection = engine.connect({ host: '127.0.0.1', port, servername: 'localhost' });
        connection.on('error', () => {});
        try {
          await connection.handshake;
          handshakes.push(Number(process.hrtime.bigint() - started) / 1e6);
        } catch (error) {
          failures.push(error.code);
        }
        await engine.close();
        await sleep(200);
      }
    })();

    let peakRss = vmRss(server.pid);
    const startedAt = Date.now();
    const perTick = Math.ceil(FLIGHTS / (SECONDS * 100)); // a batch every 10 ms
    let sent = 0;
    while (sent < initials.length && Date.now() - startedAt < (SECONDS + 5) * 1000) {
      const due = Math.min(initials.length, Math.floor(((Date.now() - startedAt) / 10 + 1) * perTick));
      while (sent < due) {
        sockets[sent % PORTS].send(initials[sent], port, '127.0.0.1');
        sent++;
      }
      peakRss = Math.max(peakRss, vmRss(server.pid));
      await sleep(10);
    }
    const floodSeconds = (Date.now() - startedAt) / 1000;
    for (let i = 0; i < 20; i++) {
      peakRss = Math.max(peakRss, vmRss(server.pid));
      await sleep(50);
    }
    const during = await ask();
    flooding = false;
    await legit;
    for (const socket of sockets) socket.close();

    const MiB = (bytes) => Math.round((bytes / 1048576) * 10) / 10;
    const result = {
      engine: ENGINE,
      flights: sent,
      generated: { flights: initials.length, seconds: generateSeconds },
      sourcePorts: PORTS,
      floodSeconds,
      flightsPerSecond: Math.round(sent / floodSeconds),
      serverRssMiB: { before: MiB(before.rss), peak: MiB(peakRss), after: MiB(during.rss), growth: MiB(peakRss - before.rss) },
      serverStats: during.stats,
      legitimateHandshakesMs: {
        count: handshakes.length,
        failures,
        p50: percentile(handshakes, 50),
        p99: percentile(handshakes, 99),
        max: Math.max(...handshakes),
      },
    };
    console.table({
      'first flights sent': result.flights,
      'from source ports': result.sourcePorts,
      'seconds': result.floodSeconds,
      'flights/s': result.flightsPerSecond,
      'server RSS growth (MiB, peak)': result.serverRssMiB.growth,
      'Retry sent': result.serverStats.retriesSent,
      'refused': result.serverStats.connectionsRefused,
      'legit handshakes': `${handshakes.length} ok, ${failures.length} failed`,
      'legit p50 / p99 / max (ms)': `${result.legitimateHandshakesMs.p50.toFixed(1)} / ${result.legitimateHandshakesMs.p99.toFixed(1)} / ${result.legitimateHandshakesMs.max.toFixed(1)}`,
    });
    fs.mkdirSync(path.join(ROOT, 'flood-results'), { recursive: true });
    fs.writeFileSync(path.join(ROOT, 'flood-results', 'latest.json'), `${JSON.stringify(result, null, 2)}\n`);
  } finally {
    server.stdin.end();
    await sleep(500);
    if (server.exitCode === null) process.kill(server.pid, 'SIGKILL');
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
