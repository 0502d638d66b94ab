// A small flood of first flights (scripts/flood.js, issue 13 item 2): 2,000 real first flights
// from 20 source ports at a server in a child process. Asserts facts only, never timings: the tool
// sent every flight, the server did real work for them and survived, a legitimate client completed
// handshakes during the flood, and the half-open connections ended. The full-size run and its
// numbers: RELIABILITY.md, "Flood of first flights".
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const SCRIPT = path.join(__dirname, '..', 'scripts', 'flood.js');

test('a flood of 2,000 first flights: the server survives and a legitimate client gets through', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quicket-flood-'));
  const out = path.join(dir, 'flood.json');
  try {
    const args = [SCRIPT, '--flights', '2000', '--ports', '20', '--seconds', '2', '--server', '{"handshakeTimeout":1000}', '--settle-seconds', '20', '--out', out];
    const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = execFile(process.execPath, args, { timeout: 45000 }, (_error, _stdout, stderr) => resolve({ code: child.exitCode, stderr }));
    });
    expect({ code, stderr: code === 0 ? '' : stderr }).toEqual({ code: 0, stderr: '' });
    const report = JSON.parse(fs.readFileSync(out, 'utf8'));
    expect(report.flood.flights).toBe(2000);
    expect(report.flood.portsUsed).toBe(20);
    expect(report.flood.sendErrors).toEqual({});
    expect(report.sender.captured.clientHelloBytes).toBeGreaterThan(200);
    // The server answered flood flights (a handshake's Initials today; a Retry once address validation exists).
    expect(report.answers.flightsAnswered).toBeGreaterThan(0);
    expect(report.server.alive).toBe(true);
    expect(report.legit.ok).toBeGreaterThan(0);
    // Every connection (flood and legitimate) ended once the flood stopped.
    expect(report.server.counters.open).toBe(0);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, 60000);
