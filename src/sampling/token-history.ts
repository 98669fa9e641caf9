/**
 * Prompt + generated token ids of one sequence, with O(1) "already seen"
 * membership (a byte bitmap indexed by token id, grown geometrically) and the
 * list of distinct ids in first-seen order, so the repetition penalty costs
 * O(distinct seen) per step instead of O(vocab) or O(history).
 *
 * The membership index is built lazily, on the first question that needs it,
 * and then kept up to date incrementally: a sequence that never uses the
 * repetition penalty only appends ids (after a decode step evicts the CPU
 * caches, touching the bitmap too cost ~2 us per token).
 *
 * Storage grows by doubling; nothing is allocated per pushed token in the
 * steady state.
 */
export class TokenHistory {
  private ids: Int32Array;
  private len = 0;
  private distinct: Int32Array = new Int32Array(0);
  private distinctLen = 0;
  private seen: Uint8Array = new Uint8Array(0);
  /** ids[0, indexed) are in `seen` / `distinct` */
  private indexed = 0;
  private readonly vocabSizeHint: number;

  /** `vocabSizeHint` presizes the bitmap (token ids are < vocab size). */
  constructor(prompt: ArrayLike<number> = [], vocabSizeHint = 0) {
    const cap = Math.max(16, prompt.length * 2);
    this.ids = new Int32Array(cap);
    this.vocabSizeHint = vocabSizeHint;
    for (let i = 0; i < prompt.length; i++) this.push(prompt[i]);
  }

  /** Append a token id (a non-negative integer). */
  push(token: number): void {
    if (!(token >= 0) || token !== Math.floor(token)) {
      throw new RangeError(`TokenHistory: invalid token id ${token}`);
    }
    if (this.len === this.ids.length) this.ids = grow(this.ids, this.len * 2);
    this.ids[this.len++] = token;
  }

  /** Brings the membership index up to date with the ids pushed since it was last used. */
  private index(): void {
    if (this.indexed === this.len) return;
    if (this.seen.length === 0) {
      this.seen = new Uint8Array(Math.max(64, this.vocabSizeHint));
      this.distinct = new Int32Array(Math.max(16, this.len));
    }
    while (this.indexed < this.len) this.indexOne(this.ids[this.indexed++]);
  }

  private indexOne(token: number): void {
    if (token >= this.seen.length) {
      const bigger = new Uint8Array(Math.max(token + 1, this.seen.length * 2));
      bigger.set(this.seen);
      this.seen = bigger;
    }
    if (this.seen[token] === 0) {
      this.seen[token] = 1;
      if (this.distinctLen === this.distinct.length) {
        this.distinct = grow(this.distinct, this.distinctLen * 2);
      }
      this.distinct[this.distinctLen++] = token;
    }
  }

  /** Total number of tokens (prompt + generated). */
  get length(): number {
    return this.len;
  }

  /** Whether `token` occurs anywhere in the history. */
  has(token: number): boolean {
    this.index();
    return token >= 0 && token < this.seen.length && this.seen[token] === 1;
  }

  /** Number of distinct token ids seen. */
  get distinctCount(): number {
    this.index();
    return this.distinctLen;
  }

  /**
   * Internal buffer of distinct ids; only `[0, distinctCount)` is meaningful.
   * Do not mutate; the buffer may be replaced when the history grows.
   */
  get distinctIds(): Int32Array {
    this.index();
    return this.distinct;
  }

  /** View (no copy) of all token ids; invalidated by the next `push`. */
  view(): Int32Array {
    return this.ids.subarray(0, this.len);
  }

  /**
   * Keeps the first `n` tokens (a stream cut short by its client). The membership index is rebuilt
   * on the next question that needs it.
   */
  truncate(n: number): void {
    if (n >= this.len) return;
    this.len = Math.max(0, n);
    if (this.indexed > this.len) {
      this.seen.fill(0);
      this.distinctLen = 0;
      this.indexed = 0;
    }
  }

  /** Token id at position `i`. */
  at(i: number): number {
    return this.ids[i];
  }
}

function grow(buf: Int32Array, capacity: number): Int32Array {
  const next = new Int32Array(Math.max(16, capacity));
  next.set(buf);
  return next;
}
