'use strict';
// A quicket client peer: one Engine (one UDP socket) carries every connection of the process,
// as an application would use it.
const { Engine, SslConfig, request } = require('../../dist');
const { HOST, RAW_ALPN, SERVERNAME, loadCerts, settledMemory, withTimeout } = require('../lib/common');
const { sequential, saturate, openMany } = require('../lib/loops');
const { byteSource, encodeRequest, readResponse, sendBytes } = require('../lib/wire');

let engine;
let idleEngine; // openIdle({ idleTimeout }): held connections on an engine of their own
const sslConfigs = new Map();
const tickets = new Map(); // TTFB variant -> newest ticket, kept across rounds
let idle = [];

/** One SslConfig per (ALPN, 0-RTT policy), created once like an application would. */
function clientSsl(alpn, earlyData) {
  const key = `${alpn}/${earlyData}`;
  if (!sslConfigs.has(key)) sslConfigs.set(key, new SslConfig({ alpn: [alpn], ca: loadCerts().ca, earlyData }));
  return sslConfigs.get(key);
}

function connect({ host = HOST, port, alpn = RAW_ALPN, earlyData = true, ticket, on }) {
  engine ??= new Engine();
  const connection = (on ?? engine).connect({ host, port, servername: SERVERNAME, ssl: clientSsl(alpn, earlyData), ticket });
  connection.on('error', () => {});
  return connection;
}

/** Closes gracefully, or destroys if that takes more than a second. */
async function finish(connection) {
  await withTimeout(connection.close(), 1000, 'close').catch(() => connection.destroy());
}

/** The first 'ticket' of a connection (or undefined after ms). */
function nextTicket(connection, ms) {
  const ticket = new Promise((resolve) => connection.once('ticket', resolve));
  return () => withTimeout(ticket, ms, 'ticket').catch(() => undefined);
}

async function rawTransfer(connection, direction, bytes) {
  const stream = connection.openStream();
  if (direction === 'download') {
    stream.end(encodeRequest('get', bytes));
    return readResponse(stream, bytes);
  }
  stream.write(encodeRequest('put', bytes));
  const [response] = await Promise.all([readResponse(stream, 3), sendBytes(stream, bytes).then(() => stream.end())]);
  return response;
}

async function http3Transfer(connection, direction, bytes) {
  const response = direction === 'download'
    ? await request(connection, { path: `/bytes/${bytes}` })
    : await request(connection, { method: 'PUT', path: '/upload', headers: { 'content-length': bytes }, body: byteSource(bytes) });
  if (response.status !== 200) throw new Error(`HTTP/3 status ${response.status}`);
  return readResponse(response.body, direction === 'download' ? bytes : 3);
}

/** One transfer of `bytes` on one stream; seconds from connect() to the last response byte. */
exports.bulk = async ({ host, port, mode, direction, bytes, timeoutMs }) => {
  const started = process.hrtime.bigint();
  const connection = connect({ host, port, alpn: mode === 'h3' ? 'h3' : RAW_ALPN });
  try {
    const transfer = mode === 'h3' ? http3Transfer(connection, direction, bytes) : rawTransfer(connection, direction, bytes);
    const { lastByteAt } = await withTimeout(transfer, timeoutMs, `${mode} ${direction}`);
    return { seconds: Number(lastByteAt - started) / 1e9 };
  } finally {
    await finish(connection);
  }
};

/**
 * `count` responses of `bytes` each, all requested at once on one new connection (raw streams or
 * HTTP/3 requests); seconds from connect() to the last byte of the last response.
 */
exports.parallel = async ({ host, port, mode, count, bytes, timeoutMs }) => {
  const started = process.hrtime.bigint();
  const connection = connect({ host, port, alpn: mode === 'h3' ? 'h3' : RAW_ALPN });
  try {
    const transfer = (mode === 'h3' ? http3Transfer : rawTransfer).bind(null, connection, 'download', bytes);
    const responses = await withTimeout(Promise.all(Array.from({ length: count }, transfer)), timeoutMs, `${mode} x${count}`);
    const lastByteAt = responses.reduce((last, r) => (r.lastByteAt > last ? r.lastByteAt : last), started);
    const { packetsSent, packetsReceived, packetsLost, rtt } = connection.stats();
    return { seconds: Number(lastByteAt - started) / 1e9, client: { packetsSent, packetsReceived, packetsLost, minRttMs: rtt.min } };
  } finally {
    await finish(connection);
  }
};

