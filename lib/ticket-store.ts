// TicketStore: session tickets kept per server identity (servername, port, ALPN), so a client
// resumes without ticket code of its own: engine.connect({ ticketStore }) takes one and puts every
// new one back. TLS 1.3 tickets are for one use (RFC 8446 §C.4), so each is handed out once,
// newest first. With `file` the store lives on disk, shared by the processes that name it: it is
// read again before every take and merged before every write, which is atomic (a temporary file
// renamed over the old one) and private (mode 0600).
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import { checkObject, checkOptionalInteger, checkOptionalString, invalidArgType, invalidArgValue } from './errors';
import { decodeTicket, Ticket } from './ticket';

/** Options of `new TicketStore()`. */
export interface TicketStoreOptions {
  /** A JSON file to keep the tickets in (created with mode 0600, its directory with 0700). Default: memory only. */
  file?: string;
  /** Most tickets kept in all; the oldest go first. Default 256. */
  maxEntries?: number;
}

/** Which server a ticket is for. */
export interface TicketIdentity {
  /** The server name the connection uses (connect()'s `servername`, else its `host`). */
  servername: string;
  /** The server's UDP port. */
  port: number;
}

/** What to take a ticket for: a server identity and the ALPN protocols offered (in preference order). */
export interface TicketLookup extends TicketIdentity {
  /** The ALPN protocol, or the protocols in preference order, the connection will offer. */
  alpn: string | string[];
}

interface Entry {
  servername: string;
  port: number;
  alpn: string;
  issuedAt: number;
  expiresAt: number;
  ticket: Buffer;
}

const FILE_VERSION = 1;
const DEFAULT_MAX_ENTRIES = 256;
/** A lock file older than this belongs to a process that died holding it. */
const STALE_LOCK_MS = 5000;
const LOCK_WAIT_MS = 2000;

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function checkIdentity(name: string, identity: unknown): asserts identity is TicketIdentity {
  checkObject(name, identity);
  const { servername, port } = identity as TicketIdentity;
  if (typeof servername !== 'string') throw invalidArgType(`${name}.servername`, 'a string', servername);
  if (typeof port !== 'number') throw invalidArgType(`${name}.port`, 'a number', port);
  checkOptionalInteger(`${name}.port`, port, 0, 65535);
}

/**
 * Session tickets kept per server (servername, port and ALPN), so that a client resumes without
 * ticket code of its own: `engine.connect({ ticketStore })` takes one and puts every new one back.
 * TLS 1.3 tickets are for one use (RFC 8446 §C.4), so each is handed out once, newest first;
 * expired ones are dropped. With `file` the store lives on disk, shared by the processes that name
 * it: read again before every take, merged and written atomically (mode 0600) after every change,
 * under a lock file (`<file>.lock`) so that a ticket is handed out once across processes too.
 * Every method is synchronous.
 */
export class TicketStore {
  /** The absolute path of the store's JSON file, or undefined for a store in memory only. */
  readonly file?: string;
  /** Most tickets kept in all (default 256); beyond it the oldest go. */
  readonly maxEntries: number;
  #entries: Entry[] = [];

  /**
   * Makes a store, reading `file` if it exists (a missing, damaged or foreign file is an empty
   * store). Throws `ERR_INVALID_ARG_TYPE`, `ERR_INVALID_ARG_VALUE` for an empty `file`, and
   * `ERR_OUT_OF_RANGE` for a `maxEntries` outside 1 to 1048576.
   */
  constructor(options: TicketStoreOptions = {}) {
    checkObject('options', options);
    checkOptionalString('options.file', options.file);
    checkOptionalInteger('options.maxEntries', options.maxEntries, 1, 1 << 20);
    if (options.file === '') throw invalidArgValue('options.file', 'must not be empty');
    this.file = options.file === undefined ? undefined : path.resolve(options.file);
    this.maxEntries = options.maxEntries ?? DEFAULT_MAX_ENTRIES;
    this.#entries = this.#load();
  }

  /** Tickets held now (expired ones are dropped first). */
  get size(): number {
    this.#refresh();
    return this.#entries.length;
  }

  /**
   * Takes the newest unexpired ticket for `identity` whose ALPN is one of `identity.alpn` (the
   * first protocol that has one wins), removing it from the store; undefined if there is none.
   */
  take(identity: TicketLookup): Buffer | undefined {
    checkIdentity('identity', identity);
    const offered = typeof identity.alpn === 'string' ? [identity.alpn] : identity.alpn;
    if (!Array.isArray(offered) || offered.some((alpn) => typeof alpn !== 'string')) {
      throw invalidArgType('identity.alpn', 'a string or an array of strings', identity.alpn);
    }
    return this.#locked(() => this.#takeNow(identity.servername, identity.port, offered));
  }

