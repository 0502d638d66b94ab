'use strict';
// Kernel-emulated networks for the benchmarks: a pair of network namespaces (client, server) per
// path, joined by bench/netem/delay-line.c, which forwards every IP packet between a TUN device in
// each after a constant delay, with optional random loss and a rate limit. Both QUIC (UDP) and
// node:tls (TCP, its SYN and SYN-ACK included) cross the same kernel path. `tc qdisc ... netem`
// would be the usual tool, but this kernel has no sch_netem (see bench/README.md).
//
// Cleanup: the delay line is started through processes.js (stopped by its PID with everything
// else) and exits by itself when the runner dies; its TUN devices vanish with it. The namespaces
// are deleted by close(), and by an 'exit' hook for whatever close() did not reach (errors,
// timeouts, Ctrl-C: run.js exits through process.exit). Names carry the runner's PID, so a run
// deletes the leftovers of runs that were killed outright (SIGKILL) before it creates its own.
const { execFile, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const { startProgram, stopProgram } = require('./processes');
const { withTimeout } = require('./common');

const PREFIX = 'qbench-';
const NAME = /^qbench-(\d+)-\d+-(client|server)$/;
const SOURCE = path.join(__dirname, '..', 'netem', 'delay-line.c');
const BINARY = path.join(__dirname, '..', 'results', 'bin', 'delay-line');
const DEVICE = 'qb0';
const ADDRESSES = { client: '10.201.0.1', server: '10.201.0.2' };
const MTU = 1500;

const owned = new Set(); // namespaces this process created and has not deleted yet
let pathsOpened = 0;

function ip(args) {
  return new Promise((resolve, reject) => {
    execFile('ip', args, { timeout: 5000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`ip ${args.join(' ')}: ${(stderr || error.message).trim()}`));
      else resolve(stdout);
    });
  });
}

function deleteNamespaceSync(name) {
  try {
    execFileSync('ip', ['netns', 'delete', name], { stdio: 'ignore', timeout: 5000 });
  } catch {
    // already gone
  }
  owned.delete(name);
}

process.once('exit', () => {
  for (const name of owned) deleteNamespaceSync(name);
});

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error.code === 'EPERM';
  }
}

/** Deletes namespaces of our prefix whose owning runner is no longer running. */
function removeLeftovers() {
  let names = [];
  try {
    names = fs.readdirSync('/var/run/netns');
  } catch {
    return [];
  }
  const removed = [];
  for (const name of names) {
    const match = NAME.exec(name);
    if (!match || Number(match[1]) === process.pid || alive(Number(match[1]))) continue;
    deleteNamespaceSync(name);
    removed.push(name);
  }
  return removed;
}

/** Compiles the delay line when its binary is missing or older than its source. */
function buildDelayLine() {
  const built = fs.statSync(BINARY, { throwIfNoEntry: false });
  if (built && built.mtimeMs >= fs.statSync(SOURCE).mtimeMs) return BINARY;
  fs.mkdirSync(path.dirname(BINARY), { recursive: true });
  execFileSync('gcc', ['-O2', '-Wall', '-Wextra', '-o', BINARY, SOURCE], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 60000 });
  return BINARY;
}

/**
 * Why emulated paths cannot be made here (a sentence for the report's notes), or undefined when
 * they can: they need root, /dev/net/tun, iproute2's `ip` and gcc (or an already built delay line).
 */
function unavailable() {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces and TUN devices)';
  if (!fs.existsSync('/dev/net/tun')) return 'no /dev/net/tun';
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
  } catch {
    return 'no `ip` (iproute2)';
  }
  try {
    buildDelayLine();
  } catch (error) {
    return `cannot build bench/netem/delay-line.c: ${(error.stderr?.toString() || error.message).trim().split('\n')[0]}`;
  }
  return undefined;
}

/** The delay line's counters, its directions named for this use: a is the client, b the server. */
function counters(line) {
  const { aToB, bToA, ...settings } = JSON.parse(line);
  return { ...settings, toServer: aToB, toClient: bToA };
}

/** Resolves each line the delay line prints on stdout, in order. */
function lineReader(stream) {
  const lines = [];
  const waiting = [];
  let buffered = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk) => {
    buffered += chunk;
    let end;
    while ((end = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, end);
      buffered = buffered.slice(end + 1);
      if (waiting.length) waiting.shift().resolve(line);
      else lines.push(line);
    }
  });
  stream.on('close', () => {
    for (const waiter of waiting.splice(0)) waiter.reject(new Error('the delay line exited'));
  });
  return (ms) => (lines.length ? Promise.resolve(lines.shift()) : withTimeout(new Promise((resolve, reject) => waiting.push({ resolve, reject })), ms, 'delay line'));
}

