// curl's progress meter on stderr: two heading lines, then one line redrawn in place (\r) at most
// four times a second, finished with a newline. Shown by curl's rule: stderr is a terminal, the
// output is not, and not -s.

const HEADING =
  '  % Total    % Received % Xferd  Average Speed   Time    Time     Time  Current\n' +
  '                                 Dload  Upload   Total   Spent    Left  Speed\n';
const REDRAW_MS = 250;
const KB = 1024;
const MB = KB * KB;
const GB = KB * MB;

/** A byte count in five characters, as curl's max5data() writes it. */
export function fiveChars(bytes: number): string {
  const whole = (value: number): number => Math.floor(value);
  if (bytes < 100000) return String(whole(bytes)).padStart(5);
  if (bytes < 10000 * KB) return `${whole(bytes / KB)}k`.padStart(5);
  if (bytes < 100 * MB) return `${whole(bytes / MB)}.${whole((bytes % MB) / (MB / 10))}M`.padStart(5);
  if (bytes < 10000 * MB) return `${whole(bytes / MB)}M`.padStart(5);
  if (bytes < 100 * GB) return `${whole(bytes / GB)}.${whole((bytes % GB) / (GB / 10))}G`.padStart(5);
  return `${whole(bytes / GB)}G`.padStart(5);
}

/** Seconds as curl's time2str() writes them: HH:MM:SS, or --:--:-- when unknown. */
export function clock(seconds: number | undefined): string {
  const s = seconds === undefined || !Number.isFinite(seconds) ? 0 : Math.floor(seconds);
  if (s <= 0) return '--:--:--';
  const hours = Math.floor(s / 3600);
  if (hours > 99) return `${String(Math.floor(hours / 24)).padStart(3)}d ${String(hours % 24).padStart(2, '0')}h`;
  const two = (n: number): string => String(n).padStart(2, '0');
  return `${String(hours).padStart(2)}:${two(Math.floor((s % 3600) / 60))}:${two(s % 60)}`;
}

export class ProgressMeter {
  readonly #write: (text: string) => void;
  readonly #now: () => number;
  #started = 0;
  #timer?: NodeJS.Timeout;
  #downloaded = 0;
  #downloadTotal?: number;
  #uploaded = 0;
  #uploadTotal = 0;
  // For the "Current" column: the bytes and time at the previous redraw.
  #previous = { at: 0, bytes: 0, speed: 0 };

  constructor(write: (text: string) => void = (text) => process.stderr.write(text), now: () => number = () => performance.now()) {
    this.#write = write;
    this.#now = now;
  }

  start(uploadTotal: number): void {
    this.#started = this.#now();
    this.#previous.at = this.#started;
    this.#uploadTotal = uploadTotal;
    this.#write(HEADING);
    this.#draw();
    this.#timer = setInterval(() => this.#draw(), REDRAW_MS);
    this.#timer.unref();
  }

  /** The response arrived: the upload is done, and `total` bytes are coming (when the server said). */
  responded(total: number | undefined): void {
    this.#uploaded = this.#uploadTotal;
    this.#downloadTotal = total;
  }

  received(bytes: number): void {
    this.#downloaded += bytes;
  }

  /** Draws the last state and ends the line (on success and failure alike, as curl does). */
  finish(): void {
    if (!this.#timer) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#draw();
    this.#write('\n');
  }

  #draw(): void {
    const now = this.#now();
    const spent = (now - this.#started) / 1000;
    const sinceLast = (now - this.#previous.at) / 1000;
    // Measured over the last redraw interval; a redraw right after the last (the final one) keeps
    // the speed measured before, or the average when there was none yet.
    if (sinceLast >= REDRAW_MS / 2000) {
      this.#previous = { at: now, bytes: this.#downloaded, speed: (this.#downloaded - this.#previous.bytes) / sinceLast };
    } else if (this.#previous.at === this.#started && spent > 0) {
      this.#previous.speed = this.#downloaded / spent;
    }
    const percent = (part: number, whole: number | undefined): string => String(whole ? Math.floor((part * 100) / whole) : 0).padStart(3);
    const known = this.#downloadTotal !== undefined;
    const total = (this.#downloadTotal ?? 0) + this.#uploadTotal;
    const downloadSpeed = spent > 0 ? this.#downloaded / spent : 0;
    const uploadSpeed = spent > 0 ? this.#uploaded / spent : 0;
    const totalTime = known && downloadSpeed > 0 ? (this.#downloadTotal as number) / downloadSpeed : undefined;
    const left = totalTime !== undefined ? totalTime - spent : undefined;
    this.#write(
      `\r${percent(this.#downloaded + this.#uploaded, known ? total : undefined)} ${fiveChars(total)}  ` +
      `${percent(this.#downloaded, this.#downloadTotal)} ${fiveChars(this.#downloaded)}  ` +
      `${percent(this.#uploaded, this.#uploadTotal)} ${fiveChars(this.#uploaded)}  ` +
      `${fiveChars(downloadSpeed)}  ${fiveChars(uploadSpeed)} ${clock(totalTime)} ${clock(spent)} ${clock(left)} ${fiveChars(this.#previous.speed)}`,
    );
  }
}
