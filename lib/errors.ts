// One place for quicket's errors: every error thrown or emitted carries a Node-style `code`.

/**
 * quicket's own error codes (`error.code`, all `ERR_QUIC_*`), listed at run time; {@link QuicErrorCode}
 * is their union. The Node codes quicket also uses are in {@link nodeErrorCodes}.
 */
export const quicketErrorCodes = [
  'ERR_QUIC_ADDRESS_FAMILY',
  'ERR_QUIC_REUSEPORT_UNSUPPORTED',
  'ERR_QUIC_ALPN_MISMATCH',
  'ERR_QUIC_ALREADY_BOUND',
  'ERR_QUIC_ANTI_REPLAY_STORE',
  'ERR_QUIC_CERT_EXPIRED',
  'ERR_QUIC_CERT_INVALID',
  'ERR_QUIC_CERT_UNTRUSTED',
  'ERR_QUIC_CONNECT',
  'ERR_QUIC_CONNECTION_CLOSED',
  'ERR_QUIC_CONNECTION_CLOSING',
  'ERR_QUIC_CONNECTION_DROPPED',
  'ERR_QUIC_CONNECTION_REFUSED',
  'ERR_QUIC_ENGINE_CLOSED',
  'ERR_QUIC_HANDSHAKE_TIMEOUT',
  'ERR_QUIC_HTTP3',
  'ERR_QUIC_HTTP3_CONNECTION',
  'ERR_QUIC_HTTP3_HEADERS_TOO_LARGE',
  'ERR_QUIC_HTTP3_REQUEST_CANCELLED',
  'ERR_QUIC_HTTP3_RESPONSE_DESTROYED',
  'ERR_QUIC_HTTP3_UNAVAILABLE',
  'ERR_QUIC_INVALID_CERTIFICATE',
  'ERR_QUIC_MIGRATION',
  'ERR_QUIC_MIGRATION_FAILED',
  'ERR_QUIC_NOT_BOUND',
  'ERR_QUIC_NO_CERTIFICATE',
  'ERR_QUIC_NO_SSL_CONFIG',
  'ERR_QUIC_PROTOCOL',
  'ERR_QUIC_STREAM_ABORTED',
  'ERR_QUIC_STREAM_CLOSED',
  'ERR_QUIC_STREAM_OPEN',
  'ERR_QUIC_STREAM_READ_ONLY',
  'ERR_QUIC_STREAM_RESET',
  'ERR_QUIC_STATELESS_RESET',
  'ERR_QUIC_TICKET_MALFORMED',
  'ERR_QUIC_TLS',
  'ERR_QUIC_TLS_ALERT',
  'ERR_QUIC_TLS_HANDSHAKE',
  'ERR_QUIC_TRANSPORT_ERROR',
] as const;

/**
 * The Node.js codes quicket uses for the same failures as Node's own APIs: argument checks
 * (`ERR_INVALID_ARG_TYPE` on a TypeError, `ERR_INVALID_ARG_VALUE` and `ERR_OUT_OF_RANGE` on a
 * RangeError), addresses, certificate names, HTTP and URL errors, and `ABORT_ERR` for an aborted signal.
 */
export const nodeErrorCodes = [
  'ERR_INVALID_ARG_TYPE',
  'ERR_INVALID_ARG_VALUE',
  'ERR_OUT_OF_RANGE',
  'ERR_INVALID_ADDRESS',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'ERR_HTTP_HEADERS_SENT',
  'ERR_HTTP_INVALID_STATUS_CODE',
  'ABORT_ERR',
  'ERR_INVALID_URL',
  'ERR_INVALID_URL_SCHEME',
] as const;

/** quicket's own error codes. */
export type QuicErrorCode = (typeof quicketErrorCodes)[number];
/** The operating system's, by their errno names, as node:net and node:dns report them: 'ECONNREFUSED', 'EADDRINUSE', 'ENOTFOUND'... */
export type SystemErrorCode = `E${string}`;
/** Every `code` a quicket error can carry. */
export type ErrorCode = QuicErrorCode | (typeof nodeErrorCodes)[number] | SystemErrorCode;

