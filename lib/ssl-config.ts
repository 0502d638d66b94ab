// SslConfig: certificates, ALPN, ticket keys and 0-RTT policy, loaded into OpenSSL once and shared
// by every connection that uses it.
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';

import { binding } from './binding';
import {
  checkObject,
  checkOptionalBoolean,
  checkOptionalBytes,
  checkOptionalInteger,
  checkOptionalString,
  invalidArgType,
  invalidArgValue,
} from './errors';

/** Options of `new SslConfig()`; each says whether it is for a server, a client or both. */
export interface SslConfigOptions {
  /** ALPN protocols in preference order (required, at least one). */
  alpn: string[];
  /** PEM certificate chain (server). */
  cert?: string | Buffer;
  /** PEM private key (server). */
  key?: string | Buffer;
  /** Roots that verify the peer; default: node:tls's (`tls.rootCertificates`). Given, they replace them. */
  ca?: string | Buffer | Array<string | Buffer>;
  /** Client: verify the server's chain and name (default true). */
  rejectUnauthorized?: boolean;
  /**
   * Server: 48-byte session-ticket key in node:tls's layout (16-byte name, 16-byte HMAC secret,
   * 16-byte AES key), or a ring `[newest, ...older]`: the newest encrypts, all decrypt, and tickets
   * under an older key are renewed. Equal keys let servers resume each other's tickets.
   * Default: a random key per SslConfig.
   */
  ticketKeys?: Buffer | Buffer[];
  /** Server: ticket lifetime in seconds (default 7200). */
  ticketLifetime?: number;
  /** Server: accept 0-RTT (default false). Client: attempt 0-RTT when a ticket allows it (default true). */
  earlyData?: boolean;
  /**
   * Server: how long, in milliseconds, a ClientHello that carried 0-RTT is remembered to refuse its
   * replays, and how long after start 0-RTT on older tickets is refused (default 15000, at least
   * 11000: OpenSSL's ticket-age tolerance); see README "0-RTT and replay".
   */
  antiReplayWindow?: number;
  /**
   * Server: a file that holds the replay store, shared by every process and SslConfig that names
   * the same file, so the workers of a `reusePort` cluster on one host accept a captured 0-RTT
   * flight at most once between them (by default each process has its own store, and a replay
   * can be accepted once per process). Created with mode 0600 if missing (about 5 MiB, best on a
   * memory file system such as `/dev/shm`); a file of any other format is refused, never
   * overwritten. Consulted without locks, so a worker that dies never blocks the others. One host
   * only: see README "0-RTT and replay" for clusters across hosts. An Engine's own
   * `antiReplayStore` overrides this one for the connections it accepts.
   */
  antiReplayStore?: string;
  /**
   * Key-exchange groups, colon-separated, like node:tls's `ecdhCurve`. Default: the client sends an
   * X25519 key share (one Initial datagram); the server also accepts the post-quantum hybrid
   * X25519MLKEM768. `'X25519MLKEM768:X25519'` makes a client offer the hybrid first.
   */
  ecdhCurve?: string;
  /**
   * Client: at least 16 secret bytes that seal the tickets this client emits (HMAC-SHA256) and
   * that the tickets it is given must carry. Use it when others can write to the ticket store.
   */
  ticketSecret?: Buffer;
}

export const TICKET_KEYS_LENGTH = 48;
export const DEFAULT_ANTI_REPLAY_WINDOW = 15000;
export const MIN_ANTI_REPLAY_WINDOW = 11000;
export const kNativeSsl = Symbol('quicket.nativeSsl');

/** @internal Checks an `antiReplayStore` path; answers it absolute (undefined when not given). */
export function checkAntiReplayStore(name: string, file: unknown): string | undefined {
  if (file === undefined) return undefined;
  if (typeof file !== 'string') throw invalidArgType(name, 'a string (a file path)', file);
  if (file.length === 0) throw invalidArgValue(name, 'must name a file');
  return path.resolve(file);
}

/** @internal Checks a ticket key or ring of keys (newest first); answers the ring. */
export function checkTicketKeys(name: string, keys: unknown): Buffer[] {
  const ring = Array.isArray(keys) ? keys : [keys];
  if (ring.length === 0) throw invalidArgValue(name, 'must hold at least one key');
  ring.forEach((key, i) => {
    const shown = Array.isArray(keys) ? `${name}[${i}]` : name;
    if (!Buffer.isBuffer(key)) throw invalidArgType(shown, 'a Buffer or an array of Buffers', key);
    if (key.length !== TICKET_KEYS_LENGTH) {
      throw invalidArgValue(shown, `must be exactly ${TICKET_KEYS_LENGTH} bytes (16-byte name, 16-byte HMAC secret, 16-byte AES key, like node:tls). Received ${key.length}`);
    }
  });
  return ring.map((key) => Buffer.from(key));
}

let defaultRoots: readonly Buffer[] | undefined;

/** node:tls's default roots: Node's bundled ones plus NODE_EXTRA_CA_CERTS, read once per process. */
function nodeDefaultRoots(): readonly Buffer[] {
  if (defaultRoots) return defaultRoots;
  const roots = tls.rootCertificates.map((pem) => Buffer.from(pem));
  const extra = process.env.NODE_EXTRA_CA_CERTS;
  if (extra) {
    try {
      roots.push(fs.readFileSync(extra));
    } catch {
      // Node warns about an unreadable NODE_EXTRA_CA_CERTS at startup and goes on without it.
    }
  }
  defaultRoots = roots;
  return roots;
}

