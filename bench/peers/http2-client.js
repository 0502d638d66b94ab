'use strict';
// A node:http2 client (TLS 1.3 over one TCP connection): many requests at once on one session,
// the baseline for quicket's streams and HTTP/3 requests on one connection.
const { once } = require('node:events');
const http2 = require('node:http2');
const tls = require('node:tls');

const { HOST, SERVERNAME, loadCerts, withTimeout } = require('../lib/common');
const { readResponse } = require('../lib/wire');

// node:http2 keeps HTTP/2's default 64 KiB windows, which alone would cap one connection at
// 64 KiB per round trip. The baseline gets quicket's largest windows instead (ngtcp2 grows
// quicket's up to 6 MiB per stream and 16 MiB per connection), so flow control limits neither.
const STREAM_WINDOW = 6 * 1024 * 1024;
const CONNECTION_WINDOW = 16 * 1024 * 1024;

let secureContext;

function get(session, path, bytes) {
  const stream = session.request({ ':method': 'GET', ':path': path });
  const response = once(stream, 'response').then(([headers]) => {
    if (headers[':status'] !== 200) throw new Error(`HTTP/2 status ${headers[':status']}`);
  });
  return Promise.all([response, readResponse(stream, bytes)]).then(([, read]) => read);
}

/**
 * `count` GET /bytes/<bytes> at once on one new session; seconds from connect to the last byte of
 * the last response.
 */
exports.parallel = async ({ host = HOST, port, count, bytes, timeoutMs }) => {
  secureContext ??= tls.createSecureContext({ ca: loadCerts().ca, minVersion: 'TLSv1.3' });
  const started = process.hrtime.bigint();
  const session = http2.connect(`https://${host}:${port}`, {
    servername: SERVERNAME, secureContext, minVersion: 'TLSv1.3', settings: { initialWindowSize: STREAM_WINDOW },
  });
  session.on('error', () => {});
  session.once('connect', () => session.setLocalWindowSize(CONNECTION_WINDOW));
  try {
    const responses = Array.from({ length: count }, () => get(session, `/bytes/${bytes}`, bytes));
    const done = await withTimeout(Promise.all(responses), timeoutMs, `http2 x${count}`);
    const lastByteAt = done.reduce((last, r) => (r.lastByteAt > last ? r.lastByteAt : last), started);
    return { seconds: Number(lastByteAt - started) / 1e9, cipher: session.socket?.getCipher?.()?.standardName };
  } finally {
    session.destroy();
  }
};

exports.close = () => {};
