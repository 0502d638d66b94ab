// One curl-style transfer: fetch() on an Http3Agent of its own, redirects followed here (so that
// -v and -i see each hop and --max-redirs counts them), the agent's 'connection' event giving the
// connection facts -v and -w report, and --ticket-file's TicketStore under the agent so that the
// next run resumes with 0-RTT.
import fs from 'node:fs';

import { Connection } from '../connection';
import { fetch } from '../fetch';
import { Http3Agent } from '../http3-agent';
import { SslConfig } from '../ssl-config';
import { CliError, ExitCode, transferError, usageError } from './exit-codes';
import { planRequest, RequestPlan, TransferOptions } from './options';
import { headerSection, Output, writeStdout } from './output';
import { ProgressMeter } from './progress';
import { openTicketFile, TicketFile } from './ticket-file';
import { Verbose } from './verbose';
import { emptyFacts, formatWriteOut, TransferFacts } from './write-out';

const REDIRECT_STATUS = new Set([301, 302, 303, 307, 308]);
// The server sends its tickets right after the handshake: a short transfer may end before one came.
const TICKET_GRACE_MS = 200;
const BODY_FIELDS = new Set(['content-type', 'content-length']);
// As curl (and fetch): credentials meant for one origin are not sent to another.
const CREDENTIAL_FIELDS = new Set(['authorization', 'proxy-authorization', 'cookie']);

/** A connection the agent made for this transfer, and what was already said about it. */
interface Watched {
  connection: Connection;
  hostname: string;
  described: boolean;
  ticketArrived: boolean;
}

/** The origin key Http3Agent pools connections by. */
function originOf(url: URL): string {
  return `${url.hostname.replace(/^\[|\]$/g, '')}:${url.port || 443}`;
}

// How long closing the connections may hold up the end of the command.
const CLOSE_LIMIT_MS = 2000;
const secondsSince = (start: number): number => Math.round((performance.now() - start) * 1000) / 1e6;

function clientSsl(options: TransferOptions): SslConfig {
  const caFile = options.cacert ?? options.ca;
  let ca: Buffer | undefined;
  if (caFile !== undefined) {
    try {
      ca = fs.readFileSync(caFile);
    } catch (error) {
      throw new CliError(ExitCode.CA_FILE, `error setting certificate file: ${(error as Error).message}`);
    }
  }
  try {
    return new SslConfig({ alpn: ['h3'], ca, rejectUnauthorized: !options.insecure });
  } catch (error) {
    throw new CliError(ExitCode.CA_FILE, `error setting certificate file ${caFile}: ${(error as Error).message}`);
  }
}

class Transfer {
  readonly facts: TransferFacts;
  readonly #plan: RequestPlan;
  readonly #options: TransferOptions;
  readonly #started: number;
  readonly #agent: Http3Agent;
  readonly #ticketFile?: TicketFile;
  readonly #output: Output;
  readonly #verbose: Verbose;
  readonly #progress?: ProgressMeter;
  readonly #controller = new AbortController();
  readonly #watched = new Map<string, Watched>();
  /** The hostname of the request being started: the agent's 'connection' event comes in its fetch() call. */
  #connectingTo = '';
  /** The connection the last response came on. */
  #last?: Watched;

