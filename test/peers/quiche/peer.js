#!/usr/bin/env node
// quiche interop peer for quicket: an echo server and a resuming 0-RTT client, ALPN "echo".
//
// Our own program, written on the raw quiche (Cloudflare, BoringSSL) Connection/Config API that
// npm's @matrixai/quic exports as `native.quiche` (its prebuilt binding), driven over node:dgram
// by the small loop below. Raw streams only, no HTTP/3. Same command line and JSON lines as the
// quic-go peer (test/peers/quic-go/README.md):
//
//	server -addr 127.0.0.1:4433 -cert server.pem -key server-key.pem [-duration 10m] [-max-conns 0]
//	client -addr 127.0.0.1:4433 -ca ca.pem [-servername localhost] [-n 10] [-size 1024]
//
// Output is one JSON object a line on stdout; diagnostics go to stderr. Every loop is bounded in
// count and time; the program only talks to the address it is given.
'use strict';

const crypto = require('node:crypto');
const dgram = require('node:dgram');

const ALPN = 'echo';
const MAX_DATAGRAM = 1350;
const DEBUG = process.env.QUICHE_PEER_DEBUG === '1';

function debug(...args) {
  if (DEBUG) process.stderr.write(`quiche-peer: ${args.join(' ')}\n`);
}

function emit(value) {
  process.stdout.write(JSON.stringify(value) + '\n');
}

function fatal(message) {
  process.stderr.write(`quiche-peer: ${message}\n`);
  process.exit(2);
}

// ---- flags (Go's flag package spelling: -name value, -name=value, --name value) ----------------

function parseDuration(text) {
  if (/^\d+$/.test(text)) return Number(text) * 1000; // bare number: seconds
  let total = 0;
  let rest = text;
  const units = { ms: 1, s: 1000, m: 60000, h: 3600000 };
  while (rest.length > 0) {
    const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)/.exec(rest);
    if (!m) throw new Error(`bad duration ${JSON.stringify(text)}`);
    total += Number(m[1]) * units[m[2]];
    rest = rest.slice(m[0].length);
  }
  return total;
}

function parseFlags(args, spec) {
  const values = {};
  for (const [name, def] of Object.entries(spec)) values[name] = def.value;
  for (let i = 0; i < args.length; i++) {
    const m = /^--?([a-z0-9-]+)(?:=(.*))?$/.exec(args[i]);
    if (!m || !(m[1] in spec)) fatal(`unknown flag ${args[i]} (flags: ${Object.keys(spec).map((f) => '-' + f).join(' ')})`);
    const def = spec[m[1]];
    let raw = m[2];
    if (def.type === 'bool') {
      values[m[1]] = raw === undefined ? true : raw === 'true';
      continue;
    }
    if (raw === undefined) {
      if (i + 1 >= args.length) fatal(`flag -${m[1]} needs a value`);
      raw = args[++i];
    }
    try {
      values[m[1]] = def.type === 'int' ? parseIntStrict(raw) : def.type === 'duration' ? parseDuration(raw) : raw;
    } catch (err) {
      fatal(`flag -${m[1]}: ${err.message}`);
    }
  }
  return values;
}

function parseIntStrict(text) {
  if (!/^-?\d+$/.test(text)) throw new Error(`not an integer: ${JSON.stringify(text)}`);
  return Number(text);
}

function splitAddr(addr) {
  const i = addr.lastIndexOf(':');
  if (i < 0) fatal(`address ${addr} has no port`);
  const host = addr.slice(0, i).replace(/^\[|\]$/g, '');
  return { host, port: Number(addr.slice(i + 1)) };
}

// ---- packet inspection: which long-header packets a datagram holds ------------------------------

function readVarint(buf, off) {
  if (off >= buf.length) return null;
  const len = 1 << (buf[off] >> 6);
  if (off + len > buf.length) return null;
  let v = buf[off] & 0x3f;
  for (let k = 1; k < len; k++) v = v * 256 + buf[off + k];
  return { value: v, next: off + len };
}

