#!/usr/bin/env node
'use strict';
// Builds the native stack that quicket links statically: OpenSSL 3.5, nghttp3 and ngtcp2 (with its
// ngtcp2_crypto_ossl backend), from the pinned tarballs in deps/manifest.json, into
// deps/<platform>-<arch>/. Each library is rebuilt only when its version, tarball or flags change.
//
// Tarballs come from, in order: the cache folder (QUICKET_DEPS_CACHE, default deps/cache), the
// upstream release URL, Debian's source archive (orig tarballs are the upstream tarballs; apt
// metadata is kept in the cache, the system's apt state is not touched). Every tarball must match
// the manifest's sha256.
//
//   node scripts/build-deps.js            build what is missing, print the prefix
//   node scripts/build-deps.js --include  ... and print the include directory
//   node scripts/build-deps.js --libs     ... and print the static libraries, in link order
//   node scripts/build-deps.js --versions ... and print the built versions as JSON
//
// Progress goes to stderr; stdout carries only the answer, so the build files can call this.

const fs = require('node:fs');
const path = require('node:path');
const os = require('node:os');
const crypto = require('node:crypto');
const { spawnSync } = require('node:child_process');

const root = path.resolve(__dirname, '..');
const manifest = JSON.parse(fs.readFileSync(path.join(root, 'deps', 'manifest.json'), 'utf8'));
const prefix = path.join(root, 'deps', `${process.platform}-${process.arch}`);
const cacheDir = path.resolve(process.env.QUICKET_DEPS_CACHE || path.join(root, 'deps', 'cache'));
const jobs = String(Math.max(1, os.availableParallelism ? os.availableParallelism() : os.cpus().length));

function log(...args) {
  console.error('build-deps:', ...args);
}

