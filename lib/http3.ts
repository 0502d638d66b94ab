// HTTP/3 on quicket, shaped like node:http: Http3Server(handler(req, res)) and request(conn, ...).
// nghttp3 (native) does framing, QPACK, SETTINGS and GOAWAY; bodies travel on quicket Streams,
// so backpressure, 0-RTT and its transparent resend work exactly as for raw streams.
import { EventEmitter } from 'node:events';
import { Readable, Writable } from 'node:stream';

import { Connection, kHeadersEvent, kSubmitRequest, kSubmitResponse } from './connection';
import { AddressInfo, Engine, EngineOptions, ListenOptions } from './engine';
import { checkObject, checkOptionalString, codedError, invalidArgType, invalidArgValue } from './errors';
import { SslConfig } from './ssl-config';
import { Stream } from './stream';

export type Http3Headers = Record<string, string>;

export const H3_ALPN = 'h3';

/** Splits name/value pairs into pseudo-headers and regular headers (names lower-cased). */
function splitHeaders(pairs: string[]): { pseudo: Record<string, string>; headers: Http3Headers } {
  const pseudo: Record<string, string> = {};
  const headers: Http3Headers = {};
  for (let i = 0; i + 1 < pairs.length; i += 2) {
    const name = pairs[i].toLowerCase();
    if (name.startsWith(':')) {
      pseudo[name] = pairs[i + 1];
    } else {
      headers[name] = name in headers ? `${headers[name]}, ${pairs[i + 1]}` : pairs[i + 1];
    }
  }
  return { pseudo, headers };
}

function flattenHeaders(headers: Record<string, string | number | string[]> | undefined, into: string[]): string[] {
  for (const [name, value] of Object.entries(headers ?? {})) {
    const lower = name.toLowerCase();
    if (lower.startsWith(':')) throw invalidArgValue('headers', `must not set pseudo-header ${name}`);
    for (const item of Array.isArray(value) ? value : [value]) into.push(lower, String(item));
  }
  return into;
}

/** The request side of a server exchange: a Readable of the request body. */
export class Http3Request extends Readable {
  readonly method: string;
  readonly path: string;
  readonly authority: string;
  readonly scheme: string;
  /** Regular header fields, names lower-case. */
  readonly headers: Http3Headers;
  /** The request arrived as 0-RTT early data: it may be a replay; refuse non-idempotent work. */
  readonly early: boolean;
  readonly stream: Stream;
  readonly connection: Connection;

  /** @internal */
  constructor(stream: Stream, connection: Connection, pairs: string[]) {
    super();
    const { pseudo, headers } = splitHeaders(pairs);
    this.method = pseudo[':method'] ?? '';
    this.path = pseudo[':path'] ?? '';
    this.authority = pseudo[':authority'] ?? headers.host ?? '';
    this.scheme = pseudo[':scheme'] ?? '';
    this.headers = headers;
    this.early = stream.early;
    this.stream = stream;
    this.connection = connection;
    stream.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) stream.pause();
    });
    stream.on('end', () => this.push(null));
    // Like node:http, a request the client aborts is not a server crash: 'error' only if listened for.
    stream.on('error', (error) => {
      this.aborted = true;
      this.destroy(this.listenerCount('error') > 0 ? error : undefined);
    });
  }

  /** The client reset the request before it completed. */
  aborted = false;

  override _read(): void {
    this.stream.resume();
  }
}

/** The response side of a server exchange: writeHead() then a Writable body. */
export class Http3Response extends Writable {
  statusCode = 200;
  #headersSent = false;
  #stream: Stream;
  #connection: Connection;

  /** @internal */
  constructor(stream: Stream, connection: Connection) {
    super();
    this.#stream = stream;
    this.#connection = connection;
    stream.on('error', (error) => this.destroy(this.listenerCount('error') > 0 ? error : undefined));
  }

  get headersSent(): boolean {
    return this.#headersSent;
  }

