// fetch() over HTTP/3: the WHATWG fetch a Node user knows (a global Response back), with each
// request on its origin's pooled connection (Http3Agent). A request on a new connection that a
// ticket resumes rides 0-RTT when that is safe: GET and HEAD do, other methods wait for the
// handshake (RFC 8470) unless `earlyData: true`; a 425 Too Early answer is retried once the
// handshake is done.
import { STATUS_CODES } from 'node:http';
import { Readable } from 'node:stream';
import { ReadableStream as WebReadableStream } from 'node:stream/web';

import { Connection } from './connection';
import { abortError, checkObject, checkOptionalBoolean, codedError, invalidArgType, invalidArgValue } from './errors';
import { getGlobalHttp3Agent, Http3Agent } from './http3-agent';
import { Http3ClientResponse, Http3OutgoingHeaders, request } from './http3';

/** What fetch() takes as headers: a Headers, an object or a list of [name, value] pairs, as `new Headers()` does. */
export type Http3HeadersInit = ConstructorParameters<typeof Headers>[0];

/** What fetch() takes as a body, as the WHATWG fetch does plus Node's Readable and Buffer. */
export type Http3FetchBody = string | Buffer | Uint8Array | ArrayBuffer | URLSearchParams | Readable | WebReadableStream<Uint8Array> | ReadableStream<Uint8Array>;

/** Options of {@link fetch}: the WHATWG RequestInit's that apply, plus `earlyData` and `agent`. */
export interface Http3FetchInit {
  /** The request method, e.g. 'POST' (default 'GET'; the usual methods are upper-cased). */
  method?: string;
  /**
   * Header fields to send. Fields HTTP/3 has no place for (Connection, Keep-Alive,
   * Transfer-Encoding, Upgrade, Host...) are dropped; the URL's host becomes `:authority`.
   */
  headers?: Http3HeadersInit;
  /**
   * The request body; GET and HEAD take none (TypeError). A string or URLSearchParams gets a
   * content-type unless one is given, a body in memory a content-length. A streamed body (Readable
   * or ReadableStream) is sent once: no retry after 425, no redirect other than 303.
   */
  body?: Http3FetchBody | null;
  /** Aborting it rejects with an AbortError (`ABORT_ERR`) and cancels the request or its body. */
  signal?: AbortSignal | null;
  /** 'follow' (the default, up to 20 redirects), 'manual' (the 3xx response is returned) or 'error'. */
  redirect?: 'follow' | 'manual' | 'error';
  /**
   * Let a method other than GET or HEAD ride 0-RTT on a resumed connection. Early data can be
   * replayed by an attacker: only for requests that are safe to repeat (RFC 8470).
   */
  earlyData?: boolean;
  /** The connection pool to use (default: getGlobalHttp3Agent()). */
  agent?: Http3Agent;
}

const SAFE_IN_EARLY_DATA = new Set(['GET', 'HEAD']);
const NULL_BODY_STATUS = new Set([101, 103, 204, 205, 304]);
const REDIRECT_STATUS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 20;
const TOO_EARLY = 425;
// Connection-specific fields do not exist in HTTP/3 (RFC 9114 §4.2); Host becomes :authority.
const CONNECTION_FIELDS = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'host']);
const NORMALIZED_METHODS = new Set(['DELETE', 'GET', 'HEAD', 'OPTIONS', 'POST', 'PUT', 'PATCH']);

/** What a request becomes on the wire: its method, header fields and a body that can be sent again if it is in memory. */
interface Prepared {
  method: string;
  headers: Http3OutgoingHeaders;
  body: Buffer | Readable | undefined;
}

function fetchFailed(cause: unknown): TypeError {
  // As node's fetch (undici) reports network failures: a TypeError whose cause says why.
  return new TypeError('fetch failed', { cause });
}

function parseInput(input: string | URL | Request): { url: URL; fromRequest?: Request } {
  if (typeof input === 'string' || input instanceof URL) {
    let url: URL;
    try {
      url = new URL(String(input));
    } catch (cause) {
      throw Object.assign(new TypeError(`Invalid URL: ${String(input)}`, { cause }), { code: 'ERR_INVALID_URL' as const });
    }
    return { url };
  }
  if (typeof Request !== 'undefined' && input instanceof Request) return { url: new URL(input.url), fromRequest: input };
  throw invalidArgType('input', 'a string, URL or Request', input);
}