  #takeNow(servername: string, port: number, offered: string[]): Buffer | undefined {
    this.#refresh();
    for (const alpn of offered) {
      let newest = -1;
      this.#entries.forEach((entry, index) => {
        if (entry.servername === servername && entry.port === port && entry.alpn === alpn &&
            (newest < 0 || entry.issuedAt >= this.#entries[newest].issuedAt)) {
          newest = index;
        }
      });
      if (newest >= 0) {
        const [entry] = this.#entries.splice(newest, 1);
        this.#save();
        return entry.ticket;
      }
    }
    return undefined;
  }

  /**
   * Keeps `ticket` (from a 'ticket' event) for `identity`; its ALPN, issue and expiry times come
   * from the ticket itself. A Buffer that is not a quicket ticket is refused with
   * ERR_QUIC_TICKET_MALFORMED; an expired one is dropped.
   */
  put(identity: TicketIdentity, ticket: Buffer): void {
    checkIdentity('identity', identity);
    if (!Buffer.isBuffer(ticket)) throw invalidArgType('ticket', 'a Buffer', ticket);
    const info = Ticket.inspect(ticket);
    if (info.expiresAt.getTime() <= Date.now()) return;
    const entry: Entry = {
      servername: identity.servername,
      port: identity.port,
      alpn: info.alpn,
      issuedAt: info.issuedAt.getTime(),
      expiresAt: info.expiresAt.getTime(),
      ticket: Buffer.from(ticket),
    };
    this.#locked(() => {
      this.#refresh();
      this.#entries.push(entry);
      this.#save();
    });
  }

  /** Forgets every ticket for `identity` (a server whose tickets should no longer be used). */
  delete(identity: TicketIdentity): void {
    checkIdentity('identity', identity);
    this.#locked(() => {
      this.#refresh();
      this.#entries = this.#entries.filter((entry) => entry.servername !== identity.servername || entry.port !== identity.port);
      this.#save();
    });
  }

  /** Forgets every ticket. */
  clear(): void {
    this.#locked(() => {
      this.#entries = [];
      this.#save();
    });
  }

  // Processes sharing the file take turns (a lock file made with O_EXCL), so a ticket is handed
  // out once across them too. A lock left by a dead process is broken once it is stale.
  #locked<T>(work: () => T): T {
    if (!this.file) return work();
    const lock = `${this.file}.lock`;
    fs.mkdirSync(path.dirname(this.file), { recursive: true, mode: 0o700 });
    const deadline = Date.now() + LOCK_WAIT_MS;
    for (;;) {
      try {
        fs.closeSync(fs.openSync(lock, 'wx', 0o600));
        break;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        const age = Date.now() - (fs.statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
        if (age > STALE_LOCK_MS || Date.now() > deadline) fs.rmSync(lock, { force: true });
        else sleepSync(2);
      }
    }
    try {
      return work();
    } finally {
      fs.rmSync(lock, { force: true });
    }
  }

  // The file's entries (another process may have changed it), minus expired ones.
  #refresh(): void {
    if (this.file) this.#entries = this.#load();
    const now = Date.now();
    this.#entries = this.#entries.filter((entry) => entry.expiresAt > now);
  }

  #load(): Entry[] {
    if (!this.file) return this.#entries;
    let text: string;
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch {
      return []; // not there yet (or unreadable): an empty store
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return []; // damaged: start afresh rather than fail the connection
    }
    const raw = (parsed as { version?: unknown; tickets?: unknown } | null);
    if (!raw || raw.version !== FILE_VERSION || !Array.isArray(raw.tickets)) return [];
    const entries: Entry[] = [];
    for (const item of raw.tickets as Array<Record<string, unknown>>) {
      if (!item || typeof item.servername !== 'string' || typeof item.port !== 'number' || typeof item.ticket !== 'string') continue;
      const ticket = Buffer.from(item.ticket, 'base64');
      try {
        // Only the envelope is checked here (a sealed ticket's HMAC is connect()'s to check).
        const info = decodeTicket(ticket, undefined, true);
        entries.push({ servername: item.servername, port: item.port, alpn: info.alpn, issuedAt: info.issuedAt.getTime(), expiresAt: info.expiresAt.getTime(), ticket });
      } catch {
        // not a ticket: dropped
      }
    }
    return entries;
  }

  #save(): void {
    // Bounded: the oldest tickets go first.
    if (this.#entries.length > this.maxEntries) {
      this.#entries.sort((a, b) => a.issuedAt - b.issuedAt);
      this.#entries.splice(0, this.#entries.length - this.maxEntries);
    }
    if (!this.file) return;
    const body = JSON.stringify({
      version: FILE_VERSION,
      tickets: this.#entries.map((entry) => ({ servername: entry.servername, port: entry.port, alpn: entry.alpn, ticket: entry.ticket.toString('base64') })),
    });
    fs.mkdirSync(path.dirname(this.file), { recursive: true, mode: 0o700 });
    const temporary = `${this.file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      const fd = fs.openSync(temporary, 'wx', 0o600);
      try {
        fs.writeFileSync(fd, body);
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      fs.renameSync(temporary, this.file);
    } catch (error) {
      fs.rmSync(temporary, { force: true });
      throw error;
    }
  }
}
