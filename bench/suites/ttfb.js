'use strict';
// Time to first response byte of a tiny request ("get 100" -> 100 bytes) on a new connection,
// measured by the client from connect() to the first response byte. quicket full handshake,
// resumed (ticket, 0-RTT off) and 0-RTT (ticket, request in the first flight) against node:tls
// full and resumed (the 'session' event's Buffer as `session`). Clients and servers are separate
// processes; with an RTT, they run in two network namespaces joined by the delay line
// (lib/netem.js), and echo peers on the same path measure its round trip.
const { tryOpenPath } = require('../lib/netem');
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

/**
 * Runs every variant in interleaved rounds. With `path` (lib/netem.js), servers run in its server
 * namespace and clients in its client namespace, and each round starts with echo pings across it.
 */
async function measure(ctx, { rounds, perRound, path }) {
  const peers = new PeerGroup();
  const inServerNs = { netns: path?.server.netns };
  const inClientNs = { netns: path?.client.netns };
  const host = path?.server.address; // undefined: the peers' loopback default
  const out = { variants: {}, notes: [] };
  try {
    const quicServer = await (await peers.start('quic-server', inServerNs)).call('listen', { mode: 'raw', host });
    const tlsServer = await (await peers.start('tls-server', inServerNs)).call('listen', { host });
    const ports = { quic: quicServer.port, tls: tlsServer.port };
    const clients = { quic: await peers.start('quic-client', inClientNs), tls: await peers.start('tls-client', inClientNs) };
    let ping;
    if (path) {
      const echoPorts = await (await peers.start('echo', { ...inServerNs, name: 'echo-server' })).call('listen', { host });
      const echo = await peers.start('echo', { ...inClientNs, name: 'echo-client' });
      out.ping = { udp: [], tcp: [], tcpConnect: [], udpLost: 0 };
      ping = async () => {
        const r = await echo.call('ping', { host, ...echoPorts, count: ctx.quick ? 10 : 20 });
        for (const key of ['udp', 'tcp', 'tcpConnect']) out.ping[key].push(...r[key]);
        out.ping.udpLost += r.udpLost;
      };
    }
    const collected = Object.fromEntries(VARIANTS.map((v) => [v.id, { samples: [], resumed: 0, earlyData: 0, failures: 0 }]));
    const timeLimitMs = ctx.quick ? 5000 : 15000;
    for (let roundIndex = 0; roundIndex < rounds; roundIndex++) {
      // Pinged every round, so that the RTT unit sees the same machine load as the variants.
      if (ping && ctx.remainingMs() >= 45000) await ping().catch((error) => out.notes.push(`ping: ${error.message}`));
      for (const v of VARIANTS) {
        if (ctx.remainingMs() < 45000) {
          out.notes.push(`${v.id}: round ${roundIndex + 1} skipped, time budget exhausted`);
          continue;
        }
        ctx.log(`${path ? 'ttfb-rtt' : 'ttfb'}: ${v.label}, round ${roundIndex + 1}/${rounds}`);
        // The first round warms up the JIT and gets the first ticket; later rounds reuse the ticket.
        const args = { host, port: ports[v.client], variant: v.variant, count: perRound, warmup: roundIndex === 0 ? 5 : 1, timeLimitMs, responseBytes: RESPONSE_BYTES };
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
    const result = { unit: 'ms', responseBytes: RESPONSE_BYTES, rounds, perRound, ...(await measure(ctx, { rounds, perRound })) };
    result.ratios = { median: ratios(result.variants, 'median'), p99: ratios(result.variants, 'p99') };
    result.targets = [{
      id: 'ttfb.loopback.quicket0Rtt.vsNodeTlsResumed',
      description: 'TTFB loopback, quicket 0-RTT vs node:tls resumed (median)',
      value: result.ratios.median.quicket0RttVsNodeTlsResumed,
      max: 0.4,
    }, {
      id: 'ttfb.loopback.quicketFull.vsNodeTlsFull',
      description: 'TTFB loopback, quicket full vs node:tls full (median)',
      value: result.ratios.median.quicketFullVsNodeTlsFull,
      max: 0.8,
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
const RTT_TARGET = {
  id: 'ttfb.rtt20.quicket0Rtt.rtt',
  description: 'TTFB at 20 ms RTT (netns), quicket 0-RTT in RTTs (median)',
  max: 1.05,
};

/** Median and p99 of ping samples (ms). */
const spread = (samples) => ({ median: round(median(samples)), p99: round(p99(samples)), n: samples.length });

const withRtt = {
  name: 'ttfbRtt',
  async run(ctx) {
    const { path, skipped } = await tryOpenPath({ oneWayMs: ONE_WAY_MS });
    if (skipped) return { skipped, targets: [{ ...RTT_TARGET, value: null, skipped: true }] };
    const rounds = ctx.quick ? 2 : 3;
    const perRound = ctx.quick ? 15 : 70;
    const result = { unit: 'ms and RTT', oneWayMs: ONE_WAY_MS, nominalRttMs: 2 * ONE_WAY_MS, responseBytes: RESPONSE_BYTES, rounds, perRound, network: path.settings };
    try {
      Object.assign(result, await measure(ctx, { rounds, perRound, path }));
    } finally {
      result.delayLine = await path.close();
    }
    // RTT units: the round trip of a UDP echo (for quicket) and of a one-byte echo on an open TCP
    // connection (for node:tls) across the same path; *Nominal fields divide by 20 ms instead.
    result.ping = { udp: spread(result.ping.udp), tcp: spread(result.ping.tcp), tcpConnect: spread(result.ping.tcpConnect), udpLost: result.ping.udpLost };
    const rtt = { quic: result.ping.udp.median ?? 2 * ONE_WAY_MS, tls: result.ping.tcp.median ?? 2 * ONE_WAY_MS };
    result.rttMs = { udp: rtt.quic, tcp: rtt.tls };
    for (const [id, v] of Object.entries(result.variants)) {
      const unit = id.startsWith('quicket') ? rtt.quic : rtt.tls;
      v.medianRtt = ratio(v.median, unit);
      v.p99Rtt = ratio(v.p99, unit);
      v.medianRttNominal = ratio(v.median, 2 * ONE_WAY_MS);
    }
    result.ratios = { median: ratios(result.variants, 'median'), p99: ratios(result.variants, 'p99') };
    result.targets = [{ ...RTT_TARGET, value: result.variants.quicket0Rtt?.medianRtt }];
    return result;
  },
  report(result) {
    const rows = Object.values(result.variants).map((v) => [v.label, v.median, v.p99, v.medianRtt, v.p99Rtt, v.medianRttNominal, v.n, v.resumed, v.earlyData, v.failures]);
    const { udp, tcp, tcpConnect } = result.ping;
    return [
      `Time to first byte, ${result.nominalRttMs} ms RTT, network namespaces + delay line (ping median/p99: UDP ${udp.median}/${udp.p99} ms, ` +
        `TCP echo ${tcp.median}/${tcp.p99} ms, TCP connect ${tcpConnect.median} ms)`,
      formatTable(['', 'median ms', 'p99 ms', 'median RTT', 'p99 RTT', 'median /20ms', 'n', 'resumed', '0-RTT', 'failed'], rows),
    ].join('\n');
  },
};

module.exports = { loopback, withRtt };