/** Counts the 0-RTT packets coalesced in one QUIC v1 datagram (long headers are unprotected enough). */
function count0rttPackets(buf) {
  let off = 0;
  let n = 0;
  while (off < buf.length && buf[off] & 0x80) {
    const type = (buf[off] >> 4) & 0x03; // v1: 0 Initial, 1 0-RTT, 2 Handshake, 3 Retry
    if (type === 3) break;
    let p = off + 5;
    if (p >= buf.length) break;
    p += 1 + buf[p]; // DCID
    if (p >= buf.length) break;
    p += 1 + buf[p]; // SCID
    if (type === 0) {
      const token = readVarint(buf, p);
      if (!token) break;
      p = token.next + token.value;
    }
    const length = readVarint(buf, p);
    if (!length) break;
    if (type === 1) n++;
    off = length.next + length.value;
  }
  return n;
}

// ---- the quiche binding --------------------------------------------------------------------------

async function loadQuiche() {
  // @matrixai/quic's index exports the native binding as `native.quiche` (import() loads it
  // whether the installed version is CommonJS, as 1.2 is, or an ES module, as 2.0 is).
  const { native } = await import('@matrixai/quic');
  return native;
}

function commonConfig(quiche, config, earlyData = true) {
  config.setApplicationProtos([ALPN]);
  config.setMaxIdleTimeout(30000);
  config.setMaxRecvUdpPayloadSize(MAX_DATAGRAM);
  config.setMaxSendUdpPayloadSize(MAX_DATAGRAM);
  config.setInitialMaxData(16 * 1024 * 1024);
  config.setInitialMaxStreamDataBidiLocal(4 * 1024 * 1024);
  config.setInitialMaxStreamDataBidiRemote(4 * 1024 * 1024);
  config.setInitialMaxStreamDataUni(1024 * 1024);
  config.setInitialMaxStreamsBidi(128);
  config.setInitialMaxStreamsUni(16);
  config.setDisableActiveMigration(true);
  if (earlyData) config.enableEarlyData();
  return config;
}

/** Sends everything quiche has queued for `conn` on `socket`; returns the datagrams' 0-RTT packet count. */
function flush(conn, socket, out) {
  let zeroRtt = 0;
  for (let guard = 0; guard < 100000; guard++) {
    let sent;
    try {
      sent = conn.send(out);
    } catch (err) {
      process.stderr.write(`quiche-peer: send: ${err.message}\n`);
      return zeroRtt;
    }
    if (sent === null) break;
    const [len, info] = sent;
    const datagram = Buffer.from(out.subarray(0, len)); // dgram sends asynchronously: copy
    zeroRtt += count0rttPackets(datagram);
    socket.send(datagram, info.to.port, info.to.host);
  }
  return zeroRtt;
}

/** One timer per connection, re-armed from quiche's timeout() after every event. */
function armTimer(state, onFire) {
  if (state.timer) clearTimeout(state.timer);
  state.timer = null;
  const ms = state.conn.timeout();
  if (ms === null || ms === undefined) return;
  state.timer = setTimeout(onFire, Math.max(0, Math.ceil(ms)) + 1);
}

function errorText(e) {
  if (!e) return null;
  const reason = e.reason && e.reason.length ? ` ${Buffer.from(e.reason).toString()}` : '';
  return `${e.isApp ? 'application' : 'transport'} error 0x${e.errorCode.toString(16)}${reason}`;
}

// ---- server --------------------------------------------------------------------------------------

