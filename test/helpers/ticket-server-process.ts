// A quicket server in a process of its own (test/fixtures/ticket-server.js): 0-RTT on, the given
// ticket keys, and every stream it received reported back. The anti-replay store is per process,
// so this is how a test gets a server whose store started at a moment of its choosing.
import { ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';

import type { Closable, Received } from './ticket-harness';

export interface TicketServerProcess extends Closable {
  port: number;
  pid: number;
  /** Every stream the server received completely, in order. */
  received: Received[];
  /** Resolves once `count` streams in all have been received. */
  waitForReceived(count: number): Promise<void>;
}

export async function startTicketServerProcess(ticketKeys: Buffer): Promise<TicketServerProcess> {
  const child = spawn(process.execPath, [path.join(__dirname, '..', 'fixtures', 'ticket-server.js'), ticketKeys.toString('hex')], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const received: Received[] = [];
  const waiters: Array<() => void> = [];
  const port = new Promise<number>((resolve, reject) => {
    child.once('exit', () => reject(new Error('the server process ended early')));
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      const message = JSON.parse(line);
      if (typeof message.port === 'number') return resolve(message.port);
      received.push(message as Received);
      for (const wake of waiters.splice(0)) wake();
    });
  });
  const close = () => stop(child);
  try {
    return {
      port: await port,
      pid: child.pid!,
      received,
      async waitForReceived(count: number) {
        while (received.length < count) await new Promise<void>((resolve) => waiters.push(resolve));
      },
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.stdin?.end(); // the server closes its engine and exits
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}
