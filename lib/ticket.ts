// Ticket: the one opaque Buffer an application stores to resume a session. A versioned envelope
// around GnuTLS's session data and the server's 0-RTT transport parameters (a ticket alone is not
// enough for 0-RTT: QUIC also needs the limits the server promised), plus what the client checks
// before using it.
import { codedError, invalidArgType } from './errors';

export interface TicketInfo {
  servername: string;
  alpn: string;
  issuedAt: Date;
  expiresAt: Date;
  earlyData: boolean;
}

/** @internal The decoded envelope. */
export interface TicketContents extends TicketInfo {
  sessionData: Buffer;
  transportParams: Buffer;
}

const MAGIC = Buffer.from('QKT');
const VERSION = 1;
const FLAG_EARLY_DATA = 1;

/** @internal */
export function encodeTicket(contents: TicketContents): Buffer {
  const servername = Buffer.from(contents.servername);
  const alpn = Buffer.from(contents.alpn);
  const header = Buffer.alloc(4 + 1 + 8 + 8);
  MAGIC.copy(header, 0);
  header.writeUInt8(VERSION, 3);
  header.writeUInt8(contents.earlyData ? FLAG_EARLY_DATA : 0, 4);
  header.writeBigUInt64BE(BigInt(contents.issuedAt.getTime()), 5);
  header.writeBigUInt64BE(BigInt(contents.expiresAt.getTime()), 13);
  return Buffer.concat([
    header,
    lengthPrefixed(servername, 2),
    lengthPrefixed(alpn, 1),
    lengthPrefixed(contents.sessionData, 4),
    lengthPrefixed(contents.transportParams, 2),
  ]);
}

function lengthPrefixed(bytes: Buffer, width: 1 | 2 | 4): Buffer {
  const prefix = Buffer.alloc(width);
  prefix.writeUIntBE(bytes.length, 0, width);
  return Buffer.concat([prefix, bytes]);
}

function malformed(why: string): Error {
  return codedError('ERR_QUIC_TICKET_MALFORMED', `not a quicket ticket: ${why}`);
}

/** @internal Decodes an envelope; throws ERR_QUIC_TICKET_MALFORMED for anything else. */
export function decodeTicket(ticket: Buffer): TicketContents {
  let offset = 0;
  const take = (length: number): Buffer => {
    if (offset + length > ticket.length) throw malformed('truncated');
    const part = ticket.subarray(offset, offset + length);
    offset += length;
    return part;
  };
  const takePrefixed = (width: 1 | 2 | 4): Buffer => take(take(width).readUIntBE(0, width));
  if (!take(3).equals(MAGIC)) throw malformed('bad magic');
  const version = take(1)[0];
  if (version !== VERSION) throw malformed(`unsupported version ${version}`);
  const flags = take(1)[0];
  if ((flags & ~FLAG_EARLY_DATA) !== 0) throw malformed('unknown flags');
  const issuedAt = Number(take(8).readBigUInt64BE(0));
  const expiresAt = Number(take(8).readBigUInt64BE(0));
  const servername = takePrefixed(2).toString();
  const alpn = takePrefixed(1).toString();
  const sessionData = Buffer.from(takePrefixed(4));
  const transportParams = Buffer.from(takePrefixed(2));
  if (offset !== ticket.length) throw malformed('trailing bytes');
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
  };
}

export const Ticket = {
  /** What a stored ticket is for and how long it lives, without using it. */
  inspect(ticket: Buffer): TicketInfo {
    if (!Buffer.isBuffer(ticket)) throw invalidArgType('ticket', 'a Buffer', ticket);
    const { servername, alpn, issuedAt, expiresAt, earlyData } = decodeTicket(ticket);
    return { servername, alpn, issuedAt, expiresAt, earlyData };
  },
};
