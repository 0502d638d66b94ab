export type BadTicketKind = 'random' | 'truncated' | 'bitflip' | 'empty' | 'resealed';
export interface BadTicket {
  kind: BadTicketKind;
  ticket: Buffer;
  /** bitflip, resealed: the flipped bit positions (byte * 8 + bit). */
  positions?: number[];
}
export function generateBadTickets(realTicket: Buffer, count: number, seed: number, options?: { kinds?: BadTicketKind[] }): BadTicket[];
export function mulberry32(seed: number): () => number;
/** Appends the envelope digest (SHA-256 of `body`). */
export function reseal(body: Buffer): Buffer;
export const KINDS: readonly BadTicketKind[];
