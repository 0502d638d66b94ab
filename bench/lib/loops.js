'use strict';
// The load loops client peers share, each bounded in count and in time.
const { sleep } = require('./common');

/**
 * Runs `exchange()` one after the other, `warmup` unrecorded times and then up to `count` times,
 * stopping early at timeLimitMs. exchange() resolves with { ms, resumed, earlyData }.
 */
async function sequential({ count, warmup = 0, timeLimitMs }, exchange) {
  const result = { samples: [], resumed: 0, earlyData: 0, failures: 0, lastError: undefined };
  const deadline = Date.now() + timeLimitMs;
  for (let i = 0; i < warmup + count && Date.now() < deadline; i++) {
    try {
      const { ms, resumed, earlyData } = await exchange();
      if (i < warmup) continue;
      result.samples.push(ms);
      if (resumed) result.resumed++;
      if (earlyData) result.earlyData++;
    } catch (error) {
      result.failures++;
      result.lastError = error.message;
      await sleep(10);
    }
  }
  return result;
}

/**
 * `concurrency` workers run `handshake(state)` back to back until durationMs has passed (each
 * worker keeps its own `state`, e.g. its newest ticket). handshake() resolves with { resumed }.
 * Also reports the fraction of a core the process used meanwhile (cpuBusy).
 */
async function saturate({ concurrency, durationMs }, handshake) {
  const result = { completed: 0, resumed: 0, failed: 0, lastError: undefined };
  const deadline = Date.now() + durationMs;
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const worker = async () => {
    const state = {};
    while (Date.now() < deadline) {
      try {
        const { resumed } = await handshake(state);
        result.completed++;
        if (resumed) result.resumed++;
      } catch (error) {
        result.failed++;
        result.lastError = error.message;
        await sleep(10);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const cpu = process.cpuUsage(cpuBefore);
  // Fraction of a core this client used: with the server's, it shows whether the machine was full.
  result.cpuBusy = (cpu.user + cpu.system) / 1000 / (performance.now() - started);
  return result;
}

/**
 * Opens up to `count` connections with `open()`, `concurrency` at a time, within timeLimitMs.
 * Resolves with the opened ones (what open() resolved with) and the number of failures.
 */
async function openMany({ count, concurrency, timeLimitMs }, open) {
  const opened = [];
  let failed = 0;
  let started = 0;
  let lastError;
  const deadline = Date.now() + timeLimitMs;
  const worker = async () => {
    while (started < count && Date.now() < deadline) {
      started++;
      try {
        opened.push(await open());
      } catch (error) {
        failed++;
        lastError = error.message;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { opened, failed, lastError };
}

module.exports = { sequential, saturate, openMany };
