'use strict';
// Simulated network delay on loopback, for latency benchmarks: a UDP relay (for QUIC) and a TCP
// proxy (for node:tls) that hold every packet or chunk for `oneWayMs` in each direction.
//
// A TCP proxy cannot delay the kernel's SYN-ACK: the client's connect() completes at once. So the
// proxy charges the TCP handshake by holding the client's first bytes until one RTT after the
// accept, as if they had been sent when a real SYN-ACK would have arrived. Both directions keep
// their order. These relays model latency only: no loss, no bandwidth limit, no backpressure.
//
// Library: startUdpRelay(), startTcpProxy(). Command line (Ctrl-C to stop):
//   node bench/delay-relay.js --target-port 4433 [--udp-port 0] [--tcp-port 0] [--one-way-ms 10]
const dgram = require('node:dgram');
const net = require('node:net');

const now = () => process.hrtime.bigint();
const NS_PER_MS = 1000000n;

/**
 * Runs callbacks at given hrtime instants with sub-millisecond accuracy: a timer brings it within
 * about a millisecond of the instant, setImmediate (which keeps polling I/O) covers the rest.
 * Equal instants run in the order they were scheduled.
 */
class DelayLine {
  #heap = [];
  #sequence = 0;
  #timer;
  #immediate;

  schedule(due, callback) {
    const entry = { due, order: this.#sequence++, callback };
    this.#heap.push(entry);
    this.#siftUp(this.#heap.length - 1);
    if (this.#heap[0] === entry) this.#arm();
  }

  close() {
    clearTimeout(this.#timer);
    clearImmediate(this.#immediate);
    this.#heap = [];
  }

  #arm() {
    clearTimeout(this.#timer);
    clearImmediate(this.#immediate);
    this.#timer = this.#immediate = undefined;
    if (this.#heap.length === 0) return;
    const waitMs = Number(this.#heap[0].due - now()) / 1e6;
    if (waitMs > 1.5) this.#timer = setTimeout(() => this.#run(), Math.floor(waitMs - 1));
    else this.#immediate = setImmediate(() => this.#run());
  }

  #run() {
    const instant = now();
    while (this.#heap.length > 0 && this.#heap[0].due <= instant) this.#pop().callback();
    this.#arm();
  }

  #before(a, b) {
    return a.due < b.due || (a.due === b.due && a.order < b.order);
  }

  #siftUp(index) {
    const heap = this.#heap;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (!this.#before(heap[index], heap[parent])) break;
      [heap[index], heap[parent]] = [heap[parent], heap[index]];
      index = parent;
    }
  }

  #pop() {
    const heap = this.#heap;
    const top = heap[0];
    const last = heap.pop();
    if (heap.length > 0) {
      heap[0] = last;
      let index = 0;
      for (;;) {
        const left = 2 * index + 1;
        const right = left + 1;
        let smallest = index;
        if (left < heap.length && this.#before(heap[left], heap[smallest])) smallest = left;
        if (right < heap.length && this.#before(heap[right], heap[smallest])) smallest = right;
        if (smallest === index) break;
        [heap[index], heap[smallest]] = [heap[smallest], heap[index]];
        index = smallest;
      }
    }
    return top;
  }
}

function bindUdp(host, port) {
  const socket = dgram.createSocket('udp4');
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, host, () => {
      socket.off('error', reject);
      socket.on('error', () => {}); // e.g. ICMP port unreachable after the target stopped
      resolve(socket);
    });
  });
}

/**
 * A UDP relay on host:port (0: any free port) to target { host, port }. Each client address gets
 * its own upstream socket, so the target sees one stable peer per client.
 * Resolves with { port, close() }.
 */
async function startUdpRelay({ host = '127.0.0.1', port = 0, target, oneWayMs }) {
  const delay = BigInt(Math.round(oneWayMs * 1e6));
  const line = new DelayLine();
  const front = await bindUdp(host, port);
  const upstreams = new Map();
  let closed = false;

  const upstreamFor = async (client) => {
    const key = `${client.address}:${client.port}`;
    if (!upstreams.has(key)) {
      const bound = bindUdp(host, 0).then((upstream) => {
        upstream.on('message', (message) => {
          line.schedule(now() + delay, () => {
            if (!closed) front.send(message, client.port, client.address);
          });
        });
        return upstream;
      });
      upstreams.set(key, bound);
    }
    return upstreams.get(key);
  };

  front.on('message', (message, client) => {
    const due = now() + delay;
    upstreamFor(client).then((upstream) => {
      line.schedule(due, () => {
        if (!closed) upstream.send(message, target.port, target.host);
      });
    });
  });

  return {
    port: front.address().port,
    async close() {
      closed = true;
      line.close();
      const sockets = [front, ...(await Promise.all(upstreams.values()))];
      await Promise.all(sockets.map((socket) => new Promise((resolve) => socket.close(resolve))));
    },
  };
}

/**
 * A TCP proxy on host:port to target { host, port }, delaying each direction by oneWayMs and
 * charging one RTT for the TCP handshake (see the top of this file). Resolves with { port, close() }.
 */
async function startTcpProxy({ host = '127.0.0.1', port = 0, target, oneWayMs }) {
  const delay = BigInt(Math.round(oneWayMs * 1e6));
  const line = new DelayLine();
  const sockets = new Set();

  const server = net.createServer({ noDelay: true, allowHalfOpen: true }, (client) => {
    const acceptedAt = now();
    const upstream = net.connect({ host: target.host, port: target.port, noDelay: true, allowHalfOpen: true });
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    // Client bytes leave no earlier than a real SYN-ACK would have let them (one RTT).
    const clientDue = () => {
      const earliest = acceptedAt + 2n * delay;
      const instant = now();
      return (instant > earliest ? instant : earliest) + delay;
    };
    const forward = (from, to, due) => {
      from.on('data', (chunk) => line.schedule(due(), () => to.destroyed || to.write(chunk)));
      from.on('end', () => line.schedule(due(), () => to.destroyed || to.end()));
    };
    forward(client, upstream, clientDue);
    forward(upstream, client, () => now() + delay);
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });

  return {
    port: server.address().port,
    async close() {
      line.close();
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

module.exports = { DelayLine, startUdpRelay, startTcpProxy };

if (require.main === module) {
  const { parseArgs } = require('node:util');
  const { values } = parseArgs({
    options: {
      'target-host': { type: 'string', default: '127.0.0.1' },
      'target-port': { type: 'string' },
      'udp-port': { type: 'string' },
      'tcp-port': { type: 'string' },
      'one-way-ms': { type: 'string', default: '10' },
    },
  });
  if (!values['target-port']) {
    console.error('usage: node bench/delay-relay.js --target-port <port> [--udp-port <p>] [--tcp-port <p>] [--one-way-ms 10]');
    process.exit(2);
  }
  const target = { host: values['target-host'], port: Number(values['target-port']) };
  const oneWayMs = Number(values['one-way-ms']);
  (async () => {
    const relays = [];
    const ports = {};
    if (values['udp-port'] !== undefined || values['tcp-port'] === undefined) {
      relays.push(await startUdpRelay({ port: Number(values['udp-port'] ?? 0), target, oneWayMs }));
      ports.udp = relays.at(-1).port;
    }
    if (values['tcp-port'] !== undefined) {
      relays.push(await startTcpProxy({ port: Number(values['tcp-port']), target, oneWayMs }));
      ports.tcp = relays.at(-1).port;
    }
    console.log(JSON.stringify({ ...ports, target, oneWayMs }));
    process.once('SIGINT', () => Promise.all(relays.map((relay) => relay.close())));
  })().catch((error) => {
    console.error(error);
    process.exit(1);
  });
}