function run(cmd, args, cwd, env) {
  const result = spawnSync(cmd, args, { cwd, stdio: ['ignore', process.stderr, process.stderr], env: { ...process.env, ...env } });
  if (result.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} failed in ${cwd} (${result.error ? result.error.message : `exit ${result.status}`})`);
  }
}

function sha256File(file) {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

// ---- obtaining tarballs -------------------------------------------------------------------------

async function download(url, dest) {
  const response = await fetch(url, { signal: AbortSignal.timeout(120_000) });
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  const tmp = `${dest}.part`;
  fs.writeFileSync(tmp, Buffer.from(await response.arrayBuffer()));
  fs.renameSync(tmp, dest);
}

// The mirror of the system's own Debian source, the way scripts/setup.sh finds it.
function debianMirror() {
  const sources = '/etc/apt/sources.list.d/debian.sources';
  if (fs.existsSync(sources)) {
    const m = /^URIs:\s*(\S+)/m.exec(fs.readFileSync(sources, 'utf8'));
    if (m) return m[1];
  }
  if (fs.existsSync('/etc/apt/sources.list')) {
    const m = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+\S+\s+main/m.exec(fs.readFileSync('/etc/apt/sources.list', 'utf8'));
    if (m) return m[1];
  }
  return undefined;
}

// A private apt configuration (deb-src entries for the suites the manifest names) so the system's
// sources and lists stay as they are. Answers the pool directory of a source package's file.
let aptState;
function debianPoolDirectory(entry) {
  if (aptState === undefined) {
    aptState = null;
    const mirror = debianMirror();
    if (!mirror || spawnSync('apt-get', ['--version'], { stdio: 'ignore' }).status !== 0) return undefined;
    const dir = path.join(cacheDir, 'apt');
    fs.mkdirSync(path.join(dir, 'lists', 'partial'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'cache', 'archives', 'partial'), { recursive: true });
    const suites = new Set(Object.values(manifest).flatMap((c) => (Array.isArray(c) ? c : [])).map((c) => c.debian.suite));
    fs.writeFileSync(path.join(dir, 'sources.list'), [...suites].map((s) => `deb-src ${mirror} ${s} main\n`).join(''));
    const options = [
      '-o', `Dir::Etc::sourcelist=${path.join(dir, 'sources.list')}`, '-o', 'Dir::Etc::sourceparts=-',
      '-o', `Dir::State::Lists=${path.join(dir, 'lists')}`, '-o', `Dir::Cache=${path.join(dir, 'cache')}`,
      '-o', 'APT::Get::List-Cleanup=0', '-o', 'Debug::NoLocking=1',
    ];
    log(`reading Debian source indexes (${[...suites].join(', ')}) from ${mirror}`);
    if (spawnSync('apt-get', [...options, '-q', 'update'], { stdio: ['ignore', 'ignore', process.stderr] }).status !== 0) return undefined;
    aptState = { mirror, options };
  }
  if (!aptState) return undefined;
  const out = spawnSync('apt-cache', [...aptState.options, 'showsrc', entry.debian.source], { encoding: 'utf8' }).stdout || '';
  for (const record of out.split(/\n\n+/)) {
    const directory = /^Directory:\s*(\S+)/m.exec(record);
    if (directory && record.includes(`${entry.sha256} `) && record.includes(entry.debian.file)) return directory[1];
  }
  return undefined;
}

async function obtain(entry) {
  fs.mkdirSync(cacheDir, { recursive: true });
  const cached = [entry.tarball, entry.debian.file].map((f) => path.join(cacheDir, f));
  for (const file of cached) {
    if (fs.existsSync(file) && sha256File(file) === entry.sha256) return file;
  }
  const dest = cached[0];
  const sources = [() => entry.url, () => {
    const dir = debianPoolDirectory(entry);
    return dir && `${aptState.mirror.replace(/\/$/, '')}/${dir}/${entry.debian.file}`;
  }];
  for (const source of sources) {
    const url = source();
    if (!url) continue;
    try {
      log(`fetching ${url}`);
      await download(url, dest);
    } catch (err) {
      log(`  ${err.cause ? err.cause.code || err.cause.message : err.message}`);
      continue;
    }
    const actual = sha256File(dest);
    if (actual === entry.sha256) return dest;
    fs.rmSync(dest);
    log(`  sha256 mismatch for ${url}: ${actual}`);
  }
  return undefined;
}

// ---- building -----------------------------------------------------------------------------------

const opensslOptions = [
  // Only the libraries, built into the addon; no config file or provider module is ever loaded
  // (the addon initialises OpenSSL with OPENSSL_INIT_NO_LOAD_CONFIG, and no-module builds every
  // provider in).
  'no-shared', 'no-module', 'no-engine', 'no-legacy', 'no-tests', 'no-docs', 'no-apps', '-fPIC',
];
// What a build depends on goes into the stamp; where it is installed does not (the checkout may move).
const cmakeCommon = ['-DCMAKE_BUILD_TYPE=Release', '-DCMAKE_POSITION_INDEPENDENT_CODE=ON', '-DENABLE_LIB_ONLY=ON',
  '-DENABLE_STATIC_LIB=ON', '-DENABLE_SHARED_LIB=OFF', '-DBUILD_TESTING=OFF', '-DCMAKE_INSTALL_LIBDIR=lib'];
const installInto = `-DCMAKE_INSTALL_PREFIX=${prefix}`;

const builders = {
  openssl: {
    flags: opensslOptions,
    build(src) {
      run('perl', ['Configure', ...opensslOptions, `--prefix=${prefix}`, '--libdir=lib', `--openssldir=${path.join(prefix, 'ssl')}`], src);
      run('make', [`-j${jobs}`, 'build_libs'], src);
      run('make', ['install_dev'], src);
    },
  },
  nghttp3: {
    flags: cmakeCommon,
    build(src) {
      run('cmake', ['-S', src, '-B', path.join(src, 'out'), ...cmakeCommon, installInto], src);
      run('cmake', ['--build', path.join(src, 'out'), '-j', jobs], src);
      run('cmake', ['--install', path.join(src, 'out')], src);
    },
  },
  ngtcp2: {
    // NOMEMPOOL (what ngtcp2's own configure --disable-mempool sets): without it every connection
    // keeps, until it closes, each pool block it ever used (its handshake's frame and packet
    // pools: about 6 KiB of an idle connection). Without pools ngtcp2 takes objects from malloc,
    // which reuses them across connections; bulk and handshake CPU measured the same (bench/README.md).
    flags: [...cmakeCommon, '-DENABLE_OPENSSL=ON', '-DENABLE_GNUTLS=OFF', '-DCMAKE_C_FLAGS=-DNOMEMPOOL'],
    // The crypto backend is compiled against the vendored OpenSSL: rebuild when it changes.
    dependsOn: ['openssl'],
    build(src) {
      const args = [...this.flags, installInto, `-DOPENSSL_ROOT_DIR=${prefix}`, '-DOPENSSL_USE_STATIC_LIBS=ON',
        `-DOPENSSL_INCLUDE_DIR=${path.join(prefix, 'include')}`];
      run('cmake', ['-S', src, '-B', path.join(src, 'out'), ...args], src);
      run('cmake', ['--build', path.join(src, 'out'), '-j', jobs], src);
      run('cmake', ['--install', path.join(src, 'out')], src);
    },
  },
};
const order = ['openssl', 'nghttp3', 'ngtcp2'];
// What the addon links, in link order (each library before the ones it uses). Both build files
// read this list.
const linkOrder = ['libngtcp2_crypto_ossl.a', 'libngtcp2.a', 'libnghttp3.a', 'libssl.a', 'libcrypto.a'];

const stampFile = path.join(prefix, 'stamp.json');
function readStamp() {
  try {
    return JSON.parse(fs.readFileSync(stampFile, 'utf8'));
  } catch {
    return {};
  }
}

// What a library's build depends on; a different record means it must be rebuilt.
function wanted(name, stamp) {
  const deps = (builders[name].dependsOn || []).map((d) => stamp[d] && stamp[d].sha256);
  return { flags: builders[name].flags, deps };
}

function upToDate(name, stamp) {
  const have = stamp[name];
  if (!have || !manifest[name].some((c) => c.sha256 === have.sha256)) return false;
  return JSON.stringify({ flags: have.flags, deps: have.deps }) === JSON.stringify(wanted(name, stamp));
}

async function buildMissing() {
  const stamp = readStamp();
  for (const name of order) {
    if (upToDate(name, stamp)) continue;
    let entry;
    let tarball;
    for (const candidate of manifest[name]) {
      tarball = await obtain(candidate);
      if (tarball) {
        entry = candidate;
        break;
      }
    }
    if (!entry) {
      throw new Error(`no tarball for ${name} (tried ${manifest[name].map((c) => c.version).join(', ')}); ` +
        `put one of ${manifest[name].map((c) => c.tarball).join(', ')} into ${cacheDir}`);
    }
    const work = path.join(root, 'deps', 'src', `${name}-${entry.version}`);
    fs.rmSync(work, { recursive: true, force: true });
    fs.mkdirSync(work, { recursive: true });
    run('tar', ['xf', tarball, '-C', work, '--strip-components=1'], work);
    const started = Date.now();
    log(`building ${name} ${entry.version} into ${prefix}`);
    builders[name].build(work);
    fs.rmSync(work, { recursive: true, force: true });
    if (fs.readdirSync(path.dirname(work)).length === 0) fs.rmdirSync(path.dirname(work));
    log(`built ${name} ${entry.version} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
    stamp[name] = { version: entry.version, sha256: entry.sha256, ...wanted(name, stamp) };
    fs.writeFileSync(stampFile, `${JSON.stringify(stamp, null, 2)}\n`);
  }
  return stamp;
}

async function main() {
  const stamp = await buildMissing();
  if (process.argv.includes('--versions')) {
    process.stdout.write(`${JSON.stringify(Object.fromEntries(order.map((n) => [n, stamp[n].version])))}\n`);
  } else if (process.argv.includes('--include')) {
    process.stdout.write(`${path.join(prefix, 'include')}\n`);
  } else if (process.argv.includes('--libs')) {
    process.stdout.write(`${linkOrder.map((lib) => path.join(prefix, 'lib', lib)).join(' ')}\n`);
  } else {
    process.stdout.write(`${prefix}\n`);
  }
}

main().catch((err) => {
  log(err.message);
  process.exit(1);
});
