// curl's exit codes, the ones that apply to an HTTP/3 transfer, and the error that carries one.
import { ErrorCode } from '../errors';

/** The numbers curl exits with (`man curl`, EXIT CODES), so scripts written for curl keep working. */
export const ExitCode = {
  FAILED: 1,
  UNSUPPORTED_PROTOCOL: 1,
  USAGE: 2,
  MALFORMED_URL: 3,
  COULD_NOT_RESOLVE_HOST: 6,
  COULD_NOT_CONNECT: 7,
  HTTP_ERROR: 22,
  WRITE_ERROR: 23,
  READ_ERROR: 26,
  TIMEOUT: 28,
  TLS_HANDSHAKE: 35,
  TOO_MANY_REDIRECTS: 47,
  RECEIVE_ERROR: 56,
  CERTIFICATE: 60,
  CA_FILE: 77,
} as const;

/** A failure the command reports as one line, `quicket: (code) message` (or not at all when `quiet`). */
export class CliError extends Error {
  constructor(readonly exitCode: number, message: string, readonly quiet = false) {
    super(message);
  }

  /** The same failure, silenced (-s without -S). */
  silenced(): CliError {
    return new CliError(this.exitCode, this.message, true);
  }
}

export function usageError(message: string): CliError {
  return new CliError(ExitCode.USAGE, message);
}

const RESOLVE_CODES = new Set<ErrorCode>(['ENOTFOUND', 'EAI_AGAIN', 'EAI_NODATA', 'EAI_NONAME', 'EAI_FAIL']);
// ERR_QUIC_HANDSHAKE_TIMEOUT is the engine's own limit (10 s), like a TCP connect the kernel gives
// up on: curl says 7 for that. Our -m and --connect-timeout say 28.
const CONNECT_CODES = new Set<ErrorCode>(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'ERR_QUIC_HANDSHAKE_TIMEOUT', 'ERR_QUIC_CONNECT', 'ERR_QUIC_ADDRESS_FAMILY']);
const CERTIFICATE_CODES = new Set<ErrorCode>(['ERR_QUIC_CERT_UNTRUSTED', 'ERR_QUIC_CERT_EXPIRED', 'ERR_QUIC_CERT_INVALID', 'ERR_TLS_CERT_ALTNAME_INVALID']);
const TLS_CODES = new Set<ErrorCode>(['ERR_QUIC_TLS', 'ERR_QUIC_TLS_ALERT', 'ERR_QUIC_TLS_HANDSHAKE', 'ERR_QUIC_ALPN_MISMATCH', 'ERR_QUIC_HTTP3_UNAVAILABLE']);
const RECEIVE_CODES = new Set<ErrorCode>([
  'ERR_QUIC_CONNECTION_CLOSED', 'ERR_QUIC_CONNECTION_DROPPED', 'ERR_QUIC_STREAM_ABORTED', 'ERR_QUIC_STREAM_CLOSED',
  'ERR_QUIC_STREAM_RESET', 'ERR_QUIC_TRANSPORT_ERROR', 'ERR_QUIC_PROTOCOL', 'ERR_QUIC_HTTP3', 'ERR_QUIC_HTTP3_CONNECTION',
  'ERR_QUIC_HTTP3_HEADERS_TOO_LARGE', 'ERR_QUIC_HTTP3_REQUEST_CANCELLED',
]);

/**
 * What a failed fetch() or response body means as an exit code. fetch() wraps network failures in
 * TypeError('fetch failed', { cause }) and aborts in an AbortError whose cause is the signal's
 * reason (our own timeouts abort with a CliError): the cause decides.
 */
export function transferError(error: unknown, url: URL): CliError {
  let cause = error;
  while (cause instanceof Error && !(cause instanceof CliError) && cause.cause !== undefined &&
         (cause.name === 'AbortError' || cause.message === 'fetch failed')) {
    cause = cause.cause;
  }
  if (cause instanceof CliError) return cause;
  const code = String((cause as { code?: unknown } | null)?.code ?? '') as ErrorCode;
  const message = cause instanceof Error ? cause.message : String(cause);
  const port = url.port || '443';
  if (RESOLVE_CODES.has(code)) return new CliError(ExitCode.COULD_NOT_RESOLVE_HOST, `Could not resolve host: ${url.hostname}`);
  if (CONNECT_CODES.has(code)) return new CliError(ExitCode.COULD_NOT_CONNECT, `Failed to connect to ${url.hostname} port ${port}: ${message}`);
  if (CERTIFICATE_CODES.has(code)) return new CliError(ExitCode.CERTIFICATE, `SSL certificate problem: ${message}`);
  if (TLS_CODES.has(code)) return new CliError(ExitCode.TLS_HANDSHAKE, `TLS handshake with ${url.hostname} port ${port} failed: ${message}`);
  if (RECEIVE_CODES.has(code)) return new CliError(ExitCode.RECEIVE_ERROR, `Failure when receiving data from the peer: ${message}`);
  return new CliError(ExitCode.FAILED, code ? `${message} (${code})` : message);
}