function prepare(init: Http3FetchInit, fromRequest: Request | undefined): Prepared {
  let method = init.method ?? fromRequest?.method ?? 'GET';
  if (typeof method !== 'string') throw invalidArgType('init.method', 'a string', method);
  if (NORMALIZED_METHODS.has(method.toUpperCase())) method = method.toUpperCase();
  const fields = new Headers(init.headers ?? fromRequest?.headers);
  const raw = init.body !== undefined ? init.body : fromRequest?.body ?? undefined;
  if (raw != null && (method === 'GET' || method === 'HEAD')) {
    throw new TypeError('Request with GET/HEAD method cannot have body.');
  }
  let body: Buffer | Readable | undefined;
  if (raw == null) {
    body = undefined;
  } else if (typeof raw === 'string') {
    body = Buffer.from(raw);
    if (!fields.has('content-type')) fields.set('content-type', 'text/plain;charset=UTF-8');
  } else if (raw instanceof URLSearchParams) {
    body = Buffer.from(raw.toString());
    if (!fields.has('content-type')) fields.set('content-type', 'application/x-www-form-urlencoded;charset=UTF-8');
  } else if (Buffer.isBuffer(raw)) {
    body = raw;
  } else if (raw instanceof Uint8Array) {
    body = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  } else if (raw instanceof ArrayBuffer) {
    body = Buffer.from(raw);
  } else if (raw instanceof Readable) {
    body = raw;
  } else if (raw instanceof WebReadableStream) {
    // (node's global ReadableStream is node:stream/web's)
    body = Readable.fromWeb(raw as WebReadableStream<Uint8Array>);
  } else {
    throw invalidArgType('init.body', 'a string, Buffer, Uint8Array, ArrayBuffer, URLSearchParams, Readable or ReadableStream', raw);
  }
  if (Buffer.isBuffer(body) && !fields.has('content-length')) fields.set('content-length', String(body.length));
  const headers: Http3OutgoingHeaders = {};
  fields.forEach((value, name) => {
    if (!CONNECTION_FIELDS.has(name)) headers[name] = value;
  });
  const cookies = fields.getSetCookie?.() ?? [];
  if (cookies.length > 1) headers['set-cookie'] = cookies;
  return { method, headers, body };
}

function toResponse(url: URL, answer: Http3ClientResponse, method: string, redirected: boolean): Response {
  const headers = new Headers();
  for (let i = 0; i + 1 < answer.rawHeaders.length; i += 2) headers.append(answer.rawHeaders[i], answer.rawHeaders[i + 1]);
  let body: ReadableStream<Uint8Array> | null = null;
  if (method === 'HEAD' || NULL_BODY_STATUS.has(answer.status)) {
    answer.body.resume(); // nothing should come; let the stream finish
  } else {
    body = Readable.toWeb(answer.body) as unknown as ReadableStream<Uint8Array>;
  }
  const response = new Response(body, { status: answer.status, statusText: STATUS_CODES[answer.status] ?? '', headers });
  // Response's url and redirected are read-only getters; a fetched Response has them set.
  Object.defineProperty(response, 'url', { value: url.href, enumerable: true });
  Object.defineProperty(response, 'redirected', { value: redirected, enumerable: true });
  return response;
}

