// HTTP/3 on quicket, shaped like node:http: Http3Server(handler(req, res)) and request(conn, ...).
// nghttp3 (native) does framing, QPACK, SETTINGS and GOAWAY; bodies travel on quicket Streams,
// so backpressure, 0-RTT and its transparent resend work exactly as for raw streams.
import { EventEmitter } from 'node:events';
import { Readable, Writable } from 'node:stream';

import { Connection, kHeadersEvent, kSubmitRequest, kSubmitResponse } from './connection';
import { AddressInfo, Engine, EngineOptions, ListenOptions } from './engine';
import {
  abortError,
  checkObject,
  checkOptionalInteger,
  checkOptionalString,
  codedError,
  CodedError,
  invalidArgType,
  invalidArgValue,
} from './errors';
import { SslConfig } from './ssl-config';
import { Stream } from './stream';

/** Received header fields, as in http.IncomingMessage#headers. */
export interface Http3Headers extends NodeJS.Dict<string | string[]> {
  /** Always an array: every Set-Cookie field received, in order. */
  'set-cookie'?: string[];
}

/** Header fields to send; an array value sends one field per item. */
export type Http3OutgoingHeaders = Record<string, string | number | string[]>;

export const H3_ALPN = 'h3';

// RFC 9114 §8.1 error codes used on streams.
const H3_INTERNAL_ERROR = 0x102;
const H3_EXCESSIVE_LOAD = 0x107;
const H3_REQUEST_CANCELLED = 0x10c;

/** Default cap on a header section, in RFC 9114 §4.2.2 bytes (16 KiB, node:http's maxHeaderSize). */
const DEFAULT_MAX_HEADER_SIZE = 16 * 1024;
/** Default cap on the fields of a header section, pseudo-headers included (node:http2's maxHeaderListPairs). */
const DEFAULT_MAX_HEADERS_COUNT = 128;

/**
 * Limits on a received header section, on both sides: {@link Http3Server} answers a larger request
 * header section with 431, {@link request} rejects a larger response one with
 * `ERR_QUIC_HTTP3_HEADERS_TOO_LARGE`.
 */
export interface Http3HeaderLimits {
  /**
   * Largest header section accepted, counted as RFC 9114 §4.2.2 does: each field's name and value
   * in bytes plus 32. Default 16384 (16 KiB, like node:http's `maxHeaderSize`).
   */
  maxHeaderSize?: number;
  /** Most fields in a header section, pseudo-headers included. Default 128 (node:http2's `maxHeaderListPairs`). */
  maxHeadersCount?: number;
}

function headerLimits(name: string, options: Http3HeaderLimits): Required<Http3HeaderLimits> {
  checkOptionalInteger(`${name}.maxHeaderSize`, options.maxHeaderSize, 1, 0x7fffffff);
  checkOptionalInteger(`${name}.maxHeadersCount`, options.maxHeadersCount, 1, 0x7fffffff);
  return {
    maxHeaderSize: options.maxHeaderSize ?? DEFAULT_MAX_HEADER_SIZE,
    maxHeadersCount: options.maxHeadersCount ?? DEFAULT_MAX_HEADERS_COUNT,
  };
}

function exceedsLimits(pairs: string[], limits: Required<Http3HeaderLimits>): boolean {
  if (pairs.length / 2 > limits.maxHeadersCount) return true;
  let size = 0;
  for (let i = 0; i + 1 < pairs.length; i += 2) {
    size += Buffer.byteLength(pairs[i]) + Buffer.byteLength(pairs[i + 1]) + 32;
    if (size > limits.maxHeaderSize) return true;
  }
  return false;
}

// node:http keeps the first of these when they repeat (see the docs of message.headers).
const SINGLE_VALUED = new Set([
  'age', 'authorization', 'content-length', 'content-type', 'etag', 'expires', 'from', 'host',
  'if-modified-since', 'if-unmodified-since', 'last-modified', 'location', 'max-forwards',
  'proxy-authorization', 'referer', 'retry-after', 'server', 'user-agent',
]);

interface ParsedFields {
  pseudo: Record<string, string>;
  headers: Http3Headers;
  rawHeaders: string[];
}

