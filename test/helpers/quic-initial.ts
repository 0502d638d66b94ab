// QUIC v1 Initial packet protection (RFC 9001 §5), written from the RFC for the datagram fuzzer:
// Initial keys derive from the client's Destination Connection ID alone, so anyone can open a
// captured client Initial, change its frames (the ClientHello, transport parameters, frame
// types, lengths) and seal it again under a fresh connection ID. The server then really parses
// the mutated contents instead of dropping a packet that fails authentication.
import crypto from 'node:crypto';

const INITIAL_SALT_V1 = Buffer.from('38762cf7f55934b34d179ae6a4c80cadccbb7f0a', 'hex');

function hkdfExtract(salt: Buffer, ikm: Buffer): Buffer {
  return crypto.createHmac('sha256', salt).update(ikm).digest();
}

/** HKDF-Expand-Label (RFC 8446 §7.1) with an empty context, for lengths up to 32 bytes. */
function expandLabel(secret: Buffer, label: string, length: number): Buffer {
  const full = Buffer.from(`tls13 ${label}`);
  const info = Buffer.concat([Buffer.from([length >> 8, length & 0xff, full.length]), full, Buffer.from([0])]);
  // One HKDF-Expand block: T(1) = HMAC(secret, info || 0x01).
  return crypto.createHmac('sha256', secret).update(Buffer.concat([info, Buffer.from([1])])).digest().subarray(0, length);
}

export interface InitialKeys {
  key: Buffer;
  iv: Buffer;
  hp: Buffer;
}

/** The client's (or server's) Initial keys for a connection whose client chose `dcid`. */
export function initialKeys(dcid: Buffer, side: 'client' | 'server' = 'client'): InitialKeys {
  const initial = hkdfExtract(INITIAL_SALT_V1, dcid);
  const secret = expandLabel(initial, side === 'client' ? 'client in' : 'server in', 32);
  return { key: expandLabel(secret, 'quic key', 16), iv: expandLabel(secret, 'quic iv', 12), hp: expandLabel(secret, 'quic hp', 16) };
}

function readVarint(data: Buffer, offset: number): [number, number] {
  if (offset >= data.length) throw new RangeError('truncated varint');
  const length = 1 << (data[offset] >> 6);
  if (offset + length > data.length) throw new RangeError('truncated varint');
  let value = data[offset] & 0x3f;
  for (let i = 1; i < length; i++) value = value * 256 + data[offset + i];
  return [value, offset + length];
}

export function encodeVarint(value: number): Buffer {
  if (value < 0x40) return Buffer.from([value]);
  if (value < 0x4000) return Buffer.from([0x40 | (value >> 8), value & 0xff]);
  if (value < 0x40000000) {
    const out = Buffer.alloc(4);
    out.writeUInt32BE(value);
    out[0] |= 0x80;
    return out;
  }
  const out = Buffer.alloc(8);
  out.writeBigUInt64BE(BigInt(value));
  out[0] |= 0xc0;
  return out;
}

function headerProtectionMask(hp: Buffer, sample: Buffer): Buffer {
  const cipher = crypto.createCipheriv('aes-128-ecb', hp, null);
  cipher.setAutoPadding(false);
  return cipher.update(sample);
}

function nonce(iv: Buffer, packetNumber: number): Buffer {
  const out = Buffer.from(iv);
  for (let i = 0; i < 6; i++) out[11 - i] ^= Math.floor(packetNumber / 2 ** (8 * i)) & 0xff;
  return out;
}

export interface InitialPacket {
  version: number;
  dcid: Buffer;
  scid: Buffer;
  token: Buffer;
  packetNumber: number;
  /** The decrypted frames. */
  payload: Buffer;
  /** Bytes of this datagram after the Initial packet (coalesced packets). */
  rest: Buffer;
}

