#!/usr/bin/env node
// A flood of QUIC first flights at a listening quicket engine (issue 13, item 2), measuring what
// it costs the server and whether a legitimate client still gets through. Loopback only.
//
//   node scripts/flood.js [--flights 50000] [--ports 1000] [--seconds 10]
//                         [--address-validation auto|always|never] [--server '<engine options JSON>']
//                         [--legit-interval 200] [--legit-timeout 5000] [--settle-seconds S]
//                         [--out FILE] [--check] [--time-limit 180]
//
// Three processes:
//   server  a quicket Engine listening on 127.0.0.1 (this file, --role server), made with the
//           engine options from --server (JSON; a value "hex:…" becomes a Buffer) plus
//           --address-validation when given. Options today's build does not know
//           (addressValidation, maxConnections, maxHandshakes) are passed through unchanged; an
//           Engine ignores names it does not know. Every connection gets an 'error' listener and
//           echoes its streams; the server counts connections, handshakes and closes by error code.
//   sender  (--role sender) binds --ports UDP sockets on 127.0.0.1 (one source port each) and
//           sends --flights first flights round-robin over them, paced evenly over --seconds, and
//           counts what the server answers, by packet type. A first flight is a REAL quicket
//           client's: one client connects to a capture socket that never answers, its first flight
//           (the Initial datagram(s) carrying the ClientHello) is kept, and every flight is that
//           flight opened and sealed again (test/helpers/quic-initial.ts, RFC 9001 §5) under a fresh
//           random DCID (which the Initial keys derive from) and SCID, with a fresh ClientHello
//           random, so the server accepts each as a new connection and runs a real TLS handshake
//           step for it. Flights are sealed before the flood starts, so the sender spends its CPU on
//           sending while the flood runs. It never answers the server (an attacker spoofing source
//           addresses could not): the server's connections stay half-open until its
//           handshakeTimeout. The server's first Initial for each flight (and every Initial datagram
//           under 1,200 bytes: an unpadded one carries no ack-eliciting frames) is decrypted to
//           count CONNECTION_CLOSE frames by error code (0x2 CONNECTION_REFUSED); Retry packets
//           (long header type 3) are counted by type.
//   parent  times a legitimate client (its own engine, a full handshake, then close) every
//           --legit-interval ms while the flood runs, whether or not the previous one finished,
//           and samples the server's RSS from /proc/<pid>/status (VmRSS every 50 ms; VmHWM is the
//           kernel's peak) and the kernel's drop counter of the server's socket (/proc/net/udp).
//
// RSS: start = just before the flood (after 3 warm-up handshakes); peak = the kernel's high-water
// mark (VmHWM) at the end of the flood; end = when the flood (and the legitimate client) stopped;
// settled = after --settle-seconds more (default: the server's handshakeTimeout + 1 s, when every
// half-open flood connection has timed out).
//
// Prints a table and writes JSON to bench/results/flood-latest.json plus a dated copy (or --out).
// Targets from the issue (RSS growth ≤ 32 MiB, every legitimate handshake within 1 s, at
// 50,000 flights from 1,000 ports in 10 s) are shown as PASS/FAIL; with --check they set the exit
// status. Exit status: 0 measured (and with --check: targets met), 1 a failure (the server died,
// the tool failed) or a missed target with --check, 2 the --time-limit cut the run short. Every
// child process is killed by its PID on the way out, whatever happens.
'use strict';

const { execFileSync, fork } = require('node:child_process');
const crypto = require('node:crypto');
const dgram = require('node:dgram');
const fs = require('node:fs');
const path = require('node:path');
const { performance } = require('node:perf_hooks');

const ROOT = path.join(__dirname, '..');
const { environment } = require('../bench/lib/environment');
const HOST = '127.0.0.1';
const ALPN = 'quicket-test';
const CERTS = path.join(ROOT, 'test', 'fixtures', 'certs');
const MIB = 1024 * 1024;

function loadQuicket() {
  const dist = path.join(ROOT, 'dist', 'index.js');
  if (!fs.existsSync(dist)) {
    console.error('flood: dist/ is missing; build first (npm run build:ts)');
    process.exit(1);
  }
  return require(dist);
}

const pem = (name) => fs.readFileSync(path.join(CERTS, name));

/** Buffers travel through JSON as "hex:…". */
function revive(options) {
  const out = {};
  for (const [key, value] of Object.entries(options)) {
    out[key] = typeof value === 'string' && value.startsWith('hex:') ? Buffer.from(value.slice(4), 'hex') : value;
  }
  return out;
}

const tally = (t, key) => void (t[key] = (t[key] ?? 0) + 1);