/**
 * The namespace's TCP congestion control, for the report. A new namespace inherits the host's; it
 * cannot be changed there to an algorithm outside the host's tcp_allowed_congestion_control.
 */
async function tcpCongestion(netns) {
  return (await ip(['netns', 'exec', netns, 'cat', '/proc/sys/net/ipv4/tcp_congestion_control'])).trim();
}

async function configure(netns, local, peer) {
  // No IPv6 link-local address: no router solicitations or DAD in the measured path.
  await ip(['-n', netns, 'link', 'set', DEVICE, 'addrgenmode', 'none', 'mtu', String(MTU), 'txqueuelen', '10000']);
  await ip(['-n', netns, 'address', 'add', local, 'peer', peer, 'dev', DEVICE]);
  await ip(['-n', netns, 'link', 'set', DEVICE, 'up']);
}

/** The kernel's own counters of the device (drops there would be loss we did not configure). */
async function deviceCounters(netns) {
  const [link] = JSON.parse(await ip(['-n', netns, '-s', '-j', 'link', 'show', DEVICE]));
  const { tx, rx } = link.stats64;
  return { txPackets: tx.packets, txDropped: tx.dropped, rxPackets: rx.packets, rxDropped: rx.dropped };
}

/**
 * Creates a client and a server namespace joined by the delay line: oneWayMs each way, `loss` the
 * probability that a packet is dropped (drawn independently for every packet in each direction,
 * from a PRNG seeded by `seed`), `rateKbit` an optional rate limit per direction (0: none).
 * Resolves with { client: { netns, address }, server: { netns, address }, settings, stats(),
 * reseed(seed), close() }. Call close() when done; the 'exit' hook covers a run that fails first.
 */
async function openPath({ oneWayMs, loss = 0, seed = 1, rateKbit = 0 }) {
  removeLeftovers();
  const index = ++pathsOpened;
  const netns = { client: `${PREFIX}${process.pid}-${index}-client`, server: `${PREFIX}${process.pid}-${index}-server` };
  let line;
  try {
    for (const name of Object.values(netns)) {
      owned.add(name); // before creating it: a failure in between must still clean it up
      await ip(['netns', 'add', name]);
    }
    line = startProgram(buildDelayLine(), [
      '--ns-a', netns.client, '--ns-b', netns.server, '--ifname', DEVICE, '--delay-us', String(oneWayMs * 1000),
      '--loss', String(loss), '--seed', String(seed), '--rate-kbit', String(rateKbit),
    ], { stdio: ['pipe', 'pipe', 'inherit'] });
    line.stdin.on('error', () => {}); // writes after it exited
    const nextLine = lineReader(line.stdout);
    const ready = await nextLine(5000);
    if (ready !== 'ready') throw new Error(`delay line: unexpected "${ready}"`);
    await configure(netns.client, ADDRESSES.client, ADDRESSES.server);
    await configure(netns.server, ADDRESSES.server, ADDRESSES.client);
    const congestion = await tcpCongestion(netns.server);

    const stats = async () => {
      line.stdin.write('stats\n');
      return counters(await nextLine(2000));
    };
    let closed;
    const close = () => {
      closed ??= (async () => {
        let final;
        const devices = {};
        try {
          for (const side of ['client', 'server']) devices[side] = await deviceCounters(netns[side]);
          line.stdin.end(); // the delay line prints its counters and exits
          final = counters(await nextLine(2000));
        } catch {
          // the counters are a report, not a condition of cleanup
        }
        await stopProgram(line);
        for (const name of Object.values(netns)) deleteNamespaceSync(name);
        return final && { ...final, devices };
      })();
      return closed;
    };
    return {
      client: { netns: netns.client, address: ADDRESSES.client },
      server: { netns: netns.server, address: ADDRESSES.server },
      settings: { oneWayMs, loss, seed, rateKbit, mtu: MTU, tcpCongestion: congestion },
      stats,
      reseed: (value) => line.stdin.write(`seed ${value}\n`),
      close,
    };
  } catch (error) {
    if (line) await stopProgram(line);
    for (const name of Object.values(netns)) deleteNamespaceSync(name);
    throw error;
  }
}

/**
 * openPath(), or why it cannot be had here: resolves with { path } or { skipped: reason }, so a
 * benchmark that needs it is skipped with a note instead of failing the run.
 */
async function tryOpenPath(options) {
  const reason = unavailable();
  if (reason) return { skipped: `emulated network unavailable: ${reason}` };
  try {
    return { path: await openPath(options) };
  } catch (error) {
    return { skipped: `emulated network could not be created: ${error.message}` };
  }
}

module.exports = { openPath, tryOpenPath, unavailable, removeLeftovers };
