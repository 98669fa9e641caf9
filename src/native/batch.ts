// A llama_batch owned by the shim. The caller fills it through long-lived typed-array views over the
// shim's arrays (no FFI call per token); views are created once, so no stale ptr() of small arrays.
import { toArrayBuffer, type Pointer } from "bun:ffi";
import { shim } from "./lib.ts";

export class Batch {
  #ptr: Pointer | null;
  readonly capacity: number;
  readonly nSeqMax: number;
  readonly tokens: Int32Array;
  readonly pos: Int32Array;
  readonly nSeq: Int32Array;
  readonly seqIds: Int32Array;
  readonly logits: Int8Array;
  /** number of entries filled */
  length = 0;
  /** number of entries with the logits flag set (their output rows, in order) */
  outputs = 0;

  constructor(capacity: number, nSeqMax = 1) {
    const s = shim();
    const handle = s.llmshim_batch_new(capacity, nSeqMax) as Pointer | null;
    if (!handle) throw new Error(`cannot allocate a batch of ${capacity} tokens`);
    this.#ptr = handle;
    this.capacity = capacity;
    this.nSeqMax = nSeqMax;
    const i32 = (p: unknown, n: number) => new Int32Array(toArrayBuffer(p as Pointer, 0, n * 4));
    this.tokens = i32(s.llmshim_batch_tokens(handle), capacity);
    this.pos = i32(s.llmshim_batch_pos(handle), capacity);
    this.nSeq = i32(s.llmshim_batch_n_seq(handle), capacity);
    this.seqIds = i32(s.llmshim_batch_seq_ids(handle), capacity * nSeqMax);
    this.logits = new Int8Array(toArrayBuffer(s.llmshim_batch_logits(handle) as Pointer, 0, capacity));
  }

  get handle(): Pointer {
    if (!this.#ptr) throw new Error("batch was freed");
    return this.#ptr;
  }

  clear(): void {
    this.length = 0;
    this.outputs = 0;
  }

  /** Adds a token of one sequence; returns its output row when `wantLogits`, else -1. */
  add(token: number, pos: number, seqId: number, wantLogits: boolean): number {
    const i = this.length;
    if (i >= this.capacity) throw new Error(`batch full (${this.capacity} tokens)`);
    this.tokens[i] = token;
    this.pos[i] = pos;
    this.nSeq[i] = 1;
    this.seqIds[i * this.nSeqMax] = seqId;
    this.logits[i] = wantLogits ? 1 : 0;
    this.length = i + 1;
    return wantLogits ? this.outputs++ : -1;
  }

  free(): void {
    if (this.#ptr) shim().llmshim_batch_free(this.#ptr);
    this.#ptr = null;
  }

  [Symbol.dispose](): void {
    this.free();
  }
}