// ---------------------------------------------------------------------------------------------
// The server (child process)

async function serverRole(json) {
  const { Engine, SslConfig } = loadQuicket();
  const options = revive(JSON.parse(json));
  const engine = new Engine({ ...options, ssl: new SslConfig({ alpn: [ALPN], cert: pem('server.pem'), key: pem('server-key.pem') }) });
  const counters = { connections: 0, handshakes: 0, closed: {}, open: 0 };
  engine.on('error', (error) => process.send?.({ event: 'engineError', error: String(error) }));
  engine.on('connection', (connection) => {
    counters.connections++;
    counters.open++;
    connection.on('error', () => {});
    connection.on('handshake', () => counters.handshakes++);
    connection.on('stream', (stream) => {
      stream.on('error', () => {});
      stream.pipe(stream);
    });
    connection.once('close', (info) => {
      counters.open--;
      tally(counters.closed, info.error?.code ?? `code ${info.code}`);
    });
  });
  const { port } = await engine.listen({ host: HOST, port: 0 });
  process.on('message', (message) => {
    if (message.cmd === 'stats') {
      const memory = process.memoryUsage();
      process.send({ event: 'stats', id: message.id, counters, memory, cpu: process.cpuUsage() });
    } else if (message.cmd === 'close') {
      engine.close().then(() => process.exit(0));
    }
  });
  process.on('disconnect', () => process.exit(0)); // the parent is gone
  process.send({ event: 'listening', port, pid: process.pid, options: Object.keys(options) });
}

// ---------------------------------------------------------------------------------------------
// The sender (child process)

function readVarint(data, offset) {
  const length = 1 << (data[offset] >> 6);
  let value = data[offset] & 0x3f;
  for (let i = 1; i < length; i++) value = value * 256 + data[offset + i];
  return [value, offset + length];
}

