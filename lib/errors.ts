// One place for quicket's errors: every error thrown or emitted carries a Node-style `code`.

export type QuicErrorCode =
  | 'ERR_INVALID_ARG_TYPE'
  | 'ERR_INVALID_ARG_VALUE'
  | 'ERR_OUT_OF_RANGE'
  | 'ERR_INVALID_ADDRESS'
  | `ERR_QUIC_${string}`
  | `ERR_TLS_${string}`
  | 'ECONNREFUSED';

/** A connection failed by the operating system, shaped like node:net's errors (`connect ECONNREFUSED 127.0.0.1:4433`). */
export interface SystemError extends CodedError {
  /** libuv's (negative) error number, like node:net's: `-os.constants.errno.ECONNREFUSED`. */
  errno: number;
  syscall: string;
  address: string;
  port: number;
}

export interface CodedError extends Error {
  code: string;
}

export function codedError(code: string, message: string): CodedError {
  return Object.assign(new Error(message), { code });
}

export function invalidArgType(name: string, expected: string, actual: unknown): TypeError & CodedError {
  const shown = actual === null ? 'null' : Array.isArray(actual) ? 'an array' : typeof actual;
  return Object.assign(new TypeError(`The "${name}" argument must be ${expected}. Received ${shown}`), {
    code: 'ERR_INVALID_ARG_TYPE',
  });
}

export function invalidArgValue(name: string, reason: string, code = 'ERR_INVALID_ARG_VALUE'): RangeError & CodedError {
  return Object.assign(new RangeError(`The "${name}" argument ${reason}`), { code });
}

/** Like Node's AbortError (name 'AbortError', code 'ABORT_ERR'), with the signal's reason as its cause. */
export function abortError(reason: unknown): CodedError {
  return Object.assign(new Error('The operation was aborted', { cause: reason }), { name: 'AbortError', code: 'ABORT_ERR' });
}

export function closedError(what: string): CodedError {
  return codedError(`ERR_QUIC_${what.toUpperCase()}_CLOSED`, `the ${what} is closed`);
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
