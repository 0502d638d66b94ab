// `quicket serve`: a static HTTP/3 file server that never serves anything outside its directory,
// logging one JSON line per request on stdout.
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';

import { Http3Request, Http3Response, Http3Server } from '../http3';
import { SslConfig } from '../ssl-config';

export interface ServeOptions {
  cert: string;
  key: string;
  host: string;
  port: string;
  earlyData?: boolean;
  ticketKeysFile?: string;
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.json': 'application/json',
  '.js': 'text/javascript',
  '.css': 'text/css',
};

/** Maps a request path to a file inside root, or gives the status to answer with. */
export function resolveStaticPath(root: string, requestPath: string): { file: string } | { status: number } {
  const pathname = requestPath.split('?')[0];
  if (!pathname.startsWith('/')) return { status: 400 };
  let decoded: string;
  try {
    decoded = decodeURIComponent(pathname);
  } catch {
    return { status: 400 };
  }
  if (decoded.includes('\0')) return { status: 400 };
  const file = path.resolve(root, `.${path.posix.normalize(decoded)}`);
  if (file !== root && !file.startsWith(root + path.sep)) return { status: 403 };
  let real: string;
  try {
    real = fs.realpathSync(file);
  } catch {
    return { status: 404 };
  }
  // A symbolic link must not lead outside the served directory either.
  if (real !== root && !real.startsWith(root + path.sep)) return { status: 403 };
  const stat = fs.statSync(real);
  if (stat.isDirectory()) {
    const index = path.join(real, 'index.html');
    return fs.existsSync(index) ? { file: index } : { status: 404 };
  }
  return stat.isFile() ? { file: real } : { status: 404 };
}

/**
 * `serve` logs one JSON line per request on stdout. A reader that goes away (a closed pipe) ends
 * the log, not the server: it keeps serving, silently.
 */
let logOpen = true;
function logLine(value: unknown): void {
  if (logOpen) process.stdout.write(`${JSON.stringify(value)}\n`);
}

export async function serve(directory: string, options: ServeOptions): Promise<void> {
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    logOpen = false;
    if (error.code !== 'EPIPE') process.stderr.write(`quicket: request log: ${error.message}\n`);
  });
  const root = fs.realpathSync(directory);
  const ticketKeys = options.ticketKeysFile ? fs.readFileSync(options.ticketKeysFile) : undefined;
  const ssl = new SslConfig({
    alpn: ['h3'],
    cert: fs.readFileSync(options.cert),
    key: fs.readFileSync(options.key),
    earlyData: Boolean(options.earlyData),
    ticketKeys,
  });
  const server = new Http3Server({ ssl }, (req: Http3Request, res: Http3Response) => {
    handleStatic(root, req, res);
  });
  const address = await server.listen({ host: options.host, port: Number(options.port) });
  logLine({ address: address.address, port: address.port, family: address.family });
  const stop = (): void => {
    server.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

function handleStatic(root: string, req: Http3Request, res: Http3Response): void {
  let bytes = 0;
  const log = (status: number): void => {
    logLine({ method: req.method, path: req.path, status, bytes, early: req.early, resumed: req.connection.resumed });
  };
  const fail = (status: number, extra: Record<string, string> = {}): void => {
    const body = `${status}\n`;
    bytes = body.length;
    res.writeHead(status, { 'content-type': 'text/plain', ...extra });
    res.end(req.method === 'HEAD' ? undefined : body);
    log(status);
  };
  req.resume();
  res.on('error', () => {});
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    fail(405, { allow: 'GET, HEAD' });
    return;
  }
  const found = resolveStaticPath(root, req.path);
  if ('status' in found) {
    fail(found.status);
    return;
  }
  const size = fs.statSync(found.file).size;
  res.writeHead(200, {
    'content-type': CONTENT_TYPES[path.extname(found.file)] ?? 'application/octet-stream',
    'content-length': size,
  });
  if (req.method === 'HEAD') {
    res.end();
    log(200);
    return;
  }
  const file = fs.createReadStream(found.file);
  file.on('data', (chunk) => (bytes += chunk.length));
  pipeline(file, res).then(
    () => log(200),
    () => log(500),
  );
}