/** A real quicket client's first flight: the datagrams it sends to a peer that never answers. */
async function captureFirstFlight(Engine, SslConfig) {
  const capture = dgram.createSocket('udp4');
  await new Promise((resolve) => capture.bind(0, HOST, resolve));
  const datagrams = [];
  let first;
  capture.on('message', (message) => {
    first ??= performance.now();
    if (performance.now() - first < 100) datagrams.push(Buffer.from(message));
  });
  const client = new Engine({ ssl: new SslConfig({ alpn: [ALPN], ca: pem('ca.pem') }), handshakeTimeout: 2000 });
  const connection = client.connect({ host: HOST, port: capture.address().port, servername: 'localhost' });
  connection.on('error', () => {});
  const deadline = performance.now() + 2000;
  while ((first === undefined || performance.now() - first < 150) && performance.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  connection.destroy();
  await client.close();
  capture.close();
  if (!datagrams.length) throw new Error('the capture socket received nothing from the client');
  return datagrams;
}

async function senderRole() {
  require('./lib/require-ts');
  const { Engine, SslConfig } = loadQuicket();
  const { openInitial, sealInitial, parseFrames, initialKeys, findTransportParameters } = require('../test/helpers/quic-initial');
  const sockets = [];
  let flights = [];
  const original = new Map(); // SCID (hex) of a flight → its DCID, whose keys open the server's Initials
  const received = {
    datagrams: 0,
    bytes: 0,
    byType: {},
    flightsAnswered: 0,
    retryFlights: 0,
    connectionClose: {},
    unknownConnection: 0,
    initialsOpened: 0,
    initialsNotOpened: 0,
  };
  const answered = new Set();
  const retried = new Set();
  const opened = new Set();
  const sent = { flights: 0, datagrams: 0, bytes: 0, sendErrors: {}, ports: new Set() };
  const LONG_TYPES = ['Initial', '0-RTT', 'Handshake', 'Retry'];

  const onServerDatagram = (message) => {
    received.datagrams++;
    received.bytes += message.length;
    const b0 = message[0];
    if (!(b0 & 0x80)) return tally(received.byType, 'short header (1-RTT)');
    if (message.length < 7) return tally(received.byType, 'malformed');
    if (message.readUInt32BE(1) === 0) return tally(received.byType, 'Version Negotiation');
    const type = LONG_TYPES[(b0 >> 4) & 3];
    tally(received.byType, type);
    const dcid = message.subarray(6, 6 + message[5]).toString('hex'); // the server writes to our SCID
    const ours = original.get(dcid);
    if (!ours) return void received.unknownConnection++;
    if (!answered.has(dcid)) {
      answered.add(dcid);
      received.flightsAnswered++;
    }
    if (type === 'Retry' && !retried.has(dcid)) {
      retried.add(dcid);
      received.retryFlights++;
    }
    if (type !== 'Initial' || (opened.has(dcid) && message.length >= 1200)) return;
    opened.add(dcid);
    const packet = openInitial(message, initialKeys(ours, 'server'));
    if (!packet) return void received.initialsNotOpened++;
    received.initialsOpened++;
    const frames = parseFrames(packet.payload);
    const at = frames.length ? frames[frames.length - 1].end : 0;
    if (packet.payload[at] === 0x1c || packet.payload[at] === 0x1d) {
      const [code] = readVarint(packet.payload, at + 1);
      tally(received.connectionClose, `0x${code.toString(16)}${code === 2 ? ' CONNECTION_REFUSED' : ''}`);
    }
  };

  async function prepare({ port, flights: count, ports }) {
    const t0 = performance.now();
    for (let i = 0; i < ports; i++) {
      const socket = dgram.createSocket('udp4');
      socket.on('error', () => {});
      socket.on('message', onServerDatagram);
      await new Promise((resolve) => socket.bind(0, HOST, resolve));
      sockets.push(socket);
    }
    const captured = await captureFirstFlight(Engine, SslConfig);
    const packets = captured.map((datagram) => openInitial(datagram));
    if (packets.some((packet) => !packet)) throw new Error('a captured datagram is not a client Initial');
    // ngtcp2 splits the ClientHello into CRYPTO frames in shuffled order: reassemble the CRYPTO
    // stream, remembering where each of its bytes sits (packet, payload offset; more than one place
    // if frames overlap), to change bytes
    // of the ClientHello in place without changing any frame's layout.
    const where = [];
    let cryptoLength = 0;
    packets.forEach((packet, index) => {
      for (const frame of parseFrames(packet.payload)) {
        if (frame.type !== 6) continue;
        for (let k = 0; k < frame.end - frame.dataStart; k++) (where[frame.cryptoOffset + k] ??= []).push([index, frame.dataStart + k]);
        cryptoLength = Math.max(cryptoLength, frame.cryptoOffset + frame.end - frame.dataStart);
      }
    });
    const hello = Buffer.alloc(cryptoLength);
    for (let offset = 0; offset < cryptoLength; offset++) {
      if (!where[offset]) throw new Error(`the captured first flight lacks CRYPTO byte ${offset}`);
      hello[offset] = packets[where[offset][0][0]].payload[where[offset][0][1]];
    }
    if (hello[0] !== 1 || 4 + hello.readUIntBE(1, 3) > cryptoLength) throw new Error('the captured first flight does not hold a whole ClientHello');
    const dcidLength = packets[0].dcid.length;
    const scidLength = packets[0].scid.length;
    const RANDOM_AT = 6; // handshake type and length (4), legacy_version (2)
    // The ClientHello's transport parameters repeat the SCID (initial_source_connection_id, 0x0f;
    // RFC 9000 §7.3): a server drops a connection whose header SCID differs, so each flight's
    // parameter gets its new SCID too.
    const tp = findTransportParameters(hello);
    if (!tp) throw new Error('no transport parameters in the captured ClientHello');
    let scidAt = -1;
    for (let p = tp[0]; p < tp[1]; ) {
      const [id, a] = readVarint(hello, p);
      const [length, b] = readVarint(hello, a);
      if (id === 0x0f && length === scidLength && hello.subarray(b, b + length).equals(packets[0].scid)) scidAt = b;
      p = b + length;
    }
    if (scidAt < 0) throw new Error('no initial_source_connection_id equal to the SCID in the captured ClientHello');
    const capturedInfo = {
      datagrams: captured.length,
      sizes: captured.map((d) => d.length),
      dcidLength,
      scidLength,
      coalescedBytes: packets.reduce((n, p) => n + p.rest.length, 0),
      clientHelloBytes: cryptoLength,
    };
    for (let i = 0; i < count; i++) {
      const dcid = crypto.randomBytes(dcidLength);
      const scid = crypto.randomBytes(scidLength);
      original.set(scid.toString('hex'), dcid);
      flights.push(
        (() => {
          const payloads = packets.map((packet) => Buffer.from(packet.payload));
          const put = (offset, bytes) => {
            for (let k = 0; k < bytes.length; k++) for (const [index, at] of where[offset + k]) payloads[index][at] = bytes[k];
          };
          put(RANDOM_AT, crypto.randomBytes(32));
          put(scidAt, scid);
          return packets.map((packet, index) =>
            sealInitial({ version: packet.version, dcid, scid, token: Buffer.alloc(0), packetNumber: packet.packetNumber, payload: payloads[index] }),
          );
        })(),
      );
    }
    // The flights open again as client Initials (a self-check of the sealing).
    if (!openInitial(flights[0][0])) throw new Error('a sealed flight does not open');
    return { captured: capturedInfo, sealMs: Math.round(performance.now() - t0), sockets: sockets.length };
  }

  function flood({ port, seconds }) {
    return new Promise((resolve) => {
      const total = flights.length;
      const start = performance.now();
      const durationMs = seconds * 1000;
      const perMs = total / durationMs;
      let pending = 0;
      let lastSendAt = start;
      const step = () => {
        const now = performance.now();
        const due = Math.min(total, Math.ceil((now - start) * perMs));
        while (sent.flights < due) {
          const index = sent.flights;
          const socket = sockets[index % sockets.length];
          for (const datagram of flights[index]) {
            pending++;
            sent.datagrams++;
            sent.bytes += datagram.length;
            socket.send(datagram, port, HOST, (error) => {
              pending--;
              if (error) tally(sent.sendErrors, error.code ?? String(error));
            });
          }
          flights[index] = undefined; // let it go once sent
          sent.ports.add(index % sockets.length);
          sent.flights++;
          lastSendAt = now;
        }
        if (sent.flights >= total || now - start >= durationMs) {
          const finish = () =>
            resolve({
              flights: sent.flights,
              datagrams: sent.datagrams,
              bytes: sent.bytes,
              sendErrors: sent.sendErrors,
              portsUsed: sent.ports.size,
              elapsedMs: Math.round(lastSendAt - start),
              wallMs: Math.round(performance.now() - start),
            });
          const drain = () => (pending > 0 && performance.now() - start < durationMs + 5000 ? setTimeout(drain, 5) : finish());
          drain();
          return;
        }
        setTimeout(step, 1);
      };
      step();
    });
  }

  process.on('disconnect', () => process.exit(0));
  process.on('message', async (message) => {
    try {
      if (message.cmd === 'prepare') process.send({ event: 'prepared', ...(await prepare(message)) });
      else if (message.cmd === 'flood') process.send({ event: 'flooded', ...(await flood(message)) });
      else if (message.cmd === 'stats') process.send({ event: 'stats', id: message.id, received, cpu: process.cpuUsage() });
    } catch (error) {
      process.send({ event: 'failed', error: String(error && error.stack) });
    }
  });
  process.send({ event: 'ready', pid: process.pid });
}

// ---------------------------------------------------------------------------------------------
// The parent

const USAGE =
  "usage: flood.js [--flights N] [--ports N] [--seconds S] [--address-validation auto|always|never] [--server '<JSON>'] " +
  '[--legit-interval MS] [--legit-timeout MS] [--settle-seconds S] [--out FILE] [--check] [--time-limit S]';

function parseCli(argv) {
  const options = {
    flights: 50000,
    ports: 1000,
    seconds: 10,
    addressValidation: undefined,
    server: '{}',
    legitInterval: 200,
    legitTimeout: 5000,
    settleSeconds: undefined,
    out: undefined,
    check: false,
    timeLimit: 180,
  };
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i].replace(/^--/, '').replace(/-(\w)/g, (_, c) => c.toUpperCase());
    if (name === 'check') {
      options.check = true;
      continue;
    }
    const raw = argv[++i];
    if (!(name in options) || raw === undefined) {
      console.error(USAGE);
      process.exit(64);
    }
    if (['addressValidation', 'server', 'out'].includes(name)) {
      options[name] = raw;
      continue;
    }
    const value = Number(raw);
    if (!Number.isFinite(value) || value < 0) {
      console.error(USAGE);
      process.exit(64);
    }
    options[name] = value;
  }
  if (options.ports < 1 || options.flights < 1 || options.seconds <= 0) {
    console.error(USAGE);
    process.exit(64);
  }
  try {
    options.serverOptions = JSON.parse(options.server);
  } catch (error) {
    console.error(`flood: --server is not JSON: ${error.message}`);
    process.exit(64);
  }
  if (options.addressValidation !== undefined) options.serverOptions.addressValidation = options.addressValidation;
  return options;
}

