// The client's command-line options, with curl's names and meanings, and what they make of the
// request: its URL, method, header fields and body.
import { Command, InvalidArgumentError } from 'commander';
import fs from 'node:fs';

import { CliError, ExitCode, usageError } from './exit-codes';

/** One -d or --data-binary argument; `order` keeps their command-line order across the two options. */
export interface DataPart {
  order: number;
  binary: boolean;
  value: string;
}

export interface TransferOptions {
  head?: boolean;
  include?: boolean;
  header?: string[];
  request?: string;
  data?: DataPart[];
  dataBinary?: DataPart[];
  userAgent?: string;
  location?: boolean;
  maxRedirs: number;
  fail?: boolean;
  silent?: boolean;
  showError?: boolean;
  verbose?: boolean;
  output?: string;
  insecure?: boolean;
  cacert?: string;
  ca?: string;
  maxTime?: number;
  connectTimeout?: number;
  ticketFile?: string;
  writeOut?: string;
}

let dataOrder = 0;
// Repeatable options start without a default (commander would print it in --help as "[]").
const collectData = (binary: boolean) => (value: string, previous: DataPart[] = []): DataPart[] => [...previous, { order: dataOrder++, binary, value }];
const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

function seconds(value: string): number {
  // As curl: a decimal number of seconds, fractions allowed.
  if (!/^(\d+(\.\d*)?|\.\d+)$/.test(value)) throw new InvalidArgumentError('expected a number of seconds');
  return Number(value);
}

function redirectLimit(value: string): number {
  if (!/^(-1|\d+)$/.test(value)) throw new InvalidArgumentError('expected a whole number, or -1 for no limit');
  return Number(value);
}

/** The client's options, on the program (`quicket <url>`) and on `quicket get <url>` alike. */
export function addTransferOptions(command: Command): Command {
  return command
    .option('-I, --head', 'send HEAD; output the response header fields only')
    .option('-i, --include', 'output the response header fields before the body')
    .option('-H, --header <field>', "extra header field 'Name: value' (repeatable); 'Name:' removes one quicket sends by default", collect)
    .option('-X, --request <method>', 'request method (default GET, or POST with -d)')
    .option('-d, --data <data>', 'send data as a form POST (repeatable, joined with &); @file reads it from a file (- is stdin), without line breaks', collectData(false))
    .option('--data-binary <data>', 'as --data, but @file is sent as it is', collectData(true))
    .option('-A, --user-agent <name>', 'User-Agent to send')
    .option('-L, --location', 'follow redirects (3xx with a Location)')
    .option('--max-redirs <n>', 'most redirects -L follows (-1: no limit)', redirectLimit, 50)
    .option('-f, --fail', 'exit 22, without output, when the status is 400 or more')
    .option('-s, --silent', 'no progress meter, no error messages')
    .option('-S, --show-error', 'with -s, still print error messages')
    .option('-v, --verbose', 'describe the connection and the exchange on stderr')
    .option('-o, --output <file>', 'write the output to this file (- is stdout)')
    .option('-k, --insecure', 'do not verify the server certificate')
    .option('--cacert <file>', "PEM roots to verify the server with (default: node:tls's roots)")
    .option('--ca <file>', 'the same as --cacert')
    .option('-m, --max-time <seconds>', 'give up the whole transfer after this long (exit 28)', seconds)
    .option('--connect-timeout <seconds>', 'give up a connection whose handshake takes longer (exit 28)', seconds)
    .option('--ticket-file <file>', 'keep session tickets in this file: later runs resume, GET and HEAD as 0-RTT (a file holding anything else is left alone)')
    .option('-w, --write-out <format>', "after the transfer, print FORMAT on stdout: %{json}, %{http_code}, %{time_total}..., \\n");
}

