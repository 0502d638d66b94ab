// The `quicket` command: `quicket <url>` (or `quicket get <url>`), a curl-like HTTP/3 client on the
// public fetch(), Http3Agent and TicketStore, and `quicket serve`, a static HTTP/3 file server.
// The parts live in lib/cli/: options, exit codes, output, -v, the progress meter, -w, the transfer.
import { Command, CommanderError } from 'commander';

import { CliError, ExitCode } from './cli/exit-codes';
import { addTransferOptions, TransferOptions } from './cli/options';
import { serve } from './cli/serve';
import { transfer } from './cli/transfer';
import { versions } from './index';

/**
 * Runs the command. A failure prints one line, `quicket: ...`, on stderr (none with -s unless -S,
 * none for a closed stdout) and sets curl's exit code for it; never a stack trace.
 */
export async function main(argv: string[]): Promise<void> {
  try {
    await run(argv);
  } catch (error) {
    const failure = asCliError(error);
    if (failure === undefined) return; // --help, --version
    if (!failure.quiet) process.stderr.write(`quicket: ${failure.message}\n`);
    process.exitCode = process.exitCode || failure.exitCode;
  }
}

function asCliError(error: unknown): CliError | undefined {
  if (error instanceof CliError) return error;
  if (error instanceof CommanderError) {
    if (error.exitCode === 0) return undefined;
    // curl's 2: the command line is wrong.
    return new CliError(ExitCode.USAGE, `${error.message.replace(/^error: /, '')} (try 'quicket --help')`);
  }
  return new CliError(ExitCode.FAILED, (error as Error)?.message ?? String(error));
}

async function run(argv: string[]): Promise<void> {
  const userAgent = `quicket/${versions.quicket}`;
  const fetchUrl = (url: string | undefined, options: TransferOptions): Promise<void> => transfer(url, options, userAgent);
  const program = new Command('quicket')
    .description('HTTP/3 client with curl\'s options (resumes from session tickets, 0-RTT), and a static HTTP/3 server')
    .usage('[options] <url>\n       quicket serve <dir> --cert <file> --key <file> [options]')
    .enablePositionalOptions() // the client's options stay apart from `serve`'s
    .exitOverride()
    .configureOutput({ outputError: () => {} }); // main() reports, in one line
  program.version(
    `quicket ${versions.quicket} OpenSSL/${versions.openssl} ngtcp2/${versions.ngtcp2} nghttp3/${versions.nghttp3}`,
    '-V, --version',
    'print the versions of quicket and of the libraries linked into it',
  );
  addTransferOptions(program.argument('[url]', 'https:// URL (https:// is assumed when there is no scheme)')).action(fetchUrl);
  addTransferOptions(
    program
      .command('get')
      .description('the same as `quicket <url>`')
      .argument('<url>', 'https:// URL'),
  ).action(fetchUrl);
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
