// The interop matrix's report: each cell an interop test runs records its counts here. With
// QUICKET_INTEROP_REPORT set (npm run interop, scripts/interop.js) each peer's test file writes its
// cells to interop-results/cells/<peer>.json after its tests, and the script merges them into one
// table and interop-results/latest.json, like the bench. In npm test nothing is written.
import fs from 'node:fs';
import path from 'node:path';

export interface InteropCell {
  peer: string;
  direction: string;
  protocol: 'raw' | 'h3';
  size: number;
  connections: number;
  /** Connections whose bytes arrived exactly. */
  exact: number;
  resumed: number;
  earlyAccepted: number;
}

const cells: InteropCell[] = [];
const CELLS = path.join(__dirname, '..', '..', 'interop-results', 'cells');

export function recordCell(cell: InteropCell): void {
  cells.push(cell);
}

/** Call once in a peer's describe block: with QUICKET_INTEROP_REPORT, writes its cells after its tests. */
export function useInteropReport(peer: string): void {
  afterAll(() => {
    if (!process.env.QUICKET_INTEROP_REPORT) return;
    fs.mkdirSync(CELLS, { recursive: true });
    fs.writeFileSync(path.join(CELLS, `${peer}.json`), `${JSON.stringify(cells, null, 2)}\n`);
  });
}