/** What the options make of the request before anything is sent. */
export interface RequestPlan {
  url: URL;
  /** -X's method, kept on every redirect as curl does; otherwise the method follows the redirect rules. */
  customMethod?: string;
  method: string;
  /** In the order they are sent, with the case they were given in (shown by -v). */
  headers: Array<[string, string]>;
  body?: Buffer;
}

/**
 * The URL given, as curl reads it: without a scheme it is https:// (the only one spoken here);
 * another scheme exits 1, an unparsable URL 3.
 */
export function parseUrl(input: string): URL {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(input) ? input : `https://${input}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new CliError(ExitCode.MALFORMED_URL, `URL rejected: Malformed input to a URL function: ${input}`);
  }
  if (url.protocol !== 'https:') throw new CliError(ExitCode.UNSUPPORTED_PROTOCOL, `Protocol "${url.protocol.slice(0, -1)}" not supported (HTTP/3 needs https://)`);
  if (url.hostname === '') throw new CliError(ExitCode.MALFORMED_URL, `URL rejected: No host part in the URL: ${input}`);
  return url;
}

function readData(part: DataPart): Buffer {
  if (!part.value.startsWith('@')) return Buffer.from(part.value);
  const file = part.value.slice(1);
  let content: Buffer;
  try {
    content = fs.readFileSync(file === '-' ? 0 : file);
  } catch (error) {
    throw new CliError(ExitCode.READ_ERROR, `Failed to open/read local data from file/application: ${(error as Error).message}`);
  }
  // curl's -d @file drops carriage returns and newlines; --data-binary keeps every byte.
  return part.binary ? content : Buffer.from(content.filter((byte) => byte !== 0x0d && byte !== 0x0a));
}

function requestBody(options: TransferOptions): Buffer | undefined {
  const parts = [...(options.data ?? []), ...(options.dataBinary ?? [])].sort((a, b) => a.order - b.order);
  if (parts.length === 0) return undefined;
  const pieces: Buffer[] = [];
  parts.forEach((part, index) => {
    if (index > 0) pieces.push(Buffer.from('&'));
    pieces.push(readData(part));
  });
  return Buffer.concat(pieces);
}

/** -H's field: `Name: value` sets, `Name:` removes, `Name;` sends it empty (as curl). */
function parseHeader(field: string): { name: string; value?: string } {
  const match = /^([^:;\s]+)\s*([:;])\s*(.*)$/s.exec(field);
  if (!match) throw usageError(`bad header field (want 'Name: value'): ${field}`);
  const [, name, separator, value] = match;
  if (separator === ';') return { name, value: '' };
  return { name, value: value === '' ? undefined : value.trimEnd() };
}

export function planRequest(input: string, options: TransferOptions, userAgent: string): RequestPlan {
  const url = parseUrl(input);
  const body = requestBody(options);
  if (options.head && body !== undefined) {
    throw usageError('You can only select one HTTP request method! You asked for both POST (-d, --data) and HEAD (-I, --head).');
  }
  const method = options.request ?? (options.head ? 'HEAD' : body !== undefined ? 'POST' : 'GET');
  const fields = new Map<string, [string, string]>();
  fields.set('user-agent', ['User-Agent', options.userAgent ?? userAgent]);
  fields.set('accept', ['Accept', '*/*']);
  if (body !== undefined) fields.set('content-type', ['Content-Type', 'application/x-www-form-urlencoded']);
  const added: Array<[string, string]> = [];
  for (const field of options.header ?? []) {
    const { name, value } = parseHeader(field);
    const key = name.toLowerCase();
    // A field given with -H replaces the default of that name; repeated, each is sent.
    fields.delete(key);
    if (value !== undefined) added.push([name, value]);
    else for (let i = added.length - 1; i >= 0; i--) if (added[i][0].toLowerCase() === key) added.splice(i, 1);
  }
  const headers = [...fields.values(), ...added];
  try {
    new Headers(headers);
  } catch (error) {
    throw usageError(`bad header field: ${(error as Error).message}`);
  }
  return { url, customMethod: options.request, method, headers, body };
}
