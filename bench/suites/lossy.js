'use strict';
// 16 parallel 1 MiB responses on one new connection across a 50 ms RTT path that drops 1% of the
// packets in each direction: the time from connect() to the last byte of the last response.
// quicket raw streams (16 streams) and HTTP/3 (16 requests) against node:http2 over TLS (16
// streams on one TLS/TCP connection, the multiplexed baseline) and node:tls with the 16 MiB back
// to back on one connection. Clients and servers run in two network namespaces joined by the
// delay line (lib/netem.js); full handshakes, a fresh connection per transfer.
const { tryOpenPath } = require('../lib/netem');
const { PeerGroup } = require('../lib/processes');
const { median, ratio, round } = require('../lib/stats');
const { formatTable } = require('../lib/table');

const ONE_WAY_MS = 25;
const LOSS = 0.01;
const SEED = 1400; // round r draws its losses from seed SEED + r
const VARIANTS = [
  { id: 'quicketRaw', label: 'quicket raw, 16 streams', server: 'quicRaw', client: 'quic', method: 'parallel', mode: 'raw' },
  { id: 'quicketHttp3', label: 'quicket HTTP/3, 16 requests', server: 'quicH3', client: 'quic', method: 'parallel', mode: 'h3' },
  { id: 'nodeHttp2', label: 'node:http2, 16 streams', server: 'http2', client: 'http2', method: 'parallel' },
  { id: 'nodeTls', label: 'node:tls, 16 MiB back to back', server: 'tls', client: 'tls', method: 'bulk' },
];
const TARGETS = [
  { id: 'lossy.quicketRaw.vsNodeHttp2', variant: 'quicketRaw', description: '50 ms RTT, 1% loss, 16 x 1 MiB: quicket raw vs node:http2 (median)', max: 0.7 },
  { id: 'lossy.quicketHttp3.vsNodeHttp2', variant: 'quicketHttp3', description: '50 ms RTT, 1% loss, 16 x 1 MiB: quicket HTTP/3 vs node:http2 (median)', max: 0.7 },
];

const difference = (after, before) => ({
  toClient: after.toClient.received - before.toClient.received,
  toClientLost: after.toClient.lost - before.toClient.lost,
  toServer: after.toServer.received - before.toServer.received,
  toServerLost: after.toServer.lost - before.toServer.lost,
});

async function startPeers(peers, path) {
  const host = path.server.address;
  const server = { netns: path.server.netns };
  const client = { netns: path.client.netns };
  const ports = {
    quicRaw: (await (await peers.start('quic-server', { ...server, name: 'quic-server-raw' })).call('listen', { mode: 'raw', host })).port,
    quicH3: (await (await peers.start('quic-server', { ...server, name: 'quic-server-h3' })).call('listen', { mode: 'h3', host })).port,
    http2: (await (await peers.start('http2-server', server)).call('listen', { host })).port,
    tls: (await (await peers.start('tls-server', server)).call('listen', { host })).port,
  };
  const clients = {
    quic: await peers.start('quic-client', client),
    http2: await peers.start('http2-client', client),
    tls: await peers.start('tls-client', client),
  };
  return { host, ports, clients };
}