/**
 * Opens the first packet of a datagram if it is a client Initial; undefined otherwise. A server's
 * Initial opens with `keys` = initialKeys(the client's original DCID, 'server') (its own DCID is
 * the client's SCID, so the keys cannot come from its header).
 */
export function openInitial(datagram: Buffer, keys?: InitialKeys): InitialPacket | undefined {
  try {
    if ((datagram[0] & 0xf0) !== 0xc0) return undefined; // long header, fixed bit, type Initial
    const version = datagram.readUInt32BE(1);
    let offset = 5;
    const dcid = datagram.subarray(offset + 1, offset + 1 + datagram[offset]);
    offset += 1 + dcid.length;
    const scid = datagram.subarray(offset + 1, offset + 1 + datagram[offset]);
    offset += 1 + scid.length;
    const [tokenLength, afterTokenLength] = readVarint(datagram, offset);
    const token = datagram.subarray(afterTokenLength, afterTokenLength + tokenLength);
    const [length, pnOffset] = readVarint(datagram, afterTokenLength + tokenLength);
    const end = pnOffset + length;
    if (end > datagram.length) return undefined;
    keys ??= initialKeys(Buffer.from(dcid));
    const mask = headerProtectionMask(keys.hp, datagram.subarray(pnOffset + 4, pnOffset + 20));
    const header = Buffer.from(datagram.subarray(0, pnOffset + 4));
    header[0] ^= mask[0] & 0x0f;
    const pnLength = (header[0] & 0x03) + 1;
    let packetNumber = 0;
    for (let i = 0; i < pnLength; i++) {
      header[pnOffset + i] ^= mask[1 + i];
      packetNumber = packetNumber * 256 + header[pnOffset + i];
    }
    const aad = header.subarray(0, pnOffset + pnLength);
    const sealed = datagram.subarray(pnOffset + pnLength, end);
    const decipher = crypto.createDecipheriv('aes-128-gcm', keys.key, nonce(keys.iv, packetNumber));
    decipher.setAAD(aad);
    decipher.setAuthTag(sealed.subarray(sealed.length - 16));
    const payload = Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - 16)), decipher.final()]);
    return { version, dcid: Buffer.from(dcid), scid: Buffer.from(scid), token: Buffer.from(token), packetNumber, payload, rest: Buffer.from(datagram.subarray(end)) };
  } catch {
    return undefined;
  }
}

/**
 * Seals a client Initial packet (4-byte packet number). `padTo` pads the frames with PADDING so
 * the datagram reaches that size (servers drop client Initials in datagrams under 1200 bytes).
 */
export function sealInitial(packet: Omit<InitialPacket, 'rest'> & { padTo?: number; rest?: Buffer }): Buffer {
  const pnLength = 4;
  const rest = packet.rest ?? Buffer.alloc(0);
  const headerStart = Buffer.concat([
    Buffer.from([0xc0 | (pnLength - 1)]),
    (() => {
      const v = Buffer.alloc(4);
      v.writeUInt32BE(packet.version >>> 0);
      return v;
    })(),
    Buffer.from([packet.dcid.length]),
    packet.dcid,
    Buffer.from([packet.scid.length]),
    packet.scid,
    encodeVarint(packet.token.length),
    packet.token,
  ]);
  let payload = packet.payload;
  const overhead = (payloadLength: number): number => headerStart.length + encodeVarint(pnLength + payloadLength + 16).length + pnLength + payloadLength + 16 + rest.length;
  if (packet.padTo && overhead(payload.length) < packet.padTo) {
    let padding = packet.padTo - overhead(payload.length);
    // The length field may grow by a byte as padding is added.
    while (padding > 0 && overhead(payload.length + padding) > packet.padTo) padding--;
    payload = Buffer.concat([payload, Buffer.alloc(padding)]);
  }
  // Header protection samples 16 bytes from 4 bytes past the packet number start.
  if (payload.length + 16 < 4 + 16) payload = Buffer.concat([payload, Buffer.alloc(4 + 16 - 16 - payload.length)]);
  const pn = Buffer.alloc(4);
  pn.writeUInt32BE(packet.packetNumber >>> 0);
  const header = Buffer.concat([headerStart, encodeVarint(pnLength + payload.length + 16), pn]);
  const keys = initialKeys(packet.dcid);
  const cipher = crypto.createCipheriv('aes-128-gcm', keys.key, nonce(keys.iv, packet.packetNumber >>> 0));
  cipher.setAAD(header);
  const sealed = Buffer.concat([cipher.update(payload), cipher.final(), cipher.getAuthTag()]);
  const out = Buffer.concat([header, sealed]);
  const pnOffset = header.length - pnLength;
  const mask = headerProtectionMask(keys.hp, out.subarray(pnOffset + 4, pnOffset + 20));
  out[0] ^= mask[0] & 0x0f;
  for (let i = 0; i < pnLength; i++) out[pnOffset + i] ^= mask[1 + i];
  return Buffer.concat([out, rest]);
}