/**
 * Splits name/value pairs into pseudo-headers and regular headers the way http.IncomingMessage
 * combines repeats: set-cookie becomes an array, cookie joins with '; ', the single-valued
 * fields keep their first value, the rest join with ', '. rawHeaders keeps the regular fields in
 * wire order.
 */
function parseFields(pairs: string[]): ParsedFields {
  const pseudo: Record<string, string> = {};
  // No prototype: a field named 'constructor' or '__proto__' is just a field.
  const headers: Http3Headers = Object.create(null);
  const rawHeaders: string[] = [];
  for (let i = 0; i + 1 < pairs.length; i += 2) {
    const name = pairs[i].toLowerCase();
    const value = pairs[i + 1];
    if (name.startsWith(':')) {
      pseudo[name] = value;
      continue;
    }
    rawHeaders.push(name, value);
    const previous = headers[name];
    if (name === 'set-cookie') {
      if (previous) (previous as string[]).push(value);
      else headers['set-cookie'] = [value];
    } else if (previous === undefined) {
      headers[name] = value;
    } else if (!SINGLE_VALUED.has(name)) {
      headers[name] = `${previous}${name === 'cookie' ? '; ' : ', '}${value}`;
    }
  }
  return { pseudo, headers, rawHeaders };
}

function flattenHeaders(headers: Http3OutgoingHeaders | undefined, into: string[]): string[] {
  for (const [name, value] of Object.entries(headers ?? {})) {
    const lower = name.toLowerCase();
    if (lower.startsWith(':')) throw invalidArgValue('headers', `must not set pseudo-header ${name}`);
    for (const item of Array.isArray(value) ? value : [value]) into.push(lower, String(item));
  }
  return into;
}

/** True for the errors of submitting on a stream or connection that is already gone. */
function isClosedError(error: unknown): boolean {
  const code = (error as CodedError | null)?.code;
  return code === 'ERR_QUIC_STREAM_CLOSED' || code === 'ERR_QUIC_CONNECTION_CLOSED';
}

/**
 * A body arriving on a stream, as a Readable. Like http.IncomingMessage, a stream the peer resets
 * sets `aborted` and emits 'error' only when someone listens for it (for await, pipeline and
 * 'error' listeners all see it); nobody else is told, and nothing crashes.
 */
class IncomingBody extends Readable {
  /** The peer reset the stream (or the connection ended) before the body was complete. */
  aborted = false;
  /** @internal The QUIC stream the body arrives on. */
  protected readonly source: Stream;

  constructor(stream: Stream) {
    super();
    this.source = stream;
    stream.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) stream.pause();
    });
    stream.on('end', () => this.push(null));
    stream.on('error', (error) => this.abort(error));
    // A peer's reset ends the stream without an 'error' (like node:http2): the body is aborted.
    stream.on('close', () => {
      if (!stream.readableEnded) this.abort(stream.abortError());
    });
  }

  /** @internal Ends the body with `error`, emitted only when listened for. */
  abort(error: Error): void {
    if (this.destroyed) return;
    this.aborted = true;
    this.destroy(this.listenerCount('error') > 0 ? error : undefined);
  }

  /** @internal */
  override _read(): void {
    this.source.resume();
  }
}

/**
 * The request side of a server exchange, like http.IncomingMessage: the request's pseudo-headers
 * and header fields, and a Readable of its body. A client's reset ends the body and sets
 * `aborted`; `'error'` is emitted only when someone listens for it (`for await` and pipeline() do).
 */
export class Http3Request extends IncomingBody {
  /** The `:method` pseudo-header, e.g. `'GET'` ('' if missing). */
  readonly method: string;
  /** The `:path` pseudo-header: path and query, e.g. `'/search?q=1'` ('' if missing). */
  readonly path: string;
  /** The `:authority` pseudo-header, else the Host field, else ''. */
  readonly authority: string;
  /** The `:scheme` pseudo-header, normally `'https'` ('' if missing). */
  readonly scheme: string;
  /** Regular header fields, names lower-case, repeats combined as http.IncomingMessage does. */
  readonly headers: Http3Headers;
  /** The regular header fields as received: [name, value, name, value, ...], in wire order. */
  readonly rawHeaders: string[];
  /** The request arrived as 0-RTT early data: it may be a replay; refuse non-idempotent work. */
  readonly early: boolean;
  /** The QUIC stream that carries the request and its response (read the body from the request, not from it). */
  readonly stream: Stream;
  /** The connection the request arrived on (for `resumed`, `remoteAddress`, ...). */
  readonly connection: Connection;