/** A child process speaking JSON messages over IPC; request() asks and waits for the answer. */
function child(role, args, children) {
  const proc = fork(__filename, ['--role', role, ...args], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.add(proc);
  let nextId = 1;
  const waiters = new Map();
  const events = [];
  const listeners = new Set();
  proc.on('message', (message) => {
    if (message.event === 'stats' && waiters.has(message.id)) {
      waiters.get(message.id)(message);
      waiters.delete(message.id);
      return;
    }
    events.push(message);
    for (const listener of listeners) listener(message);
  });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  return {
    proc,
    exited,
    /** The next event named `name` (or one already received), or a rejection if the child fails or exits. */
    next(name, timeoutMs = 60000) {
      return new Promise((resolve, reject) => {
        const found = events.findIndex((m) => m.event === name || m.event === 'failed');
        const settle = (message) => (message.event === 'failed' ? reject(new Error(`${role}: ${message.error}`)) : resolve(message));
        if (found >= 0) return settle(events.splice(found, 1)[0]);
        const timer = setTimeout(() => done(() => reject(new Error(`${role}: no '${name}' within ${timeoutMs} ms`))), timeoutMs);
        const listener = (message) => {
          if (message.event !== name && message.event !== 'failed') return;
          events.splice(events.indexOf(message), 1);
          done(() => settle(message));
        };
        const done = (then) => {
          clearTimeout(timer);
          listeners.delete(listener);
          then();
        };
        listeners.add(listener);
        exited.then(({ code, signal }) => done(() => reject(new Error(`${role} exited (${signal ?? code})`))));
      });
    },
    request(message, timeoutMs = 10000) {
      const id = nextId++;
      return new Promise((resolve) => {
        const timer = setTimeout(() => {
          waiters.delete(id);
          resolve(undefined);
        }, timeoutMs);
        waiters.set(id, (answer) => {
          clearTimeout(timer);
          resolve(answer);
        });
        try {
          proc.send({ ...message, id });
        } catch {
          clearTimeout(timer);
          resolve(undefined);
        }
      });
    },
    send(message) {
      proc.send(message);
    },
  };
}

function procStatus(pid) {
  try {
    const text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (field) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1]);
    return { rss: kib('VmRSS') * 1024, hwm: kib('VmHWM') * 1024 };
  } catch {
    return undefined;
  }
}

