'use strict';
// A node:tls client peer (TLS 1.3 over TCP): the baseline for every quicket client benchmark.
// Resumption the node:tls way: keep the 'session' event's Buffer, pass it as `session`.
const { once } = require('node:events');
const tls = require('node:tls');

const { HOST, SERVERNAME, loadCerts, settledMemory, withTimeout } = require('../lib/common');
const { sequential, saturate, openMany } = require('../lib/loops');
const { encodeRequest, readResponse, sendBytes } = require('../lib/wire');

let secureContext;
const sessions = new Map(); // TTFB variant -> newest session, kept across rounds
let idle = [];

function connect({ host = HOST, port, session }) {
  // One SecureContext for the process (like one SslConfig), not a CA parse per connection.
  secureContext ??= tls.createSecureContext({ ca: loadCerts().ca, minVersion: 'TLSv1.3' });
  const socket = tls.connect({ host, port, servername: SERVERNAME, secureContext, session, minVersion: 'TLSv1.3' });
  socket.setNoDelay(true);
  socket.on('error', () => {});
  return socket;
}

/** Ends with close_notify + FIN; destroys if the close takes more than a second. */
async function finish(socket) {
  if (socket.destroyed) return;
  const closed = once(socket, 'close');
  socket.end();
  await withTimeout(closed, 1000, 'close').catch(() => socket.destroy());
}

/**
 * Catches the socket's 'session' events. OpenSSL issues no new ticket on a resumed TLS 1.3
 * connection, so a resumed client keeps its session (as node:https's agent does); a full handshake
 * waits for its ticket (up to ms).
 */
function sessionCatcher(socket, ms) {
  let latest;
  const arrived = new Promise((resolve) => socket.on('session', (session) => resolve((latest = session))));
  return async () => latest ?? (socket.isSessionReused() ? undefined : withTimeout(arrived, ms, 'session').catch(() => undefined));
}

exports.bulk = async ({ host, port, direction, bytes, timeoutMs }) => {
  const started = process.hrtime.bigint();
  const socket = connect({ host, port });
  try {
    let transfer;
    if (direction === 'download') {
      socket.write(encodeRequest('get', bytes));
      transfer = readResponse(socket, bytes);
    } else {
      socket.write(encodeRequest('put', bytes));
      transfer = Promise.all([readResponse(socket, 3), sendBytes(socket, bytes)]).then(([response]) => response);
    }
    const { lastByteAt } = await withTimeout(transfer, timeoutMs, `tls ${direction}`);
    return { seconds: Number(lastByteAt - started) / 1e9, cipher: socket.getCipher()?.standardName };
  } finally {
    await finish(socket);
  }
};

/** variant 'full' (no session) or 'resumed' (the previous connection's session). */
exports.ttfb = async ({ host, port, variant, count, warmup, timeLimitMs, responseBytes }) => {
  const useSession = variant === 'resumed';
  const exchange = async () => {
    const started = process.hrtime.bigint();
    const socket = connect({ host, port, session: useSession ? sessions.get(variant) : undefined });
    const session = useSession ? sessionCatcher(socket, 2000) : undefined;
    try {
      socket.write(encodeRequest('get', responseBytes)); // sent as soon as the handshake allows
      const { firstByteAt } = await withTimeout(readResponse(socket, responseBytes), 5000, 'exchange');
      if (session) sessions.set(variant, (await session()) ?? sessions.get(variant));
      return { ms: Number(firstByteAt - started) / 1e6, resumed: socket.isSessionReused(), earlyData: false };
    } finally {
      await finish(socket);
    }
  };
  return sequential({ count, warmup, timeLimitMs }, exchange);
};

exports.handshakes = async ({ port, resumed, concurrency, durationMs }) => {
  const closing = new Set();
  const result = await saturate({ concurrency, durationMs }, async (state) => {
    const socket = connect({ port, session: resumed ? state.session : undefined });
    const session = resumed ? sessionCatcher(socket, 2000) : undefined;
    try {
      await withTimeout(once(socket, 'secureConnect'), 5000, 'handshake');
      if (session) state.session = (await session()) ?? state.session;
      return { resumed: socket.isSessionReused() };
    } finally {
      const closed = finish(socket);
      closing.add(closed);
      closed.then(() => closing.delete(closed));
    }
  });
  await Promise.all(closing);
  return result;
};

exports.openIdle = async ({ port, count, concurrency, timeLimitMs }) => {
  const { opened, failed, lastError } = await openMany({ count, concurrency, timeLimitMs }, async () => {
    const socket = connect({ port });
    try {
      await withTimeout(once(socket, 'secureConnect'), 5000, 'handshake');
    } catch (error) {
      socket.destroy();
      throw error;
    }
    return socket;
  });
  idle.push(...opened);
  return { opened: opened.length, failed, lastError };
};

exports.memory = settledMemory;

exports.closeIdle = async () => {
  const sockets = idle;
  idle = [];
  await Promise.all(sockets.map(finish));
};

exports.close = () => exports.closeIdle();
