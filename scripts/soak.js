#!/usr/bin/env node
// The long variants of the reliability and load tests (test/reliability.test.ts, test/load.test.ts
// run short ones in the suite). Loopback only, every phase bounded by a count and a deadline.
//
//   node scripts/soak.js [--only concurrent,sequential,streams,lossy,zero-rtt]
//                        [--connections 1000] [--handshakes 10000] [--streams 10000]
//                        [--transfer-mib 20] [--seeds 20240601,7] [--zero-rtt 50] [--time-limit 900]
//
// Phases:
//   concurrent  --connections connections at once on one server engine (10 client engines),
//               each one request/response; all must succeed.
//   sequential  --handshakes handshakes one after another, every other one resumed from the
//               newest ticket with its request as 0-RTT, every 10th on a fresh client engine.
//               RSS and open fds (/proc/self/fd) after a full GC are sampled after the first
//               1,000 and then every 1,000. Allowed: open fds +0; RSS +48 MiB from the first
//               sample to the last, and +16 MiB over the second half (a per-handshake leak grows
//               linearly and fails the second bound).
//   streams     --streams streams opened and closed on one connection, 300 at a time (over the
//               server's limit of 128 concurrent streams), each echoing a distinct payload.
//   lossy       --transfer-mib MiB each direction on one stream through the fault-injecting relay
//               (10% loss, 10% reordering, 5% duplication, both directions), once per seed in
//               --seeds; both directions must arrive byte-exact.
//   zero-rtt    --zero-rtt resumptions through that lossy relay (one seed each), 64 KiB written as
//               0-RTT, the client's first datagram exempt from loss (losing it with this much early
//               data is a known bug: RELIABILITY.md); every one must resume with 0-RTT accepted
//               and echo every byte.
//
// Prints one JSON line per phase and a summary. Exit status: 0 all passed, 1 a failure, 2 the
// time limit cut the run short. Uses lib/ and the test helpers directly (TypeScript, transpiled
// on load by scripts/lib/require-ts.js); QUICKET_NATIVE selects another addon build (ASan).
'use strict';

require('./lib/require-ts');
const { execFileSync } = require('node:child_process');
const path = require('node:path');

const root = path.join(__dirname, '..');
execFileSync('bash', [path.join(root, 'scripts', 'gen-certs.sh')], {
  stdio: ['ignore', 'ignore', 'inherit'],
  env: { ...process.env, LD_PRELOAD: '' }, // not bash and openssl under AddressSanitizer (scripts/fuzz-asan.sh)
});

const { Engine } = require('../lib');
const { HOST, clientSsl, serverSsl } = require('../test/helpers');
const { UdpRelay } = require('../test/helpers/udp-relay');
const W = require('../test/helpers/workloads');

const MIB = 1024 * 1024;
const LOSSY = { drop: 0.1, reorder: 0.1, duplicate: 0.05 };

function parseArgs(argv) {
  const options = {
    only: 'concurrent,sequential,streams,lossy,zero-rtt',
    connections: 1000,
    handshakes: 10000,
    streams: 10000,
    transferMib: 20,
    seeds: '20240601',
    zeroRtt: 50,
    timeLimit: 900,
  };
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i].replace(/^--/, '').replace(/-(\w)/g, (_, c) => c.toUpperCase());
    const value = argv[i + 1];
    if (!(name in options) || value === undefined) {
      console.error('usage: soak.js [--only a,b] [--connections N] [--handshakes N] [--streams N] [--transfer-mib N] [--seeds a,b] [--zero-rtt N] [--time-limit SECONDS]');
      process.exit(64);
    }
    options[name] = typeof options[name] === 'number' ? Number(value) : value;
    if (typeof options[name] === 'number' && !(Number.isInteger(options[name]) && options[name] >= 0)) {
      console.error(`--${argv[i].replace(/^--/, '')} must be a non-negative integer`);
      process.exit(64);
    }
  }
  return options;
}

const options = parseArgs(process.argv.slice(2));
const deadline = Date.now() + options.timeLimit * 1000;
const left = () => Math.max(1000, deadline - Date.now());
const mib = (bytes) => Math.round((bytes / MIB) * 10) / 10;