function toBuffer(value: string | Buffer): Buffer {
  return typeof value === 'string' ? Buffer.from(value) : value;
}

/**
 * TLS credentials and policy (certificates, roots, ALPN, ticket keys, 0-RTT), loaded into OpenSSL
 * once and shared by every connection that uses it: a server's as `new Engine({ ssl })`, a
 * client's as `connect({ ssl })` or the engine's. Immutable once made.
 */
export class SslConfig {
  /** The ALPN protocols, in preference order (a frozen copy of `options.alpn`). */
  readonly alpn: readonly string[];
  /** Client: whether the server's chain and name are verified (`options.rejectUnauthorized`, default true). */
  readonly rejectUnauthorized: boolean;
  /** `options.earlyData` as given: undefined means each side's default (server: refuse 0-RTT, client: attempt it). */
  readonly earlyData: boolean | undefined;
  /** @internal */
  readonly ticketSecret: Buffer | undefined;
  /** @internal */
  readonly [kNativeSsl]: any; // eslint-disable-line @typescript-eslint/no-explicit-any

  /**
   * Validates the options and loads the certificates and keys. Throws `ERR_INVALID_ARG_TYPE` for an
   * option of the wrong type; `ERR_INVALID_ARG_VALUE` for an empty `alpn` or a protocol outside 1
   * to 255 bytes, `cert` without `key` (or the reverse), a ticket key that is not 48 bytes, a
   * `ticketSecret` under 16 bytes or an unknown `ecdhCurve` group; `ERR_OUT_OF_RANGE` for
   * `ticketLifetime` (1 to 604800 s) or `antiReplayWindow` (11000 to 604800000 ms) out of range;
   * `ERR_QUIC_INVALID_CERTIFICATE` when OpenSSL cannot load `cert`, `key` or `ca`; and
   * `ERR_QUIC_ANTI_REPLAY_STORE` (with `path`, and `syscall` and `errno` for a system failure) when
   * the `antiReplayStore` file cannot be opened or mapped, or is not a replay store.
   */
  constructor(options: SslConfigOptions) {
    checkObject('options', options);
    const { alpn, cert, key, ca, rejectUnauthorized, ticketKeys, ticketLifetime, earlyData, antiReplayWindow, ecdhCurve } = options;
    if (!Array.isArray(alpn)) throw invalidArgType('options.alpn', 'an array of strings', alpn);
    if (alpn.length === 0) throw invalidArgValue('options.alpn', 'must name at least one protocol');
    for (const name of alpn) {
      if (typeof name !== 'string') throw invalidArgType('options.alpn[]', 'a string', name);
      if (name.length === 0 || Buffer.byteLength(name) > 255) {
        throw invalidArgValue('options.alpn[]', 'must be 1 to 255 bytes long');
      }
    }
    checkOptionalBytes('options.cert', cert);
    checkOptionalBytes('options.key', key);
    if ((cert === undefined) !== (key === undefined)) {
      throw invalidArgValue('options.cert', 'and options.key must be given together');
    }
    const cas = ca === undefined ? undefined : Array.isArray(ca) ? ca : [ca];
    cas?.forEach((entry) => checkOptionalBytes('options.ca', entry));
    checkOptionalBoolean('options.rejectUnauthorized', rejectUnauthorized);
    checkOptionalBoolean('options.earlyData', earlyData);
    const ticketKeyRing = ticketKeys === undefined ? undefined : checkTicketKeys('options.ticketKeys', ticketKeys);
    checkOptionalInteger('options.ticketLifetime', ticketLifetime, 1, 604800);
    checkOptionalInteger('options.antiReplayWindow', antiReplayWindow, MIN_ANTI_REPLAY_WINDOW, 604800000);
    checkOptionalString('options.ecdhCurve', ecdhCurve);
    const antiReplayStore = checkAntiReplayStore('options.antiReplayStore', options.antiReplayStore);
    const { ticketSecret } = options;
    if (ticketSecret !== undefined) {
      if (!Buffer.isBuffer(ticketSecret)) throw invalidArgType('options.ticketSecret', 'a Buffer', ticketSecret);
      if (ticketSecret.length < 16) throw invalidArgValue('options.ticketSecret', `must be at least 16 bytes. Received ${ticketSecret.length}`);
    }
    this.ticketSecret = ticketSecret === undefined ? undefined : Buffer.from(ticketSecret);

    this.alpn = Object.freeze([...alpn]);
    this.rejectUnauthorized = rejectUnauthorized ?? true;
    this.earlyData = earlyData;
    this[kNativeSsl] = new binding.SslConfig({
      alpn: [...alpn],
      cert: cert === undefined ? undefined : toBuffer(cert),
      key: key === undefined ? undefined : toBuffer(key),
      // Like node:tls: Node's default roots unless `ca` replaces them (the same on every platform).
      ca: cas?.map(toBuffer),
      defaultRoots: cas ? undefined : nodeDefaultRoots(),
      rejectUnauthorized: this.rejectUnauthorized,
      ticketKeys: ticketKeyRing,
      ticketLifetime: ticketLifetime ?? 7200,
      earlyData: earlyData ?? false,
      antiReplayWindow: antiReplayWindow ?? DEFAULT_ANTI_REPLAY_WINDOW,
      antiReplayStore,
      ecdhCurve,
    });
  }

  /**
   * The server's current 48-byte ticket key, the newest of the ring (like tls.Server#getTicketKeys):
   * `options.ticketKeys`' first, else the random one made for this SslConfig.
   */
  getTicketKeys(): Buffer {
    return this[kNativeSsl].getTicketKeys();
  }
}
