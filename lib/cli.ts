// The `quicket` command: `get` (an HTTP/3 client that keeps session tickets) and `serve` (a static
// HTTP/3 file server). Built on the public API only.
import { Command } from 'commander';
import dns from 'node:dns/promises';
import fs from 'node:fs';
import net from 'node:net';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import { Engine } from './engine';
import { request } from './http3';
import { serve } from './cli/serve';
import { versions } from './index';
import { SslConfig } from './ssl-config';
import { Ticket } from './ticket';

const ms = (from: bigint): number => Math.round(Number(process.hrtime.bigint() - from) / 1e4) / 100;

/** Writes a file so that readers see the old or the new content, never half of one. */
function writeAtomically(file: string, data: Buffer): void {
  const temporary = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(temporary, data, { mode: 0o600 });
  fs.renameSync(temporary, file);
}

/** An error the command reports as one line (or not at all, when `quiet`) with its own exit code. */
class CliError extends Error {
  constructor(message: string, readonly exitCode: number, readonly quiet = false) {
    super(message);
  }
}

// curl's exit code for an output it could not write.
const EXIT_WRITE_ERROR = 23;

interface GetOptions {
  ca?: string;
  insecure?: boolean;
  ticketFile?: string;
  output?: string;
  verbose?: boolean;
}

/**
 * The ticket stored in `file`, if any. A file that holds something else is never used and never
 * overwritten: `writable` is false then (an empty or missing file is fine to write).
 */
function readTicketFile(file: string): { ticket?: Buffer; writable: boolean } {
  let stored: Buffer;
  try {
    stored = fs.readFileSync(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { writable: true };
    throw error;
  }
  if (stored.length === 0) return { writable: true };
  try {
    Ticket.inspect(stored);
    return { ticket: stored, writable: true };
  } catch (error) {
    process.stderr.write(`quicket: ${file}: ${(error as Error).message}; it is not used and left untouched\n`);
    return { writable: false };
  }
}

/** Copies the body to the output; a closed pipe ends the command quietly, like curl's exit 23. */
async function writeBody(body: NodeJS.ReadableStream, output: string | undefined): Promise<number> {
  let bytes = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      bytes += chunk.length;
      callback(null, chunk);
    },
  });
  const sink = output ? fs.createWriteStream(output) : process.stdout;
  let sinkError: NodeJS.ErrnoException | undefined;
  sink.once('error', (error) => (sinkError = error));
  try {
    await pipeline(body, counter, sink);
  } catch (error) {
    if (!sinkError) throw error;
    if (sinkError.code === 'EPIPE') throw new CliError('', EXIT_WRITE_ERROR, true);
    throw new CliError(`cannot write ${output ?? 'the output'}: ${sinkError.message}`, EXIT_WRITE_ERROR);
  }
  return bytes;
}

