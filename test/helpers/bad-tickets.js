// Generates damaged tickets from one real ticket, deterministically from a seed: random bytes
// (some behind a valid magic and version, to get past the first check), truncations, bit flips at
// random positions, and the empty buffer. Plain JS so scripts/fuzz-tickets.js can use it too.
//
// 'resealed' tickets are bit-flipped and then given a correct envelope digest again (the trailing
// SHA-256 of lib/ticket.ts), as someone tampering on purpose would: they get past the envelope
// checks and reach OpenSSL and ngtcp2 with damaged session data or transport parameters.
'use strict';

const crypto = require('node:crypto');

const DIGEST_LENGTH = 32;

function reseal(body) {
  return Buffer.concat([body, crypto.createHash('sha256').update(body).digest()]);
}

function mulberry32(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const KINDS = ['random', 'truncated', 'bitflip', 'empty'];

// Flips `count` distinct bits (flipping one bit twice would give back the real ticket).
function flipBits(bytes, count, start, end, below) {
  const positions = [];
  while (positions.length < count) {
    const bit = start * 8 + below((end - start) * 8);
    if (positions.includes(bit)) continue;
    bytes[bit >> 3] ^= 1 << (bit & 7);
    positions.push(bit);
  }
  return positions;
}

/**
 * `count` damaged tickets. By default a mix of the four KINDS (the first is always the empty
 * buffer); with kinds: ['resealed'] only resealed bit flips.
 */
function generateBadTickets(realTicket, count, seed, options = {}) {
  const random = mulberry32(seed);
  const below = (n) => Math.floor(random() * n);
  if (options.kinds && options.kinds.length === 1 && options.kinds[0] === 'resealed') {
    const body = realTicket.subarray(0, realTicket.length - DIGEST_LENGTH);
    const cases = [];
    while (cases.length < count) {
      const bytes = Buffer.from(body);
      // Past the magic and version: those only ever make a ticket 'malformed'.
      const positions = flipBits(bytes, 1 + below(2), 4, bytes.length, below);
      cases.push({ kind: 'resealed', ticket: reseal(bytes), positions });
    }
    return cases;
  }
  const cases = [{ kind: 'empty', ticket: Buffer.alloc(0) }];
  while (cases.length < count) {
    const roll = random();
    if (roll < 0.25) {
      const bytes = Buffer.alloc(1 + below(realTicket.length + 64));
      for (let i = 0; i < bytes.length; i++) bytes[i] = below(256);
      // Half carry the real magic and version so the decoder looks further in.
      if (random() < 0.5) realTicket.copy(bytes, 0, 0, Math.min(4, bytes.length));
      cases.push({ kind: 'random', ticket: bytes });
    } else if (roll < 0.5) {
      cases.push({ kind: 'truncated', ticket: Buffer.from(realTicket.subarray(0, below(realTicket.length))) });
    } else {
      const bytes = Buffer.from(realTicket);
      const positions = flipBits(bytes, 1 + below(3), 0, bytes.length, below);
      cases.push({ kind: 'bitflip', ticket: bytes, positions });
    }
  }
  return cases;
}

module.exports = { generateBadTickets, mulberry32, reseal, KINDS };
