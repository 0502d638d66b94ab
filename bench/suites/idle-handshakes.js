'use strict';
// New-client handshake latency while a server holds 10,000 idle connections, against the same
// server holding none: one server process, one client process that opens and holds the idle
// connections, and one client process that times full handshakes one after the other (connect()
// to the handshake's completion). Halves of the "none" samples are taken before the idle
// connections open and after they close, so drift over the run hits both sides alike.
const { sleep } = require('../lib/common');
const { PeerGroup } = require('../lib/processes');
const { median, p99, ratio, round } = require('../lib/stats');
const { formatTable } = require('../lib/table');

// Longer than the whole suite takes: no held connection times out while it runs.
const IDLE_TIMEOUT_MS = 120000;

function summarize(label, samples, extra = {}) {
  return { label, median: round(median(samples)), p99: round(p99(samples)), n: samples.length, ...extra };
}

async function run(ctx) {
  const idleCount = ctx.quick ? 1000 : 10000;
  const perPhase = ctx.quick ? 100 : 300;
  const result = { idleConnections: idleCount, handshakesPerPhase: perPhase, cases: {}, notes: [] };
  const peers = new PeerGroup();
  try {
    const server = await peers.start('quic-server');
    const { port } = await server.call('listen', { mode: 'raw', idleTimeout: IDLE_TIMEOUT_MS });
    const holder = await peers.start('quic-client');
    const timer = await peers.start('quic-client');
    const time = async (count, warmup) => {
      const r = await timer.call('handshakeLatency', { port, count, warmup, timeLimitMs: 20000 }, 40000);
      if (r.failures > 0) result.notes.push(`${r.failures} timed handshakes failed: ${r.lastError}`);
      return r.samples;
    };
    ctx.log('idleHandshakes: no idle connections');
    const none = await time(perPhase / 2, 20);
    ctx.log(`idleHandshakes: opening ${idleCount} idle connections`);
    const opened = await holder.call('openIdle', { port, count: idleCount, concurrency: 50, timeLimitMs: 60000, idleTimeout: IDLE_TIMEOUT_MS }, 90000);
    const held = (await server.call('stats')).open;
    await sleep(500); // the handshakes' last packets and timers settle
    ctx.log(`idleHandshakes: ${held} idle connections held`);
    const withIdle = await time(perPhase, 5);
    const stillHeld = (await server.call('stats')).open;
    await holder.call('closeIdle', {}, 60000);
    await sleep(1000);
    ctx.log('idleHandshakes: no idle connections again');
    none.push(...(await time(perPhase / 2, 5)));
    result.cases.none = summarize('no idle connections', none);
    result.cases.idle = summarize(`${idleCount} idle connections held`, withIdle, { held: stillHeld, opened: opened.opened, failed: opened.failed, lastError: opened.lastError });
    if (stillHeld < idleCount) result.notes.push(`only ${stillHeld} of ${idleCount} idle connections were held while timing`);
  } finally {
    await peers.stop();
  }
  result.ratios = {
    p99IdleVsNone: ratio(result.cases.idle?.p99, result.cases.none?.p99),
    medianIdleVsNone: ratio(result.cases.idle?.median, result.cases.none?.median),
  };
  result.targets = [{
    id: 'idleHandshakes.p99.idleVsNone',
    description: `new-client handshake p99, ${idleCount} idle connections held vs none`,
    value: result.ratios.p99IdleVsNone,
    max: 2,
  }];
  return result;
}

function report(result) {
  const rows = Object.values(result.cases).map((c) => [c.label, c.median, c.p99, c.n, c.held ?? '']);
  return [
    'New-client full handshake while the server holds idle connections: ms from connect() to the handshake (lower is better)',
    formatTable(['', 'median', 'p99', 'n', 'held'], rows),
    `ratios: p99 ${result.ratios.p99IdleVsNone ?? '—'}, median ${result.ratios.medianIdleVsNone ?? '—'} (idle held / none)`,
  ].join('\n');
}

module.exports = { name: 'idleHandshakes', run, report };