/** A connection failed by the operating system, shaped like node:net's errors (`connect ECONNREFUSED 127.0.0.1:4433`). */
export interface SystemError extends CodedError {
  /** libuv's (negative) error number, like node:net's: `-os.constants.errno.ECONNREFUSED`. */
  errno: number;
  /** The socket call that failed: `'connect'` (a client connection refused) or `'bind'` (listen()). */
  syscall: string;
  /** The server's IP address for `'connect'`; for `'bind'`, the one listen() tried to bind. */
  address: string;
  /** The UDP port that goes with `address`. */
  port: number;
}

/** An Error with a Node-style `code`: the shape of every error quicket throws, rejects with or emits. */
export interface CodedError extends Error {
  /** What went wrong, as a stable string to test for (`error.message` is for people). */
  code: ErrorCode;
}

export function codedError(code: ErrorCode, message: string): CodedError {
  return Object.assign(new Error(message), { code });
}

export function invalidArgType(name: string, expected: string, actual: unknown): TypeError & CodedError {
  const shown = actual === null ? 'null' : Array.isArray(actual) ? 'an array' : typeof actual;
  return Object.assign(new TypeError(`The "${name}" argument must be ${expected}. Received ${shown}`), {
    code: 'ERR_INVALID_ARG_TYPE' as const,
  });
}

export function invalidArgValue(name: string, reason: string, code: ErrorCode = 'ERR_INVALID_ARG_VALUE'): RangeError & CodedError {
  return Object.assign(new RangeError(`The "${name}" argument ${reason}`), { code });
}

/** Like Node's AbortError (name 'AbortError', code 'ABORT_ERR'), with the signal's reason as its cause. */
export function abortError(reason: unknown): CodedError {
  return Object.assign(new Error('The operation was aborted', { cause: reason }), { name: 'AbortError', code: 'ABORT_ERR' as const });
}

export function closedError(what: 'connection' | 'engine'): CodedError {
  return codedError(what === 'engine' ? 'ERR_QUIC_ENGINE_CLOSED' : 'ERR_QUIC_CONNECTION_CLOSED', `the ${what} is closed`);
}

// Argument checks shared by the public classes.
export function checkObject(name: string, value: unknown): asserts value is object {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw invalidArgType(name, 'an object', value);
  }
}

export function checkOptionalBoolean(name: string, value: unknown): void {
  if (value !== undefined && typeof value !== 'boolean') throw invalidArgType(name, 'a boolean', value);
}

export function checkOptionalString(name: string, value: unknown): void {
  if (value !== undefined && typeof value !== 'string') throw invalidArgType(name, 'a string', value);
}

/** One of a few string values, e.g. checkOptionalOneOf(name, value, ['auto', 'always', 'never']). */
export function checkOptionalOneOf(name: string, value: unknown, allowed: readonly string[]): void {
  if (value === undefined) return;
  const list = allowed.map((choice) => `'${choice}'`);
  const expected = `${list.slice(0, -1).join(', ')} or ${list[list.length - 1]}`;
  if (typeof value !== 'string') throw invalidArgType(name, expected, value);
  if (!allowed.includes(value)) throw invalidArgValue(name, `must be ${expected}. Received '${value}'`);
}

export function checkOptionalInteger(name: string, value: unknown, min: number, max: number): void {
  if (value === undefined) return;
  if (typeof value !== 'number') throw invalidArgType(name, 'a number', value);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw invalidArgValue(name, `must be an integer >= ${min} and <= ${max}. Received ${value}`, 'ERR_OUT_OF_RANGE');
  }
}

export function checkOptionalBytes(name: string, value: unknown): void {
  if (value !== undefined && typeof value !== 'string' && !Buffer.isBuffer(value)) {
    throw invalidArgType(name, 'a string or Buffer', value);
  }
}
