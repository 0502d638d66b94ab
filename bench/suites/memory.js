'use strict';
// Memory per idle connection: a client process opens 1,000 connections that complete their
// handshake and then sit idle; the server's resident set size (after garbage collection) before
// and after, divided by the connections open, and the client's likewise. A fresh server and client
// process per transport, each warmed up by a few connections first so that one-time allocations
// stay out of the difference. The client is one quicket Engine (one SslConfig) holding every
// connection, against one node:tls SecureContext holding as many sockets.
const { sleep } = require('../lib/common');
const { PeerGroup } = require('../lib/processes');
const { ratio, round } = require('../lib/stats');
const { formatTable } = require('../lib/table');

const TRANSPORTS = [
  { id: 'quicket', label: 'quicket', server: 'quic-server', client: 'quic-client' },
  { id: 'nodeTls', label: 'node:tls', server: 'tls-server', client: 'tls-client' },
];

const perConnection = (after, before, field, count) => (count > 0 ? round((after[field] - before[field]) / count) : null);

async function measure(transport, count) {
  const peers = new PeerGroup();
  try {
    const server = await peers.start(transport.server, { execArgv: ['--expose-gc'] });
    const client = await peers.start(transport.client, { execArgv: ['--expose-gc'] });
    const { port } = await server.call('listen', { mode: 'raw' });
    const open = (n) => client.call('openIdle', { port, count: n, concurrency: 25, timeLimitMs: 30000 }, 45000);
    await open(20);
    await client.call('closeIdle');
    await sleep(300);
    const serverBefore = await server.call('memory');
    const clientBefore = await client.call('memory');
    const opened = await open(count);
    await sleep(300);
    const serverAfter = await server.call('memory');
    const clientAfter = await client.call('memory');
    const idle = serverAfter.open - serverBefore.open;
    return {
      label: transport.label,
      requested: count,
      opened: opened.opened,
      serverOpen: idle,
      failed: opened.failed,
      lastError: opened.lastError,
      serverRssBytesPerConnection: perConnection(serverAfter, serverBefore, 'rss', idle),
      serverHeapBytesPerConnection: perConnection(serverAfter, serverBefore, 'heapUsed', idle),
      clientRssBytesPerConnection: perConnection(clientAfter, clientBefore, 'rss', opened.opened),
      clientHeapBytesPerConnection: perConnection(clientAfter, clientBefore, 'heapUsed', opened.opened),
      serverRss: { before: serverBefore.rss, after: serverAfter.rss },
    };
  } finally {
    await peers.stop();
  }
}

async function run(ctx) {
  const count = ctx.quick ? 200 : 1000;
  const result = { connections: count, cases: {}, notes: [] };
  for (const transport of TRANSPORTS) {
    if (ctx.remainingMs() < 60000) {
      result.notes.push(`${transport.id}: skipped, time budget exhausted`);
      continue;
    }
    ctx.log(`memory: ${count} idle ${transport.label} connections`);
    try {
      result.cases[transport.id] = await measure(transport, count);
    } catch (error) {
      result.notes.push(`${transport.id}: ${error.message}`);
    }
  }
  const rss = (id, side) => result.cases[id]?.[`${side}RssBytesPerConnection`];
  result.ratios = {
    serverRssPerConnectionVsNodeTls: ratio(rss('quicket', 'server'), rss('nodeTls', 'server')),
    clientRssPerConnectionVsNodeTls: ratio(rss('quicket', 'client'), rss('nodeTls', 'client')),
  };
  result.targets = [
    { id: 'memory.server.vsNodeTls', description: 'server RSS per idle connection, quicket vs node:tls', value: result.ratios.serverRssPerConnectionVsNodeTls, max: 0.75 },
    { id: 'memory.client.vsNodeTls', description: 'client RSS per idle connection, quicket vs node:tls', value: result.ratios.clientRssPerConnectionVsNodeTls, max: 0.75 },
  ];
  return result;
}

function report(result) {
  const kib = (bytes) => (bytes === null || bytes === undefined ? null : round(bytes / 1024));
  const rows = Object.values(result.cases).map((c) => [c.label, kib(c.serverRssBytesPerConnection), kib(c.serverHeapBytesPerConnection), kib(c.clientRssBytesPerConnection), kib(c.clientHeapBytesPerConnection), c.serverOpen, c.failed]);
  return [
    `Memory per idle connection, ${result.connections} connections, KiB (lower is better)`,
    formatTable(['', 'server RSS', 'server JS heap', 'client RSS', 'client JS heap', 'open', 'failed'], rows),
    `ratios (RSS per connection, quicket/node:tls): server ${result.ratios.serverRssPerConnectionVsNodeTls ?? '—'}, client ${result.ratios.clientRssPerConnectionVsNodeTls ?? '—'}`,
  ].join('\n');
}

module.exports = { name: 'memory', run, report };