async function runServer(args) {
  const flags = parseFlags(args, {
    addr: { type: 'string', value: '127.0.0.1:4433' },
    cert: { type: 'string', value: '' },
    key: { type: 'string', value: '' },
    duration: { type: 'duration', value: 10 * 60 * 1000 },
    'max-conns': { type: 'int', value: 0 },
    'no-0rtt': { type: 'bool', value: false },
    'rotate-after': { type: 'int', value: 0 },
  });
  if (!flags.cert || !flags.key) fatal('server: -cert and -key are required');
  const native = await loadQuiche();
  const { quiche } = native;
  const config = new quiche.Config();
  config.loadCertChainFromPemFile(flags.cert);
  config.loadPrivKeyFromPemFile(flags.key);
  config.verifyPeer(false);
  commonConfig(quiche, config, !flags['no-0rtt']);

  const { host, port } = splitAddr(flags.addr);
  const socket = dgram.createSocket('udp4');
  await new Promise((resolve, reject) => socket.once('error', reject).bind(port, host, resolve));
  socket.on('error', (err) => process.stderr.write(`quiche-peer: socket: ${err.message}\n`));
  const local = socket.address();
  const localHost = { host: local.address, port: local.port };
  emit({ listening: `${local.address}:${local.port}` });

  const out = Buffer.alloc(65536);
  const inbuf = Buffer.alloc(65536);
  const byCid = new Map(); // hex DCID (ours, and the client's original) -> state
  let seq = 0;
  let finished = 0;
  const totals = { connections: 0, handshakes: 0, resumed: 0, earlyData: 0, failed: 0 };
  let stopping = false;

  function finish(state) {
    if (state.done) return;
    state.done = true;
    if (state.timer) clearTimeout(state.timer);
    for (const cid of state.cids) byCid.delete(cid);
    const report = { conn: state.id, resumed: state.resumed, earlyData: state.earlyData };
    const peerError = state.conn.peerError();
    const localError = state.conn.localError();
    if (!state.established) {
      report.error = 'handshake: ' + (errorText(peerError) || errorText(localError) || (state.conn.isTimedOut() ? 'timed out' : 'closed'));
    } else if (peerError && !(peerError.errorCode === 0)) {
      report.error = 'peer closed with ' + errorText(peerError);
    } else if (localError && localError.errorCode !== 0) {
      report.error = 'closed with ' + errorText(localError);
    } else if (!peerError && !localError && state.conn.isTimedOut()) {
      report.error = 'idle timeout';
    }
    if (report.error) totals.failed++;
    else {
      totals.handshakes++;
      if (report.resumed) totals.resumed++;
      if (report.earlyData) totals.earlyData++;
    }
    emit(report);
    finished++;
    if (flags['rotate-after'] > 0 && finished === flags['rotate-after']) {
      // Tickets issued so far can no longer be opened: their holders get a full handshake.
      config.setTicketKey(crypto.randomBytes(48));
      emit({ rotated: true });
    }
    if (flags['max-conns'] > 0 && finished >= flags['max-conns']) stop();
  }

  function serviceStreams(state) {
    const { conn } = state;
    for (const id of conn.readable()) {
      for (let guard = 0; guard < 100000; guard++) {
        let r;
        try {
          r = conn.streamRecv(id, inbuf);
        } catch (err) {
          break; // stream reset by the peer
        }
        if (r === null) break;
        const [len, fin] = r;
        if (id % 4 === 0) {
          // Client-initiated bidirectional: echo it.
          let s = state.streams.get(id);
          if (!s) state.streams.set(id, (s = { pending: [], fin: false, sentFin: false }));
          if (len > 0) s.pending.push(Buffer.from(inbuf.subarray(0, len)));
          if (!state.established) state.earlyBytes += len;
          if (fin) s.fin = true;
        }
        if (fin) break;
      }
    }
    for (const [id, s] of state.streams) {
      while (s.pending.length > 0) {
        const chunk = s.pending[0];
        const last = s.pending.length === 1 && s.fin;
        let written;
        try {
          written = conn.streamSend(id, chunk, last);
        } catch (err) {
          s.pending = []; // stopped by the peer
          s.sentFin = true;
          break;
        }
        if (written === null) break;
        if (written < chunk.length) {
          s.pending[0] = chunk.subarray(written);
          break;
        }
        s.pending.shift();
        if (last) s.sentFin = true;
      }
      if (s.pending.length === 0 && s.fin && !s.sentFin) {
        try {
          if (conn.streamSend(id, Buffer.alloc(0), true) !== null) s.sentFin = true;
        } catch (err) {
          s.sentFin = true;
        }
      }
      if (s.sentFin) state.streams.delete(id);
    }
  }

  function afterEvent(state) {
    const { conn } = state;
    if (!state.established) {
      // quiche's is_in_early_data on a server: it accepted the client's 0-RTT and the
      // handshake is not complete yet.
      if (conn.isInEarlyData()) state.earlyData = true;
      if (conn.isEstablished()) {
        state.established = true;
        state.resumed = conn.isResumed();
      }
    }
    serviceStreams(state);
    flush(conn, socket, out);
    if (conn.isClosed()) return finish(state);
    armTimer(state, () => {
      conn.onTimeout();
      afterEvent(state);
    });
  }

  socket.on('message', (msg, rinfo) => {
    if (stopping) return;
    let header;
    try {
      header = quiche.Header.fromSlice(msg, quiche.MAX_CONN_ID_LEN);
    } catch (err) {
      return;
    }
    const dcid = Buffer.from(header.dcid).toString('hex');
    let state = byCid.get(dcid);
    const from = { host: rinfo.address, port: rinfo.port };
    if (!state) {
      if (header.ty !== quiche.Type.Initial) return;
      if (!quiche.versionIsSupported(header.version)) {
        const n = quiche.negotiateVersion(header.scid, header.dcid, out);
        socket.send(Buffer.from(out.subarray(0, n)), rinfo.port, rinfo.address);
        return;
      }
      if (msg.length < quiche.MIN_CLIENT_INITIAL_LEN) return;
      const scid = crypto.randomBytes(quiche.MAX_CONN_ID_LEN);
      let conn;
      try {
        conn = quiche.Connection.accept(scid, null, localHost, from, config);
      } catch (err) {
        process.stderr.write(`quiche-peer: accept: ${err.message}\n`);
        return;
      }
      state = {
        id: ++seq, conn, cids: [dcid, scid.toString('hex')], streams: new Map(), timer: null,
        established: false, resumed: false, earlyData: false, earlyBytes: 0, done: false,
      };
      totals.connections++;
      for (const cid of state.cids) byCid.set(cid, state);
    }
    try {
      state.conn.recv(msg, { from, to: localHost });
    } catch (err) {
      // quiche's Done and per-packet errors: the connection's own state says what happened.
      debug('server recv error', err.message);
    }
    afterEvent(state);
  });

  function stop() {
    if (stopping) return;
    stopping = true;
    const open = new Set(byCid.values());
    for (const state of open) {
      try {
        state.conn.close(true, 0, Buffer.from('server stopping'));
      } catch (err) {
        // already closing
      }
      flush(state.conn, socket, out);
      finish(state);
    }
    emit({ summary: true, ...totals });
    setTimeout(() => {
      socket.close();
      process.exit(0);
    }, 50).unref();
  }

  setTimeout(stop, flags.duration).unref();
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  // Keep the process alive until stop() (the socket does that), bounded by -duration.
}

