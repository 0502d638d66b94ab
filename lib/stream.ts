// Stream: one QUIC stream as a node:stream Duplex. Writes go to the native send buffer, which
// keeps them until the peer acknowledges them; reads are credited back to QUIC flow control only
// as the application consumes them, so a slow reader stops the sender.
import { Duplex } from 'node:stream';

import { codedError } from './errors';

/** @internal What a Stream needs from its Connection. */
export interface StreamOwner {
  nativeWrite(id: bigint, chunk: Buffer | undefined, fin: boolean): number;
  nativeShutdown(id: bigint, code: number): void;
  nativeConsume(id: bigint, bytes: number): void;
}

/** Options of {@link Connection.openStream}. */
export interface StreamOptions {
  /** Open a unidirectional stream, which only this side writes (default false: bidirectional). */
  unidirectional?: boolean;
}

const PENDING_ID = -1n;

/**
 * One QUIC stream as a node:stream Duplex. Writes stay in the native send buffer until the peer
 * acknowledges them; `write()` returns false once 1 MiB is not yet sent, or 8 MiB not yet
 * acknowledged. Reads are credited back to QUIC flow control only as the application consumes
 * them, so a reader that stops stops the sender. `end()` sends FIN; {@link Stream.destroy} resets
 * the stream.
 *
 * Events, besides Duplex's (`'data'`, `'end'`, `'finish'`, `'drain'`, `'close'`, `'error'`):
 * - `'aborted'` `()`: the stream was abandoned before both directions completed: the peer reset
 *   it (RESET_STREAM, see {@link Stream.rstCode}) or stopped reading it (STOP_SENDING: later
 *   writes are dropped, the readable side goes on), or the connection closed cleanly under it.
 *   Like node:http2, that is not a local failure: `'close'` follows, without `'error'`.
 *
 * `'error'` means a local failure: `ERR_QUIC_STREAM_ABORTED` (closed with an error code),
 * the connection's error when it failed (`ERR_QUIC_CONNECTION_CLOSED` if it had none),
 * `ERR_QUIC_STREAM_READ_ONLY` (a write to a peer's unidirectional stream), or why a waiting
 * stream could not open.
 */
export class Stream extends Duplex {
  /** True for a peer-opened stream whose data arrived as 0-RTT (it may be a replay). */
  readonly early: boolean;
  /** True for a one-way stream: only the side that opened it writes. */
  readonly unidirectional: boolean;
  /** True if this side opened the stream. */
  readonly local: boolean;
  #id: bigint;
  #owner: StreamOwner;
  #onOpened?: (error?: Error | null) => void;
  #writeCallback?: (error?: Error | null) => void;
  #unconsumed = 0;
  #nativeClosed = false;
  #aborted = false;
  #writeAborted = false;
  #rstCode?: number;
  #openFailure?: Error;

  /** @internal */
  constructor(owner: StreamOwner, id: bigint | null, options: { local: boolean; unidirectional: boolean; early: boolean }) {
    super({ allowHalfOpen: true, emitClose: true });
    this.#owner = owner;
    this.#id = id ?? PENDING_ID;
    this.local = options.local;
    this.unidirectional = options.unidirectional;
    this.early = options.early;
    // A unidirectional stream has only one direction: end the other one right away. The empty
    // readable side of a local one is also consumed (resume), so it reports 'end' by itself:
    // otherwise readableEnded stays false forever, the stream never auto-destroys, and a
    // connection close later treats the finished stream as aborted ('error' nobody expects).
    if (this.unidirectional && this.local) {
      this.push(null);
      this.resume();
    }
    if (this.unidirectional && !this.local) this.end();
  }

  /**
   * True once the stream was abandoned before both directions completed: the peer reset it or
   * stopped reading it, or the connection closed under it (like http2stream.aborted).
   */
  get aborted(): boolean {
    return this.#aborted;
  }

  /** The application error code of the peer's RESET_STREAM or STOP_SENDING, if it sent one (like http2stream.rstCode). */
  get rstCode(): number | undefined {
    return this.#rstCode;
  }

  /** The QUIC stream ID; -1n while the stream waits for the peer to allow another stream. */
  get id(): bigint {
    return this.#id;
  }

