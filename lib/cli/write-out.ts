// -w/--write-out: curl's format language over the facts of one transfer. `%{name}` is one fact,
// `%{json}` all of them as one JSON object, `%%` a percent sign; \n, \r, \t and \\ are escapes.

/** The facts -w can show, named as curl names them (alpn, resumed and early_data are quicket's). */
export interface TransferFacts {
  url_effective: string;
  method: string;
  http_code: number;
  http_version: string;
  scheme: string;
  remote_ip: string;
  remote_port: number;
  local_ip: string;
  local_port: number;
  /** The ALPN protocol negotiated ('' before a handshake completed). */
  alpn: string;
  /** Whether the TLS session was resumed from a ticket. */
  resumed: boolean;
  early_data: 'accepted' | 'rejected' | 'none';
  num_connects: number;
  num_redirects: number;
  content_type: string;
  size_download: number;
  size_header: number;
  size_upload: number;
  /** Seconds from the start: the handshake done (QUIC's connect is its TLS handshake), the first response byte, the end. */
  time_connect: number;
  time_appconnect: number;
  time_starttransfer: number;
  time_redirect: number;
  time_total: number;
  exitcode: number;
  errormsg: string;
}

export function emptyFacts(url: URL, method: string): TransferFacts {
  return {
    url_effective: url.href, method, http_code: 0, http_version: '3', scheme: 'https',
    remote_ip: '', remote_port: 0, local_ip: '', local_port: 0, alpn: '', resumed: false, early_data: 'none',
    num_connects: 0, num_redirects: 0, content_type: '', size_download: 0, size_header: 0, size_upload: 0,
    time_connect: 0, time_appconnect: 0, time_starttransfer: 0, time_redirect: 0, time_total: 0, exitcode: 0, errormsg: '',
  };
}

const ESCAPES: Record<string, string> = { n: '\n', r: '\r', t: '\t', '\\': '\\' };

function show(name: string, value: unknown): string {
  // curl prints times with microseconds.
  if (name.startsWith('time_') && typeof value === 'number') return value.toFixed(6);
  return String(value);
}

/** The text -w prints; `unknown` receives each variable name it does not know (curl warns, prints nothing for it). */
export function formatWriteOut(format: string, facts: TransferFacts, unknown: (name: string) => void): string {
  return format.replace(/%\{([^}]*)\}|%%|\\(.)/gs, (match, name: string | undefined, escaped: string | undefined) => {
    if (match === '%%') return '%';
    if (escaped !== undefined) return ESCAPES[escaped] ?? match;
    if (name === 'json') return JSON.stringify(facts);
    if (name !== undefined && Object.prototype.hasOwnProperty.call(facts, name)) return show(name, facts[name as keyof TransferFacts]);
    unknown(name ?? '');
    return '';
  });
}
