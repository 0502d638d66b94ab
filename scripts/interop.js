#!/usr/bin/env node
// npm run interop: runs the interop matrix (test/interop-*.test.ts, every peer test/peers/build.sh
// built), then prints its table and writes interop-results/latest.json. With --readme it also
// replaces the README's interop table (between the quicket-interop markers) with this run's.
// Exits with jest's status, so a failing cell fails the command.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const results = path.join(root, 'interop-results');
const cellsDir = path.join(results, 'cells');
fs.rmSync(cellsDir, { recursive: true, force: true });

const started = Date.now();
const jest = spawnSync(process.execPath, [require.resolve('jest/bin/jest'), '--verbose=false', 'test/interop-'], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, QUICKET_INTEROP_REPORT: '1' },
});
const seconds = (Date.now() - started) / 1000;

const files = fs.existsSync(cellsDir) ? fs.readdirSync(cellsDir).filter((name) => name.endsWith('.json')).sort() : [];
const cells = files.flatMap((name) => JSON.parse(fs.readFileSync(path.join(cellsDir, name), 'utf8')));
const order = (cell) => [cell.peer, cell.protocol === 'raw' ? 0 : 1, cell.direction, cell.size];
cells.sort((a, b) => {
  const [x, y] = [order(a), order(b)];
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i] < y[i] ? -1 : 1;
  return 0;
});

function size(bytes) {
  return bytes >= 1024 * 1024 ? `${bytes / 1024 / 1024} MiB` : `${bytes / 1024} KiB`;
}

function table(rows) {
  const header = ['peer', 'direction', 'protocol', 'size', 'connections', 'byte-exact', 'first', 'resumed', '0-RTT accepted'];
  const lines = rows.map((cell) => [
    cell.peer, cell.direction, cell.protocol, size(cell.size), String(cell.connections), String(cell.exact),
    String(cell.connections - cell.resumed), String(cell.resumed), String(cell.earlyAccepted),
  ]);
  const widths = header.map((title, i) => Math.max(title.length, ...lines.map((line) => line[i].length)));
  const format = (line) => `| ${line.map((value, i) => value.padEnd(widths[i])).join(' | ')} |`;
  return [format(header), `|${widths.map((width) => '-'.repeat(width + 2)).join('|')}|`, ...lines.map(format)].join('\n');
}

const report = { date: new Date().toISOString(), seconds, passed: jest.status === 0, cells };
fs.mkdirSync(results, { recursive: true });
fs.writeFileSync(path.join(results, 'latest.json'), `${JSON.stringify(report, null, 2)}\n`);
const rendered = table(cells);
process.stdout.write(`\n${rendered}\n\n${cells.length} cells in ${seconds.toFixed(1)} s; written: interop-results/latest.json\n`);

if (process.argv.includes('--readme')) {
  const readme = path.join(root, 'README.md');
  const text = fs.readFileSync(readme, 'utf8');
  const begin = '<!-- quicket-interop:begin -->';
  const end = '<!-- quicket-interop:end -->';
  const [at, until] = [text.indexOf(begin), text.indexOf(end)];
  if (at < 0 || until < at) {
    process.stderr.write('interop: README.md has no quicket-interop markers; not updated\n');
  } else {
    const body = `${begin}\n_${report.date.slice(0, 10)}, ${cells.length} cells, ${seconds.toFixed(0)} s, ${report.passed ? 'all passed' : 'FAILED'} (npm run interop -- --readme):_\n\n${rendered}\n${end}`;
    fs.writeFileSync(readme, text.slice(0, at) + body + text.slice(until + end.length));
    process.stdout.write('README.md: interop table replaced\n');
  }
}
process.exit(jest.status ?? 1);
