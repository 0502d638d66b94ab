// Where the transfer's output goes (stdout, or -o's file, opened at the first byte so that a
// failure before it leaves no file behind), with curl's exit 23 for a write that fails. A reader
// that goes away (a closed pipe) ends the command quietly.
import fs from 'node:fs';

import { CliError, ExitCode } from './exit-codes';

export class Output {
  readonly #file?: string;
  #stream?: NodeJS.WritableStream;
  #failure?: CliError;

  /** `file` undefined or '-' is stdout. */
  constructor(file: string | undefined) {
    this.#file = file === '-' ? undefined : file;
  }

  /** True when what is written lands on a terminal (curl then shows no progress meter). */
  get toTerminal(): boolean {
    return this.#file === undefined && process.stdout.isTTY === true;
  }

  async write(chunk: Uint8Array | string): Promise<void> {
    const stream = this.#open();
    await new Promise<void>((resolve, reject) => {
      stream.write(chunk, (error?: Error | null) => (error ? reject(this.#failed(error)) : resolve()));
    });
  }

  /** Finishes the file (an empty body still makes one, as curl's does). */
  async end(): Promise<void> {
    const stream = this.#open();
    if (stream === process.stdout) return;
    await new Promise<void>((resolve, reject) => {
      stream.once('error', (error: Error) => reject(this.#failed(error)));
      stream.end(() => resolve());
    });
  }

  #open(): NodeJS.WritableStream {
    if (this.#failure) throw this.#failure;
    if (this.#stream) return this.#stream;
    if (this.#file === undefined) {
      this.#stream = process.stdout;
    } else {
      let fd: number;
      try {
        fd = fs.openSync(this.#file, 'w');
      } catch (error) {
        throw this.#failed(error as Error);
      }
      this.#stream = fs.createWriteStream(this.#file, { fd });
    }
    // Reported through the write callbacks; without a listener the stream's 'error' would throw.
    this.#stream.on('error', () => {});
    return this.#stream;
  }

  #failed(error: Error): CliError {
    if (!this.#failure) {
      const where = this.#file ?? 'stdout';
      const closedPipe = (error as NodeJS.ErrnoException).code === 'EPIPE' && this.#file === undefined;
      this.#failure = new CliError(ExitCode.WRITE_ERROR, `Failure writing output to destination: cannot write ${where}: ${error.message}`, closedPipe);
    }
    return this.#failure;
  }
}

/** Writes -w's text on stdout; a stdout that is gone already takes nothing. */
export function writeStdout(text: string): Promise<void> {
  return new Promise((resolve) => {
    if (process.stdout.destroyed || text === '') return resolve();
    process.stdout.on('error', () => {});
    process.stdout.write(text, () => resolve());
  });
}

/** The response's header section as -i and -I print it: curl's status line, then one field a line, CRLF. */
export function headerSection(status: number, headers: Headers): string {
  let text = `HTTP/3 ${status}\r\n`;
  headers.forEach((value, name) => (text += `${name}: ${value}\r\n`));
  return `${text}\r\n`;
}
