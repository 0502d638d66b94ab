// Ticket: the one opaque Buffer an application stores to resume a session. A versioned envelope
// around the serialised TLS session (OpenSSL's SSL_SESSION) and the server's 0-RTT transport parameters (a ticket alone is not
// enough for 0-RTT: QUIC also needs the limits the server promised), plus what the client checks
// before using it.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

import { codedError, invalidArgType } from './errors';

/** What {@link Ticket.inspect} reads from a ticket. */
export interface TicketInfo {
  /** The server name the ticket's connection used: connect()'s `servername`, else its `host`. */
  servername: string;
  /** The ALPN protocol of the ticket's connection; the ticket only resumes a connection offering it. */
  alpn: string;
  /** When the client received the ticket (by its clock). */
  issuedAt: Date;
  /** When the ticket stops resuming: `issuedAt` plus the lifetime the server gave it (server default 2 hours). */
  expiresAt: Date;
  /** True when the server allows 0-RTT on it: a connection resuming from it may send early data. */
  earlyData: boolean;
}

/** @internal The decoded envelope. */
export interface TicketContents extends TicketInfo {
  sessionData: Buffer;
  transportParams: Buffer;
  /** The server's NEW_TOKEN (RFC 9000 8.1.3): proves the client's address on the next connection. */
  addressToken?: Buffer;
}

const MAGIC = Buffer.from('QKT');
// 4: OpenSSL session data and the server's address token. 3 (no token) is still read; 2 held
// GnuTLS's session data and is refused as 'malformed'.
const VERSION = 4;
const VERSION_WITHOUT_TOKEN = 3;
const FLAG_EARLY_DATA = 1;
const FLAG_SEALED = 2;
// A digest of everything before it ends the envelope, so damaged session data is 'malformed' here
// instead of reaching the TLS library's session parser. Without a
// secret it is a SHA-256 (catches damage in storage); with the client's `ticketSecret` it is an
// HMAC-SHA256, which also stops tickets forged by whoever can write to the ticket store.
const DIGEST_LENGTH = 32;

function digest(bytes: Buffer, secret: Buffer | undefined): Buffer {
  return secret ? createHmac('sha256', secret).update(bytes).digest() : createHash('sha256').update(bytes).digest();
}

/** @internal */
export function encodeTicket(contents: TicketContents, secret?: Buffer): Buffer {
  const servername = Buffer.from(contents.servername);
  const alpn = Buffer.from(contents.alpn);
  const header = Buffer.alloc(4 + 1 + 8 + 8);
  MAGIC.copy(header, 0);
  header.writeUInt8(VERSION, 3);
  header.writeUInt8((contents.earlyData ? FLAG_EARLY_DATA : 0) | (secret ? FLAG_SEALED : 0), 4);
  header.writeBigUInt64BE(BigInt(contents.issuedAt.getTime()), 5);
  header.writeBigUInt64BE(BigInt(contents.expiresAt.getTime()), 13);
  const body = Buffer.concat([
    header,
    lengthPrefixed(servername, 2),
    lengthPrefixed(alpn, 1),
    lengthPrefixed(contents.sessionData, 4),
    lengthPrefixed(contents.transportParams, 2),
    lengthPrefixed(contents.addressToken ?? Buffer.alloc(0), 2),
  ]);
  return Buffer.concat([body, digest(body, secret)]);
}

function lengthPrefixed(bytes: Buffer, width: 1 | 2 | 4): Buffer {
  const prefix = Buffer.alloc(width);
  prefix.writeUIntBE(bytes.length, 0, width);
  return Buffer.concat([prefix, bytes]);
}

function malformed(why: string): Error {
  return codedError('ERR_QUIC_TICKET_MALFORMED', `not a quicket ticket: ${why}`);
}

/**
 * @internal Decodes an envelope; throws ERR_QUIC_TICKET_MALFORMED for anything else. `secret`
 * is the client's ticketSecret (a sealed ticket needs it, an unsealed one must not have one);
 * `inspectOnly` skips the check of a sealed ticket's HMAC when there is no secret to check it.
 */
export function decodeTicket(ticket: Buffer, secret?: Buffer, inspectOnly = false): TicketContents {
  let offset = 0;
  let end = ticket.length;
  const take = (length: number): Buffer => {
    if (offset + length > end) throw malformed('truncated');
    const part = ticket.subarray(offset, offset + length);
    offset += length;
    return part;
  };
  const takePrefixed = (width: 1 | 2 | 4): Buffer => take(take(width).readUIntBE(0, width));
  if (!take(3).equals(MAGIC)) throw malformed('bad magic');
  const version = take(1)[0];
  if (version !== VERSION && version !== VERSION_WITHOUT_TOKEN) throw malformed(`unsupported version ${version}`);
  if (ticket.length < offset + 1 + DIGEST_LENGTH) throw malformed('truncated');
  end = ticket.length - DIGEST_LENGTH;
  const flags = take(1)[0];
  if ((flags & ~(FLAG_EARLY_DATA | FLAG_SEALED)) !== 0) throw malformed('unknown flags');
  const sealed = (flags & FLAG_SEALED) !== 0;
  if (!(inspectOnly && sealed && !secret)) {
    if (sealed !== Boolean(secret)) throw malformed(sealed ? 'sealed with a ticketSecret this client lacks' : 'not sealed with the client\'s ticketSecret');
    if (!timingSafeEqual(digest(ticket.subarray(0, end), secret), ticket.subarray(end))) {
      throw malformed('damaged or forged (digest mismatch)');
    }
  }
  const issuedAt = Number(take(8).readBigUInt64BE(0));
  const expiresAt = Number(take(8).readBigUInt64BE(0));
  const servername = takePrefixed(2).toString();
  const alpn = takePrefixed(1).toString();
  const sessionData = Buffer.from(takePrefixed(4));
  const transportParams = Buffer.from(takePrefixed(2));
  const addressToken = version === VERSION ? Buffer.from(takePrefixed(2)) : Buffer.alloc(0);
  if (offset !== end) throw malformed('trailing bytes');
  if (sessionData.length === 0) throw malformed('no session data');
  if (!Number.isSafeInteger(issuedAt) || !Number.isSafeInteger(expiresAt) || expiresAt < issuedAt) {
    throw malformed('bad times');
  }
  return {
    servername,
    alpn,
    issuedAt: new Date(issuedAt),
    expiresAt: new Date(expiresAt),
    earlyData: (flags & FLAG_EARLY_DATA) !== 0,
    sessionData,
    transportParams,
    ...(addressToken.length > 0 ? { addressToken } : {}),
  };
}

/** Reads session tickets, the opaque Buffers of the 'ticket' event, without a connection. */
export const Ticket = {
  /**
   * What a stored ticket is for and how long it lives, without using it. Throws
   * `ERR_INVALID_ARG_TYPE` for a non-Buffer and `ERR_QUIC_TICKET_MALFORMED` for a Buffer that is
   * not a quicket ticket (or a damaged one); a sealed ticket's HMAC is not checked here.
   */
  inspect(ticket: Buffer): TicketInfo {
    if (!Buffer.isBuffer(ticket)) throw invalidArgType('ticket', 'a Buffer', ticket);
    const { servername, alpn, issuedAt, expiresAt, earlyData } = decodeTicket(ticket, undefined, true);
    return { servername, alpn, issuedAt, expiresAt, earlyData };
  },
};