  /** @internal */
  constructor(stream: Stream, connection: Connection, fields: ParsedFields) {
    super(stream);
    const { pseudo, headers, rawHeaders } = fields;
    this.method = pseudo[':method'] ?? '';
    this.path = pseudo[':path'] ?? '';
    this.authority = pseudo[':authority'] ?? (headers.host as string | undefined) ?? '';
    this.scheme = pseudo[':scheme'] ?? '';
    this.headers = headers;
    this.rawHeaders = rawHeaders;
    this.early = stream.early;
    this.stream = stream;
    this.connection = connection;
  }
}

/**
 * The response side of a server exchange: writeHead() then a Writable body. As in node:http, a
 * response to HEAD, or with status 204 or 304, carries no body: what is written is dropped. A
 * client that went away makes writeHead(), write() and end() no-ops, not exceptions.
 *
 * destroy() before the response is complete resets the stream, with the error's `quicCode` if it
 * has one, else H3_INTERNAL_ERROR for an error and H3_REQUEST_CANCELLED without one (like
 * http.ServerResponse#destroy(), the client learns that the response will not come). Like the
 * request, the response emits `'error'` only when someone listens for it.
 */
export class Http3Response extends Writable {
  /** The status that write() or end() send when writeHead() was not called (default 200); writeHead() sets it. */
  statusCode = 200;
  #headersSent = false;
  #stream: Stream;
  #connection: Connection;
  #method: string;

  /** @internal */
  constructor(stream: Stream, connection: Connection, method: string) {
    super();
    this.#stream = stream;
    this.#connection = connection;
    this.#method = method;
    stream.on('error', (error) => this.#abort(error));
    // A client's reset closes the stream without an 'error' (like node:http2): the response ends.
    stream.on('close', () => {
      if (!this.writableFinished) this.#abort(stream.aborted ? stream.abortError() : undefined);
    });
  }

  /** True once writeHead() ran, called by the application or by the first write() or end(). */
  get headersSent(): boolean {
    return this.#headersSent;
  }

  /**
   * Sends the status (100 to 999) and the header fields; names are sent lower-case. Throws
   * `ERR_HTTP_INVALID_STATUS_CODE` for a status out of range, `ERR_HTTP_HEADERS_SENT` when the
   * headers were already sent, and `ERR_INVALID_ARG_VALUE` for a pseudo-header (`:name`).
   */
  writeHead(status: number, headers?: Http3OutgoingHeaders): this {
    if (!Number.isInteger(status) || status < 100 || status > 999) {
      throw invalidArgValue('status', `must be an integer from 100 to 999. Received ${status}`, 'ERR_HTTP_INVALID_STATUS_CODE');
    }
    if (this.#headersSent) throw codedError('ERR_HTTP_HEADERS_SENT', 'headers were already sent');
    const fields = flattenHeaders(headers, [':status', String(status)]);
    this.statusCode = status;
    this.#headersSent = true;
    if (this.#stream.destroyed) {
      this.destroy();
      return this;
    }
    try {
      this.#connection[kSubmitResponse](this.#stream, fields);
    } catch (error) {
      if (!isClosedError(error)) throw error;
      this.destroy();
    }
    return this;
  }

  #bodyAllowed(): boolean {
    return this.#method !== 'HEAD' && this.statusCode !== 204 && this.statusCode !== 304;
  }

  /** The stream is gone: errors reach this response once, through the stream's 'error' listener. */
  #abort(error?: Error): void {
    if (!this.destroyed) this.destroy(error && this.listenerCount('error') > 0 ? error : undefined);
  }

  /** @internal */
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (!this.#headersSent) this.writeHead(this.statusCode);
    if (this.#stream.destroyed) {
      this.#abort();
      callback();
    } else if (!this.#bodyAllowed()) {
      callback();
    } else {
      this.#stream.write(chunk, (error) => callback(this.#stream.destroyed ? null : error));
    }
  }

