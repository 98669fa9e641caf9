// The engine's side of constrained decoding: one grammar worker per compiled constraint (so a slow
// compile stalls nobody else), cached by the constraint's text, at most GRAMMAR_WORKERS of them;
// and each sequence's Constraint: a matcher in that worker whose next allowed-token mask the
// worker writes while the engine decodes. The engine only waits when a mask is not there yet.
import { maskWords } from "../sampling/token-mask.ts";
import { FLAG_COMPLETE, FLAG_REJECTED, MASK_HEADER_WORDS, specKey, type ConstraintSpec, type FromGrammar, type ToGrammar, type Vocabulary } from "./messages.ts";

export class ConstraintError extends Error {
  override name = "ConstraintError";
  constructor(message: string, readonly status = 400) {
    super(message);
  }
}

export interface PoolOptions {
  /** most grammar workers alive at once (each holds one compiled constraint and its matchers) */
  workers: number;
  compileTimeoutMs: number;
  /** the worker script (the compiled binary names its embedded entry) */
  workerUrl?: string;
}

class Host {
  readonly worker: Worker;
  readonly ready: Promise<void>;
  open = 0;
  failed = false;
  /** compiled (or failed): until then it is busy even with no matcher open */
  settled = false;

  constructor(url: string, vocab: Vocabulary, spec: ConstraintSpec, timeoutMs: number) {
    this.worker = new Worker(url);
    this.ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new ConstraintError(`compiling the constraint took longer than GRAMMAR_COMPILE_TIMEOUT_MS (${timeoutMs} ms)`)), timeoutMs);
      this.worker.onmessage = (e: MessageEvent<FromGrammar>) => {
        clearTimeout(timer);
        if (e.data.ok) resolve();
        else reject(new ConstraintError(`invalid constraint: ${e.data.error}`));
      };
      this.worker.onerror = (e) => {
        clearTimeout(timer);
        reject(new ConstraintError(`the grammar worker failed: ${e.message}`, 500));
      };
    });
    this.ready.then(() => (this.settled = true), () => ((this.settled = this.failed = true), this.worker.terminate()));
    this.send({ type: "compile", vocab, spec });
  }

  send(msg: ToGrammar): void {
    this.worker.postMessage(msg);
  }
}

export class GrammarPool {
  readonly #hosts = new Map<string, Host>();
  readonly #url: string;
  #nextId = 1;

  constructor(readonly vocab: Vocabulary, readonly opts: PoolOptions) {
    this.#url = opts.workerUrl ?? new URL("./grammar-worker.ts", import.meta.url).href;
  }

  /** A constraint for one sequence; compiles (in its own worker) on first use of this text. */
  async open(spec: ConstraintSpec): Promise<Constraint> {
    const host = this.#host(spec);
    await host.ready;
    return this.openOn(host, spec, []);
  }

  /** A matcher on a compiled host at once, after `replay` (a fork of a beam's constraint). */
  openOn(host: Host, spec: ConstraintSpec, replay: number[]): Constraint {
    host.open++;
    const id = this.#nextId++;
    const shared = new SharedArrayBuffer((MASK_HEADER_WORDS + maskWords(this.vocab.nVocab)) * 4);
    host.send({ type: "open", id, shared, replay: replay.length ? replay : undefined });
    return new Constraint(host, id, new Int32Array(shared), () => void host.open--, spec, this, replay);
  }

  #host(spec: ConstraintSpec): Host {
    const key = specKey(spec);
    const known = this.#hosts.get(key);
    if (known && !known.failed) {
      this.#hosts.delete(key); // re-inserted: the map's order is the LRU order
      this.#hosts.set(key, known);
      return known;
    }
    this.#hosts.delete(key);
    if (this.#hosts.size >= this.opts.workers) {
      const idle = [...this.#hosts].find(([, h]) => h.settled && h.open === 0);
      if (!idle) throw new ConstraintError(`${this.opts.workers} different constraints are in use (GRAMMAR_WORKERS); retry later`, 503);
      idle[1].worker.terminate();
      this.#hosts.delete(idle[0]);
    }
    const host = new Host(this.#url, this.vocab, spec, this.opts.compileTimeoutMs);
    this.#hosts.set(key, host);
    return host;
  }

  close(): void {
    for (const h of this.#hosts.values()) h.worker.terminate();
    this.#hosts.clear();
  }
}

/** One sequence's constraint state: the mask for its next token, advanced by accept(). */
export class Constraint {
  readonly #state: Int32Array;
  /** the bitmask part of the shared state: one view for the sequence's life, not one per token */
  readonly #mask: Int32Array;
  /** masks the worker has written so far that this side expects */
  #expected = 1;
  #closed = false;
  /** tokens accepted since the start (a beam's fork replays them) */
  readonly tokens: number[];

  constructor(private readonly host: Host, private readonly id: number, state: Int32Array, private readonly onClose: () => void, readonly spec: ConstraintSpec, private readonly pool: GrammarPool, replayed: number[] = []) {
    this.#state = state;
    this.#mask = state.subarray(MASK_HEADER_WORDS);
    this.tokens = [...replayed];
  }

  /** The allowed-token mask for the next token: waits (bounded) for the worker to write it. */
  mask(timeoutMs = 10_000): Int32Array {
    while (Atomics.load(this.#state, 0) < this.#expected) {
      if (Atomics.wait(this.#state, 0, this.#expected - 1, timeoutMs) === "timed-out") throw new ConstraintError("the grammar worker did not answer in time", 500);
    }
    if (Atomics.load(this.#state, 1) & FLAG_REJECTED) throw new ConstraintError("the grammar rejected a token it had allowed", 500);
    return this.#mask;
  }

  /** Only end-of-generation may follow (call after mask()): the constrained text is complete. */
  get complete(): boolean {
    return (Atomics.load(this.#state, 1) & FLAG_COMPLETE) !== 0;
  }

  /** Advances by the chosen token; the worker writes the next mask meanwhile. */
  accept(token: number): void {
    this.tokens.push(token);
    this.#expected++;
    this.host.send({ type: "accept", id: this.id, token });
  }

  /** A copy at the same point (a beam that forks): a new matcher that replays this one's tokens. */
  fork(): Constraint {
    return this.pool.openOn(this.host, this.spec, this.tokens);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.host.send({ type: "close", id: this.id });
    this.onClose();
  }
}