/** Engines made by a phase, closed when it ends whatever happens. */
async function withEngines(run) {
  const open = [];
  const make = (engineOptions) => {
    const engine = new Engine(engineOptions);
    open.push(engine);
    return engine;
  };
  try {
    return await run(make);
  } finally {
    await Promise.all(open.map((engine) => engine.close()));
  }
}

async function echoServer(make, ssl) {
  const engine = make({ ssl: ssl ?? serverSsl() });
  engine.on('connection', (connection) => {
    connection.on('error', () => {});
    connection.on('stream', (stream) => {
      stream.on('error', () => {});
      stream.pipe(stream);
    });
  });
  const { port } = await engine.listen({ host: HOST, port: 0 });
  return { engine, port };
}

const phases = {
  async concurrent() {
    return withEngines(async (make) => {
      const { port } = await echoServer(make);
      const clients = Array.from({ length: 10 }, () => make({ ssl: clientSsl() }));
      const started = Date.now();
      const result = await W.concurrentRequests({ clients, port, count: options.connections, size: 2000, deadline: left() });
      return { ...result, ms: Date.now() - started, pass: result.ok === options.connections };
    });
  },

  async sequential() {
    return withEngines(async (make) => {
      const { port } = await echoServer(make, serverSsl('server', { earlyData: true }));
      const started = Date.now();
      const warmup = Math.min(1000, options.handshakes);
      const result = await W.sequentialHandshakes({
        makeClient: () => new Engine({ ssl: clientSsl() }),
        port,
        count: options.handshakes,
        warmup,
        sampleEvery: 1000,
        newEngineEvery: 10,
        deadline: left(),
        onSample: (sample) =>
          console.error(`  sequential: ${sample.after} handshakes, rss ${mib(sample.rss)} MiB, heap ${mib(sample.heapUsed)} MiB, fds ${sample.fds}`),
      });
      const first = result.samples[0];
      const last = result.samples.at(-1);
      const middle = result.samples.reduce((best, s) => (Math.abs(s.after - options.handshakes / 2) < Math.abs(best.after - options.handshakes / 2) ? s : best), first);
      const growth = {
        fds: last.fds - first.fds,
        rssMiB: mib(last.rss - first.rss),
        rssSecondHalfMiB: mib(last.rss - middle.rss),
        heapMiB: mib(last.heapUsed - first.heapUsed),
      };
      const allowed = { fds: 0, rssMiB: 48, rssSecondHalfMiB: 16 };
      const pass =
        result.outcomes.ok === options.handshakes &&
        result.resumed === result.offered &&
        result.early === result.offered &&
        growth.fds <= allowed.fds &&
        growth.rssMiB <= allowed.rssMiB &&
        growth.rssSecondHalfMiB <= allowed.rssSecondHalfMiB;
      return {
        handshakes: result.handshakes,
        resumed: result.resumed,
        early: result.early,
        offered: result.offered,
        outcomes: result.outcomes,
        samples: result.samples.map((s) => ({ after: s.after, rssMiB: mib(s.rss), heapMiB: mib(s.heapUsed), fds: s.fds })),
        growth,
        allowed,
        ms: Date.now() - started,
        pass,
      };
    });
  },

  async streams() {
    return withEngines(async (make) => {
      const { port } = await echoServer(make);
      const client = make({ ssl: clientSsl() });
      const connection = client.connect({ host: HOST, port, servername: 'localhost' });
      connection.on('error', () => {});
      await connection.handshake;
      const before = await W.resources();
      const started = Date.now();
      const result = await W.manyStreams(connection, { count: options.streams, concurrency: 300, deadline: left() });
      const after = await W.resources();
      const pass = result.ok === options.streams && result.lastId === 4n * BigInt(options.streams - 1) && !connection.closed;
      return {
        streams: result.streams,
        ok: result.ok,
        bytes: result.bytes,
        lastId: String(result.lastId),
        outcomes: result.outcomes,
        rssGrowthMiB: mib(after.rss - before.rss),
        fdGrowth: after.fds - before.fds,
        ms: Date.now() - started,
        pass,
      };
    });
  },

  async lossy() {
    const size = options.transferMib * MIB;
    const runs = [];
    for (const seed of options.seeds.split(',').map(Number)) {
      runs.push(
        await withEngines(async (make) => {
          const results = [];
          const server = make({ ssl: serverSsl() });
          server.on('connection', W.patternServer(size, results));
          const { port } = await server.listen({ host: HOST, port: 0 });
          const relay = await UdpRelay.create({ targetPort: port, seed, ...LOSSY });
          try {
            const started = Date.now();
            const connection = make({ ssl: clientSsl() }).connect({ host: HOST, port: relay.port, servername: 'localhost' });
            connection.on('error', () => {});
            const atClient = await W.within(left(), `lossy transfer (seed ${seed})`, W.patternClient(connection, size));
            const atServer = await W.within(left(), `lossy transfer (seed ${seed})`, results[0]);
            const pass =
              atClient.received.bytes === size &&
              atClient.received.mismatchAt === undefined &&
              atServer.received.bytes === size &&
              atServer.received.mismatchAt === undefined;
            return { seed, mib: options.transferMib, toServer: atServer.received, toClient: atClient.received, relay: relay.stats, ms: Date.now() - started, pass };
          } finally {
            await relay.close();
          }
        }),
      );
    }
    return { runs, pass: runs.every((run) => run.pass) };
  },

  async 'zero-rtt'() {
    return withEngines(async (make) => {
      const { port } = await echoServer(make, serverSsl('server', { earlyData: true }));
      const client = make({ ssl: clientSsl() });
      const tally = {};
      let dropped = 0;
      const started = Date.now();
      let ticket;
      {
        const first = client.connect({ host: HOST, port, servername: 'localhost' });
        ticket = await new Promise((resolve) => first.once('ticket', resolve));
        await first.close();
      }
      for (let seed = 1; seed <= options.zeroRtt; seed++) {
        if (Date.now() > deadline) throw new Error('time limit');
        const relay = await UdpRelay.create({ targetPort: port, seed, ...LOSSY });
        let first = true;
        relay.tap(({ direction }) => (direction === 'toServer' && first ? ((first = false), 'pass') : undefined));
        try {
          const connection = client.connect({ host: HOST, port: relay.port, servername: 'localhost', ticket });
          connection.on('error', () => {});
          const next = new Promise((resolve) => connection.once('ticket', resolve));
          const data = Buffer.alloc(64 * 1024, seed);
          const reply = W.exchange(connection, data);
          reply.catch(() => {});
          const info = await W.within(30000, `0-RTT seed ${seed}`, connection.handshake);
          const ok = (await W.within(30000, `0-RTT seed ${seed}`, reply)).equals(data);
          const key = ok && info.resumed && info.earlyData === 'accepted' ? 'ok' : `resumed=${info.resumed} earlyData=${info.earlyData} intact=${ok}`;
          tally[key] = (tally[key] ?? 0) + 1;
          ticket = await W.within(30000, 'ticket', next);
          await connection.close();
        } catch (error) {
          tally[error.code ?? error.message] = (tally[error.code ?? error.message] ?? 0) + 1;
        } finally {
          dropped += relay.stats.toServer.dropped + relay.stats.toClient.dropped;
          await relay.close();
        }
      }
      return { resumptions: options.zeroRtt, outcomes: tally, droppedByRelay: dropped, ms: Date.now() - started, pass: tally.ok === options.zeroRtt };
    });
  },
};

async function main() {
  const selected = options.only.split(',').filter(Boolean);
  for (const name of selected) {
    if (!phases[name]) {
      console.error(`unknown phase "${name}"; phases: ${Object.keys(phases).join(', ')}`);
      process.exit(64);
    }
  }
  const summary = {};
  let timedOut = false;
  for (const name of selected) {
    if (Date.now() > deadline) {
      timedOut = true;
      summary[name] = 'not run (time limit)';
      continue;
    }
    let result;
    try {
      result = await phases[name]();
    } catch (error) {
      if (Date.now() > deadline) timedOut = true;
      result = { pass: false, error: String(error && error.stack) };
    }
    console.log(JSON.stringify({ phase: name, ...result }, (_, value) => (typeof value === 'bigint' ? String(value) : value)));
    summary[name] = result.pass ? 'pass' : 'FAIL';
  }
  console.log(JSON.stringify({ summary, options }));
  const failed = Object.values(summary).some((status) => status === 'FAIL');
  process.exitCode = failed ? 1 : timedOut ? 2 : 0;
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
