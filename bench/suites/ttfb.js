'use strict';
// Time to first response byte of a tiny request ("get 100" -> 100 bytes) on a new connection,
// measured by the client from connect() to the first response byte. quicket full handshake,
// resumed (ticket, 0-RTT off) and 0-RTT (ticket, request in the first flight) against node:tls
// full and resumed (the 'session' event's Buffer as `session`). Clients and servers are separate
// processes; with a simulated RTT, a delay relay process sits between them.
const { PeerGroup } = require('../lib/processes');
const { median, p99, ratio, round } = require('../lib/stats');
const { formatTable } = require('../lib/table');

const VARIANTS = [
  { id: 'quicketFull', label: 'quicket full handshake', client: 'quic', variant: 'full' },
  { id: 'quicketResumed', label: 'quicket resumed (no 0-RTT)', client: 'quic', variant: 'resumed' },
  { id: 'quicket0Rtt', label: 'quicket 0-RTT', client: 'quic', variant: '0rtt' },
  { id: 'nodeTlsFull', label: 'node:tls full handshake', client: 'tls', variant: 'full' },
  { id: 'nodeTlsResumed', label: 'node:tls resumed', client: 'tls', variant: 'resumed' },
];
const RESPONSE_BYTES = 100;

function summarize(samples, extra) {
  return { median: round(median(samples)), p99: round(p99(samples)), n: samples.length, ...extra };
}

/** Runs every variant in interleaved rounds; oneWayMs > 0 puts the delay relays in the path. */
async function measure(ctx, { rounds, perRound, oneWayMs }) {
  const peers = new PeerGroup();
  const start = (module) => peers.start(module);
  const out = { variants: {}, notes: [] };
  try {
    const quicServer = await (await start('quic-server')).call('listen', { mode: 'raw' });
    const tlsServer = await (await start('tls-server')).call('listen');
    const ports = { quic: quicServer.port, tls: tlsServer.port };
    if (oneWayMs > 0) {
      const relay = await start('relay');
      out.relay = await relay.call('calibrate', { oneWayMs, count: 40 });
      const relayed = await relay.call('start', { udpTarget: ports.quic, tcpTarget: ports.tls, oneWayMs });
      ports.quic = relayed.udp;
      ports.tls = relayed.tcp;
    }
    const clients = { quic: await start('quic-client'), tls: await start('tls-client') };
    const collected = Object.fromEntries(VARIANTS.map((v) => [v.id, { samples: [], resumed: 0, earlyData: 0, failures: 0 }]));
    const timeLimitMs = ctx.quick ? 5000 : 15000;
    for (let roundIndex = 0; roundIndex < rounds; roundIndex++) {
      for (const v of VARIANTS) {
        if (ctx.remainingMs() < 45000) {
          out.notes.push(`${v.id}: round ${roundIndex + 1} skipped, time budget exhausted`);
          continue;
        }
        ctx.log(`${oneWayMs > 0 ? 'ttfb-rtt' : 'ttfb'}: ${v.label}, round ${roundIndex + 1}/${rounds}`);
        // The first round warms up the JIT and gets the first ticket; later rounds reuse the ticket.
        const args = { port: ports[v.client], variant: v.variant, count: perRound, warmup: roundIndex === 0 ? 5 : 1, timeLimitMs, responseBytes: RESPONSE_BYTES };
        try {
          const r = await clients[v.client].call('ttfb', args, timeLimitMs + 15000);
          const c = collected[v.id];
          c.samples.push(...r.samples);
          c.resumed += r.resumed;
          c.earlyData += r.earlyData;
          c.failures += r.failures;
          if (r.lastError) c.lastError = r.lastError;
        } catch (error) {
          out.notes.push(`${v.id}: ${error.message}`);
        }
      }
    }
    for (const v of VARIANTS) {
      const { samples, resumed, earlyData, failures, lastError } = collected[v.id];
      out.variants[v.id] = summarize(samples, { label: v.label, resumed, earlyData, failures, lastError });
    }
  } finally {
    await peers.stop();
  }
  return out;
}

