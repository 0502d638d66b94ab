#!/usr/bin/env node
// Throws seeded random and mutated datagrams at a listening engine while real clients keep
// working (test/helpers/datagram-fuzzer.ts has the mutations): random bytes, captured client
// datagrams with bits flipped / truncated / oversized / header fields changed / replayed, and
// captured Initials opened, changed inside (ClientHello, transport parameters, CRYPTO offsets,
// injected frames) and sealed again so the server parses the change. Loopback only.
//
//   node scripts/fuzz-datagrams.js [--count 50000] [--seed 1] [--runs 1] [--time-limit 600]
//                                  [--only 'name|name'] [--exclude 'name|name'] [--list]
//   node scripts/fuzz-datagrams.js --replay HEX     one datagram at a fresh server (exit 0: survived)
//
// Each run (seeds seed, seed+1, ...) happens in a child process that writes every datagram to a
// trace file before sending it. If the child dies (an abort, a signal), the parent replays the
// last datagrams one by one, each at a fresh server in its own process, and prints the one that
// kills a server (mutation name and hex) so it can be turned into a test.
//
// Prints one JSON report per run (datagrams sent per mutation, what the server did with the
// connections the fuzz created, the real clients' echoes and failures, RSS growth) and a summary.
// Exit status: 0 every run passed (no crash, no real echo failed, the live connection survived,
// the server still serves, no fuzz connection left open), 1 otherwise, 2 when the time limit cut
// a run short of its count. QUICKET_NATIVE selects another addon build (scripts/fuzz-asan.sh).
'use strict';

require('./lib/require-ts');
const { execFileSync, spawn } = require('node:child_process');
const dgram = require('node:dgram');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

execFileSync('bash', [path.join(__dirname, 'gen-certs.sh')], {
  stdio: ['ignore', 'ignore', 'inherit'],
  env: { ...process.env, LD_PRELOAD: '' }, // not bash and openssl under AddressSanitizer (scripts/fuzz-asan.sh)
});
const { MUTATIONS, runDatagramFuzz } = require('../test/helpers/datagram-fuzzer');

const USAGE =
  "usage: fuzz-datagrams.js [--count N] [--seed N] [--runs N] [--time-limit SECONDS] [--only 'a|b'] [--exclude 'a|b'] [--list] | --replay HEX";

function parseArgs(argv) {
  const options = { count: 50000, seed: 1, runs: 1, timeLimit: 600, only: undefined, exclude: undefined, trace: undefined, child: false, replay: undefined };
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i].replace(/^--/, '').replace(/-(\w)/g, (_, c) => c.toUpperCase());
    if (name === 'list') {
      console.log(Object.keys(MUTATIONS).join('\n'));
      process.exit(0);
    }
    if (name === 'child') {
      options.child = true;
      i--;
      continue;
    }
    if (['only', 'exclude', 'trace', 'replay'].includes(name) && argv[i + 1] !== undefined) {
      options[name] = argv[i + 1];
      continue;
    }
    const value = Number(argv[i + 1]);
    if (!(name in options) || !Number.isInteger(value) || value < 0) {
      console.error(USAGE);
      process.exit(64);
    }
    options[name] = value;
  }
  return options;
}

/** The mutations a run uses, from --only / --exclude. */
function mutationNames(options) {
  let names = options.only ? options.only.split('|') : Object.keys(MUTATIONS);
  if (options.exclude) {
    const excluded = new Set(options.exclude.split('|'));
    names = names.filter((name) => !excluded.has(name));
  }
  for (const name of names) {
    if (!MUTATIONS[name]) {
      console.error(`no mutation named "${name}" (--list prints them)`);
      process.exit(64);
    }
  }
  return names;
}

/** --replay: one datagram at a fresh server; exits 0 if the process is still fine afterwards. */
async function replay(hex) {
  const { Engine } = require('../lib');
  const { HOST, serverSsl } = require('../test/helpers');
  const server = new Engine({ ssl: serverSsl('server', { earlyData: true }), handshakeTimeout: 500 });
  const closes = [];
  server.on('connection', (connection) => {
    connection.on('error', () => {});
    connection.on('close', (info) => closes.push(info.error ? info.error.code : `code ${info.code}`));
  });
  const { port } = await server.listen({ host: HOST, port: 0 });
  const socket = dgram.createSocket('udp4');
  await new Promise((resolve) => socket.bind(0, HOST, resolve));
  socket.on('message', () => {});
  await new Promise((resolve) => socket.send(Buffer.from(hex, 'hex'), port, HOST, resolve));
  await new Promise((resolve) => setTimeout(resolve, 700));
  await new Promise((resolve) => socket.close(resolve));
  await server.close();
  console.log(JSON.stringify({ survived: true, closes }));
}

