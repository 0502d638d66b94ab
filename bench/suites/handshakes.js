'use strict';
// Server handshakes per second, full and resumed: one server process, two client processes that
// each keep `concurrency` handshakes in flight. The rate is what the server completed between two
// readings of its own counters (after a warm-up), divided by the time between them on the server's
// own clock, so RPC latency under load does not skew the rate.
const { sleep } = require('../lib/common');
const { PeerGroup } = require('../lib/processes');
const { ratio, round } = require('../lib/stats');
const { formatTable } = require('../lib/table');

const CASES = [
  { id: 'quicketFull', label: 'quicket full', transport: 'quic', resumed: false },
  { id: 'nodeTlsFull', label: 'node:tls full', transport: 'tls', resumed: false },
  { id: 'quicketResumed', label: 'quicket resumed', transport: 'quic', resumed: true },
  { id: 'nodeTlsResumed', label: 'node:tls resumed', transport: 'tls', resumed: true },
];
const CLIENT_PROCESSES = 2;
const CONCURRENCY = 16;

async function measureOnce(server, clients, port, resumed, { warmupMs, windowMs }) {
  const durationMs = warmupMs + windowMs + 500; // the load outlasts the second reading
  const load = Promise.all(clients.map((client) => client.call('handshakes', { port, resumed, concurrency: CONCURRENCY, durationMs }, durationMs + 20000)));
  load.catch(() => {}); // awaited below
  await sleep(warmupMs);
  const before = await server.call('stats');
  await sleep(windowMs);
  const after = await server.call('stats');
  const clientResults = await load;
  const seconds = (after.at - before.at) / 1000;
  const handshakes = after.handshakes - before.handshakes;
  const cpuSeconds = (after.cpu.user + after.cpu.system - before.cpu.user - before.cpu.system) / 1e6;
  return {
    handshakes,
    seconds,
    resumed: after.resumed - before.resumed,
    cpuSeconds,
    clientFailures: clientResults.reduce((sum, r) => sum + r.failed, 0),
    clientCpuBusy: clientResults.reduce((sum, r) => sum + r.cpuBusy, 0),
    lastError: clientResults.find((r) => r.lastError)?.lastError,
  };
}

async function run(ctx) {
  // Many short rounds rather than a few long ones: the load of this machine's other tenants drifts.
  const rounds = ctx.quick ? 1 : 6;
  const timing = ctx.quick ? { warmupMs: 500, windowMs: 1500 } : { warmupMs: 700, windowMs: 3000 };
  const result = { clientProcesses: CLIENT_PROCESSES, concurrencyPerClient: CONCURRENCY, rounds, ...timing, cases: {}, notes: [] };
  const peers = new PeerGroup();
  const start = (module) => peers.start(module);
  const totals = Object.fromEntries(CASES.map((c) => [c.id, { handshakes: 0, seconds: 0, resumed: 0, cpuSeconds: 0, clientFailures: 0, clientCpuBusy: 0, rounds: 0, perRound: [] }]));
  try {
    const servers = { quic: await start('quic-server'), tls: await start('tls-server') };
    const ports = { quic: (await servers.quic.call('listen', { mode: 'raw' })).port, tls: (await servers.tls.call('listen')).port };
    const clients = { quic: [], tls: [] };
    for (let i = 0; i < CLIENT_PROCESSES; i++) {
      clients.quic.push(await start('quic-client'));
      clients.tls.push(await start('tls-client'));
    }
    for (let roundIndex = 0; roundIndex < rounds; roundIndex++) {
      for (const c of CASES) {
        if (ctx.remainingMs() < 40000) {
          result.notes.push(`${c.id}: round ${roundIndex + 1} skipped, time budget exhausted`);
          continue;
        }
        ctx.log(`handshakes: ${c.label}, round ${roundIndex + 1}/${rounds}`);
        try {
          const r = await measureOnce(servers[c.transport], clients[c.transport], ports[c.transport], c.resumed, timing);
          const total = totals[c.id];
          for (const key of Object.keys(r)) if (typeof r[key] === 'number') total[key] += r[key];
          total.rounds++;
          total.perRound.push(round(r.handshakes / r.seconds));
          if (r.lastError) total.lastError = r.lastError;
        } catch (error) {
          result.notes.push(`${c.id}: ${error.message}`);
        }
      }
    }
  } finally {
    await peers.stop();
  }
  for (const c of CASES) {
    const t = totals[c.id];
    result.cases[c.id] = {
      label: c.label,
      perSecond: t.seconds > 0 ? round(t.handshakes / t.seconds) : null,
      handshakes: t.handshakes,
      resumedFraction: t.handshakes > 0 ? round(t.resumed / t.handshakes) : null,
      serverCpuMsPerHandshake: t.handshakes > 0 ? round((t.cpuSeconds * 1000) / t.handshakes) : null,
      // Fraction of one core the server used: well below 1 means the clients set the pace.
      serverCpuBusy: t.seconds > 0 ? round(t.cpuSeconds / t.seconds) : null,
      // Both client processes together, over their whole run (warm-up included).
      clientsCpuBusy: t.rounds > 0 ? round(t.clientCpuBusy / t.rounds) : null,
      perRound: t.perRound,
      clientFailures: t.clientFailures,
      lastError: t.lastError,
    };
  }
  const rate = (id) => result.cases[id].perSecond;
  const cpu = (id) => result.cases[id].serverCpuMsPerHandshake;
  result.ratios = {
    fullVsNodeTls: ratio(rate('quicketFull'), rate('nodeTlsFull')),
    resumedVsNodeTls: ratio(rate('quicketResumed'), rate('nodeTlsResumed')),
    // Below 1: quicket's server spends less CPU per handshake than node:tls's.
    fullServerCpuPerHandshakeVsNodeTls: ratio(cpu('quicketFull'), cpu('nodeTlsFull')),
    resumedServerCpuPerHandshakeVsNodeTls: ratio(cpu('quicketResumed'), cpu('nodeTlsResumed')),
  };
  result.targets = [
    { id: 'handshakes.full.vsNodeTls', description: 'server handshakes/s, full, quicket vs node:tls', value: result.ratios.fullVsNodeTls, min: 2.0 },
    { id: 'handshakes.resumed.vsNodeTls', description: 'server handshakes/s, resumed, quicket vs node:tls', value: result.ratios.resumedVsNodeTls, min: 2.5 },
  ];
  return result;
}

function report(result) {
  const rows = Object.values(result.cases).map((c) => [c.label, c.perSecond, c.resumedFraction, c.serverCpuMsPerHandshake, c.serverCpuBusy, c.clientsCpuBusy, c.handshakes, c.clientFailures]);
  return [
    `Server handshakes per second, ${result.clientProcesses} client processes x ${result.concurrencyPerClient} in flight (higher is better)`,
    formatTable(['', 'per second', 'resumed', 'server CPU ms each', 'server CPU busy', 'clients CPU busy', 'counted', 'client failures'], rows),
    `ratios (rate): full ${result.ratios.fullVsNodeTls ?? '—'}, resumed ${result.ratios.resumedVsNodeTls ?? '—'}; ` +
      `(server CPU per handshake): full ${result.ratios.fullServerCpuPerHandshakeVsNodeTls ?? '—'}, resumed ${result.ratios.resumedServerCpuPerHandshakeVsNodeTls ?? '—'}`,
  ].join('\n');
}

module.exports = { name: 'handshakes', run, report };
