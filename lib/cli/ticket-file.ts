// --ticket-file: a file TicketStore shared by every run that names it, so the next run resumes (and
// sends GET or HEAD as 0-RTT) with nothing else to do. A file that is not ours is never used and
// never overwritten: TicketStore itself would start afresh over anything it cannot read.
import fs from 'node:fs';

import { Ticket } from '../ticket';
import { TicketStore } from '../ticket-store';

/** A TicketStore file's shape (lib/ticket-store.ts writes `{ version: 1, tickets: [...] }`). */
function isTicketStoreFile(text: string): boolean {
  try {
    const parsed = JSON.parse(text) as { version?: unknown; tickets?: unknown } | null;
    return parsed !== null && typeof parsed === 'object' && parsed.version === 1 && Array.isArray(parsed.tickets);
  } catch {
    return false;
  }
}

export interface TicketFile {
  store: TicketStore;
  /** False when the file is not ours: the store is then in memory only. */
  persistent: boolean;
}

/**
 * The store behind `file` for a transfer to `url`. Earlier versions of the command kept one raw
 * ticket in the file: such a ticket moves into the store (for the URL's port, the only one it can
 * have been for) and the file becomes a store file.
 */
export function openTicketFile(file: string, url: URL, warn: (line: string) => void): TicketFile {
  let content: Buffer;
  try {
    content = fs.readFileSync(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      warn(`${file}: ${(error as Error).message}; tickets are not kept`);
      return { store: new TicketStore(), persistent: false };
    }
    content = Buffer.alloc(0);
  }
  if (content.length === 0 || isTicketStoreFile(content.toString('utf8'))) return { store: new TicketStore({ file }), persistent: true };
  let legacyServername: string;
  try {
    legacyServername = Ticket.inspect(content).servername;
  } catch {
    warn(`${file}: not a quicket ticket file; it is not used and left untouched`);
    return { store: new TicketStore(), persistent: false };
  }
  const store = new TicketStore({ file });
  store.clear(); // the file becomes a store file now, holding the old ticket if it fits
  const servername = url.hostname.replace(/^\[|\]$/g, '');
  if (legacyServername === servername) store.put({ servername, port: Number(url.port || 443) }, content);
  return { store, persistent: true };
}
