'use strict';
// What every peer shares: the test certificates, the loopback address, and small helpers.
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.join(__dirname, '..', '..');
const CERTS = path.join(ROOT, 'test', 'fixtures', 'certs');
const HOST = '127.0.0.1';
const SERVERNAME = 'localhost';
/** ALPN of quicket's raw-stream benchmarks. */
const RAW_ALPN = 'bench';

let certs;
/** { ca, cert, key } as Buffers, made by scripts/gen-certs.sh (the runner calls it first). */
function loadCerts() {
  certs ??= {
    ca: fs.readFileSync(path.join(CERTS, 'ca.pem')),
    cert: fs.readFileSync(path.join(CERTS, 'server.pem')),
    key: fs.readFileSync(path.join(CERTS, 'server-key.pem')),
  };
  return certs;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Rejects with a labelled error when `promise` does not settle within ms. */
function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error(`${what} timed out after ${ms} ms`), { code: 'BENCH_TIMEOUT' })), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Resident set size and heap after two full garbage collections (peers run with --expose-gc). */
async function settledMemory() {
  for (let i = 0; i < 3; i++) {
    global.gc?.();
    await sleep(100);
  }
  const { rss, heapUsed, external, arrayBuffers } = process.memoryUsage();
  return { rss, heapUsed, external, arrayBuffers };
}

module.exports = { ROOT, CERTS, HOST, SERVERNAME, RAW_ALPN, loadCerts, sleep, withTimeout, settledMemory };
