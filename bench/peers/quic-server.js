'use strict';
// A quicket server peer: raw streams speaking bench/lib/wire.js, or HTTP/3 (Http3Server).
// 0-RTT is enabled; counters let the runner read handshakes done and connections open.
const { Engine, Http3Server, SslConfig } = require('../../dist');
const { HOST, RAW_ALPN, loadCerts, settledMemory } = require('../lib/common');
const { sendBytes, serveExchange } = require('../lib/wire');

let engine;
let http3;
const counters = { connections: 0, handshakes: 0, resumed: 0, earlyData: 0, open: 0 };

/** HTTP/3: GET /bytes/<n> answers n bytes; PUT /upload answers "ok\n" after the whole body. */
function handleRequest(req, res) {
  req.on('error', () => {});
  res.on('error', () => {});
  const download = /^\/bytes\/(\d+)$/.exec(req.path);
  if (req.method === 'GET' && download) {
    const bytes = Number(download[1]);
    res.writeHead(200, { 'content-length': bytes, 'content-type': 'application/octet-stream' });
    sendBytes(res, bytes).then(() => res.end(), () => res.destroy());
  } else if (req.method === 'PUT' && req.path === '/upload') {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-length': 3 }).end('ok\n'));
  } else {
    res.writeHead(404).end();
  }
}

function track(connection, raw) {
  counters.connections++;
  counters.open++;
  connection.on('error', () => {});
  connection.once('handshake', (info) => {
    counters.handshakes++;
    if (info.resumed) counters.resumed++;
    if (info.earlyData === 'accepted') counters.earlyData++;
  });
  connection.once('close', () => counters.open--);
  if (raw) connection.on('stream', serveExchange);
}

/**
 * Starts listening on host (default 127.0.0.1); mode 'raw' (ALPN "bench") or 'h3'; `idleTimeout`
 * in ms (raw only; default the engine's). Resolves with the port.
 */
exports.listen = async ({ mode = 'raw', host = HOST, idleTimeout }) => {
  const { cert, key } = loadCerts();
  const ssl = new SslConfig({ alpn: [mode === 'h3' ? 'h3' : RAW_ALPN], cert, key, earlyData: true });
  if (mode === 'h3') {
    http3 = new Http3Server({ ssl }, handleRequest);
    engine = http3.engine;
  } else {
    engine = new Engine({ ssl, idleTimeout });
  }
  engine.on('connection', (connection) => track(connection, mode !== 'h3'));
  const { port } = await (http3 ?? engine).listen({ host, port: 0 });
  return { port };
};

/** Counters, CPU time and the time of the reading (ms, this process's clock). */
exports.stats = () => ({ ...counters, cpu: process.cpuUsage(), rss: process.memoryUsage.rss(), at: performance.now() });

exports.memory = async () => ({ ...(await settledMemory()), open: counters.open });

exports.close = async () => {
  if (http3) await http3.close(1000);
  else await engine?.close();
};