  /** @internal */
  override _final(callback: (error?: Error | null) => void): void {
    if (!this.#headersSent) this.writeHead(this.statusCode);
    if (this.#stream.destroyed) {
      this.#abort();
      callback();
      return;
    }
    this.#stream.end((error?: Error | null) => callback(this.#stream.destroyed ? null : error));
  }

  /**
   * @internal Destroyed before the response was complete: the stream is reset, with the error's quicCode,
   * else H3_INTERNAL_ERROR for an error and H3_REQUEST_CANCELLED without one (like
   * http.ServerResponse#destroy(), the client learns the response will not come).
   */
  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.#stream.destroyed && !this.writableFinished) this.#stream.destroy(resetWith(error, error ? H3_INTERNAL_ERROR : H3_REQUEST_CANCELLED));
    // Like node:http's res.destroy(err), the error ends the exchange; it is emitted only when
    // listened for, never as an uncaught exception that takes the server down.
    callback(error && this.listenerCount('error') > 0 ? error : null);
  }
}

/** `error` as the stream's reset reason, with `code` unless it carries its own quicCode. */
function resetWith(error: Error | null, code: number): Error {
  if (error && (error as { quicCode?: unknown }).quicCode !== undefined) return error;
  const message = error ? `response destroyed: ${error.message}` : 'response destroyed';
  return Object.assign(new Error(message, error ? { cause: error } : undefined), { code: 'ERR_QUIC_HTTP3_RESPONSE_DESTROYED', quicCode: code });
}

/** A 'request' listener of {@link Http3Server}, as in http.createServer(). */
export type Http3Handler = (req: Http3Request, res: Http3Response) => void;

/** Options of `new Http3Server()`: its engine's, and the request header limits. */
export interface Http3ServerOptions extends EngineOptions, Http3HeaderLimits {
  /** The server's certificate, key and policy (required); its ALPN list must include `'h3'`. */
  ssl: SslConfig;
}

/**
 * An HTTP/3 server; like http.Server, with 'request' events or a handler. A request whose header
 * section exceeds `maxHeaderSize` or `maxHeadersCount` is answered 431 without reaching them.
 *
 * Events:
 * - `'request'` `(req: Http3Request, res: Http3Response)`: a request's header section arrived;
 *   its body follows on `req`.
 * - `'connection'` `(connection: Connection)`: a client opened a connection, before its handshake completes.
 */
export class Http3Server extends EventEmitter {
  /** The engine the server listens with (for ticket keys, ref()/unref(), 'keylog'...). */
  readonly engine: Engine;
  readonly #limits: Required<Http3HeaderLimits>;

