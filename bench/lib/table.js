'use strict';
// Plain-text tables for the terminal and for bench/README.md.

const show = (value) => (value === undefined || value === null ? '—' : String(value));

/** Formats rows (arrays of cells) under headers; numbers are right-aligned, text left-aligned. */
function formatTable(headers, rows) {
  const cells = [headers.map(show), ...rows.map((row) => row.map(show))];
  const numeric = headers.map((_, column) => rows.every((row) => row[column] === null || row[column] === undefined || typeof row[column] === 'number'));
  const widths = headers.map((_, column) => Math.max(...cells.map((row) => row[column].length)));
  const line = (row) => row.map((cell, column) => (numeric[column] && column > 0 ? cell.padStart(widths[column]) : cell.padEnd(widths[column]))).join('  ').trimEnd();
  return [line(cells[0]), widths.map((width) => '-'.repeat(width)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

module.exports = { formatTable };