function ratios(variants, field) {
  const value = (id) => variants[id]?.[field];
  return {
    quicket0RttVsNodeTlsResumed: ratio(value('quicket0Rtt'), value('nodeTlsResumed')),
    quicketResumedVsNodeTlsResumed: ratio(value('quicketResumed'), value('nodeTlsResumed')),
    quicketFullVsNodeTlsFull: ratio(value('quicketFull'), value('nodeTlsFull')),
  };
}

const loopback = {
  name: 'ttfb',
  async run(ctx) {
    const rounds = ctx.quick ? 1 : 5;
    const perRound = ctx.quick ? 40 : 100;
    const result = { unit: 'ms', responseBytes: RESPONSE_BYTES, rounds, perRound, ...(await measure(ctx, { rounds, perRound, oneWayMs: 0 })) };
    result.ratios = { median: ratios(result.variants, 'median'), p99: ratios(result.variants, 'p99') };
    result.targets = [{
      id: 'ttfb.loopback.quicket0Rtt.vsNodeTlsResumed',
      description: 'TTFB loopback, quicket 0-RTT vs node:tls resumed (median)',
      value: result.ratios.median.quicket0RttVsNodeTlsResumed,
      max: 0.5,
    }];
    return result;
  },
  report(result) {
    const rows = Object.values(result.variants).map((v) => [v.label, v.median, v.p99, v.n, v.resumed, v.earlyData, v.failures]);
    return [
      `Time to first byte, loopback: ms from connect() to the first response byte (lower is better)`,
      formatTable(['', 'median', 'p99', 'n', 'resumed', '0-RTT', 'failed'], rows),
      `ratios (median): ${Object.entries(result.ratios.median).map(([k, v]) => `${k} ${v ?? '—'}`).join(', ')}`,
    ].join('\n');
  },
};

const ONE_WAY_MS = 10;

const withRtt = {
  name: 'ttfbRtt',
  async run(ctx) {
    const rounds = ctx.quick ? 2 : 3;
    const perRound = ctx.quick ? 15 : 70;
    const result = { unit: 'ms and RTT', oneWayMs: ONE_WAY_MS, nominalRttMs: 2 * ONE_WAY_MS, responseBytes: RESPONSE_BYTES, rounds, perRound, ...(await measure(ctx, { rounds, perRound, oneWayMs: ONE_WAY_MS })) };
    // RTT units: the round trip a ping through the relay takes (see the relay calibration), for
    // UDP and TCP respectively; *Nominal fields divide by the configured 20 ms instead.
    const rtt = { quic: result.relay?.udp?.median ?? 2 * ONE_WAY_MS, tls: result.relay?.tcp?.median ?? 2 * ONE_WAY_MS };
    result.rttMs = { udp: round(rtt.quic), tcp: round(rtt.tls) };
    for (const [id, v] of Object.entries(result.variants)) {
      const unit = id.startsWith('quicket') ? rtt.quic : rtt.tls;
      v.medianRtt = ratio(v.median, unit);
      v.p99Rtt = ratio(v.p99, unit);
      v.medianRttNominal = ratio(v.median, 2 * ONE_WAY_MS);
    }
    result.ratios = { median: ratios(result.variants, 'median'), p99: ratios(result.variants, 'p99') };
    result.targets = [{
      id: 'ttfb.rtt20.quicket0Rtt.rtt',
      description: 'TTFB at 20 ms RTT, quicket 0-RTT in RTTs (median)',
      value: result.variants.quicket0Rtt?.medianRtt,
      max: 1.1,
    }];
    return result;
  },
  report(result) {
    const rows = Object.values(result.variants).map((v) => [v.label, v.median, v.p99, v.medianRtt, v.medianRttNominal, v.n, v.resumed, v.earlyData, v.failures]);
    return [
      `Time to first byte, ${result.nominalRttMs} ms simulated RTT (relay ping: UDP ${result.rttMs.udp} ms, TCP ${result.rttMs.tcp} ms)`,
      formatTable(['', 'median ms', 'p99 ms', 'median RTT', 'median /20ms', 'n', 'resumed', '0-RTT', 'failed'], rows),
    ].join('\n');
  },
};

module.exports = { loopback, withRtt };
