'use strict';
// The child side of processes.js: loads bench/peers/<module>.js and answers RPC calls from the
// runner over the IPC channel. If the runner goes away, so does the peer.
const path = require('node:path');

const peer = require(path.join(__dirname, '..', 'peers', path.basename(process.argv[2])));

process.on('disconnect', () => process.exit(0));

process.on('message', async ({ id, method, args }) => {
  let reply;
  try {
    if (method !== 'close' && typeof peer[method] !== 'function') throw new Error(`no method ${method}`);
    const result = await peer[method]?.(args);
    reply = { id, result };
  } catch (error) {
    reply = { id, error: { message: error?.message ?? String(error), code: error?.code } };
  }
  process.send(reply, () => {
    // close is the last call: exit even if a handle (an unclosed socket) would keep the loop alive.
    if (method === 'close') process.exit(0);
  });
});

process.send({ ready: true });