  /** @internal */
  override _construct(callback: (error?: Error | null) => void): void {
    if (this.destroyed) {
      callback(); // destroyed before it could open: let node:stream go on with the destroy
    } else if (this.#openFailure) {
      callback(this.#openFailure);
    } else if (this.#id === PENDING_ID) {
      this.#onOpened = callback;
    } else {
      callback();
    }
  }

  /**
   * @internal The stream can never open (the connection closed, or chose a protocol it cannot
   * carry): it is destroyed with `error`, even before node:stream ran _construct.
   */
  failOpen(error: Error): void {
    this.#nativeClosed = true;
    const callback = this.#onOpened;
    this.#onOpened = undefined;
    if (callback) callback(error);
    else this.#openFailure = error;
  }

  /**
   * Destroys the stream. Unless both directions had already completed, the peer is told with
   * RESET_STREAM and STOP_SENDING, carrying `error.quicCode` when it is a number, else 1 with an
   * error and 0 without. A stream still waiting to open is dropped at once.
   */
  override destroy(error?: Error): this {
    super.destroy(error);
    // A stream still waiting to open is still constructing, and node:stream holds a destroy
    // until construction ends: end it, so the destroy (and 'close') happens now.
    const callback = this.#onOpened;
    this.#onOpened = undefined;
    callback?.();
    return this;
  }

  /** @internal The peer allowed the stream: writes buffered so far can flow. */
  opened(id: bigint): void {
    this.#id = id;
    const callback = this.#onOpened;
    this.#onOpened = undefined;
    callback?.();
  }

  /** @internal */
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.unidirectional && !this.local) {
      callback(codedError('ERR_QUIC_STREAM_READ_ONLY', 'cannot write to a stream the peer opened unidirectionally'));
      return;
    }
    if (this.#writeAborted) {
      // The peer stopped reading: what is written now has nowhere to go (see 'aborted').
      callback();
      return;
    }
    try {
      const buffered = this.#owner.nativeWrite(this.#id, chunk, false);
      // Past the native limits (1 MiB unsent or 8 MiB unacknowledged), hold the callback until drained().
      if (buffered > 0) {
        this.#writeCallback = callback;
      } else {
        callback();
      }
    } catch (error) {
      callback(error as Error);
    }
  }

  /** @internal */
  override _final(callback: (error?: Error | null) => void): void {
    if ((this.unidirectional && !this.local) || this.#writeAborted) {
      callback();
      return;
    }
    try {
      this.#owner.nativeWrite(this.#id, undefined, true);
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }

  /** @internal */
  override _read(): void {
    if (this.#unconsumed > 0 && !this.#nativeClosed) {
      const bytes = this.#unconsumed;
      this.#unconsumed = 0;
      this.#owner.nativeConsume(this.#id, bytes);
    }
  }

  /** @internal */
  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // autoDestroy after both directions completed is not an abort: the native side still
    // retransmits until the peer acknowledges everything.
    const completed = this.readableEnded && this.writableFinished;
    if (!this.#nativeClosed && this.#id !== PENDING_ID && (error || !completed)) {
      this.#nativeClosed = true;
      // RESET_STREAM carries error.quicCode when given; a plain Error maps to 1, no error to 0.
      const quicCode = (error as { quicCode?: unknown } | null)?.quicCode;
      const code = typeof quicCode === 'number' ? quicCode : error ? 1 : 0;
      this.#owner.nativeShutdown(this.#id, code);
    }
    // Only a write still waiting for its callback hears why: an Error captures a stack, and
    // making one for every stream that ends costs more than the rest of the teardown.
    if (this.#writeCallback) this.#releaseWriter(error ?? codedError('ERR_QUIC_STREAM_CLOSED', 'the stream is closed'));
    this.#onOpened?.(error);
    this.#onOpened = undefined;
    callback(error);
  }

  /** @internal Data from the peer; returns true when it can be credited back at once. */
  receive(data: Buffer, fin: boolean): boolean {
    if (this.destroyed) return true;
    let flowing = true;
    try {
      if (data.length > 0) flowing = this.push(data);
    } catch (error) {
      // A 'data' listener threw. The chunk did reach the application, so credit it to flow
      // control here (native code does not when this call throws: left uncredited, every such
      // chunk would shrink the peer's window until the stream stalls), and still deliver the
      // FIN; then let the exception go on to become an uncaughtException.
      if (!this.#nativeClosed && this.#id !== PENDING_ID) this.#owner.nativeConsume(this.#id, data.length);
      if (fin) this.push(null);
      throw error;
    }
    if (fin) this.push(null);
    if (!flowing) this.#unconsumed += data.length;
    return flowing;
  }

  /**
   * @internal The peer reset the stream or asked us to stop sending. Like node:http2, that is the
   * peer's decision, not a local failure: 'aborted' and 'close', never 'error'. A stop-sending
   * peer may still be sending: the readable side stays, and writes are dropped.
   */
  reset(code: number, stopSending: boolean): void {
    this.#rstCode ??= code;
    if (stopSending && !this.readableEnded) {
      this.#writeAborted = true;
      this.#abort();
      this.#releaseWriter();
      return;
    }
    this.#nativeClosed = true;
    this.#abort();
    this.destroy();
  }

  /** @internal An Error describing why the stream was aborted, for promises that wrap it (HTTP/3 requests). */
  abortError(): Error {
    const code = this.#rstCode;
    return Object.assign(
      codedError('ERR_QUIC_STREAM_RESET', code === undefined ? 'the stream was aborted' : `the peer reset the stream (code ${code})`),
      { quicCode: code },
    );
  }

  #abort(): void {
    if (this.#aborted || (this.readableEnded && this.writableFinished)) return;
    this.#aborted = true;
    this.emit('aborted');
  }

  /** @internal Both directions are finished natively. */
  nativeClose(code: number): void {
    this.#nativeClosed = true;
    if (this.destroyed) return;
    if (code !== 0 && this.#aborted) {
      this.destroy(); // the end of what 'aborted' announced
    } else if (code !== 0) {
      this.destroy(Object.assign(codedError('ERR_QUIC_STREAM_ABORTED', `stream closed with code ${code}`), { quicCode: code }));
    } else if (!this.readableEnded && !this.local && this.unidirectional) {
      this.push(null);
    }
  }

  /**
   * @internal The connection ended under the stream: with its error when it failed, else
   * cleanly, which aborts an unfinished stream without an 'error'. A stream whose both
   * directions completed is neither.
   */
  connectionClosed(error?: Error): void {
    this.#nativeClosed = true;
    if (this.#id === PENDING_ID) {
      // Never opened: failing the construction destroys the stream with the error.
      this.failOpen(error ?? codedError('ERR_QUIC_CONNECTION_CLOSED', 'the connection closed before the stream could open'));
      return;
    }
    if (this.destroyed || (this.readableEnded && this.writableFinished)) return;
    if (error) {
      this.destroy(error);
    } else {
      this.#abort();
      this.destroy();
    }
  }

  /** @internal */
  drained(): void {
    this.#releaseWriter();
  }

  #releaseWriter(error?: Error): void {
    const callback = this.#writeCallback;
    this.#writeCallback = undefined;
    callback?.(error);
  }
}
