#!/usr/bin/env node
'use strict';
// quicket's benchmark suite: `npm run bench`. Runs every benchmark against its baselines in the
// same run, prints a table, and writes bench/results/latest.json plus a dated copy.
//   node bench/run.js [--quick] [--only bulk,ttfb,ttfbRtt,handshakes,idleHandshakes,memory,lossy]
// --quick: smaller counts, for trying the suite out (not comparable). --quick and --only runs write
// bench/results/partial.json (and a dated copy), never latest.json.
// The run stays under a hard time budget; every process it starts is stopped, whatever happens.
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { parseArgs } = require('node:util');

const { ROOT } = require('./lib/common');
const { environment } = require('./lib/environment');
const { removeLeftovers } = require('./lib/netem');
const { stopAll, stopAllAndWait } = require('./lib/processes');
const { formatTable } = require('./lib/table');
const ttfb = require('./suites/ttfb');

// lossy runs last: the longest, and bounded by whatever time the others leave.
const SUITES = [require('./suites/bulk'), ttfb.loopback, ttfb.withRtt, require('./suites/handshakes'), require('./suites/idle-handshakes'), require('./suites/memory'), require('./suites/lossy')];
const BUDGET_MS = 9 * 60 * 1000; // the whole run must end within 10 minutes
const RESULTS = path.join(__dirname, 'results');

const { values: options } = parseArgs({
  options: { quick: { type: 'boolean', default: false }, only: { type: 'string' } },
});


/** A target holds `min` (value must be at least) or `max` (at most); no value is a failure. */
function judge(target) {
  const ok = target.value !== null && target.value !== undefined &&
    (target.min === undefined || target.value >= target.min) && (target.max === undefined || target.value <= target.max);
  return { ...target, pass: ok };
}

function render(report) {
  const when = report.startedAt.replace('T', ' ').slice(0, 16);
  const env = report.environment;
  const lines = [`quicket benchmarks, ${when} UTC, git ${env.gitCommit ?? '?'}${env.gitDirty ? '+' : ''}, ${env.node}, ${env.cpus} CPUs, ` +
    `OpenSSL ${env.libraries.openssl}, ngtcp2 ${env.libraries.ngtcp2}, nghttp3 ${env.libraries.nghttp3}${report.options.quick ? ' (QUICK: not comparable)' : ''}`, ''];
  for (const suite of SUITES) {
    const result = report.benchmarks[suite.name];
    if (!result) continue;
    if (result.error) {
      lines.push(`${suite.name}: FAILED: ${result.error}`, '');
      continue;
    }
    if (result.skipped) {
      lines.push(`${suite.name}: skipped: ${result.skipped}`, '');
      continue;
    }
    lines.push(suite.report(result));
    for (const note of result.notes ?? []) lines.push(`  note: ${note}`);
    lines.push('');
  }
  const rows = report.targets.map((t) => [t.skipped ? 'SKIP' : t.pass ? 'PASS' : 'FAIL', t.description, t.value ?? '—', t.min !== undefined ? `>= ${t.min}` : `<= ${t.max}`]);
  lines.push('Targets (same-run ratios)', formatTable(['', 'target', 'measured', 'wanted'], rows));
  const skipped = report.summary.skipped ? ` (${report.summary.skipped} skipped)` : '';
  lines.push(`${report.summary.passed} of ${report.targets.length} targets met${skipped}; run took ${report.durationSeconds} s`);
  return lines.join('\n');
}

/** A full run becomes latest.json (and latest.txt); --quick or --only runs never replace it. */
function write(report, partial) {
  fs.mkdirSync(RESULTS, { recursive: true });
  const json = `${JSON.stringify(report, null, 2)}\n`;
  const stamp = report.startedAt.replace(/:/g, '-').replace(/\..*$/, '');
  const name = partial ? 'partial' : 'latest';
  fs.writeFileSync(path.join(RESULTS, `${name}.json`), json);
  fs.writeFileSync(path.join(RESULTS, `${name}.txt`), `${render(report)}\n`);
  fs.writeFileSync(path.join(RESULTS, `${stamp}${partial ? '-partial' : ''}.json`), json);
  return path.join(RESULTS, `${name}.json`);
}

async function main() {
  if (!fs.existsSync(path.join(ROOT, 'dist', 'index.js'))) {
    console.error('bench: dist/ is missing; build first (npm run build, or npx tsc -p tsconfig.build.json)');
    process.exit(2);
  }
  const selected = options.only ? options.only.split(',').map((name) => name.trim()) : SUITES.map((suite) => suite.name);
  const unknown = selected.filter((name) => !SUITES.some((suite) => suite.name === name));
  if (unknown.length) {
    console.error(`bench: unknown benchmark ${unknown.join(', ')} (known: ${SUITES.map((suite) => suite.name).join(', ')})`);
    process.exit(2);
  }
  execFileSync('bash', [path.join(ROOT, 'scripts', 'gen-certs.sh')], { stdio: ['ignore', 'ignore', 'inherit'] });
  // Network namespaces a killed run could not delete (their owner's PID is gone).
  const leftovers = removeLeftovers();

  const started = Date.now();
  const deadline = started + BUDGET_MS;
  const report = {
    schema: 1,
    startedAt: new Date(started).toISOString(),
    options: { quick: options.quick, only: options.only ? selected : undefined },
    environment: environment(require('../dist').versions),
    benchmarks: {},
    targets: [],
  };
  if (leftovers.length) report.removedLeftovers = leftovers;
  const ctx = {
    quick: options.quick,
    remainingMs: () => deadline - Date.now(),
    log: (message) => process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(0).padStart(3)} s] ${message}\n`),
  };
  // A hard stop a little after the budget, in case something hangs where no timeout reaches.
  const watchdog = setTimeout(() => {
    console.error('bench: time budget exceeded, stopping every benchmark process');
    stopAllAndWait().then(() => process.exit(1));
  }, BUDGET_MS + 45000);
  watchdog.unref();

  for (const suite of SUITES.filter((s) => selected.includes(s.name))) {
    try {
      const result = await suite.run(ctx);
      report.benchmarks[suite.name] = result;
      report.targets.push(...(result.targets ?? []).map(judge));
    } catch (error) {
      report.benchmarks[suite.name] = { error: error.message };
      ctx.log(`${suite.name} failed: ${error.stack}`);
    }
  }
  clearTimeout(watchdog);
  report.finishedAt = new Date().toISOString();
  report.durationSeconds = Math.round((Date.now() - started) / 1000);
  report.environment.loadavgAfter = os.loadavg().map((load) => Math.round(load * 100) / 100);
  // A skipped target (its benchmark could not run here) counts as not met.
  report.summary = {
    passed: report.targets.filter((t) => t.pass).length,
    failed: report.targets.filter((t) => !t.pass).length,
    skipped: report.targets.filter((t) => t.skipped).length,
  };
  const written = write(report, options.quick || options.only !== undefined);
  console.log(render(report));
  console.log(`\nresults: ${path.relative(process.cwd(), written)}`);
}

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    stopAllAndWait().then(() => process.exit(130));
  });
}
process.once('exit', stopAll);

main().catch((error) => {
  console.error(error);
  stopAllAndWait().then(() => process.exit(1));
});