const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** User + system CPU seconds a process has used (/proc/<pid>/stat), whether or not its loop is busy. */
function procCpuSeconds(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS; // utime, stime (fields 14 and 15)
  } catch {
    return undefined;
  }
}

/** The kernel's drop counter of the UDP socket bound to 127.0.0.1:port (/proc/net/udp, last column). */
function socketDrops(port) {
  try {
    const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
    for (const line of fs.readFileSync('/proc/net/udp', 'utf8').split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields[1] === local) return Number(fields[fields.length - 1]);
    }
  } catch {
    // not Linux
  }
  return undefined;
}

const mib = (bytes) => (bytes === undefined || Number.isNaN(bytes) ? undefined : Math.round((bytes / MIB) * 10) / 10);

function percentile(sorted, p) {
  if (!sorted.length) return undefined;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}


function render(report) {
  const { formatTable } = require('../bench/lib/table');
  const r = report;
  const show = (v, unit = '') => (v === undefined || v === null ? '—' : `${v}${unit}`);
  const rows = [
    ['server engine options', JSON.stringify(r.options.serverOptions)],
    ['first flight (captured)', `${r.sender.captured.datagrams} datagram(s) of ${r.sender.captured.sizes.join(', ')} bytes, DCID ${r.sender.captured.dcidLength} / SCID ${r.sender.captured.scidLength} bytes`],
    ['flights sent', `${r.flood.flights} of ${r.options.flights} (${r.flood.datagrams} datagrams, ${mib(r.flood.bytes)} MiB)`],
    ['achieved rate', `${r.flood.flightsPerSecond} flights/s over ${r.flood.elapsedMs} ms (asked: ${Math.round(r.options.flights / r.options.seconds)}/s)`],
    ['distinct source ports', r.flood.portsUsed],
    ['send errors', JSON.stringify(r.flood.sendErrors)],
    ['dropped by the kernel at the server socket', show(r.server.socketDrops)],
    ['server connections created', show(r.server.counters?.connections)],
    ['server handshakes completed (legit)', show(r.server.counters?.handshakes)],
    ['server answers IPC again after the flood', `${show(r.server.responsiveAfterMs, ' ms')} (then ${show(r.server.firstAnswer?.connections)} connections made, ${show(r.server.firstAnswer?.open)} open)`],
    ['server: every connection ended', r.server.settledAfterMs === undefined ? `not within ${r.options.settleMs / 1000} s (${show(r.server.counters?.open)} still open)` : `${r.server.settledAfterMs} ms after the flood`],
    ['server closes by reason', JSON.stringify(r.server.counters?.closed ?? {})],
    ['server RSS start / peak / flood end / settled', `${show(r.rss.startMiB)} / ${show(r.rss.peakMiB)} / ${show(r.rss.endMiB)} / ${show(r.rss.settledMiB)} MiB`],
    ['server RSS growth (peak - start)', `${show(r.rss.growthMiB)} MiB`],
    ['CPU during the flood: server / sender', `${show(r.server.cpuSecondsDuringFlood)} s / ${show(r.server.senderCpuSecondsDuringFlood)} s (of ${r.flood.elapsedMs / 1000} s, ${r.environment.cpus} CPUs)`],
    ['answers: flights answered', `${r.answers.flightsAnswered} (${r.answers.datagrams} datagrams, ${mib(r.answers.bytes)} MiB, amplification ${show(r.answers.amplification)}x)`],
    ['answers by packet type (first packet of a datagram)', JSON.stringify(r.answers.byType)],
    ['answers: Retry / CONNECTION_CLOSE', `${r.answers.retryFlights} flights got a Retry; CONNECTION_CLOSE ${JSON.stringify(r.answers.connectionClose)}`],
    ['legit handshakes ok / failed', `${r.legit.ok} / ${r.legit.failed} ${Object.keys(r.legit.failures).length ? JSON.stringify(r.legit.failures) : ''}`],
    ['legit handshake p50 / p99 / max', `${show(r.legit.p50Ms)} / ${show(r.legit.p99Ms)} / ${show(r.legit.maxMs)} ms`],
    ['legit handshake before the flood (warm-up)', `${r.legit.warmupMs.join(', ')} ms`],
  ];
  const targets = r.targets.map((t) => [t.pass ? 'PASS' : 'FAIL', t.description, show(t.value), t.wanted]);
  return [
    `quicket flood of first flights, ${r.startedAt.replace('T', ' ').slice(0, 19)} UTC, git ${r.environment.gitCommit ?? '?'}${r.environment.gitDirty ? '+' : ''}, ${r.environment.node}, ${r.environment.cpus} CPUs`,
    '',
    formatTable(['', 'measured'], rows),
    '',
    'Targets (issue 13 item 2)',
    formatTable(['', 'target', 'measured', 'wanted'], targets),
  ].join('\n');
}