/**
 * Time to first response byte of a tiny request on a new connection, `count` times in a row.
 * variant 'full': no ticket; 'resumed': the previous connection's ticket, 0-RTT off; '0rtt': the
 * ticket and the request in the first flight. Measured from connect() to the first byte.
 */
exports.ttfb = async ({ host, port, variant, count, warmup, timeLimitMs, responseBytes }) => {
  const useTicket = variant !== 'full';
  const exchange = async () => {
    const started = process.hrtime.bigint();
    const connection = connect({ host, port, earlyData: variant === '0rtt', ticket: useTicket ? tickets.get(variant) : undefined });
    const ticket = useTicket ? nextTicket(connection, 2000) : undefined;
    try {
      const stream = connection.openStream(); // same tick as connect(): 0-RTT when the ticket allows
      stream.end(encodeRequest('get', responseBytes));
      const { firstByteAt } = await withTimeout(readResponse(stream, responseBytes), 5000, 'exchange');
      const info = await connection.handshake;
      if (ticket) tickets.set(variant, (await ticket()) ?? tickets.get(variant));
      return { ms: Number(firstByteAt - started) / 1e6, resumed: info.resumed, earlyData: info.earlyData === 'accepted' };
    } finally {
      await finish(connection);
    }
  };
  return sequential({ count, warmup, timeLimitMs }, exchange);
};

/**
 * Handshakes back to back from `concurrency` connections at a time; with `resumed`, each worker
 * resumes from the newest ticket of its previous connection (no 0-RTT: nothing to send early).
 */
exports.handshakes = async ({ port, resumed, concurrency, durationMs }) => {
  const closing = new Set();
  const result = await saturate({ concurrency, durationMs }, async (state) => {
    const connection = connect({ port, earlyData: false, ticket: resumed ? state.ticket : undefined });
    const ticket = resumed ? nextTicket(connection, 2000) : undefined;
    try {
      const info = await withTimeout(connection.handshake, 5000, 'handshake');
      if (ticket) state.ticket = (await ticket()) ?? state.ticket;
      return { resumed: info.resumed };
    } finally {
      // Not awaited: the next handshake starts while this connection closes, as on a busy client.
      const closed = finish(connection);
      closing.add(closed);
      closed.then(() => closing.delete(closed));
    }
  });
  await Promise.all(closing);
  return result;
};

/** Full handshakes one after the other: ms from connect() to the handshake's completion. */
exports.handshakeLatency = async ({ port, count, warmup, timeLimitMs }) => sequential({ count, warmup, timeLimitMs }, async () => {
  const started = process.hrtime.bigint();
  const connection = connect({ port, earlyData: false });
  try {
    const info = await withTimeout(connection.handshake, 5000, 'handshake');
    return { ms: Number(process.hrtime.bigint() - started) / 1e6, resumed: info.resumed, earlyData: false };
  } finally {
    await finish(connection);
  }
});

/**
 * Opens `count` connections that then stay idle (no streams) until closeIdle(). With
 * `idleTimeout` (ms) they live on an engine of their own with that idle timeout.
 */
exports.openIdle = async ({ port, count, concurrency, timeLimitMs, idleTimeout }) => {
  if (idleTimeout !== undefined) idleEngine ??= new Engine({ idleTimeout });
  const { opened, failed, lastError } = await openMany({ count, concurrency, timeLimitMs }, async () => {
    const connection = connect({ port, earlyData: false, on: idleEngine });
    try {
      await withTimeout(connection.handshake, 5000, 'handshake');
    } catch (error) {
      connection.destroy();
      throw error;
    }
    return connection;
  });
  idle.push(...opened);
  return { opened: opened.length, failed, lastError };
};

exports.memory = settledMemory;

exports.closeIdle = async () => {
  const connections = idle;
  idle = [];
  if (idleEngine) {
    // Thousands at once: the engine closes them all (CONNECTION_CLOSE each) without waiting.
    await idleEngine.close();
    idleEngine = undefined;
  }
  await Promise.all(connections.map(finish));
};

exports.close = async () => {
  await exports.closeIdle();
  await engine?.close();
};