/** Child: one fuzz run, tracing to a file; prints the JSON report. */
async function child(options) {
  const trace = fs.openSync(options.trace, 'w');
  const report = await runDatagramFuzz({
    count: options.count,
    seed: options.seed,
    timeLimitMs: options.timeLimit * 1000,
    only: mutationNames(options),
    // Synchronous, so the datagram that takes the process down is in the file.
    trace: (name, datagram) => fs.writeSync(trace, `${name}\t${datagram.toString('hex')}\n`),
    log: (line) => console.error(`[seed ${options.seed}] ${line}`),
  });
  fs.closeSync(trace);
  console.log(JSON.stringify(report));
}

function run(args, { quiet = false } = {}) {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, [__filename, ...args], { stdio: ['ignore', 'pipe', quiet ? 'pipe' : 'inherit'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (chunk) => (stdout += chunk));
    if (quiet) proc.stderr.on('data', (chunk) => (stderr += chunk));
    proc.on('exit', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** After a crash: which of the last traced datagrams kills a fresh server on its own? */
async function findCrasher(traceFile) {
  const lines = fs.readFileSync(traceFile, 'utf8').trim().split('\n').slice(-100).reverse();
  for (const line of lines) {
    const [name, hex] = line.split('\t');
    if (!hex) continue;
    const result = await run(['--replay', hex], { quiet: true });
    if (result.code !== 0) {
      return { mutation: name, hex, exit: result.signal ?? result.code, stderr: result.stderr.trim().split('\n').slice(-3).join('\n') };
    }
  }
  return undefined;
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  if (options.replay) return replay(options.replay);
  if (options.child) return child(options);

  mutationNames(options); // validate before starting
  const deadline = Date.now() + options.timeLimit * 1000;
  const reports = [];
  let cut = false;
  for (let i = 0; i < options.runs; i++) {
    const seed = options.seed + i;
    const seconds = Math.floor((deadline - Date.now()) / 1000);
    if (seconds <= 0) {
      cut = true;
      break;
    }
    const traceFile = path.join(os.tmpdir(), `quicket-fuzz-datagrams-${process.pid}-${seed}.trace`);
    const args = ['--child', '--seed', String(seed), '--count', String(options.count), '--time-limit', String(seconds), '--trace', traceFile];
    if (options.only) args.push('--only', options.only);
    if (options.exclude) args.push('--exclude', options.exclude);
    const result = await run(args);
    const line = result.stdout.trim().split('\n').pop();
    let report;
    try {
      report = JSON.parse(line);
    } catch {
      const sent = fs.existsSync(traceFile) ? fs.readFileSync(traceFile, 'utf8').split('\n').length - 1 : 0;
      report = { seed, crashed: result.signal ?? `exit ${result.code}`, sentBeforeCrash: sent, pass: false };
      console.error(`[seed ${seed}] the fuzzed process died (${report.crashed}) after ${sent} datagrams; looking for the datagram that does it...`);
      report.crasher = await findCrasher(traceFile);
      report.trace = traceFile;
    }
    if (report.pass) fs.rmSync(traceFile, { force: true });
    if (report.sent !== undefined && report.sent < options.count) cut = true;
    console.log(JSON.stringify(report));
    reports.push(report);
  }
  const summary = {
    runs: reports.length,
    datagrams: reports.reduce((sum, r) => sum + (r.sent ?? r.sentBeforeCrash ?? 0), 0),
    fuzzConnections: reports.reduce((sum, r) => sum + (r.fuzzConnections ? r.fuzzConnections.created : 0), 0),
    realEchoes: reports.reduce((sum, r) => sum + (r.realTraffic ? r.realTraffic.liveEchoes + r.realTraffic.newConnections : 0), 0),
    crashed: reports.filter((r) => r.crashed).length,
    passed: reports.filter((r) => r.pass).length,
  };
  console.log(JSON.stringify({ summary }));
  process.exitCode = summary.passed < reports.length ? 1 : cut ? 2 : 0;
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