  /**
   * Makes the server and its engine; `handler`, if given, is added as a 'request' listener. Throws
   * `ERR_INVALID_ARG_TYPE` when `ssl` is not an SslConfig or `handler` not a function,
   * `ERR_INVALID_ARG_VALUE` when `ssl` does not offer ALPN `'h3'`, and what `new Engine()` throws.
   */
  constructor(options: Http3ServerOptions, handler?: Http3Handler) {
    super();
    checkObject('options', options);
    if (!(options.ssl instanceof SslConfig)) throw invalidArgType('options.ssl', 'an SslConfig', options.ssl);
    if (!options.ssl.alpn.includes(H3_ALPN)) throw invalidArgValue('options.ssl', `must offer ALPN '${H3_ALPN}'`);
    if (handler !== undefined && typeof handler !== 'function') throw invalidArgType('handler', 'a function', handler);
    this.#limits = headerLimits('options', options);
    if (handler) this.on('request', handler);
    this.engine = new Engine(options);
    this.engine.on('connection', (connection: Connection) => this.#serve(connection));
  }

  /** Binds and accepts connections: {@link Engine.listen} on the server's engine. */
  listen(options?: ListenOptions): Promise<AddressInfo> {
    return this.engine.listen(options);
  }

  /** The bound address: {@link Engine.address} of the server's engine. */
  address(): AddressInfo {
    return this.engine.address();
  }

  /**
   * Closes gracefully: every connection gets GOAWAY and finishes what it was sending (for at
   * most `timeout` ms, default 5000), then the engine closes, and with it what is left.
   */
  async close(timeout = 5000): Promise<void> {
    const graceful = Promise.all([...this.#connections].map((connection) => connection.close()));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([graceful, new Promise((resolve) => (timer = setTimeout(resolve, timeout)))]);
    clearTimeout(timer);
    await this.engine.close();
  }

  /** `await using server = new Http3Server(...)` closes it gracefully at the end of the scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #connections = new Set<Connection>();

  #serve(connection: Connection): void {
    this.#connections.add(connection);
    connection.once('close', () => this.#connections.delete(connection));
    this.emit('connection', connection);
    connection.on('stream', (stream: Stream) => {
      // Malformed or aborted requests die here without a handler ever seeing them.
      stream.on('error', () => {});
      stream.once(kHeadersEvent, (pairs: string[]) => {
        if (exceedsLimits(pairs, this.#limits)) {
          refuseHeaders(stream, connection);
          return;
        }
        const fields = parseFields(pairs);
        const req = new Http3Request(stream, connection, fields);
        this.emit('request', req, new Http3Response(stream, connection, req.method));
      });
    });
  }
}

/** 431 Request Header Fields Too Large; the request body is read and dropped. */
function refuseHeaders(stream: Stream, connection: Connection): void {
  stream.resume();
  try {
    connection[kSubmitResponse](stream, [':status', '431']);
  } catch (error) {
    if (!isClosedError(error)) throw error;
  }
  stream.end();
}

/** Options of {@link request}, and the limits on the response's header section. */
export interface Http3RequestOptions extends Http3HeaderLimits {
  /** The request method (default 'GET'). */
  method?: string;
  /** The path and query to request (default '/'). */
  path?: string;
  /** Default: the connection's servername (and port when not 443). */
  authority?: string;
  /** Header fields to send (not pseudo-headers: those come from the options above). */
  headers?: Http3OutgoingHeaders;
  /** A Readable that fails makes the request reject with its error; the Readable of a failed request is destroyed. */
  body?: string | Buffer | Readable;
  /**
   * Aborting it rejects the request (or, once the response arrived, fails its body) with an
   * AbortError and resets the stream with H3_REQUEST_CANCELLED.
   */
  signal?: AbortSignal;
}

/** What {@link request} resolves with once the response's header section arrives. */
export interface Http3ClientResponse {
  /** The response status (informational 1xx responses are skipped). */
  status: number;
  /** Regular header fields, names lower-case, repeats combined as http.IncomingMessage does. */
  headers: Http3Headers;
  /** The regular header fields as received: [name, value, name, value, ...], in wire order. */
  rawHeaders: string[];
  /** Destroying it before its end cancels the request (H3_REQUEST_CANCELLED). */
  body: Readable;
}

/** The body of a response: giving up on it cancels the request. */
class ResponseBody extends IncomingBody {
  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.source.destroyed && !this.source.readableEnded) {
      this.source.destroy(cancelled(error ?? codedError('ERR_QUIC_HTTP3_REQUEST_CANCELLED', 'the response body was destroyed')));
    }
    callback(error);
  }
}

/** The error a stream is reset with when this side gives up on a request. */
function cancelled(cause: Error): Error {
  if ((cause as { quicCode?: unknown }).quicCode !== undefined) return cause;
  return Object.assign(new Error(`request cancelled: ${cause.message}`, { cause }), {
    code: 'ERR_QUIC_HTTP3_REQUEST_CANCELLED',
    quicCode: H3_REQUEST_CANCELLED,
  });
}

/**
 * Sends a request on a connection opened with ALPN 'h3'. Requests made in the same tick as
 * connect({ ticket }) go out as 0-RTT and are re-sent transparently if 0-RTT is rejected.
 *
 * The promise rejects with the stream's error (reset, connection closed), the body's error, an
 * AbortError, or ERR_QUIC_HTTP3_HEADERS_TOO_LARGE for a response header section beyond
 * `maxHeaderSize` / `maxHeadersCount` (the stream is then reset with H3_EXCESSIVE_LOAD). If the
 * connection fails its handshake, that failure is reported by `connection.handshake` and the
 * connection's events: the request's rejection then never counts as unhandled.
 *
 * Throws `ERR_INVALID_ARG_TYPE` / `ERR_OUT_OF_RANGE` for bad arguments, `ERR_QUIC_CONNECTION_CLOSED`
 * or `ERR_QUIC_CONNECTION_CLOSING` when the connection takes no new streams; rejects with
 * `ERR_QUIC_HTTP3_UNAVAILABLE` on a connection that did not negotiate `h3`.
 */
export function request(connection: Connection, options: Http3RequestOptions = {}): Promise<Http3ClientResponse> {
  if (!(connection instanceof Connection)) throw invalidArgType('connection', 'a Connection', connection);
  checkObject('options', options);
  checkOptionalString('options.method', options.method);
  checkOptionalString('options.path', options.path);
  checkOptionalString('options.authority', options.authority);
  const { body, signal } = options;
  if (body !== undefined && typeof body !== 'string' && !Buffer.isBuffer(body) && !(body instanceof Readable)) {
    throw invalidArgType('options.body', 'a string, Buffer or Readable', body);
  }
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalidArgType('options.signal', 'an AbortSignal', signal);
  const limits = headerLimits('options', options);
  if (signal?.aborted) return Promise.reject(abortError(signal.reason));
  const port = connection.remotePort;
  const authority = options.authority ?? (port && port !== 443 ? `${connection.servername}:${port}` : connection.servername);
  const pairs = [':method', options.method ?? 'GET', ':scheme', 'https', ':authority', authority, ':path', options.path ?? '/'];
  const stream = connection[kSubmitRequest](flattenHeaders(options.headers, pairs));
  return exchange(connection, stream, body, signal, limits);
}

/**
 * Routes everything that can happen to a request's stream into the promise, or once it resolved,
 * into the response body: the stream itself is never seen by the application, so it never emits
 * an unhandled 'error'.
 */
function exchange(
  connection: Connection,
  stream: Stream,
  body: string | Buffer | Readable | undefined,
  signal: AbortSignal | undefined,
  limits: Required<Http3HeaderLimits>,
): Promise<Http3ClientResponse> {
  let resolve!: (response: Http3ClientResponse) => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<Http3ClientResponse>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  let established = false;
  connection.handshake.then(() => (established = true), () => {});
  let response: ResponseBody | undefined;
  let failed = false;

  // `reset`: the error to reset the stream with, when this side is the one giving up.
  const fail = (error: Error, reset?: Error): void => {
    if (failed) return;
    failed = true;
    if (response) {
      response.abort(error);
    } else {
      if (!established && connection.closed) promise.catch(() => {});
      reject(error);
    }
    if (reset && !stream.destroyed) stream.destroy(reset);
    if (body instanceof Readable && !body.readableEnded) body.destroy();
  };
  stream.on('error', (error) => fail(error));
  stream.once('close', () => {
    signal?.removeEventListener('abort', onAbort);
    if (!response) fail(stream.aborted ? stream.abortError() : codedError('ERR_QUIC_STREAM_CLOSED', 'the stream closed before a response arrived'));
  });
  const onAbort = (): void => {
    const error = Object.assign(abortError(signal?.reason), { quicCode: H3_REQUEST_CANCELLED });
    fail(error, error);
  };
  signal?.addEventListener('abort', onAbort, { once: true });

  const onHeaders = (fields: string[]): void => {
    if (exceedsLimits(fields, limits)) {
      const error = Object.assign(
        codedError('ERR_QUIC_HTTP3_HEADERS_TOO_LARGE', `the response header section exceeds maxHeaderSize (${limits.maxHeaderSize}) or maxHeadersCount (${limits.maxHeadersCount})`),
        { quicCode: H3_EXCESSIVE_LOAD },
      );
      fail(error, error);
      return;
    }
    const { pseudo, headers, rawHeaders } = parseFields(fields);
    const status = Number(pseudo[':status']);
    if (status >= 100 && status < 200) {
      stream.once(kHeadersEvent, onHeaders); // informational: the final response follows
      return;
    }
    response = new ResponseBody(stream);
    resolve({ status, headers, rawHeaders, body: response });
  };
  stream.once(kHeadersEvent, onHeaders);

  if (body instanceof Readable) {
    body.once('error', (error) => fail(error, cancelled(error)));
    body.pipe(stream);
  } else {
    stream.end(body);
  }
  return promise;
}
