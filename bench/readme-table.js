#!/usr/bin/env node
'use strict';
// Writes the README's performance table from the newest full run (bench/results/latest.json):
//   node bench/readme-table.js          print the table
//   node bench/readme-table.js --write  replace the table between the README's bench markers
// Only a full run is used (latest.json is never written by --quick or --only runs), so the table
// always shows one run's same-run ratios.
const fs = require('node:fs');
const path = require('node:path');

const { ROOT } = require('./lib/common');

const LATEST = path.join(__dirname, 'results', 'latest.json');
const BEGIN = '<!-- bench:begin -->';
const END = '<!-- bench:end -->';

const fmt = (value, digits = 3) => (value === null || value === undefined ? '—' : String(Number(value.toFixed(digits))));
const kib = (bytes) => fmt(bytes / 1024, 1);

/** One row per target of the run: what quicket measured, against what, and the verdict. */
function rows(report) {
  const b = report.benchmarks;
  const bulk = (id, direction) => b.bulk?.cases?.[id]?.[direction]?.mbps;
  const ttfb = (id) => b.ttfb?.variants?.[id]?.median;
  const rate = (id) => b.handshakes?.cases?.[id]?.perSecond;
  const memory = (transport, side) => b.memory?.cases?.[transport]?.[`${side}RssBytesPerConnection`];
  const lossy = (id) => b.lossy?.variants?.[id]?.median;
  // Each target's quicket figure and its baseline's, in the unit of the benchmark.
  const bulkRow = (id, direction, baseline) => [`${fmt(bulk(id, direction), 0)} MB/s`, `${baseline === 'gtls' ? 'gtls tools' : 'node:tls'} ${fmt(bulk(baseline, direction), 0)}`];
  const measured = {
    'bulk.download.quicketRaw.vsGtls': bulkRow('quicketRaw', 'download', 'gtls'),
    'bulk.download.quicketHttp3.vsGtls': bulkRow('quicketHttp3', 'download', 'gtls'),
    'ttfb.loopback.quicket0Rtt.vsNodeTlsResumed': [`${fmt(ttfb('quicket0Rtt'), 2)} ms`, `node:tls resumed ${fmt(ttfb('nodeTlsResumed'), 2)}`],
    'ttfb.loopback.quicketFull.vsNodeTlsFull': [`${fmt(ttfb('quicketFull'), 2)} ms`, `node:tls full ${fmt(ttfb('nodeTlsFull'), 2)}`],
    'ttfb.rtt20.quicket0Rtt.rtt': [`${fmt(b.ttfbRtt?.variants?.quicket0Rtt?.median, 1)} ms`, `UDP ping ${fmt(b.ttfbRtt?.rttMs?.udp, 1)} ms`],
    'handshakes.full.vsNodeTls': [`${fmt(rate('quicketFull'), 0)}/s`, `node:tls ${fmt(rate('nodeTlsFull'), 0)}`],
    'handshakes.resumed.vsNodeTls': [`${fmt(rate('quicketResumed'), 0)}/s`, `node:tls ${fmt(rate('nodeTlsResumed'), 0)}`],
    'idleHandshakes.p99.idleVsNone': [`${fmt(b.idleHandshakes?.cases?.idle?.p99, 2)} ms`, `none held ${fmt(b.idleHandshakes?.cases?.none?.p99, 2)}`],
  };
  for (const direction of ['download', 'upload']) {
    for (const id of ['quicketRaw', 'quicketHttp3']) measured[`bulk.${direction}.${id}.vsNodeTls`] = bulkRow(id, direction, 'nodeTls');
  }
  for (const side of ['server', 'client']) {
    measured[`memory.${side}.vsNodeTls`] = [`${kib(memory('quicket', side))} KiB`, `node:tls ${kib(memory('nodeTls', side))}`];
  }
  for (const id of ['quicketRaw', 'quicketHttp3']) {
    measured[`lossy.${id}.vsNodeHttp2`] = [`${fmt(lossy(id), 2)} s`, `node:http2 ${fmt(lossy('nodeHttp2'), 2)}`];
  }
  return report.targets.map((t) => {
    const [quicket, baseline] = measured[t.id] ?? ['', ''];
    const wanted = t.min !== undefined ? `≥ ${t.min}` : `≤ ${t.max}`;
    return `| ${t.description} | ${quicket} | ${baseline} | ${t.value ?? '—'} | ${wanted} | ${t.skipped ? 'skipped' : t.pass ? 'yes' : '**no**'} |`;
  });
}

function render(report) {
  const env = report.environment;
  const load = env.loadavgAfter ? `, load average ${env.loadavgAfter[0]} after` : '';
  return [
    `_Full run of ${report.startedAt.slice(0, 16).replace('T', ' ')} UTC, git ${env.gitCommit}${env.gitDirty ? '+' : ''}, ${env.cpus} CPUs${load}, ` +
      `${report.durationSeconds} s; ${report.summary.passed} of ${report.targets.length} targets met (\`node bench/readme-table.js --write\`):_`,
    '',
    '| target (same-run ratio) | quicket | baseline | ratio | wanted | met |',
    '|---|---|---|---|---|---|',
    ...rows(report),
  ].join('\n');
}

function main() {
  if (!fs.existsSync(LATEST)) {
    console.error('readme-table: no full run yet (bench/results/latest.json); run npm run bench first');
    process.exit(2);
  }
  const report = JSON.parse(fs.readFileSync(LATEST, 'utf8'));
  const table = render(report);
  if (!process.argv.includes('--write')) {
    console.log(table);
    return;
  }
  const readme = path.join(ROOT, 'README.md');
  const text = fs.readFileSync(readme, 'utf8');
  const at = text.indexOf(BEGIN);
  const until = text.indexOf(END);
  if (at < 0 || until < at) {
    console.error(`readme-table: README.md has no ${BEGIN} ... ${END} block`);
    process.exit(2);
  }
  fs.writeFileSync(readme, `${text.slice(0, at + BEGIN.length)}\n${table}\n${text.slice(until)}`);
  console.log(`README.md: performance table from the run of ${report.startedAt}`);
}

main();
