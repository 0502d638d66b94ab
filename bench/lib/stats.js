'use strict';
// Small statistics helpers for samples in milliseconds or MB/s.

/** The q-quantile (0..1) of the samples, by the nearest-rank method; undefined for no samples. */
function quantile(samples, q) {
  if (samples.length === 0) return undefined;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)));
  return sorted[rank - 1];
}

const median = (samples) => quantile(samples, 0.5);
const p99 = (samples) => quantile(samples, 0.99);

/** Rounds for the report: keeps three significant digits below 100, one decimal above. */
function round(value) {
  if (value === undefined || value === null || !Number.isFinite(value)) return null;
  if (Math.abs(value) >= 100) return Math.round(value * 10) / 10;
  return Number(value.toPrecision(3));
}

/** a / b, or null when either is missing. */
function ratio(a, b) {
  if (!Number.isFinite(a) || !Number.isFinite(b) || b === 0) return null;
  return Math.round((a / b) * 1000) / 1000;
}

/** Milliseconds since a process.hrtime.bigint() reading. */
function msSince(start) {
  return Number(process.hrtime.bigint() - start) / 1e6;
}

module.exports = { quantile, median, p99, round, ratio, msSince };
