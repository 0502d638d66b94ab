'use strict';
// ngtcp2's own example HTTP/3 server and client on GnuTLS (Debian's ngtcp2-server/-client), the C
// stack quicket is built on, run as external programs.
const dgram = require('node:dgram');
const fs = require('node:fs');
const path = require('node:path');

const { CERTS, HOST, SERVERNAME, sleep } = require('./common');
const { runProgram, startProgram, stopProgram } = require('./processes');

function available() {
  return ['gtlsserver', 'gtlsclient'].every((tool) =>
    (process.env.PATH ?? '').split(':').some((dir) => dir && fs.existsSync(path.join(dir, tool))));
}

/** A UDP port that was free a moment ago. */
async function freeUdpPort() {
  const socket = dgram.createSocket('udp4');
  await new Promise((resolve) => socket.bind(0, HOST, resolve));
  const { port } = socket.address();
  await new Promise((resolve) => socket.close(resolve));
  return port;
}

/** Whether a UDP socket is bound to 127.0.0.1:port (from /proc/net/udp). */
function udpBound(port) {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return fs.readFileSync('/proc/net/udp', 'utf8').split('\n').some((line) => line.trim().split(/\s+/)[1] === local);
}

/** Starts gtlsserver serving htdocs on 127.0.0.1; resolves with { child, port } once it is bound. */
async function startServer(htdocs) {
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freeUdpPort();
    const child = startProgram('gtlsserver', ['-q', '-d', htdocs, HOST, String(port),
      path.join(CERTS, 'server-key.pem'), path.join(CERTS, 'server.pem')]);
    for (let waited = 0; waited < 3000 && child.exitCode === null; waited += 20) {
      if (udpBound(port)) return { child, port };
      await sleep(20);
    }
    await stopProgram(child); // the port was taken meanwhile, or the server is stuck: try again
  }
  throw new Error('gtlsserver did not start');
}

/**
 * Downloads https://localhost:port/<file> with gtlsclient into downloadDir. Resolves with the
 * seconds the whole gtlsclient process took (start-up and handshake included).
 */
async function download({ port, file, downloadDir, bytes, timeoutMs }) {
  const target = path.join(downloadDir, file);
  fs.rmSync(target, { force: true });
  const { code, signal, ms, stderr } = await runProgram('gtlsclient', ['-q', '--exit-on-all-streams-close',
    `--download=${downloadDir}`, `--timeout=${Math.ceil(timeoutMs / 1000)}s`, HOST, String(port),
    `https://${SERVERNAME}:${port}/${file}`], { timeoutMs });
  const size = fs.existsSync(target) ? fs.statSync(target).size : 0;
  fs.rmSync(target, { force: true });
  if (code !== 0 || size !== bytes) {
    throw new Error(`gtlsclient failed (${signal ?? `exit ${code}`}, ${size} of ${bytes} bytes): ${stderr.trim().slice(0, 200)}`);
  }
  return { seconds: ms / 1000 };
}

module.exports = { available, startServer, stopServer: stopProgram, download };
