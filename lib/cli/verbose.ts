// -v: curl's verbose lines on stderr. `* ` says what happened to the connection, `> ` is what was
// sent, `< ` what was received.
import { Connection } from '../connection';

const EARLY_DATA_WORDS = { accepted: 'accepted', rejected: 'rejected', none: 'not attempted' } as const;

export class Verbose {
  readonly enabled: boolean;
  readonly #write: (text: string) => void;

  constructor(enabled: boolean, write: (text: string) => void = (text) => process.stderr.write(text)) {
    this.enabled = enabled;
    this.#write = write;
  }

  info(line: string): void {
    if (this.enabled) this.#write(`* ${line}\n`);
  }

  /** Once the handshake is done: where the connection went and what TLS made of it. */
  connected(connection: Connection, hostname: string): void {
    if (!this.enabled) return;
    this.info(`Connected to ${hostname} (${connection.remoteAddress}) port ${connection.remotePort}`);
    this.info(`ALPN: ${connection.alpn}`);
    const certificate = connection.getPeerCertificate();
    if (certificate) {
      const oneLine = (name: string): string => name.split('\n').join(', ');
      this.info(`Server certificate: subject: ${oneLine(certificate.subject)}; issuer: ${oneLine(certificate.issuer)}; expire date: ${certificate.validTo}`);
    } else {
      this.info('Server certificate: none');
    }
    this.info(`TLS session resumed: ${connection.resumed ? 'yes' : 'no'}`);
    this.info(`0-RTT: ${EARLY_DATA_WORDS[connection.earlyData]}`);
  }

  request(method: string, url: URL, headers: Array<[string, string]>, bodyLength: number | undefined): void {
    if (!this.enabled) return;
    const lines = [`${method} ${url.pathname}${url.search} HTTP/3`, `Host: ${url.host}`, ...headers.map(([name, value]) => `${name}: ${value}`)];
    if (bodyLength !== undefined) lines.push(`Content-Length: ${bodyLength}`);
    this.#write(`${lines.map((line) => `> ${line}\n`).join('')}>\n`);
  }

  response(status: number, headers: Headers): void {
    if (!this.enabled) return;
    const lines = [`HTTP/3 ${status}`];
    headers.forEach((value, name) => lines.push(`${name}: ${value}`));
    this.#write(`${lines.map((line) => `< ${line}\n`).join('')}<\n`);
  }

  stats(connection: Connection): void {
    if (!this.enabled) return;
    const { rtt, bytesSent, packetsLost } = connection.stats();
    this.info(`stats: rtt ${rtt.smoothed.toFixed(2)} ms, sent ${bytesSent} bytes, lost ${packetsLost} packets`);
  }
}
