'use strict';
// The benchmark's own tiny request protocol, spoken identically over a quicket stream and a
// node:tls socket so that both carry the same bytes:
//   "get <n>\n"            the server answers with n bytes and ends
//   "put <n>\n" + n bytes  the server answers "ok\n" once it has received all n bytes
const { once } = require('node:events');
const { Readable } = require('node:stream');

/** Every payload is written in pieces of this size, by every transport. */
const CHUNK_SIZE = 256 * 1024;
const CHUNK = Buffer.alloc(CHUNK_SIZE);
for (let i = 0; i < CHUNK_SIZE; i++) CHUNK[i] = (i * 131 + (i >> 8)) & 0xff;

const MAX_HEADER = 64;

const encodeRequest = (op, bytes) => Buffer.from(`${op} ${bytes}\n`);

/** Writes n payload bytes with backpressure; resolves when all were handed to the writable. */
async function sendBytes(writable, bytes) {
  let left = bytes;
  while (left > 0) {
    if (writable.destroyed) throw new Error('destination destroyed before the payload was written');
    const piece = left >= CHUNK_SIZE ? CHUNK : CHUNK.subarray(0, left);
    left -= piece.length;
    if (!writable.write(piece)) await once(writable, 'drain');
  }
}

/** A Readable of n payload bytes (for APIs that take a body stream, like quicket's request()). */
function byteSource(bytes) {
  let left = bytes;
  return new Readable({
    read() {
      if (left === 0) {
        this.push(null);
        return;
      }
      const piece = left >= CHUNK_SIZE ? CHUNK : CHUNK.subarray(0, left);
      left -= piece.length;
      this.push(piece);
    },
  });
}

/** Server side of one exchange on a duplex (a quicket Stream or a TLS socket). */
function serveExchange(duplex) {
  let header = Buffer.alloc(0);
  let request;
  let received = 0;
  duplex.on('error', () => {}); // a client that goes away mid-exchange is not the server's failure
  duplex.on('data', (chunk) => {
    if (!request) {
      header = Buffer.concat([header, chunk]);
      const end = header.indexOf(0x0a);
      if (end < 0) {
        if (header.length > MAX_HEADER) duplex.destroy();
        return;
      }
      const [op, count] = header.subarray(0, end).toString().split(' ');
      request = { op, bytes: Number(count) };
      chunk = header.subarray(end + 1);
      if (!Number.isSafeInteger(request.bytes) || request.bytes < 0 || (op !== 'get' && op !== 'put')) {
        duplex.destroy();
        return;
      }
      if (op === 'get') {
        sendBytes(duplex, request.bytes).then(() => duplex.end(), () => duplex.destroy());
      }
    }
    if (request.op === 'put' && received < request.bytes) {
      received += chunk.length;
      if (received >= request.bytes) duplex.end('ok\n');
    }
  });
}

/**
 * Client side: reads a response of `bytes` bytes. Resolves with the hrtime of the first byte and of
 * the last one; rejects on error or when the duplex ends early.
 */
function readResponse(duplex, bytes) {
  return new Promise((resolve, reject) => {
    let firstByteAt;
    let received = 0;
    const onData = (chunk) => {
      firstByteAt ??= process.hrtime.bigint();
      received += chunk.length;
      if (received >= bytes) {
        cleanup();
        resolve({ firstByteAt, lastByteAt: process.hrtime.bigint(), received });
      }
    };
    const onEnd = () => {
      cleanup();
      reject(new Error(`response ended after ${received} of ${bytes} bytes`));
    };
    const onError = (error) => {
      cleanup();
      reject(error);
    };
    const cleanup = () => {
      duplex.off('data', onData);
      duplex.off('end', onEnd);
      duplex.off('error', onError);
      duplex.on('error', () => {});
      duplex.resume(); // keep reading whatever follows (the FIN) so the exchange can complete
    };
    duplex.on('data', onData);
    duplex.on('end', onEnd);
    duplex.on('error', onError);
  });
}

module.exports = { CHUNK_SIZE, encodeRequest, sendBytes, byteSource, serveExchange, readResponse };