export interface Frame {
  type: number;
  /** Offset of the frame in the payload and its total length. */
  start: number;
  end: number;
  /** CRYPTO frames: the data's offset in the crypto stream and where the data sits in the payload. */
  cryptoOffset?: number;
  dataStart?: number;
}

/** Splits an Initial's frames (PADDING, PING, ACK, CRYPTO, CONNECTION_CLOSE); stops at anything else. */
export function parseFrames(payload: Buffer): Frame[] {
  const frames: Frame[] = [];
  let offset = 0;
  try {
    while (offset < payload.length) {
      const start = offset;
      const [type, afterType] = readVarint(payload, offset);
      offset = afterType;
      if (type === 0x00) {
        while (offset < payload.length && payload[offset] === 0) offset++;
        frames.push({ type, start, end: offset });
      } else if (type === 0x01) {
        frames.push({ type, start, end: offset });
      } else if (type === 0x06) {
        const [cryptoOffset, a] = readVarint(payload, offset);
        const [length, dataStart] = readVarint(payload, a);
        offset = dataStart + length;
        frames.push({ type, start, end: offset, cryptoOffset, dataStart });
      } else if (type === 0x02 || type === 0x03) {
        let [, p] = readVarint(payload, offset); // largest acknowledged
        [, p] = readVarint(payload, p); // delay
        let count: number;
        [count, p] = readVarint(payload, p);
        [, p] = readVarint(payload, p); // first range
        for (let i = 0; i < count; i++) {
          [, p] = readVarint(payload, p);
          [, p] = readVarint(payload, p);
        }
        if (type === 0x03) for (let i = 0; i < 3; i++) [, p] = readVarint(payload, p);
        offset = p;
        frames.push({ type, start, end: offset });
      } else {
        break;
      }
    }
  } catch {
    // a truncated frame: keep what parsed
  }
  return frames;
}

/**
 * Where the quic_transport_parameters extension (0x39) sits in a ClientHello handshake message
 * (the CRYPTO stream from offset 0), as [start, end) of its data; undefined if not found.
 */
export function findTransportParameters(clientHello: Buffer): [number, number] | undefined {
  try {
    if (clientHello[0] !== 1) return undefined; // handshake type client_hello
    let p = 4 + 2 + 32; // type + length, legacy_version, random
    p += 1 + clientHello[p]; // legacy_session_id
    p += 2 + clientHello.readUInt16BE(p); // cipher_suites
    p += 1 + clientHello[p]; // legacy_compression_methods
    const end = p + 2 + clientHello.readUInt16BE(p);
    p += 2;
    while (p + 4 <= end) {
      const type = clientHello.readUInt16BE(p);
      const length = clientHello.readUInt16BE(p + 2);
      if (type === 0x39) return [p + 4, p + 4 + length];
      p += 4 + length;
    }
  } catch {
    // truncated
  }
  return undefined;
}