  writeHead(status: number, headers?: Record<string, string | number | string[]>): this {
    if (!Number.isInteger(status) || status < 100 || status > 999) {
      throw invalidArgValue('status', `must be an integer from 100 to 999. Received ${status}`, 'ERR_HTTP_INVALID_STATUS_CODE');
    }
    if (this.#headersSent) throw codedError('ERR_HTTP_HEADERS_SENT', 'headers were already sent');
    this.statusCode = status;
    this.#connection[kSubmitResponse](this.#stream, flattenHeaders(headers, [':status', String(status)]));
    this.#headersSent = true;
    return this;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (!this.#headersSent) this.writeHead(this.statusCode);
    this.#stream.write(chunk, callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (!this.#headersSent) this.writeHead(this.statusCode);
    this.#stream.end(callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (error && !this.#stream.destroyed) this.#stream.destroy(error);
    callback(error);
  }
}

export type Http3Handler = (req: Http3Request, res: Http3Response) => void;

export interface Http3ServerOptions extends EngineOptions {
  ssl: SslConfig;
}

/** An HTTP/3 server; like http.Server, with 'request' events or a handler. */
export class Http3Server extends EventEmitter {
  readonly engine: Engine;

  constructor(options: Http3ServerOptions, handler?: Http3Handler) {
    super();
    checkObject('options', options);
    if (!(options.ssl instanceof SslConfig)) throw invalidArgType('options.ssl', 'an SslConfig', options.ssl);
    if (!options.ssl.alpn.includes(H3_ALPN)) throw invalidArgValue('options.ssl', `must offer ALPN '${H3_ALPN}'`);
    if (handler !== undefined && typeof handler !== 'function') throw invalidArgType('handler', 'a function', handler);
    if (handler) this.on('request', handler);
    this.engine = new Engine(options);
    this.engine.on('connection', (connection: Connection) => this.#serve(connection));
  }

  listen(options?: ListenOptions): Promise<AddressInfo> {
    return this.engine.listen(options);
  }

  address(): AddressInfo {
    return this.engine.address();
  }

  /**
   * Closes gracefully: every connection gets GOAWAY and finishes what it was sending (for at
   * most `timeout` ms), then the socket closes.
   */
  async close(timeout = 5000): Promise<void> {
    const graceful = Promise.all([...this.#connections].map((connection) => connection.close()));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([graceful, new Promise((resolve) => (timer = setTimeout(resolve, timeout)))]);
    clearTimeout(timer);
    await this.engine.close();
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
        this.emit('request', new Http3Request(stream, connection, pairs), new Http3Response(stream, connection));
      });
    });
  }
}

export interface Http3RequestOptions {
  method?: string;
  path?: string;
  /** Default: the connection's servername (and port when not 443). */
  authority?: string;
  headers?: Record<string, string | number | string[]>;
  body?: string | Buffer | Readable;
}

export interface Http3ClientResponse {
  status: number;
  headers: Http3Headers;
  body: Readable;
}

/**
 * Sends a request on a connection opened with ALPN 'h3'. Requests made in the same tick as
 * connect({ ticket }) go out as 0-RTT and are re-sent transparently if 0-RTT is rejected.
 */
export function request(connection: Connection, options: Http3RequestOptions = {}): Promise<Http3ClientResponse> {
  if (!(connection instanceof Connection)) throw invalidArgType('connection', 'a Connection', connection);
  checkObject('options', options);
  checkOptionalString('options.method', options.method);
  checkOptionalString('options.path', options.path);
  checkOptionalString('options.authority', options.authority);
  const { body } = options;
  if (body !== undefined && typeof body !== 'string' && !Buffer.isBuffer(body) && !(body instanceof Readable)) {
    throw invalidArgType('options.body', 'a string, Buffer or Readable', body);
  }
  const port = connection.remotePort;
  const authority = options.authority ?? (port && port !== 443 ? `${connection.servername}:${port}` : connection.servername);
  const pairs = [':method', options.method ?? 'GET', ':scheme', 'https', ':authority', authority, ':path', options.path ?? '/'];
  const stream = connection[kSubmitRequest](flattenHeaders(options.headers, pairs));
  return new Promise<Http3ClientResponse>((resolve, reject) => {
    const onError = (error: Error): void => reject(error);
    stream.once('error', onError);
    // Reset by the server (or the connection closed) before the response: no 'error', but a rejection.
    const onClose = (): void => reject(stream.abortError());
    stream.once('close', onClose);
    const onHeaders = (fields: string[]): void => {
      const { pseudo, headers } = splitHeaders(fields);
      const status = Number(pseudo[':status']);
      if (status >= 100 && status < 200) {
        stream.once(kHeadersEvent, onHeaders); // informational: the final response follows
        return;
      }
      stream.off('error', onError);
      stream.off('close', onClose);
      resolve({ status, headers, body: stream });
    };
    stream.once(kHeadersEvent, onHeaders);
    if (body instanceof Readable) {
      body.pipe(stream);
    } else {
      stream.end(body);
    }
  });
}