  constructor(plan: RequestPlan, options: TransferOptions, started: number, warn: (line: string) => void) {
    this.#plan = plan;
    this.#options = options;
    this.#started = started;
    this.facts = emptyFacts(plan.url, plan.method);
    const ssl = clientSsl(options);
    this.#ticketFile = options.ticketFile !== undefined ? openTicketFile(options.ticketFile, plan.url, warn) : undefined;
    this.#agent = new Http3Agent({ ssl, ticketStore: this.#ticketFile?.store });
    this.#agent.on('connection', (connection, origin) => this.#watch(connection, origin));
    this.#output = new Output(options.output);
    this.#verbose = new Verbose(Boolean(options.verbose));
    // curl's rule: a meter on a terminal, unless the output lands on it too or -s.
    if (!options.silent && process.stderr.isTTY && !this.#output.toTerminal) this.#progress = new ProgressMeter();
  }

  async run(): Promise<void> {
    const { maxTime } = this.#options;
    let maxTimer: NodeJS.Timeout | undefined;
    if (maxTime) { // 0 is no limit, as in curl
      const ms = Math.round(maxTime * 1000);
      maxTimer = setTimeout(() => {
        this.#controller.abort(new CliError(ExitCode.TIMEOUT, `Operation timed out after ${ms} milliseconds with ${this.facts.size_download} bytes received`));
      }, ms);
    }
    this.#progress?.start(this.#plan.body?.length ?? 0);
    try {
      const response = await this.#follow();
      await this.#deliver(response);
      await this.#output.end();
      await this.#keepTicket();
      this.#progress?.finish();
      for (const watched of this.#watched.values()) this.#verbose.stats(watched.connection);
      await this.#closeAgent();
    } catch (error) {
      this.#progress?.finish();
      // Nothing more to wait for: the connections end now, not after their graceful close.
      for (const watched of this.#watched.values()) watched.connection.destroy();
      await this.#closeAgent();
      throw error;
    } finally {
      clearTimeout(maxTimer);
      this.facts.time_total = secondsSince(this.#started);
    }
  }

  /**
   * agent.close(), with the process held meanwhile: the agent's engine stops holding it once no
   * request is in flight, and the command has more to do after (-w, the exit code).
   */
  async #closeAgent(): Promise<void> {
    let hold: NodeJS.Timeout | undefined;
    await Promise.race([
      this.#agent.close().catch(() => {}),
      new Promise<void>((resolve) => (hold = setTimeout(resolve, CLOSE_LIMIT_MS))),
    ]);
    clearTimeout(hold);
  }

  #watch(connection: Connection, origin: string): void {
    const watched: Watched = { connection, hostname: this.#connectingTo, described: false, ticketArrived: false };
    this.#watched.set(origin, watched);
    this.facts.num_connects++;
    connection.on('ticket', () => (watched.ticketArrived = true));
    connection.on('ticketRejected', (reason) => this.#verbose.info(`session ticket not used: ${reason}`));
    connection.on('earlyDataRejected', () => this.#verbose.info('0-RTT rejected by the server: the request is sent again'));
    connection.handshake.then(() => {
      this.facts.time_connect = this.facts.time_appconnect = secondsSince(this.#started);
    }, () => {});
    const { connectTimeout } = this.#options;
    if (connectTimeout) {
      const ms = Math.round(connectTimeout * 1000);
      const timer = setTimeout(() => {
        if (connection.alpn === undefined) this.#controller.abort(new CliError(ExitCode.TIMEOUT, `Connection timed out after ${ms} milliseconds`));
      }, ms);
      timer.unref(); // a transfer that failed otherwise does not wait for it
      connection.handshake.then(() => clearTimeout(timer), () => clearTimeout(timer));
    }
  }

  /** The requests up to the response that is not a redirect to follow. */
  async #follow(): Promise<Response> {
    let { url, method, headers, body } = this.#plan;
    const maxRedirects = this.#options.maxRedirs;
    for (let redirects = 0; ; redirects++) {
      const response = await this.#exchange(url, method, headers, body);
      const location = response.headers.get('location');
      if (!this.#options.location || !REDIRECT_STATUS.has(response.status) || location === null) return response;
      await response.body?.cancel().catch(() => {});
      if (maxRedirects !== -1 && redirects >= maxRedirects) throw new CliError(ExitCode.TOO_MANY_REDIRECTS, `Maximum (${maxRedirects}) redirects followed`);
      await this.#writeHeaders(response);
      let next: URL;
      try {
        next = new URL(location, url);
      } catch {
        throw new CliError(ExitCode.MALFORMED_URL, `URL rejected: Malformed redirect location: ${location}`);
      }
      if (next.protocol !== 'https:') throw new CliError(ExitCode.UNSUPPORTED_PROTOCOL, `Protocol "${next.protocol.slice(0, -1)}" not supported (redirect to ${next.href})`);
      this.#verbose.info(`Issue another request to this URL: '${next.href}'`);
      // A 303, and a 301 or 302 after POST, become a GET without the body; -X's method stays, as in curl.
      const status = response.status;
      if ((status === 303 && method !== 'HEAD') || ((status === 301 || status === 302) && method === 'POST')) {
        method = 'GET';
        body = undefined;
        headers = headers.filter(([name]) => !BODY_FIELDS.has(name.toLowerCase()));
      }
      if (this.#plan.customMethod !== undefined) method = this.#plan.customMethod;
      if (next.origin !== url.origin) headers = headers.filter(([name]) => !CREDENTIAL_FIELDS.has(name.toLowerCase()));
      this.facts.num_redirects++;
      this.facts.time_redirect = secondsSince(this.#started);
      url = next;
    }
  }

  async #exchange(url: URL, method: string, headers: Array<[string, string]>, body: Buffer | undefined): Promise<Response> {
    this.#connectingTo = url.hostname;
    const answer = fetch(url, { method, headers, body: body ?? null, redirect: 'manual', signal: this.#controller.signal, agent: this.#agent });
    // A connection this request made was announced during the fetch() call.
    const watched = this.#watched.get(originOf(url));
    if (watched && !watched.described) {
      await Promise.race([watched.connection.handshake, answer]).catch(() => {});
      this.#describe(watched);
    }
    if (!watched || watched.connection.alpn !== undefined) this.#verbose.request(method, url, headers, body?.length);
    let response: Response;
    try {
      response = await answer;
    } catch (error) {
      throw transferError(error, url);
    }
    if (watched) {
      this.#describe(watched);
      this.#last = watched;
    }
    this.#verbose.response(response.status, response.headers);
    Object.assign(this.facts, {
      url_effective: url.href,
      method,
      http_code: response.status,
      content_type: response.headers.get('content-type') ?? '',
      size_upload: body?.length ?? 0,
      time_starttransfer: secondsSince(this.#started),
    });
    const length = Number(response.headers.get('content-length') ?? NaN);
    this.#progress?.responded(Number.isSafeInteger(length) && method !== 'HEAD' ? length : undefined);
    return response;
  }

  /** -v's connection lines and -w's connection facts, once its handshake is done. */
  #describe(watched: Watched): void {
    const { connection } = watched;
    if (watched.described || connection.alpn === undefined) return;
    watched.described = true;
    this.#verbose.connected(connection, watched.hostname);
    Object.assign(this.facts, {
      remote_ip: connection.remoteAddress ?? '',
      remote_port: connection.remotePort ?? 0,
      local_ip: connection.localAddress ?? '',
      local_port: connection.localPort ?? 0,
      alpn: connection.alpn,
      resumed: connection.resumed,
      early_data: connection.earlyData,
    });
  }

  async #writeHeaders(response: Response): Promise<void> {
    if (!this.#options.include && !this.#options.head) return;
    const section = headerSection(response.status, response.headers);
    this.facts.size_header += Buffer.byteLength(section);
    await this.#output.write(section);
  }

  /** The final response into the output: its header section with -i or -I, its body unless -I. */
  async #deliver(response: Response): Promise<void> {
    if (this.#options.fail && response.status >= 400) {
      await response.body?.cancel().catch(() => {});
      throw new CliError(ExitCode.HTTP_ERROR, `The requested URL returned error: ${response.status}`);
    }
    await this.#writeHeaders(response);
    if (!response.body) return;
    if (this.#options.head) {
      await response.body.cancel().catch(() => {});
      return;
    }
    const reader = response.body.getReader();
    for (;;) {
      let next: Awaited<ReturnType<typeof reader.read>>;
      try {
        next = await reader.read();
      } catch (error) {
        throw transferError(error, new URL(this.facts.url_effective));
      }
      if (next.done) return;
      this.facts.size_download += next.value.byteLength;
      this.#progress?.received(next.value.byteLength);
      await this.#output.write(next.value);
    }
  }

  /** With --ticket-file: gives the server a moment to send a ticket, if none came yet. */
  async #keepTicket(): Promise<void> {
    const last = this.#last;
    if (!this.#ticketFile?.persistent || !last || last.ticketArrived || last.connection.closed) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, TICKET_GRACE_MS);
      last.connection.once('ticket', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

/**
 * `quicket <url>`: one transfer, curl's way. Failures throw a CliError with curl's exit code (quiet
 * with -s unless -S); -w's text is written either way, as curl does.
 */
export async function transfer(input: string | undefined, options: TransferOptions, userAgent: string): Promise<void> {
  const started = performance.now();
  const warn = (line: string): void => {
    if (!options.silent) process.stderr.write(`quicket: ${line}\n`);
  };
  let facts: TransferFacts | undefined;
  try {
    if (input === undefined) throw usageError("no URL specified (try 'quicket --help')");
    const plan = planRequest(input, options, userAgent);
    const run = new Transfer(plan, options, started, warn);
    facts = run.facts;
    await run.run();
  } catch (error) {
    const failure = error instanceof CliError ? error : new CliError(ExitCode.FAILED, (error as Error).message);
    if (facts) Object.assign(facts, { exitcode: failure.exitCode, errormsg: failure.message });
    throw options.silent && !options.showError ? failure.silenced() : failure;
  } finally {
    if (facts && options.writeOut !== undefined) {
      await writeStdout(formatWriteOut(options.writeOut, facts, (name) => warn(`unknown --write-out variable: '${name}'`)));
    }
  }
}
