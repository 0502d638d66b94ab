'use strict';
// The machine, libraries and commit a measurement ran on: the bench and scripts/flood.js write it
// into their JSON, because only same-run ratios on a known machine mean anything.
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { ROOT } = require('./common');

/** `versions`: the quicket build's library versions (its `versions` export). */
function environment(versions) {
  const git = (...args) => {
    try {
      return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      return undefined;
    }
  };
  const native = path.join(ROOT, 'build', 'Release', 'quicket.node');
  return {
    node: process.version,
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    loadavg: os.loadavg().map((load) => Math.round(load * 100) / 100),
    libraries: versions,
    nativeAddon: fs.existsSync(native) ? { path: path.relative(ROOT, native), modified: fs.statSync(native).mtime.toISOString() } : undefined,
    gitCommit: git('rev-parse', '--short', 'HEAD'),
    gitDirty: git('status', '--porcelain', '--', 'native', 'lib') ? true : false,
  };
}

module.exports = { environment };