async function measure(ctx, { path, rounds, count, bytes, budgetMs }) {
  const peers = new PeerGroup();
  const out = { variants: {}, notes: [] };
  const collected = Object.fromEntries(VARIANTS.map((v) => [v.id, { samples: [], failures: 0, packets: [] }]));
  const started = Date.now();
  try {
    const { host, ports, clients } = await startPeers(peers, path);
    let roundMs = 0;
    for (let r = 0; r < rounds; r++) {
      // A round starts only if one as long as the last still fits the suite's share and the run's budget.
      const elapsed = Date.now() - started;
      if (elapsed + roundMs > budgetMs || ctx.remainingMs() - roundMs < 45000) {
        out.notes.push(`rounds ${r + 1} to ${rounds} skipped: time budget (a round took ${Math.round(roundMs / 1000)} s)`);
        break;
      }
      const roundStarted = Date.now();
      for (const v of VARIANTS) {
        ctx.log(`lossy: ${v.label}, round ${r + 1}/${rounds}`);
        // Every variant of a round meets the same loss sequence (by packet number in each direction).
        path.reseed(SEED + r);
        const before = await path.stats();
        // Bounded by the suite's budget as well: one stalled transfer cannot take the whole run.
        const timeoutMs = Math.max(10000, Math.min(60000, budgetMs - (Date.now() - started)));
        const args = { host, port: ports[v.server], mode: v.mode, count, bytes, direction: 'download', timeoutMs };
        if (v.method === 'bulk') args.bytes = count * bytes;
        const c = collected[v.id];
        try {
          const result = await clients[v.client].call(v.method, args, timeoutMs + 15000);
          c.samples.push(result.seconds);
          if (result.cipher) c.cipher = result.cipher;
        } catch (error) {
          c.failures++;
          c.lastError = error.message;
          out.notes.push(`${v.id}, round ${r + 1}: ${error.message}`);
        }
        c.packets.push(difference(await path.stats(), before));
      }
      roundMs = Date.now() - roundStarted;
    }
  } finally {
    await peers.stop();
  }
  for (const v of VARIANTS) {
    const { samples, failures, packets, cipher, lastError } = collected[v.id];
    const sum = (key) => packets.reduce((total, p) => total + p[key], 0);
    out.variants[v.id] = {
      label: v.label,
      median: round(median(samples)),
      min: round(samples.length ? Math.min(...samples) : undefined),
      max: round(samples.length ? Math.max(...samples) : undefined),
      n: samples.length,
      failures,
      lastError,
      cipher,
      samples: samples.map(round),
      // What the path did to this variant's packets, summed over its rounds.
      path: {
        toClient: sum('toClient'),
        toClientLossPercent: round((100 * sum('toClientLost')) / sum('toClient')),
        toServer: sum('toServer'),
        toServerLossPercent: round((100 * sum('toServerLost')) / sum('toServer')),
      },
    };
  }
  return out;
}

module.exports = {
  name: 'lossy',
  async run(ctx) {
    const { path, skipped } = await tryOpenPath({ oneWayMs: ONE_WAY_MS, loss: LOSS, seed: SEED });
    if (skipped) return { skipped, targets: TARGETS.map(({ variant, ...t }) => ({ ...t, value: null, skipped: true })) };
    const rounds = ctx.quick ? 1 : 5;
    const count = 16;
    const bytes = ctx.quick ? 256 * 1024 : 1024 * 1024;
    const result = { unit: 's', count, bytes, rounds, seeds: `${SEED} + round`, network: path.settings };
    try {
      Object.assign(result, await measure(ctx, { path, rounds, count, bytes, budgetMs: Math.min(ctx.quick ? 60000 : 200000, ctx.remainingMs() - 45000) }));
    } finally {
      result.delayLine = await path.close();
    }
    const value = (id) => result.variants[id]?.median;
    result.ratios = {
      quicketRawVsNodeHttp2: ratio(value('quicketRaw'), value('nodeHttp2')),
      quicketHttp3VsNodeHttp2: ratio(value('quicketHttp3'), value('nodeHttp2')),
      quicketRawVsNodeTls: ratio(value('quicketRaw'), value('nodeTls')),
      quicketHttp3VsNodeTls: ratio(value('quicketHttp3'), value('nodeTls')),
    };
    result.targets = TARGETS.map(({ variant, ...t }) => ({ ...t, value: ratio(value(variant), value('nodeHttp2')) }));
    return result;
  },
  report(result) {
    const rows = Object.values(result.variants).map((v) => [
      v.label, v.median, v.min, v.max, v.n, v.failures, v.path.toClient, v.path.toClientLossPercent, v.path.toServerLossPercent,
    ]);
    const { oneWayMs, loss, tcpCongestion } = result.network;
    return [
      `${result.count} parallel ${result.bytes / 1024} KiB responses on one connection, ${2 * oneWayMs} ms RTT, ${loss * 100}% random loss each way ` +
        `(netns + delay line; TCP congestion control: ${tcpCongestion}, quicket: its default)`,
      's from connect() to the last byte of the last response (lower is better)',
      formatTable(['', 'median s', 'min s', 'max s', 'n', 'failed', 'packets to client', 'lost % to client', 'lost % to server'], rows),
      `ratios (median): ${Object.entries(result.ratios).map(([k, v]) => `${k} ${v ?? '—'}`).join(', ')}`,
    ].join('\n');
  },
};
