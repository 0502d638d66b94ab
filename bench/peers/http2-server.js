'use strict';
// A node:http2 server over TLS 1.3 (ALPN h2): GET /bytes/<n> answers n bytes, the multiplexed
// baseline for quicket's raw streams and HTTP/3 on one connection.
const http2 = require('node:http2');

const { HOST, loadCerts } = require('../lib/common');
const { sendBytes } = require('../lib/wire');

let server;
const sessions = new Set();

function respond(stream, headers) {
  stream.on('error', () => {});
  const download = /^\/bytes\/(\d+)$/.exec(headers[':path']);
  if (headers[':method'] !== 'GET' || !download) {
    stream.respond({ ':status': 404 }, { endStream: true });
    return;
  }
  const bytes = Number(download[1]);
  stream.respond({ ':status': 200, 'content-length': bytes, 'content-type': 'application/octet-stream' });
  sendBytes(stream, bytes).then(() => stream.end(), () => stream.destroy());
}

/** Starts listening on host (default 127.0.0.1). Resolves with the port. */
exports.listen = async ({ host = HOST } = {}) => {
  const { cert, key } = loadCerts();
  server = http2.createSecureServer({ cert, key, minVersion: 'TLSv1.3' });
  server.on('stream', respond);
  server.on('session', (session) => {
    sessions.add(session);
    session.on('error', () => {});
    session.once('close', () => sessions.delete(session));
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, resolve);
  });
  return { port: server.address().port };
};

exports.close = async () => {
  if (!server) return;
  for (const session of sessions) session.destroy();
  await new Promise((resolve) => server.close(resolve));
};
