// Session tickets: the 'ticket' event, resuming with connect({ ticket }), the checks a client makes
// on a stored ticket, Ticket.inspect, and server ticket keys shared by engines and processes.
import { ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import path from 'node:path';
import readline from 'node:readline';
import tls from 'node:tls';

import { Connection, Engine, SslConfig, Ticket } from '../lib';
import { kOnTicket } from '../lib/native-events';
import { decodeTicket, encodeTicket } from '../lib/ticket';
import { generateBadTickets } from './helpers/bad-tickets';
import { startTicketServerProcess } from './helpers/ticket-server-process';
import { ALPN, clientSsl, HOST, pem } from './helpers/index';
import {
  clientEngine,
  exchange,
  fetchTicket,
  payload,
  received,
  runLimited,
  TestServer,
  useCleanup,
} from './helpers/ticket-harness';

// Child processes (another server, the resealed-ticket runner) use dist/, which test/global-setup.js
// compiles once per run. Not compiled again here: tsc rewriting dist/ while another worker's child
// process loads it hands that child half-written modules.

describe('the first connection to a server', () => {
  const track = useCleanup();

  test('is a full handshake without early data, and the client receives a ticket', async () => {
    const server = track(await TestServer.start({ earlyData: true }));
    const client = track(clientEngine());
    const result = await exchange(client, server.port, Buffer.from('hello'));
    expect(result.info).toEqual({ alpn: ALPN, servername: 'localhost', resumed: false, earlyData: 'none' });
    expect(result.resumed).toBe(false);
    expect(result.earlyData).toBe('none');
    expect(result.tickets.length).toBeGreaterThanOrEqual(1);
    expect(Buffer.isBuffer(result.tickets[0])).toBe(true);
    expect(result.reply).toEqual(received(Buffer.from('hello'), false));
  });

  test('its ticket tells what it is for and how long it lives (Ticket.inspect)', async () => {
    const server = track(await TestServer.start({ earlyData: true, ticketLifetime: 3600 }));
    const client = track(clientEngine());
    const before = Date.now();
    const ticket = await fetchTicket(client, server.port);
    const after = Date.now();
    const info = Ticket.inspect(ticket);
    expect(info.servername).toBe('localhost');
    expect(info.alpn).toBe(ALPN);
    expect(info.earlyData).toBe(true);
    expect(info.issuedAt.getTime()).toBeGreaterThanOrEqual(before);
    expect(info.issuedAt.getTime()).toBeLessThanOrEqual(after);
    // The server's ticketLifetime (3600 s), not a client default; OpenSSL counts whole seconds.
    const lifetime = info.expiresAt.getTime() - info.issuedAt.getTime();
    expect(lifetime).toBeGreaterThan(3598_000);
    expect(lifetime).toBeLessThanOrEqual(3600_000);
  });

  test('a ticket from a server without earlyData says it cannot carry early data', async () => {
    const server = track(await TestServer.start({ earlyData: false }));
    const client = track(clientEngine());
    expect(Ticket.inspect(await fetchTicket(client, server.port)).earlyData).toBe(false);
  });
});

describe('resuming with a ticket', () => {
  const track = useCleanup();

  test('another engine with the same ticketKeys resumes the ticket', async () => {
    const ticketKeys = randomBytes(48);
    const first = track(await TestServer.start({ earlyData: true, ticketKeys }));
    const second = track(await TestServer.start({ earlyData: true, ticketKeys }));
    const client = track(clientEngine());
    const ticket = await fetchTicket(client, first.port);
    const data = payload(3000);
    const resumed = await exchange(client, second.port, data, { ticket });
    expect(resumed.info.resumed).toBe(true);
    expect(resumed.resumed).toBe(true);
    // The second engine existed before the ticket was issued, so its replay window covers it.
    expect(resumed.earlyData).toBe('accepted');
    expect(resumed.reply).toEqual(received(data, true));
    expect(resumed.ticketRejected).toEqual([]);
  });

  test('getTicketKeys returns the configured key', async () => {
    const ticketKeys = randomBytes(48);
    const server = track(await TestServer.start({ ticketKeys }));
    expect(server.engine.getTicketKeys().equals(ticketKeys)).toBe(true);
  });

  test('after setTicketKeys, old tickets get a full handshake and new tickets resume', async () => {
    const oldKeys = randomBytes(48);
    const newKeys = randomBytes(48);
    const server = track(await TestServer.start({ earlyData: true, ticketKeys: oldKeys }));
    const client = track(clientEngine());
    const oldTicket = await fetchTicket(client, server.port);
    expect((await exchange(client, server.port, Buffer.from('before'), { ticket: oldTicket })).resumed).toBe(true);

    server.engine.setTicketKeys(newKeys);
    expect(server.engine.getTicketKeys().equals(newKeys)).toBe(true);
    const data = payload(20_000, 2);
    const afterRotation = await exchange(client, server.port, data, { ticket: oldTicket });
    expect(afterRotation.resumed).toBe(false);
    expect(afterRotation.reply.length).toBe(data.length);
    expect(afterRotation.reply.sha256).toBe(received(data, false).sha256);
    expect(afterRotation.ticketRejected).toEqual([]); // the client cannot know; the server decides

    const newTicket = afterRotation.tickets[0];
    const resumed = await exchange(client, server.port, data, { ticket: newTicket });
    expect(resumed.resumed).toBe(true);
    expect(resumed.earlyData).toBe('accepted');
    expect(resumed.reply).toEqual(received(data, true));
  });

  test('setTicketKeys refuses anything but a 48-byte Buffer', async () => {
    const server = track(await TestServer.start());
    expect(() => server.engine.setTicketKeys(Buffer.alloc(63))).toThrow(expect.objectContaining({ name: 'RangeError' }));
    expect(() => server.engine.setTicketKeys('k'.repeat(64) as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
  });
});

describe('ticket keys in node:tls\'s 48-byte layout', () => {
  const track = useCleanup();

  /** What `fn` throws (undefined if it does not). */
  function thrownBy(fn: () => unknown): unknown {
    try {
      fn();
    } catch (error) {
      return error;
    }
    return undefined;
  }

  test('a key from tls.Server#getTicketKeys() works as ticketKeys, and two engines sharing it resume each other\'s tickets', async () => {
    const ticketKeys = tls.createServer().getTicketKeys(); // never listens: nothing to close
    expect(ticketKeys.length).toBe(48);
    const a = track(await TestServer.start({ earlyData: true, ticketKeys }));
    const b = track(await TestServer.start({ earlyData: true, ticketKeys }));
    expect(a.engine.getTicketKeys().equals(ticketKeys)).toBe(true);
    const client = track(clientEngine());
    const fromA = await fetchTicket(client, a.port);
    const fromB = await fetchTicket(client, b.port);
    const dataAtB = payload(4000, 11);
    const dataAtA = payload(4000, 12);
    const atB = await exchange(client, b.port, dataAtB, { ticket: fromA });
    const atA = await exchange(client, a.port, dataAtA, { ticket: fromB });
    for (const result of [atB, atA]) {
      expect({ resumed: result.resumed, earlyData: result.earlyData, ticketRejected: result.ticketRejected }).toEqual({
        resumed: true,
        earlyData: 'accepted',
        ticketRejected: [],
      });
    }
    expect(atB.reply).toEqual(received(dataAtB, true));
    expect(atA.reply).toEqual(received(dataAtA, true));
  });

  test('keys of another size throw RangeError ERR_INVALID_ARG_VALUE naming 48 bytes, from SslConfig and setTicketKeys', async () => {
    const server = track(await TestServer.start());
    for (const size of [0, 32, 47, 49, 64, 80]) {
      for (const keys of [Buffer.alloc(size), [Buffer.alloc(size)], [randomBytes(48), Buffer.alloc(size)]]) {
        for (const attempt of [() => new SslConfig({ alpn: [ALPN], ticketKeys: keys }), () => server.engine.setTicketKeys(keys)]) {
          const thrown = thrownBy(attempt);
          expect(thrown).toBeInstanceOf(RangeError);
          expect(thrown).toHaveProperty('code', 'ERR_INVALID_ARG_VALUE');
          expect((thrown as Error).message).toMatch(/\b48 bytes\b/);
        }
      }
    }
    // The engine kept its key through every refused call.
    const key = server.engine.getTicketKeys();
    expect(key.length).toBe(48);
    expect(thrownBy(() => server.engine.setTicketKeys(Buffer.alloc(64)))).toBeInstanceOf(RangeError);
    expect(server.engine.getTicketKeys().equals(key)).toBe(true);
  });

  test('an empty ring throws RangeError; a ring holding a non-Buffer throws TypeError ERR_INVALID_ARG_TYPE', async () => {
    const server = track(await TestServer.start());
    for (const attempt of [() => new SslConfig({ alpn: [ALPN], ticketKeys: [] }), () => server.engine.setTicketKeys([])]) {
      const thrown = thrownBy(attempt);
      expect(thrown).toBeInstanceOf(RangeError);
      expect(thrown).toHaveProperty('code', 'ERR_INVALID_ARG_VALUE');
    }
    const notBuffers: unknown[] = ['k'.repeat(48), new Uint8Array(48), null, 48, { length: 48 }];
    for (const bad of notBuffers) {
      for (const keys of [[bad], [randomBytes(48), bad]]) {
        for (const attempt of [() => new SslConfig({ alpn: [ALPN], ticketKeys: keys as never }), () => server.engine.setTicketKeys(keys as never)]) {
          const thrown = thrownBy(attempt);
          expect(thrown).toBeInstanceOf(TypeError);
          expect(thrown).toHaveProperty('code', 'ERR_INVALID_ARG_TYPE');
        }
      }
    }
  });

  test('SslConfig#getTicketKeys() returns the newest key of a ring', () => {
    const [newest, older] = [randomBytes(48), randomBytes(48)];
    const ssl = new SslConfig({ alpn: [ALPN], cert: pem('server.pem'), key: pem('server-key.pem'), ticketKeys: [newest, older] });
    expect(ssl.getTicketKeys().equals(newest)).toBe(true);
    expect(new SslConfig({ alpn: [ALPN], ticketKeys: newest }).getTicketKeys().equals(newest)).toBe(true);
  });

  test('rotating with a ring: old tickets resume with 0-RTT and come back renewed under the newest key; dropping the old key ends them', async () => {
    const [k1, k2] = [randomBytes(48), randomBytes(48)];
    const server = track(await TestServer.start({ earlyData: true, ticketKeys: k1 }));
    // Knows only the new key; started now, before any ticket, so 0-RTT is not refused for age.
    const newOnly = track(await TestServer.start({ earlyData: true, ticketKeys: [k2] }));
    const client = track(clientEngine());
    const ticketA = await fetchTicket(client, server.port);
    // Control: the new-key-only server cannot read a ticket under k1.
    const stranger = await exchange(client, newOnly.port, Buffer.from('k1 ticket at a k2-only server'), { ticket: ticketA });
    expect(stranger.resumed).toBe(false);

    server.engine.setTicketKeys([k2, k1]);
    expect(server.engine.getTicketKeys().equals(k2)).toBe(true);
    const data = payload(30_000, 13);
    const underRing = await exchange(client, server.port, data, { ticket: ticketA });
    expect({ resumed: underRing.resumed, handshake: underRing.info, earlyData: underRing.earlyData, rejected: underRing.earlyDataRejected }).toEqual({
      resumed: true,
      handshake: expect.objectContaining({ resumed: true, earlyData: 'accepted' }),
      earlyData: 'accepted',
      rejected: 0,
    });
    expect(underRing.reply).toEqual(received(data, true));

    // The ticket that connection earned is sealed under k2: a server holding only k2 resumes it.
    const renewed = underRing.tickets[0];
    const atNewOnly = await exchange(client, newOnly.port, data, { ticket: renewed });
    expect({ resumed: atNewOnly.resumed, earlyData: atNewOnly.earlyData }).toEqual({ resumed: true, earlyData: 'accepted' });
    expect(atNewOnly.reply).toEqual(received(data, true));

    server.engine.setTicketKeys([k2]);
    expect(server.engine.getTicketKeys().equals(k2)).toBe(true);
    const afterDrop = await exchange(client, server.port, data, { ticket: ticketA });
    expect(afterDrop.resumed).toBe(false);
    expect(afterDrop.info.resumed).toBe(false);
    expect(afterDrop.ticketRejected).toEqual([]); // only the server can tell
    expect({ length: afterDrop.reply.length, sha256: afterDrop.reply.sha256 }).toEqual({ length: data.length, sha256: received(data, false).sha256 });
  });
});

describe('tickets from an older quicket', () => {
  const track = useCleanup();

  // lib/ticket.ts: 'QKT', version byte, ..., then a SHA-256 of everything before it (no ticketSecret).
  function withVersion(ticket: Buffer, version: number): Buffer {
    const copy = Buffer.from(ticket);
    copy[3] = version;
    const body = copy.subarray(0, copy.length - 32);
    createHash('sha256').update(body).digest().copy(copy, copy.length - 32);
    return copy;
  }

  test('a version-2 envelope (GnuTLS era) gives ticketRejected "malformed" and a full handshake that delivers the bytes', async () => {
    const server = track(await TestServer.start({ earlyData: true }));
    const client = track(clientEngine());
    const ticket = await fetchTicket(client, server.port);
    expect(ticket[3]).toBe(4);
    // Control: the same rebuilding with the current version byte leaves a ticket that resumes.
    const rebuilt = withVersion(ticket, 4);
    expect(rebuilt.equals(ticket)).toBe(true);

    const old = withVersion(ticket, 2);
    expect(() => Ticket.inspect(old)).toThrow(expect.objectContaining({ code: 'ERR_QUIC_TICKET_MALFORMED' }));
    const data = payload(40_000, 14);
    const result = await exchange(client, server.port, data, { ticket: old });
    expect(result.ticketRejected).toEqual(['malformed']);
    expect(result.resumed).toBe(false);
    expect(result.earlyData).toBe('none');
    expect(result.reply).toEqual(received(data, false));
    expect(result.tickets[0][3]).toBe(4);
  });

  test('a version-3 envelope (before address tokens) still resumes with 0-RTT', async () => {
    const server = track(await TestServer.start({ earlyData: true }));
    const client = track(clientEngine());
    const ticket = await fetchTicket(client, server.port);
    // Version 4 ends with a length-prefixed address token before the digest; version 3 had none.
    const token = decodeTicket(ticket).addressToken;
    expect(token?.length).toBeGreaterThan(0);
    const body = ticket.subarray(0, ticket.length - 32 - 2 - token!.length);
    const v3 = withVersion(Buffer.concat([body, Buffer.alloc(32)]), 3);
    expect(decodeTicket(v3).addressToken).toBeUndefined();
    const data = payload(4_000, 15);
    const result = await exchange(client, server.port, data, { ticket: v3 });
    expect(result.ticketRejected).toEqual([]);
    expect(result.resumed).toBe(true);
    expect(result.earlyData).toBe('accepted');
    expect(result.reply).toEqual(received(data, true));
  });
});

describe('a ticket the client cannot use', () => {
  const track = useCleanup();

  test('an expired ticket gives ticketRejected "expired" and a full handshake that delivers every byte', async () => {
    const server = track(await TestServer.start({ earlyData: true, ticketLifetime: 1 }));
    const client = track(clientEngine());
    const ticket = await fetchTicket(client, server.port);
    const { issuedAt, expiresAt } = Ticket.inspect(ticket);
    // ticketLifetime 1 s: whole seconds on OpenSSL's clock leave between 0 and 1 s of it.
    expect(expiresAt.getTime()).toBeGreaterThanOrEqual(issuedAt.getTime());
    expect(expiresAt.getTime()).toBeLessThanOrEqual(issuedAt.getTime() + 1000);
    await new Promise((resolve) => setTimeout(resolve, 2000));
    expect(Ticket.inspect(ticket).expiresAt.getTime()).toBeLessThan(Date.now());

    const data = payload(50_000, 3);
    const result = await exchange(client, server.port, data, { ticket });
    expect(result.ticketRejected).toEqual(['expired']);
    expect(result.resumed).toBe(false);
    expect(result.earlyData).toBe('none');
    expect(result.reply).toEqual(received(data, false));
  });

  test('a ticket for another servername gives ticketRejected "mismatch" and a full handshake', async () => {
    const server = track(await TestServer.start({ earlyData: true }));
    const client = track(clientEngine());
    const ticket = await fetchTicket(client, server.port); // for 'localhost'
    const data = Buffer.from('for 127.0.0.1');
    // The certificate also names 127.0.0.1, so only the ticket check can object.
    const result = await exchange(client, server.port, data, { ticket, servername: '127.0.0.1' });
    expect(result.ticketRejected).toEqual(['mismatch']);
    expect(result.resumed).toBe(false);
    expect(result.info.servername).toBe('127.0.0.1');
    expect(result.reply).toEqual(received(data, false));
  });

  test('a ticket for another ALPN gives ticketRejected "mismatch" and a full handshake', async () => {
    const ssl = new SslConfig({ alpn: [ALPN, 'other-protocol'], cert: pem('server.pem'), key: pem('server-key.pem'), earlyData: true });
    const server = track(await TestServer.start(ssl));
    const client = track(new Engine({ ssl: clientSsl({ alpn: [ALPN, 'other-protocol'] }) }));
    const ticket = await fetchTicket(client, server.port);
    expect(Ticket.inspect(ticket).alpn).toBe(ALPN);
    const result = await exchange(client, server.port, Buffer.from('other'), { ticket, alpn: 'other-protocol' });
    expect(result.ticketRejected).toEqual(['mismatch']);
    expect(result.resumed).toBe(false);
    expect(result.info.alpn).toBe('other-protocol');
  });

  test('a ticket that is not a Buffer throws TypeError ERR_INVALID_ARG_TYPE', async () => {
    const server = track(await TestServer.start());
    const client = track(clientEngine());
    const ticket = await fetchTicket(client, server.port);
    for (const bad of [ticket.toString('base64'), 42, {}, [ticket], null, new Uint8Array(ticket)]) {
      let thrown: unknown;
      try {
        client.connect({ host: HOST, port: server.port, servername: 'localhost', ticket: bad as never });
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(TypeError);
      expect(thrown).toHaveProperty('code', 'ERR_INVALID_ARG_TYPE');
    }
  });

  test('1,000 random, truncated, bit-flipped and empty tickets: every connection completes and delivers its bytes', async () => {
    const server = track(await TestServer.start({ earlyData: true }));
    const client = track(clientEngine());
    const ticket = await fetchTicket(client, server.port);
    const seed = 20261126;
    const cases = generateBadTickets(ticket, 1000, seed);
    const outcomes = new Map<string, number>();
    const failures: string[] = [];
    await runLimited(cases, 20, async ({ kind, ticket: bad, positions }, index) => {
      const data = payload(200 + (index % 1500), index);
      try {
        const result = await exchange(client, server.port, data, { ticket: bad, waitForTicket: false });
        if (result.reply.length !== data.length || result.reply.sha256 !== received(data, false).sha256) {
          failures.push(`case ${index} (${kind}): bytes altered`);
        }
        if (kind !== 'bitflip' && result.ticketRejected[0] !== 'malformed') {
          failures.push(`case ${index} (${kind}): expected 'malformed', got ${JSON.stringify(result.ticketRejected)}`);
        }
        const label = `${kind}:${result.ticketRejected[0] ?? (result.resumed ? 'resumed' : 'full')}`;
        outcomes.set(label, (outcomes.get(label) ?? 0) + 1);
      } catch (error) {
        const { code, message } = error as { code?: string; message: string };
        failures.push(`case ${index} (${kind}${positions ? ` bits ${positions}` : ''}, seed ${seed}): ${code ?? ''} ${message}`);
      }
    });
    expect(failures).toEqual([]);
    expect([...outcomes.values()].reduce((a, b) => a + b, 0)).toBe(1000);
    expect(outcomes.get('empty:malformed')).toBe(1);
  });
});

describe('a forged ticket whose envelope checks out', () => {
  const track = useCleanup();

  /** The DER contents of the SSL_SESSION's master key (its fifth field), as [start, end). */
  function masterKey(session: Buffer): [number, number] {
    let p = 0;
    const header = (): [number, number] => {
      const tag = session[p];
      let length = session[p + 1];
      p += 2;
      if (length & 0x80) {
        const bytes = length & 0x7f;
        length = session.readUIntBE(p, bytes);
        p += bytes;
      }
      return [tag, length];
    };
    expect(header()[0]).toBe(0x30); // SEQUENCE
    for (let field = 0; field < 4; field++) {
      const [, skip] = header(); // version, TLS version, cipher, session id
      p += skip;
    }
    const [tag, length] = header();
    expect({ tag, length }).toEqual({ tag: 0x04, length: 32 }); // OCTET STRING, TLS_AES_128_GCM_SHA256
    return [p, p + length];
  }

  test('a damaged resumption secret: the server refuses the binder, the client starts over with a full handshake', async () => {
    const server = track(await TestServer.start({ earlyData: true }));
    const client = track(clientEngine());
    const ticket = await fetchTicket(client, server.port);
    // Someone who can write the ticket store changes the secret and recomputes the digest (no
    // ticketSecret): the envelope is valid, the session decodes, but its binder cannot match.
    const contents = decodeTicket(ticket);
    const [start, end] = masterKey(contents.sessionData);
    const sessionData = Buffer.from(contents.sessionData);
    for (let i = start; i < end; i++) sessionData[i] ^= 0x5a;
    const forged = encodeTicket({ ...contents, sessionData });
    const data = payload(40_000, 31);
    const result = await exchange(client, server.port, data, { ticket: forged });
    expect({ ticketRejected: result.ticketRejected, resumed: result.resumed, earlyData: result.earlyData }).toEqual({
      ticketRejected: ['refused'],
      resumed: false,
      earlyData: 'rejected', // attempted, then everything written was resent
    });
    expect(result.reply).toEqual(received(data, false));
    // The ticket it got instead is a good one.
    const again = await exchange(client, server.port, data, { ticket: result.tickets[0] });
    expect({ resumed: again.resumed, earlyData: again.earlyData }).toEqual({ resumed: true, earlyData: 'accepted' });
  });
});

describe('tampered tickets: forged digests around damaged contents (1,000 resealed bit flips) against a client with a ticketSecret', () => {
  // The damage reaches OpenSSL and ngtcp2, which can take the process down: run them in a child.
  let run: { exitCode: number | null; signal: NodeJS.Signals | null; done: boolean; outcomes: Record<string, number>; failures: string[]; stderr: string };

  beforeAll(async () => {
    const child = spawn(process.execPath, [path.join(__dirname, 'fixtures', 'resealed-tickets.js'), '1000', '5'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const killer = setTimeout(() => child.kill('SIGKILL'), 45_000);
    const outcomes: Record<string, number> = {};
    const failures: string[] = [];
    let done = false;
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr += chunk));
    for await (const line of readline.createInterface({ input: child.stdout })) {
      const message = JSON.parse(line) as { positions?: number[]; outcome?: string; done?: boolean };
      if (message.done) {
        done = true;
      } else {
        const outcome = message.outcome as string;
        outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
        if (/^(threw|failed)/.test(outcome)) failures.push(`bits ${message.positions}: ${outcome}`);
      }
    }
    const [exitCode, signal] = await exited(child);
    clearTimeout(killer);
    run = { exitCode, signal, done, outcomes, failures, stderr: stderr.slice(0, 500) };
  });

  test('never crash the process, and connect() never throws', () => {
    const summary = { exitCode: run.exitCode, signal: run.signal, done: run.done, outcomes: run.outcomes, stderr: run.stderr };
    expect(summary).toEqual({ ...summary, exitCode: 0, signal: null, done: true });
    expect(run.failures.filter((failure) => failure.includes('threw:'))).toEqual([]);
  });

  test('every connection completes and delivers its bytes', () => {
    // Only meaningful for a run that got through every case.
    const failed = run.failures.filter((failure) => failure.includes('failed:'));
    expect({ done: run.done, failures: failed.slice(0, 10), count: failed.length, outcomes: run.outcomes }).toEqual({
      done: true,
      failures: [],
      count: 0,
      outcomes: run.outcomes,
    });
  });
});

describe('Ticket.inspect', () => {
  test('throws ERR_QUIC_TICKET_MALFORMED for anything that is not a ticket', () => {
    for (const garbage of [Buffer.alloc(0), Buffer.from('QKT'), randomBytes(300), Buffer.from('not a ticket at all')]) {
      expect(() => Ticket.inspect(garbage)).toThrow(expect.objectContaining({ code: 'ERR_QUIC_TICKET_MALFORMED' }));
    }
  });

  test('throws TypeError ERR_INVALID_ARG_TYPE for a non-Buffer', () => {
    for (const bad of ['ticket', 1, undefined, null, {}, new Uint8Array(10)]) {
      let thrown: unknown;
      try {
        Ticket.inspect(bad as never);
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(TypeError);
      expect(thrown).toHaveProperty('code', 'ERR_INVALID_ARG_TYPE');
    }
  });
});

describe('tickets are only built while someone listens', () => {
  const track = useCleanup();

  // Records what reaches a connection from native code and what it emits.
  function observe(connection: Connection): { native: string[]; emitted: string[] } {
    const seen = { native: [] as string[], emitted: [] as string[] };
    // Native code delivering a ticket at all (it builds them only while someone listens).
    const internal = connection as unknown as Record<symbol, (...args: unknown[]) => unknown>;
    const deliver = internal[kOnTicket].bind(connection);
    internal[kOnTicket] = (...args) => {
      seen.native.push('ticket');
      return deliver(...args);
    };
    const emit = connection.emit.bind(connection);
    connection.emit = (event: string | symbol, ...args: unknown[]) => {
      seen.emitted.push(String(event));
      return emit(event, ...args);
    };
    return seen;
  }

  async function converse(connection: Connection): Promise<void> {
    const stream = connection.openStream();
    const answer = new Promise<void>((resolve, reject) => {
      stream.on('data', () => {});
      stream.once('end', resolve);
      stream.once('error', reject);
    });
    stream.end('hi');
    await answer;
    await connection.handshake;
  }

  test('without a "ticket" listener no ticket is built or emitted; a listener added later still gets tickets', async () => {
    const server = track(await TestServer.start({ earlyData: true }));
    const client = track(clientEngine());

    // A control connection with a listener: the server does send a ticket on this setup.
    const control = await exchange(client, server.port, Buffer.from('control'));
    expect(control.tickets.length).toBeGreaterThanOrEqual(1);

    // Same exchange, nobody listening. The server's ticket follows its HANDSHAKE_DONE; a second
    // round trip after the handshake makes sure it has arrived before we look.
    const silent = client.connect({ host: HOST, port: server.port, servername: 'localhost' });
    const silentSeen = observe(silent);
    await converse(silent);
    await converse(silent);
    await silent.close();
    expect(silentSeen.native).not.toContain('ticket');
    expect(silentSeen.emitted).not.toContain('ticket');
    expect(silentSeen.emitted).toContain('handshake');

    // A listener added after connect(), once the handshake is done, gets the ticket that follows.
    const late = client.connect({ host: HOST, port: server.port, servername: 'localhost' });
    const tickets: Buffer[] = [];
    const gotTicket = new Promise<void>((resolve) => {
      late.once('handshake', () => {
        late.on('ticket', (ticket: Buffer) => {
          tickets.push(ticket);
          resolve();
        });
      });
    });
    await converse(late);
    await gotTicket;
    await late.close();
    expect(tickets.length).toBeGreaterThanOrEqual(1);
    expect(Ticket.inspect(tickets[0]).servername).toBe('localhost');
  });
});

describe('two processes sharing ticket keys', () => {
  const track = useCleanup();

  test('a ticket from this process resumes with 0-RTT accepted against a server in another process', async () => {
    const ticketKeys = randomBytes(48);
    // The child starts first: a server refuses 0-RTT for tickets issued before its replay store started.
    const child = track(await startTicketServerProcess(ticketKeys));
    const local = track(await TestServer.start({ earlyData: true, ticketKeys }));
    const client = track(clientEngine());
    const ticket = await fetchTicket(client, local.port);
    const data = payload(10_000, 9);
    const result = await exchange(client, child.port, data, { ticket });
    expect(result.resumed).toBe(true);
    expect(result.earlyData).toBe('accepted');
    expect(result.reply).toEqual(received(data, true));
    await child.waitForReceived(1);
    expect(child.received).toEqual([received(data, true)]);
  });
});

function exited(child: ChildProcess): Promise<[number | null, NodeJS.Signals | null]> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve([child.exitCode, child.signalCode]);
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve([code, signal])));
}
