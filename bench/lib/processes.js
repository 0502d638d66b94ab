'use strict';
// Every process the benchmark starts goes through here, so that each one is stopped by its own
// PID however the run ends (normal end, error, timeout, Ctrl-C).
//
// Node peers (servers, clients, echo) are forked with an IPC channel and driven by RPC:
// peer.call('method', { ...args }) runs exports.method({ ...args }) of the peer's module in the child.
const { fork, spawn } = require('node:child_process');
const path = require('node:path');

const children = new Set();
let stopping = false; // after stopAll() nothing new starts

function refuseIfStopping() {
  if (stopping) throw new Error('the benchmark run is stopping');
}

function track(child) {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

const running = (child) => child.exitCode === null && child.signalCode === null;

/** Kills every child still running, by PID. Safe to call more than once. */
function stopAll() {
  stopping = true;
  for (const child of children) {
    if (running(child)) child.kill('SIGKILL');
  }
}

/** Kills every child still running and waits (up to ms) until they are reaped. */
function stopAllAndWait(ms = 2000) {
  const left = [...children];
  stopAll();
  return Promise.all(left.map((child) => waitExit(child, ms)));
}

/** Resolves when the child has exited, or after `ms` (then kills it). */
function waitExit(child, ms) {
  if (!running(child)) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      if (running(child)) child.kill('SIGKILL');
      resolve();
    }, ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

class Peer {
  #child;
  #name;
  #nextId = 1;
  #pending = new Map();

  constructor(child, name) {
    this.#child = child;
    this.#name = name;
    child.on('message', (message) => {
      const pending = this.#pending.get(message.id);
      if (!pending) return;
      this.#pending.delete(message.id);
      clearTimeout(pending.timer);
      if (message.error) {
        pending.reject(Object.assign(new Error(`${name}.${pending.method}: ${message.error.message}`), { code: message.error.code }));
      } else {
        pending.resolve(message.result);
      }
    });
    child.once('exit', (code, signal) => {
      for (const pending of this.#pending.values()) {
        clearTimeout(pending.timer);
        pending.reject(new Error(`${name} exited (${signal ?? code}) during ${pending.method}`));
      }
      this.#pending.clear();
    });
  }

  /**
   * Forks bench/peers/<module>.js as a peer process. Node options like --expose-gc go in
   * execArgv; `name` labels errors; `netns` runs the peer inside that network namespace.
   */
  static async start(module, { name = module, execArgv = [], timeoutMs = 10000, netns } = {}) {
    refuseIfStopping();
    // `ip netns exec` execs node in its own place (same PID, so stopAll() still reaches it) and
    // keeps the environment and open descriptors, so NODE_CHANNEL_FD and the IPC channel survive.
    const command = netns ? { execPath: 'ip', execArgv: ['netns', 'exec', netns, process.execPath, ...execArgv] } : { execArgv };
    const child = track(fork(path.join(__dirname, 'peer-host.js'), [module], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      ...command,
      serialization: 'advanced',
    }));
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`${name} did not start within ${timeoutMs} ms`));
      }, timeoutMs);
      child.once('message', () => {
        clearTimeout(timer);
        resolve();
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`${name} exited (${signal ?? code}) while starting`));
      });
    });
    return new Peer(child, name);
  }

  get pid() {
    return this.#child.pid;
  }

  /** Runs exports[method](args) in the peer. A call that exceeds timeoutMs kills the peer. */
  call(method, args = {}, timeoutMs = 60000) {
    if (!running(this.#child)) return Promise.reject(new Error(`${this.#name} is not running`));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        this.#child.kill('SIGKILL');
        reject(new Error(`${this.#name}.${method} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, { resolve, reject, timer, method });
      this.#child.send({ id, method, args });
    });
  }

  /** Asks the peer to close what it opened and exit; kills it if it has not exited in time. */
  async stop(timeoutMs = 8000) {
    if (!running(this.#child)) return;
    try {
      await this.call('close', {}, timeoutMs);
    } catch {
      // killed below if still there
    }
    await waitExit(this.#child, 2000);
  }
}

/** The peers of one benchmark: started one by one, stopped together. */
class PeerGroup {
  #peers = [];

  async start(module, options) {
    const peer = await Peer.start(module, options);
    this.#peers.push(peer);
    return peer;
  }

  async stop() {
    await Promise.all(this.#peers.splice(0).map((peer) => peer.stop()));
  }
}

/**
 * Runs an external program to completion within timeoutMs (then kills it). Resolves with its
 * exit code, signal and the wall time in ms measured around the process.
 */
function runProgram(command, args, { timeoutMs }) {
  return new Promise((resolve, reject) => {
    refuseIfStopping();
    const started = process.hrtime.bigint();
    const child = track(spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] }));
    let stderr = '';
    child.stderr.on('data', (chunk) => {
      if (stderr.length < 4096) stderr += chunk;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, ms: Number(process.hrtime.bigint() - started) / 1e6, stderr });
    });
  });
}

/** Starts a long-running external program (a server); stop it with stopProgram(). */
function startProgram(command, args, { stdio = 'ignore' } = {}) {
  refuseIfStopping();
  return track(spawn(command, args, { stdio }));
}

async function stopProgram(child) {
  if (!running(child)) return;
  child.kill('SIGTERM');
  await waitExit(child, 2000);
}

module.exports = { Peer, PeerGroup, runProgram, startProgram, stopProgram, stopAll, stopAllAndWait };
