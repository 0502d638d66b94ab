'use strict';
// The delay relay as a peer process (its timers then compete with nobody's event loop), plus a
// calibration that measures what RTT the relays really add on this machine.
const dgram = require('node:dgram');
const { once } = require('node:events');
const net = require('node:net');

const { startTcpProxy, startUdpRelay } = require('../delay-relay');
const { HOST, withTimeout } = require('../lib/common');
const { median, p99, round } = require('../lib/stats');

let relays = [];

/** Starts a UDP relay to udpTarget and a TCP proxy to tcpTarget (ports on 127.0.0.1). */
exports.start = async ({ udpTarget, tcpTarget, oneWayMs }) => {
  const ports = {};
  if (udpTarget) {
    const relay = await startUdpRelay({ target: { host: HOST, port: udpTarget }, oneWayMs });
    relays.push(relay);
    ports.udp = relay.port;
  }
  if (tcpTarget) {
    const proxy = await startTcpProxy({ target: { host: HOST, port: tcpTarget }, oneWayMs });
    relays.push(proxy);
    ports.tcp = proxy.port;
  }
  return ports;
};

const msSince = (start) => Number(process.hrtime.bigint() - start) / 1e6;

async function udpRoundTrips(oneWayMs, count) {
  const echo = dgram.createSocket('udp4');
  echo.on('message', (message, peer) => echo.send(message, peer.port, peer.address));
  await new Promise((resolve) => echo.bind(0, HOST, resolve));
  const relay = await startUdpRelay({ target: { host: HOST, port: echo.address().port }, oneWayMs });
  const client = dgram.createSocket('udp4');
  await new Promise((resolve) => client.bind(0, HOST, resolve));
  const samples = [];
  try {
    for (let i = 0; i < count; i++) {
      const started = process.hrtime.bigint();
      client.send(Buffer.from([i & 0xff]), relay.port, HOST);
      await withTimeout(once(client, 'message'), 1000, 'udp echo');
      samples.push(msSince(started));
    }
  } finally {
    await relay.close();
    client.close();
    echo.close();
  }
  return samples;
}

async function tcpRoundTrips(oneWayMs, count) {
  const echo = net.createServer((socket) => socket.pipe(socket));
  await new Promise((resolve) => echo.listen(0, HOST, resolve));
  const proxy = await startTcpProxy({ target: { host: HOST, port: echo.address().port }, oneWayMs });
  const samples = [];
  const connectSamples = [];
  try {
    for (let c = 0; c < 5; c++) {
      const started = process.hrtime.bigint();
      const socket = net.connect({ host: HOST, port: proxy.port, noDelay: true });
      for (let i = 0; i < Math.ceil(count / 5); i++) {
        const sent = process.hrtime.bigint();
        socket.write('x');
        await withTimeout(once(socket, 'data'), 1000, 'tcp echo');
        // The first exchange includes the emulated TCP handshake (expected: 2 RTT).
        if (i === 0) connectSamples.push(msSince(started));
        else samples.push(msSince(sent));
      }
      socket.destroy();
    }
  } finally {
    await proxy.close();
    await new Promise((resolve) => echo.close(resolve));
  }
  return { samples, connectSamples };
}

/** Measures the relays' real round trip (median and p99 ms) with echo servers in this process. */
exports.calibrate = async ({ oneWayMs, count = 40 }) => {
  const udp = await udpRoundTrips(oneWayMs, count);
  const tcp = await tcpRoundTrips(oneWayMs, count);
  return {
    udp: { median: round(median(udp)), p99: round(p99(udp)) },
    tcp: { median: round(median(tcp.samples)), p99: round(p99(tcp.samples)) },
    tcpConnectAndEcho: { median: round(median(tcp.connectSamples)) },
  };
};

exports.close = async () => {
  await Promise.all(relays.map((relay) => relay.close()));
  relays = [];
};
