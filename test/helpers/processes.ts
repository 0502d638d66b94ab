// Child processes for tests that need a peer in another process (killed, restarted, several
// workers on one port): test/fixtures/peer.js and friends, started with the compiled library in
// dist/ (test/global-setup.js builds it once per run). Every child started through usePeers() is
// killed by its PID after the test if it is still running, so a failing test leaves nothing behind.
import { ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';

export const FIXTURES = path.join(__dirname, '..', 'fixtures');
export const DIST = path.join(__dirname, '..', '..', 'dist');

/* eslint-disable @typescript-eslint/no-explicit-any */
export type Report = Record<string, any>;

export class Peer {
  readonly child: ChildProcess;
  /** Every JSON line the child printed so far. */
  readonly reports: Report[] = [];
  stderr = '';
  #waiters: Array<() => void> = [];
  #exit: Promise<number | null>;
  #exited = false;

  /** Runs `script` with node, or with `binary` the program itself (an interop peer). */
  constructor(script: string, args: string[], binary = false) {
    this.child = spawn(binary ? script : process.execPath, binary ? args : [script, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: process.env,
    });
    let pending = '';
    this.child.stdout!.on('data', (chunk: Buffer) => {
      pending += chunk.toString();
      let newline: number;
      while ((newline = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        try {
          this.reports.push(JSON.parse(line));
        } catch {
          this.reports.push({ event: 'text', line });
        }
      }
      for (const wake of this.#waiters.splice(0)) wake();
    });
    this.child.stderr!.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
    this.child.stdin!.on('error', () => {}); // the child may be gone already
    this.#exit = new Promise((resolve) => {
      this.child.on('exit', (code) => {
        this.#exited = true;
        for (const wake of this.#waiters.splice(0)) wake();
        resolve(code);
      });
    });
  }

  get pid(): number {
    return this.child.pid as number;
  }

  get exited(): boolean {
    return this.#exited;
  }

  /**
   * Resolves with the first report (already printed or still to come) matching `match`; rejects if
   * the child exits first, or after `ms` (a hang guard, not a timing assertion).
   */
  async waitFor(match: (report: Report) => boolean, what: string, ms = 15000): Promise<Report> {
    const deadline = Date.now() + ms;
    for (;;) {
      const found = this.reports.find(match);
      if (found) return found;
      if (this.#exited) throw new Error(`child exited before "${what}"; reports: ${JSON.stringify(this.reports)} stderr: ${this.stderr}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no "${what}" from the child within ${ms} ms; reports: ${JSON.stringify(this.reports)} stderr: ${this.stderr}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  event(name: string, ms?: number): Promise<Report> {
    return this.waitFor((report) => report.event === name, name, ms);
  }

  /** Asks for a graceful stop (stdin closes: the child closes its engines and exits). */
  async stop(): Promise<number | null> {
    this.child.stdin!.end();
    return this.#exit;
  }

  /** Kills the child by its PID (SIGKILL by default) and waits until it is gone. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<number | null> {
    if (!this.#exited) process.kill(this.pid, signal);
    return this.#exit;
  }

  exit(): Promise<number | null> {
    return this.#exit;
  }
}

/** Call once in a describe block: peers started through it are killed (by PID) after each test. */
export function usePeers(): { start(script: string, args: string[], binary?: boolean): Peer } {
  const running = new Set<Peer>();
  afterEach(async () => {
    const peers = [...running];
    running.clear();
    await Promise.all(peers.map((peer) => peer.kill()));
  });
  return {
    start(script: string, args: string[], binary = false): Peer {
      const peer = new Peer(path.isAbsolute(script) ? script : path.join(FIXTURES, script), args, binary);
      running.add(peer);
      return peer;
    },
  };
}

/** Starts test/fixtures/peer.js as a server; resolves once it listens. */
export async function startServerPeer(peers: ReturnType<typeof usePeers>, options: Report): Promise<{ peer: Peer; port: number }> {
  const peer = peers.start('peer.js', [DIST, 'server', JSON.stringify(options)]);
  const { port } = await peer.event('listening');
  return { peer, port };
}

export interface ExitResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `command` to its exit and collects its output; rejects if it has not exited within
 * `hangMs` (a hang detector, not a timing assertion: the process is killed then).
 */
export function runToExit(command: string, args: string[], env: NodeJS.ProcessEnv, hangMs: number): Promise<ExitResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk) => (stdout += chunk));
    child.stderr!.on('data', (chunk) => (stderr += chunk));
    const guard = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${path.basename(command)} did not exit by itself within ${hangMs} ms; stdout: ${stdout} stderr: ${stderr}`));
    }, hangMs);
    child.once('error', (error) => {
      clearTimeout(guard);
      reject(error);
    });
    // 'close', not 'exit': 'exit' can come before the last of stdout has been read, and a loaded
    // machine then hands the test an empty or cut-off stdout.
    child.once('close', (code) => {
      clearTimeout(guard);
      resolve({ code, stdout, stderr });
    });
  });
}