/** Waits for the handshake, or rejects when `signal` aborts first. */
function handshakeOrAbort(connection: Connection, signal: AbortSignal | undefined): Promise<unknown> {
  if (!signal) return connection.handshake;
  return new Promise((resolve, reject) => {
    const onAbort = (): void => reject(abortError(signal.reason));
    signal.addEventListener('abort', onAbort, { once: true });
    connection.handshake.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** One request and its answer on a leased connection; the lease ends with the response body. */
async function exchangeOnce(agent: Http3Agent, url: URL, prepared: Prepared, init: Http3FetchInit, signal: AbortSignal | undefined): Promise<{ answer: Http3ClientResponse; release: () => void }> {
  const lease = agent.lease(url);
  const { connection } = lease;
  try {
    const established = connection.alpn !== undefined;
    const early = !established && (SAFE_IN_EARLY_DATA.has(prepared.method) || init.earlyData === true);
    // Not safe to replay: wait for the handshake, so the request goes out as 1-RTT.
    if (!established && !early) await handshakeOrAbort(connection, signal);
    const path = `${url.pathname}${url.search}`;
    const authority = url.host;
    let answer = await request(connection, { method: prepared.method, path, authority, headers: prepared.headers, body: prepared.body, signal });
    if (answer.status === TOO_EARLY && early && !(prepared.body instanceof Readable)) {
      // The server would not act on it as early data: once more, after the handshake (RFC 8470 §5.2).
      answer.body.destroy();
      await handshakeOrAbort(connection, signal);
      answer = await request(connection, { method: prepared.method, path, authority, headers: prepared.headers, body: prepared.body, signal });
    }
    const release = lease.release;
    answer.body.once('close', release);
    return { answer, release };
  } catch (error) {
    lease.release();
    throw error;
  }
}

/**
 * fetch() over HTTP/3 (https: URLs only): resolves with a WHATWG `Response` once the response
 * headers arrive, its body streaming after. Network and protocol failures reject with
 * `TypeError('fetch failed')` whose `cause` is the quicket error, an abort with an AbortError.
 */
export async function fetch(input: string | URL | Request, init: Http3FetchInit = {}): Promise<Response> {
  checkObject('init', init);
  checkOptionalBoolean('init.earlyData', init.earlyData);
  const agent = init.agent ?? getGlobalHttp3Agent();
  if (!(agent instanceof Http3Agent)) throw invalidArgType('init.agent', 'an Http3Agent', agent);
  const redirect = init.redirect ?? 'follow';
  if (!['follow', 'manual', 'error'].includes(redirect)) throw invalidArgValue('init.redirect', `must be 'follow', 'manual' or 'error'. Received '${redirect}'`);
  const { url: first, fromRequest } = parseInput(input);
  const signal = init.signal ?? fromRequest?.signal ?? undefined;
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalidArgType('init.signal', 'an AbortSignal', signal);
  let prepared = prepare(init, fromRequest);
  let url = first;
  for (let redirects = 0; ; redirects++) {
    if (url.protocol !== 'https:') {
      throw Object.assign(new TypeError(`fetch over HTTP/3 needs an https: URL. Received ${url.protocol}`), { code: 'ERR_INVALID_URL_SCHEME' as const });
    }
    if (signal?.aborted) throw abortError(signal.reason);
    let exchanged: { answer: Http3ClientResponse; release: () => void };
    try {
      exchanged = await exchangeOnce(agent, url, prepared, init, signal);
    } catch (error) {
      if ((error as Error).name === 'AbortError') throw error;
      throw fetchFailed(error);
    }
    const { answer } = exchanged;
    const location = answer.headers.location;
    if (!REDIRECT_STATUS.has(answer.status) || redirect === 'manual' || typeof location !== 'string') {
      return toResponse(url, answer, prepared.method, redirects > 0);
    }
    answer.body.destroy();
    if (redirect === 'error') throw fetchFailed(codedError('ERR_QUIC_HTTP3', `redirected (${answer.status}) with redirect: 'error'`));
    if (redirects === MAX_REDIRECTS) throw fetchFailed(codedError('ERR_QUIC_HTTP3', 'too many redirects'));
    if (prepared.body instanceof Readable && answer.status !== 303) {
      throw fetchFailed(codedError('ERR_QUIC_HTTP3', 'cannot follow a redirect with a streamed request body'));
    }
    // As fetch does: 303 (and 301/302 after POST) become a GET without a body.
    if (answer.status === 303 || ((answer.status === 301 || answer.status === 302) && prepared.method === 'POST')) {
      const headers = { ...prepared.headers };
      for (const name of ['content-type', 'content-length', 'content-encoding', 'content-language', 'content-location']) delete headers[name];
      prepared = { method: prepared.method === 'HEAD' ? 'HEAD' : 'GET', headers, body: undefined };
    }
    const next = new URL(location, url);
    if (next.origin !== url.origin) {
      // As fetch does: credentials meant for one origin are not sent to another.
      const headers = { ...prepared.headers };
      for (const name of ['authorization', 'proxy-authorization', 'cookie']) delete headers[name];
      prepared = { ...prepared, headers };
    }
    url = next;
  }
}