// ---- client --------------------------------------------------------------------------------------

async function runClient(args) {
  const flags = parseFlags(args, {
    addr: { type: 'string', value: '127.0.0.1:4433' },
    ca: { type: 'string', value: '' },
    servername: { type: 'string', value: 'localhost' },
    n: { type: 'int', value: 10 },
    size: { type: 'int', value: 1024 },
    timeout: { type: 'duration', value: 10000 },
    'ticket-wait': { type: 'duration', value: 2000 },
    'gap-min-ms': { type: 'int', value: 0 },
    'gap-max-ms': { type: 'int', value: 0 },
    seed: { type: 'int', value: 0 },
  });
  if (flags.n < 1 || flags.n > 100000) fatal('client: -n must be 1..100000');
  if (flags.size < 0 || flags.size > 64 * 1024 * 1024) fatal('client: -size must be 0..64 MiB');
  if (flags['gap-min-ms'] < 0 || flags['gap-max-ms'] < flags['gap-min-ms'] || flags['gap-max-ms'] > 600000) {
    fatal('client: need 0 <= -gap-min-ms <= -gap-max-ms <= 600000');
  }
  const native = await loadQuiche();
  const { quiche } = native;
  const config = new quiche.Config();
  if (flags.ca) config.loadVerifyLocationsFromFile(flags.ca);
  config.verifyPeer(true);
  commonConfig(quiche, config);
  const remote = splitAddr(flags.addr);

  let seed = flags.seed || Date.now();
  const rand = () => {
    // xorshift32, for the pauses only
    seed ^= seed << 13; seed >>>= 0;
    seed ^= seed >>> 17;
    seed ^= seed << 5; seed >>>= 0;
    return seed / 4294967296;
  };
  const initialSeed = seed;

  let session = null;
  const sum = { ok: 0, failed: 0, resumed: 0, used0rtt: 0, cached: 0, sent0rtt: 0, rejected0rtt: 0 };
  for (let i = 0; i < flags.n; i++) {
    let gap = 0;
    if (i > 0 && flags['gap-max-ms'] > 0) {
      gap = flags['gap-min-ms'] + Math.floor(rand() * (flags['gap-max-ms'] - flags['gap-min-ms'] + 1));
      await new Promise((resolve) => setTimeout(resolve, gap));
    }
    const report = await oneConnection(quiche, config, i, remote, flags, session);
    if (report.session) session = report.session;
    delete report.session;
    report.gapMs = gap;
    emit(report);
    if (report.ok) sum.ok++;
    else sum.failed++;
    if (report.resumed) sum.resumed++;
    if (report.used0rtt) sum.used0rtt++;
    if (report.cached) sum.cached++;
    if (report.sent0rtt > 0) sum.sent0rtt++;
    if (report.rejected0rtt) sum.rejected0rtt++;
  }
  emit({ summary: true, n: flags.n, ...sum, seed: initialSeed });
  process.exit(sum.failed > 0 ? 1 : 0);
}

