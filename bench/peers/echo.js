'use strict';
// UDP and TCP echo, to measure the round trip of an emulated path with the same kernel path and
// the same kind of process as the benchmarks: listen() runs on the server side, ping() on the
// client side. The round trips it measures are the RTT unit of the latency benchmarks.
const dgram = require('node:dgram');
const { once } = require('node:events');
const net = require('node:net');

const { withTimeout } = require('../lib/common');

let udp;
let tcp;
const sockets = new Set();

/** Echoes every UDP datagram and every TCP byte on host; resolves with both ports. */
exports.listen = async ({ host }) => {
  udp = dgram.createSocket('udp4');
  udp.on('message', (message, peer) => udp.send(message, peer.port, peer.address));
  await new Promise((resolve) => udp.bind(0, host, resolve));
  tcp = net.createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.pipe(socket);
  });
  await new Promise((resolve) => tcp.listen(0, host, resolve));
  return { udpPort: udp.address().port, tcpPort: tcp.address().port };
};

const msSince = (start) => Number(process.hrtime.bigint() - start) / 1e6;

async function udpRoundTrips(host, port, count) {
  const client = dgram.createSocket('udp4');
  await new Promise((resolve) => client.bind(0, resolve));
  const samples = [];
  let lost = 0;
  try {
    for (let i = 0; i < count; i++) {
      const started = process.hrtime.bigint();
      client.send(Buffer.from([i & 0xff]), port, host);
      try {
        await withTimeout(once(client, 'message'), 1000, 'udp echo');
        samples.push(msSince(started));
      } catch {
        lost++; // on a lossy path a ping can be lost; it is not a round trip
      }
    }
  } finally {
    client.close();
  }
  return { samples, lost };
}

/**
 * `connections` TCP connections one after the other: the time connect() takes (SYN to SYN-ACK,
 * one round trip) and then one-byte echoes on the open connection (count in all).
 */
async function tcpRoundTrips(host, port, count, connections) {
  const samples = [];
  const connectSamples = [];
  for (let c = 0; c < connections; c++) {
    const started = process.hrtime.bigint();
    const socket = net.connect({ host, port, noDelay: true });
    socket.on('error', () => {});
    try {
      await withTimeout(once(socket, 'connect'), 3000, 'tcp connect');
      connectSamples.push(msSince(started));
      for (let i = 0; i < Math.ceil(count / connections); i++) {
        const sent = process.hrtime.bigint();
        socket.write('x');
        await withTimeout(once(socket, 'data'), 3000, 'tcp echo');
        samples.push(msSince(sent));
      }
    } finally {
      socket.destroy();
    }
  }
  return { samples, connectSamples };
}

/** Round trips to an echo peer's listen() ports, in ms: { udp, udpLost, tcp, tcpConnect } sample lists. */
exports.ping = async ({ host, udpPort, tcpPort, count = 20, connections = 4 }) => {
  const udpResult = await udpRoundTrips(host, udpPort, count);
  const tcpResult = await tcpRoundTrips(host, tcpPort, count, connections);
  return { udp: udpResult.samples, udpLost: udpResult.lost, tcp: tcpResult.samples, tcpConnect: tcpResult.connectSamples };
};

exports.close = async () => {
  for (const socket of sockets) socket.destroy();
  if (udp) udp.close();
  if (tcp) await new Promise((resolve) => tcp.close(resolve));
};
