// A streamed response body that hands text to the HTTP server only when it pulls (highWaterMark
// 0): text waits here, not in a stream queue, until it goes to the socket. So `delivered`, the
// tokens whose text was handed on, is what a client that disconnects had been sent, and its
// session can end exactly there. A client that stops reading for `stallMs` (STALL_TIMEOUT_S)
// stalls its generation: it is stopped there, and the unsent text dropped with it.
const encoder = new TextEncoder();

export class TokenTextStream {
  readonly body: ReadableStream<Uint8Array>;
  /** tokens whose text has been handed to the server */
  delivered = 0;
  #pending: string[] = [];
  #pendingDelivered = 0;
  #ended = false;
  #error: Error | null = null;
  #wake: (() => void) | null = null;
  #stallTimer: ReturnType<typeof setTimeout> | null = null;
  /** the response started (a request still queued has no reader to wait for) */
  #begun = false;
  readonly #stallMs: number;
  readonly #onStop: (delivered: number) => void;
  readonly #onDone: () => void;

  /**
   * `onStop(delivered)`: the client went away, or stopped reading for `stallMs` (0: never);
   * `onDone()`: the body ended with everything handed on (or failed)
   */
  constructor(onStop: (delivered: number) => void, stallMs = 0, onDone: () => void = () => {}) {
    this.#onStop = onStop;
    this.#onDone = onDone;
    this.#stallMs = stallMs;
    this.body = new ReadableStream<Uint8Array>(
      {
        pull: (c) => this.#pull(c),
        cancel: () => {
          const lost = !this.#ended || this.#pending.length > 0; // all handed on: nothing to take back
          this.#ended = true;
          this.#clearStall();
          if (lost) onStop(this.delivered);
          else this.#onDone();
        },
      },
      { highWaterMark: 0 },
    );
  }

  /** The response starts: from now on a reader that does not pull stalls the generation. */
  begin(): void {
    this.#begun = true;
    if (this.#pending.length > 0) this.#armStall();
  }

  #armStall(): void {
    if (this.#stallMs > 0 && this.#begun && !this.#stallTimer && !this.#ended) this.#stallTimer = setTimeout(() => this.#stall(), this.#stallMs);
  }

  /** Text to send; once it is, `delivered` becomes `deliveredAfter`. */
  push(text: string, deliveredAfter: number): void {
    if (this.#ended) return;
    this.#pending.push(text);
    this.#pendingDelivered = deliveredAfter;
    if (this.#wake) this.#wake();
    else this.#armStall();
  }

  /** Nobody pulled for stallMs: the generation stops at what was sent; unsent text is dropped. */
  #stall(): void {
    this.#stallTimer = null;
    if (this.#ended) return;
    this.#pending = [];
    this.#ended = true;
    this.#wake?.();
    this.#onStop(this.delivered);
  }

  #clearStall(): void {
    if (this.#stallTimer) clearTimeout(this.#stallTimer);
    this.#stallTimer = null;
  }

  end(): void {
    this.#ended = true;
    this.#wake?.();
    this.#clearStall(); // the generation is over: a slow reader may take its time (IDLE_TIMEOUT_S bounds it)
  }

  fail(err: Error): void {
    this.#error = err;
    this.end();
  }

  async #pull(c: ReadableStreamDefaultController<Uint8Array>): Promise<void> {
    while (this.#pending.length === 0 && !this.#ended) await new Promise<void>((r) => (this.#wake = r));
    this.#wake = null;
    this.#clearStall();
    if (this.#pending.length > 0) {
      c.enqueue(encoder.encode(this.#pending.join("")));
      this.#pending = [];
      this.delivered = this.#pendingDelivered;
    } else {
      if (this.#error) c.error(this.#error);
      else c.close();
      this.#onDone();
    }
  }
}
