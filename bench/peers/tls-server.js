'use strict';
// A node:tls (TLS 1.3 over TCP) server peer with the same certificates and the same exchanges as
// the quicket raw-stream server: one bench/lib/wire.js exchange per connection.
const tls = require('node:tls');

const { HOST, loadCerts, settledMemory } = require('../lib/common');
const { serveExchange } = require('../lib/wire');

let server;
const sockets = new Set();
const counters = { connections: 0, handshakes: 0, resumed: 0, failed: 0, open: 0 };

/** Starts listening on host (default 127.0.0.1). Resolves with the port. */
exports.listen = async ({ host = HOST } = {}) => {
  const { cert, key } = loadCerts();
  server = tls.createServer({ cert, key, minVersion: 'TLSv1.3' });
  server.on('secureConnection', (socket) => {
    counters.handshakes++;
    counters.open++;
    if (socket.isSessionReused()) counters.resumed++;
    socket.setNoDelay(true);
    sockets.add(socket);
    socket.once('close', () => {
      counters.open--;
      sockets.delete(socket);
    });
    serveExchange(socket);
  });
  server.on('connection', () => counters.connections++);
  server.on('tlsClientError', () => counters.failed++);
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, resolve);
  });
  return { port: server.address().port };
};

/** Counters, CPU time and the time of the reading (ms, this process's clock). */
exports.stats = () => ({ ...counters, cpu: process.cpuUsage(), rss: process.memoryUsage.rss(), at: performance.now() });

exports.memory = async () => ({ ...(await settledMemory()), open: counters.open });

exports.close = async () => {
  if (!server) return;
  for (const socket of sockets) socket.destroy();
  await new Promise((resolve) => server.close(resolve));
};