const progress = (line) => process.stderr.write(`flood: ${line}\n`);

/** How long to wait after the flood for every connection to end: --settle-seconds, or the server's handshakeTimeout + 30 s. */
const settleMsFor = (options) => (options.settleSeconds ?? (options.serverOptions.handshakeTimeout ?? 10000) / 1000 + 30) * 1000;

async function main() {
  const options = parseCli(process.argv.slice(2));
  execFileSync('bash', [path.join(__dirname, 'gen-certs.sh')], { stdio: ['ignore', 'ignore', 'inherit'] });
  const { Engine, SslConfig } = loadQuicket();
  const children = new Set();
  const killAll = () => {
    for (const c of children) {
      if (c.exitCode === null && c.signalCode === null) {
        try {
          process.kill(c.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
  };
  process.on('exit', killAll);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(signal, () => {
      killAll();
      process.exit(130);
    });
  }
  const hardStop = setTimeout(() => {
    console.error(`flood: the time limit of ${options.timeLimit} s cut the run short`);
    killAll();
    process.exit(2);
  }, options.timeLimit * 1000);
  hardStop.unref();

  const startedAt = new Date().toISOString();
  let client;
  let server;
  try {
    // 1. The server, and a legitimate client that completes a few handshakes before the flood.
    server = child('server', [JSON.stringify(options.serverOptions)], children);
    const listening = await server.next('listening', 30000);
    const port = listening.port;
    const serverPid = listening.pid;
    progress(`server pid ${serverPid} listening on ${HOST}:${port}, engine options ${JSON.stringify(options.serverOptions)}`);
    let serverDied;
    server.exited.then((how) => (serverDied = how));

    client = new Engine({ ssl: new SslConfig({ alpn: [ALPN], ca: pem('ca.pem') }), handshakeTimeout: options.legitTimeout });
    const handshakeOnce = async () => {
      const t0 = performance.now();
      const connection = client.connect({ host: HOST, port, servername: 'localhost' });
      connection.on('error', () => {});
      try {
        await connection.handshake;
        return { ms: performance.now() - t0 };
      } catch (error) {
        return { ms: performance.now() - t0, error: error.code ?? String(error) };
      } finally {
        connection.close().catch(() => {});
      }
    };
    const warmup = [];
    for (let i = 0; i < 3; i++) {
      const result = await handshakeOnce();
      if (result.error) throw new Error(`a handshake before the flood failed: ${result.error}`);
      warmup.push(Math.round(result.ms * 10) / 10);
    }

    // 2. The sender: sockets, the captured first flight, every flight sealed.
    const sender = child('sender', [], children);
    await sender.next('ready', 30000);
    sender.send({ cmd: 'prepare', port, flights: options.flights, ports: options.ports });
    progress(`sender pid ${sender.proc.pid}: binding ${options.ports} sockets, capturing a first flight, sealing ${options.flights} flights`);
    const prepared = await sender.next('prepared', 120000);

    // 3. The flood, the legitimate client every legitInterval ms, RSS sampling.
    await new Promise((r) => setTimeout(r, 200));
    const dropsBefore = socketDrops(port);
    const before = await server.request({ cmd: 'stats' });
    const startStatus = procStatus(serverPid);
    const startCpu = procCpuSeconds(serverPid);
    const senderStartCpu = procCpuSeconds(sender.proc.pid);
    const t0 = performance.now();
    let peakSampled = startStatus.rss;
    const timeline = []; // [ms since the flood started, server RSS MiB, server CPU % since the last entry], every 500 ms
    let lastTimelineAt = -Infinity;
    let lastTimelineCpu;
    const sampler = setInterval(() => {
      const status = procStatus(serverPid);
      if (!status) return;
      peakSampled = Math.max(peakSampled, status.rss);
      const at = performance.now() - t0;
      if (at - lastTimelineAt >= 500) {
        const cpu = procCpuSeconds(serverPid);
        const busy = lastTimelineCpu === undefined || cpu === undefined ? undefined : Math.round(((cpu - lastTimelineCpu) / ((at - lastTimelineAt) / 1000)) * 100);
        lastTimelineAt = at;
        lastTimelineCpu = cpu;
        timeline.push([Math.round(at), mib(status.rss), busy]);
      }
    }, 50);

    const legit = [];
    const pendingLegit = new Set();
    let flooding = true;
    const legitTimer = setInterval(() => {
      if (!flooding) return;
      const startedAtMs = Math.round(performance.now() - t0);
      const attempt = handshakeOnce().then((result) => {
        legit.push({ at: startedAtMs, ...result });
        pendingLegit.delete(attempt);
      });
      pendingLegit.add(attempt);
    }, options.legitInterval);
    progress(`flooding: ${options.flights} flights over ${options.seconds} s from ${options.ports} ports; a legitimate handshake every ${options.legitInterval} ms`);
    sender.send({ cmd: 'flood', port, seconds: options.seconds });
    const flooded = await sender.next('flooded', (options.seconds + 30) * 1000);
    flooding = false;
    clearInterval(legitTimer);
    const floodEnd = performance.now();
    const endStatus = procStatus(serverPid);
    const endCpu = procCpuSeconds(serverPid);
    const senderEndCpu = procCpuSeconds(sender.proc.pid);
    const dropsAfter = socketDrops(port);
    progress(`flood ended: ${flooded.flights} flights in ${flooded.elapsedMs} ms; waiting for the server to settle (at most ${settleMsFor(options) / 1000} s)`);
    await Promise.all([...pendingLegit]);

    // 4. Settle: the server answers again (its event loop may be far behind), and every half-open
    // flood connection ends (handshakeTimeout); polled every 500 ms, for at most --settle-seconds.
    const settleMs = settleMsFor(options);
    let atEnd; // the server's first answer after the flood
    let responsiveAfterMs;
    let settled;
    let settledAfterMs;
    while (performance.now() - floodEnd < settleMs) {
      const answer = await server.request({ cmd: 'stats' }, Math.max(1, settleMs - (performance.now() - floodEnd)));
      if (answer && !atEnd) {
        atEnd = answer;
        responsiveAfterMs = Math.round(performance.now() - floodEnd);
      }
      if (answer) settled = answer;
      if (answer && answer.counters.open === 0) {
        settledAfterMs = Math.round(performance.now() - floodEnd);
        break;
      }
      if (serverDied) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    clearInterval(sampler);
    const settledStatus = procStatus(serverPid);
    const answers = (await sender.request({ cmd: 'stats' }, 30000))?.received;
    const alive = serverDied === undefined && settledStatus !== undefined;

    // 5. Report.
    const times = legit.filter((r) => !r.error).map((r) => r.ms).sort((a, b) => a - b);
    const failures = {};
    for (const r of legit) if (r.error) tally(failures, r.error);
    const round = (ms) => (ms === undefined ? undefined : Math.round(ms * 10) / 10);
    const peak = Math.max(peakSampled, endStatus?.hwm ?? 0, settledStatus?.hwm ?? 0);
    const report = {
      startedAt,
      environment: environment(loadQuicket().versions),
      options: { flights: options.flights, ports: options.ports, seconds: options.seconds, serverOptions: options.serverOptions, legitInterval: options.legitInterval, legitTimeout: options.legitTimeout, settleMs },
      sender: prepared,
      flood: {
        flights: flooded.flights,
        datagrams: flooded.datagrams,
        bytes: flooded.bytes,
        elapsedMs: flooded.elapsedMs,
        flightsPerSecond: Math.round(flooded.flights / (Math.max(flooded.elapsedMs, 1) / 1000)),
        portsUsed: flooded.portsUsed,
        sendErrors: flooded.sendErrors,
      },
      server: {
        alive,
        exit: serverDied,
        socketDrops: dropsBefore === undefined || dropsAfter === undefined ? undefined : dropsAfter - dropsBefore,
        counters: settled?.counters,
        responsiveAfterMs,
        firstAnswer: atEnd?.counters,
        settledAfterMs,
        cpuSecondsDuringFlood: startCpu === undefined || endCpu === undefined ? undefined : round(endCpu - startCpu),
        senderCpuSecondsDuringFlood: senderStartCpu === undefined || senderEndCpu === undefined ? undefined : round(senderEndCpu - senderStartCpu),
        heapUsedMiB: { start: mib(before?.memory.heapUsed), end: mib(atEnd?.memory.heapUsed), settled: mib(settled?.memory.heapUsed) },
      },
      rss: {
        startMiB: mib(startStatus.rss),
        peakMiB: mib(peak),
        endMiB: mib(endStatus?.rss),
        settledMiB: mib(settledStatus?.rss),
        growthMiB: mib(peak - startStatus.rss),
        endGrowthMiB: endStatus ? mib(endStatus.rss - startStatus.rss) : undefined,
        timeline,
      },
      answers: answers && {
        ...answers,
        amplification: flooded.bytes ? Math.round((answers.bytes / flooded.bytes) * 100) / 100 : undefined,
      },
      legit: {
        attempts: legit.length,
        ok: times.length,
        failed: legit.length - times.length,
        failures,
        p50Ms: round(percentile(times, 50)),
        p99Ms: round(percentile(times, 99)),
        maxMs: round(times[times.length - 1]),
        each: legit.map((r) => ({ at: r.at, ms: round(r.ms), error: r.error })),
        warmupMs: warmup,
      },
    };
    // 50 ms of slack for timer granularity: the last flight is due at exactly 10 s.
    const atScale = flooded.flights >= 50000 && flooded.portsUsed >= 1000 && flooded.elapsedMs <= 10050;
    report.targets = [
      { description: 'flood at the issue\'s scale: ≥ 50,000 flights from ≥ 1,000 ports within 10 s', value: `${flooded.flights} / ${flooded.portsUsed} / ${(flooded.elapsedMs / 1000).toFixed(1)} s`, wanted: '50000 / 1000 / 10 s', pass: atScale },
      { description: 'server RSS growth (peak - start)', value: report.rss.growthMiB, wanted: '<= 32 MiB', pass: report.rss.growthMiB <= 32 },
      { description: 'legit handshakes during the flood: all complete within 1 s', value: `${times.length}/${legit.length}, max ${report.legit.maxMs} ms`, wanted: 'all, max <= 1000 ms', pass: legit.length > 0 && times.length === legit.length && report.legit.maxMs <= 1000 },
      { description: 'server process survives', value: alive ? 'alive' : `died (${serverDied?.signal ?? serverDied?.code})`, wanted: 'alive', pass: alive },
    ];
    report.pass = report.targets.every((t) => t.pass);

    const text = render(report);
    console.log(text);
    let out = options.out;
    if (!out) {
      const dir = path.join(ROOT, 'bench', 'results');
      fs.mkdirSync(dir, { recursive: true });
      out = path.join(dir, 'flood-latest.json');
      fs.writeFileSync(path.join(dir, `flood-${startedAt.replace(/:/g, '-').replace(/\..*$/, '')}.json`), `${JSON.stringify(report, null, 2)}\n`);
      fs.writeFileSync(path.join(dir, 'flood-latest.txt'), `${text}\n`);
    }
    fs.writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
    console.log(`\nresults: ${path.relative(process.cwd(), out)}`);
    process.exitCode = !alive ? 1 : options.check && !report.pass ? 1 : 0;
  } catch (error) {
    console.error(`flood: ${error && error.stack}`);
    process.exitCode = 1;
  } finally {
    if (client) await Promise.race([client.close().catch(() => {}), new Promise((r) => setTimeout(r, 2000))]);
    killAll();
  }
}

const roleAt = process.argv.indexOf('--role');
if (roleAt >= 0) {
  const role = process.argv[roleAt + 1];
  (role === 'server' ? serverRole(process.argv[roleAt + 2]) : senderRole()).catch((error) => {
    process.send?.({ event: 'failed', error: String(error && error.stack) });
    process.exit(1);
  });
} else {
  main();
}