/**
 * One connection: resumes from `session` when given, writes the message on stream 0 before the
 * first packet goes out (so what the remembered flow-control limits allow rides 0-RTT), reads the
 * echo, then waits up to -ticket-wait for a new session ticket and closes with code 0.
 *
 * used0rtt (the server accepted our 0-RTT) is derived, since this quiche binding exposes no
 * early-data-accepted call: the handshake resumed, we sent 0-RTT packets, and the first echo byte
 * arrived while quiche had retransmitted no stream bytes. The echo's first byte needs the request's
 * first byte at the server, and that byte only travelled in a 0-RTT packet; if the server had
 * rejected 0-RTT it would only have it from a retransmission (quiche resends the lost 0-RTT
 * STREAM frames in 1-RTT packets), which shows in stats().streamRetransBytes. A 0-RTT packet lost
 * on the way would make this say false for an accepted 0-RTT: it errs towards false only.
 */
function oneConnection(quiche, config, i, remote, flags, session) {
  return new Promise((resolve) => {
    const report = {
      i, resumed: false, used0rtt: false, ok: false, cached: session !== null, sent0rtt: 0,
      rejected0rtt: false, retransBeforeEcho: 0, gotTicket: false, ms: 0,
    };
    const message = crypto.randomBytes(flags.size);
    const socket = dgram.createSocket('udp4');
    const out = Buffer.alloc(65536);
    const inbuf = Buffer.alloc(65536);
    const echo = [];
    let echoLen = 0;
    let offset = 0; // bytes of message handed to quiche
    let sentFin = false;
    let firstEchoRetrans = null;
    let verified = false;
    let closing = false;
    let done = false;
    let ticketTimer = null;
    const state = { conn: null, timer: null };
    const start = process.hrtime.bigint();
    const deadline = setTimeout(() => fail(report.ok ? null : 'timeout'), flags.timeout);

    function end() {
      if (done) return;
      done = true;
      clearTimeout(deadline);
      if (ticketTimer) clearTimeout(ticketTimer);
      if (state.timer) clearTimeout(state.timer);
      socket.close();
      resolve(report);
    }

    function fail(why) {
      if (why && !report.error) report.error = why;
      close(why ? 1 : 0);
      // Give the CONNECTION_CLOSE a moment to leave, then stop.
      setTimeout(end, 20);
    }

    function close(code) {
      if (closing || !state.conn) return;
      closing = true;
      try {
        state.conn.close(true, code, Buffer.alloc(0));
      } catch (err) {
        // already closed
      }
      flush(state.conn, socket, out);
    }

    function writeMore() {
      const { conn } = state;
      while (!sentFin) {
        const chunk = message.subarray(offset, Math.min(message.length, offset + 65536));
        const last = offset + chunk.length === message.length;
        let written;
        try {
          written = conn.streamSend(0, chunk, last);
        } catch (err) {
          if (err.message === 'Done') return;
          return fail('stream send: ' + err.message);
        }
        if (written === null) return; // flow control: wait for credit
        offset += written;
        if (last && written === chunk.length) sentFin = true;
        if (written < chunk.length) return;
      }
    }

    function readEcho() {
      const { conn } = state;
      for (const id of conn.readable()) {
        for (let guard = 0; guard < 100000; guard++) {
          let r;
          try {
            r = conn.streamRecv(id, inbuf);
          } catch (err) {
            return fail(`stream ${id}: ${err.message}`);
          }
          if (r === null) break;
          const [len, fin] = r;
          if (id === 0) {
            if (len > 0 && firstEchoRetrans === null) firstEchoRetrans = conn.stats().streamRetransBytes;
            echo.push(Buffer.from(inbuf.subarray(0, len)));
            echoLen += len;
            if (echoLen > message.length) return fail(`echo longer than the ${message.length} bytes sent`);
            if (fin) return echoDone();
          }
          if (fin) break;
        }
      }
    }

    function echoDone() {
      const { conn } = state;
      const got = Buffer.concat(echo);
      report.ms = Number(process.hrtime.bigint() - start) / 1e6;
      if (!conn.isEstablished()) return fail('echo finished before the handshake');
      verified = true;
      report.resumed = conn.isResumed();
      const retransBeforeEcho = firstEchoRetrans === null ? conn.stats().streamRetransBytes : firstEchoRetrans;
      report.retransBeforeEcho = retransBeforeEcho;
      report.used0rtt = report.resumed && report.sent0rtt > 0 && (message.length === 0 || retransBeforeEcho === 0);
      report.rejected0rtt = report.sent0rtt > 0 && !report.used0rtt;
      if (!got.equals(message)) return fail(`echo mismatch: sent ${message.length} bytes, got ${got.length}`);
      report.ok = true;
      maybeTicket();
      if (report.gotTicket) return fail(null); // the ticket came before the echo finished
      ticketTimer = setTimeout(() => fail(null), flags['ticket-wait']);
    }

    function maybeTicket() {
      if (report.gotTicket || !state.conn) return;
      const fresh = state.conn.session();
      if (fresh && (!session || !Buffer.from(fresh).equals(Buffer.from(session)))) {
        report.gotTicket = true;
        report.session = Buffer.from(fresh);
        if (verified) fail(null);
      }
    }

    function afterEvent() {
      if (done) return;
      const { conn } = state;
      if (!closing) {
        readEcho();
        maybeTicket();
      }
      if (done) return;
      report.sent0rtt += flush(conn, socket, out);
      // Stream data can be queued once quiche has 0-RTT keys (after the first flight with a
      // session, whose remembered transport parameters give the flow-control credit) or 1-RTT keys.
      if (!closing && !sentFin && (conn.isInEarlyData() || conn.isEstablished())) {
        writeMore();
        if (done) return;
        report.sent0rtt += flush(conn, socket, out);
      }
      if (conn.isClosed()) {
        if (!verified && !report.error) {
          report.error = 'closed: ' + (errorText(conn.peerError()) || errorText(conn.localError()) || (conn.isTimedOut() ? 'timed out' : 'closed'));
        }
        return end();
      }
      armTimer(state, () => {
        conn.onTimeout();
        afterEvent();
      });
    }

    socket.on('message', (msg, rinfo) => {
      if (done) return;
      try {
        state.conn.recv(msg, { from: { host: rinfo.address, port: rinfo.port }, to: state.local });
      } catch (err) {
        // per-packet errors; the connection's state says the rest
        debug('client recv error', err.message);
      }
      afterEvent();
    });
    socket.on('error', (err) => fail('socket: ' + err.message));
    socket.bind(0, '127.0.0.1', () => {
      const a = socket.address();
      state.local = { host: a.address, port: a.port };
      try {
        state.conn = quiche.Connection.connect(flags.servername, crypto.randomBytes(quiche.MAX_CONN_ID_LEN), state.local,
          { host: remote.host, port: remote.port }, config);
        if (session) state.conn.setSession(session);
      } catch (err) {
        report.error = 'connect: ' + err.message;
        return end();
      }
      afterEvent();
    });
  });
}

// ---- main ----------------------------------------------------------------------------------------

function main() {
  const [mode, ...rest] = process.argv.slice(2);
  if (mode === 'server') return runServer(rest);
  if (mode === 'client') return runClient(rest);
  fatal('usage: peer.js server|client [flags]');
}

Promise.resolve(main()).catch((err) => fatal(err && err.stack ? err.stack : String(err)));
