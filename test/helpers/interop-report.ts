// The interop matrix's report: each cell the interop tests run records its counts here, and with
// QUICKET_INTEROP_REPORT set (npm run interop) the suite prints them as a table and writes
// interop-results/latest.json, like the bench. In npm test nothing is printed or written.
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
const RESULTS = path.join(__dirname, '..', '..', 'interop-results');

export function recordCell(cell: InteropCell): void {
  cells.push(cell);
}

function render(rows: InteropCell[]): string {
  const header = ['peer', 'direction', 'protocol', 'size', 'connections', 'exact', 'first', 'resumed', '0-RTT accepted'];
  const lines = rows.map((cell) => [
    cell.peer, cell.direction, cell.protocol, cell.size >= 1024 * 1024 ? `${cell.size / 1024 / 1024} MiB` : `${cell.size / 1024} KiB`,
    String(cell.connections), String(cell.exact), String(cell.connections - cell.resumed), String(cell.resumed), String(cell.earlyAccepted),
  ]);
  const widths = header.map((title, i) => Math.max(title.length, ...lines.map((line) => line[i].length)));
  const format = (line: string[]) => `| ${line.map((value, i) => value.padEnd(widths[i])).join(' | ')} |`;
  return [format(header), `|${widths.map((width) => '-'.repeat(width + 2)).join('|')}|`, ...lines.map(format)].join('\n');
}

/** Call once in an interop describe block: with QUICKET_INTEROP_REPORT, report after its tests. */
export function useInteropReport(): void {
  afterAll(() => {
    if (!process.env.QUICKET_INTEROP_REPORT || cells.length === 0) return;
    const report = { date: new Date().toISOString(), cells };
    fs.mkdirSync(RESULTS, { recursive: true });
    fs.writeFileSync(path.join(RESULTS, 'latest.json'), `${JSON.stringify(report, null, 2)}\n`);
    process.stdout.write(`\n${render(cells)}\n\nwritten: interop-results/latest.json\n`);
  });
}