async function get(url: string, options: GetOptions): Promise<void> {
  const started = process.hrtime.bigint();
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    throw new Error(`not a URL: ${url}`);
  }
  if (target.protocol !== 'https:') throw new Error(`only https:// URLs are supported: ${url}`);
  if (options.ca && options.insecure) throw new Error('--ca and --insecure exclude each other');
  const servername = target.hostname.replace(/^\[|\]$/g, '');
  const host = net.isIP(servername) || servername === 'localhost' ? servername : (await dns.lookup(servername)).address;
  const port = Number(target.port || 443);
  const ssl = new SslConfig({
    alpn: ['h3'],
    ca: options.ca ? fs.readFileSync(options.ca) : undefined,
    rejectUnauthorized: !options.insecure,
  });
  const { ticket, writable: ticketWritable } = options.ticketFile ? readTicketFile(options.ticketFile) : { ticket: undefined, writable: false };
  const engine = new Engine();
  try {
    const connection = engine.connect({ host, port, servername, ssl, ticket });
    let newest: Buffer | undefined;
    let ticketArrived: () => void = () => {};
    const gotTicket = new Promise<void>((resolve) => (ticketArrived = resolve));
    if (ticketWritable) {
      connection.on('ticket', (fresh: Buffer) => {
        newest = fresh;
        ticketArrived();
      });
    }
    connection.on('ticketRejected', (reason) => options.verbose && process.stderr.write(`ticket not used: ${reason}\n`));
    // Issued in the same tick as connect(): with a ticket this request is 0-RTT.
    const responsePromise = request(connection, { path: `${target.pathname}${target.search}` });
    const info = await connection.handshake;
    const handshakeMs = ms(started);
    const response = await responsePromise;
    const firstByteMs = ms(started);
    const bytes = await writeBody(response.body, options.output);
    const totalMs = ms(started);
    if (ticketWritable && options.ticketFile) {
      // The server sends tickets right after the handshake; allow a moment if none came yet.
      if (!newest) await Promise.race([gotTicket, new Promise((resolve) => setTimeout(resolve, 200))]);
      if (newest) writeAtomically(options.ticketFile, newest);
    }
    await connection.close();
    if (options.verbose) {
      process.stderr.write(`${JSON.stringify({
        status: response.status,
        bytes,
        resumed: info.resumed,
        earlyData: info.earlyData,
        alpn: info.alpn,
        timings: { handshakeMs, firstByteMs, totalMs },
      })}\n`);
    }
    if (response.status < 200 || response.status > 299) {
      process.stderr.write(`quicket: ${url} answered ${response.status}\n`);
      process.exitCode = 22;
    }
  } finally {
    await engine.close();
  }
}

/**
 * Runs the command. Expected failures (bad arguments, TLS or connection errors, unwritable output)
 * print one line on stderr and set a non-zero exit code; a closed stdout ends it quietly with 23.
 */
export async function main(argv: string[]): Promise<void> {
  try {
    await run(argv);
  } catch (error) {
    const exitCode = error instanceof CliError ? error.exitCode : 1;
    if (!(error instanceof CliError && error.quiet)) process.stderr.write(`quicket: ${(error as Error).message}\n`);
    process.exitCode = process.exitCode || exitCode;
  }
}

async function run(argv: string[]): Promise<void> {
  const program = new Command('quicket').description('HTTP/3 over quicket, with session tickets and 0-RTT');
  program.version(
    `quicket ${versions.quicket} OpenSSL/${versions.openssl} ngtcp2/${versions.ngtcp2} nghttp3/${versions.nghttp3}`,
    '-V, --version',
    'print the versions of quicket and of the libraries linked into it',
  );
  program
    .command('get')
    .description('HTTP/3 GET; with --ticket-file, resume (and send the request as 0-RTT) from a stored ticket')
    .argument('<url>', 'https:// URL')
    .option('--ca <file>', 'PEM roots to verify the server (default: node:tls\'s roots)')
    .option('--insecure', 'do not verify the server certificate')
    .option('--ticket-file <file>', 'read a session ticket from, and write the newest one to, this file (a file holding anything else is left alone)')
    .option('-o, --output <file>', 'write the body to this file instead of stdout')
    .option('--verbose', 'end with one JSON line of facts on stderr')
    .action(get);
  program
    .command('serve')
    .description('serve a directory over HTTP/3 (never anything outside it)')
    .argument('<dir>', 'directory to serve')
    .requiredOption('--cert <file>', 'PEM certificate chain')
    .requiredOption('--key <file>', 'PEM private key')
    .option('--host <host>', 'address to bind', '127.0.0.1')
    .option('--port <port>', 'UDP port (0 picks a free one)', '4433')
    .option('--early-data', 'accept 0-RTT requests')
    .option('--ticket-keys-file <file>', '48-byte ticket key (node:tls layout) shared by servers that resume each other\'s tickets')
    .action(serve);
  await program.parseAsync(argv);
}
