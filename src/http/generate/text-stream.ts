// A streamed response body that hands text to the HTTP server only when it pulls (highWaterMark
// 0): text waits here, not in a stream queue, until it goes to the socket. So `delivered`, the
// tokens whose text was handed on, is what a client that disconnects had been sent, and its
// session can end exactly there.
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

  /** `onCancel(delivered)`: the client went away */
  constructor(onCancel: (delivered: number) => void) {
    this.body = new ReadableStream<Uint8Array>(
      {
        pull: (c) => this.#pull(c),
        cancel: () => {
          this.#ended = true;
          onCancel(this.delivered);
        },
      },
      { highWaterMark: 0 },
    );
  }

  /** Text to send; once it is, `delivered` becomes `deliveredAfter`. */
  push(text: string, deliveredAfter: number): void {
    if (this.#ended) return;
    this.#pending.push(text);
    this.#pendingDelivered = deliveredAfter;
    this.#wake?.();
  }

  end(): void {
    this.#ended = true;
    this.#wake?.();
  }

  fail(err: Error): void {
    this.#error = err;
    this.end();
  }

  async #pull(c: ReadableStreamDefaultController<Uint8Array>): Promise<void> {
    while (this.#pending.length === 0 && !this.#ended) await new Promise<void>((r) => (this.#wake = r));
    this.#wake = null;
    if (this.#pending.length > 0) {
      c.enqueue(encoder.encode(this.#pending.join("")));
      this.#pending = [];
      this.delivered = this.#pendingDelivered;
    } else if (this.#error) c.error(this.#error);
    else c.close();
  }
}
