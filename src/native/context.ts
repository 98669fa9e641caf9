// A llama_context: the KV cache and the decode call. Owns nothing but its native pointer and
// a cached Float32Array view over the logits buffer (recreated only if llama.cpp moves it).
import { ptr, toArrayBuffer, type Pointer } from "bun:ffi";
import { shim } from "./lib.ts";
import type { Batch } from "./batch.ts";
import type { Model } from "./model.ts";

export interface ContextOptions {
  /** total KV cells; with unified KV all sequences share them */
  nCtx: number;
  nBatch?: number;
  nUbatch?: number;
  nSeqMax?: number;
  threads?: number;
  threadsBatch?: number;
  /** -1 auto, 0 off, 1 on */
  flashAttn?: number;
  /** CPU thread-pool polling between decodes: 0 sleep .. 100 spin; default ggml's (50) */
  threadPoll?: number;
  kvUnified?: boolean;
  offloadKqv?: boolean;
}

export class ContextError extends Error {
  override name = "ContextError";
}

/** llama_decode's return codes. */
export const DecodeStatus = { ok: 0, noKvSlot: 1, aborted: 2, invalidBatch: -1 } as const;

export class Context {
  #ptr: Pointer | null;
  readonly model: Model;
  readonly nCtx: number;
  readonly nBatch: number;
  readonly nSeqMax: number;
  readonly nVocab: number;
  #logitsBase = 0;
  #logits = new Float32Array(0);
  #logitsStale = true;

  constructor(model: Model, opts: ContextOptions) {
    const s = shim();
    const nBatch = opts.nBatch ?? 512;
    // llama.cpp's default (4 threads) oversubscribes small machines badly: default to the core count.
    const threads = opts.threads || defaultThreads();
    s.llmshim_set_thread_poll(opts.threadPoll ?? -1);
    const handle = s.llmshim_context_new(
      model.handle, opts.nCtx, nBatch, opts.nUbatch ?? nBatch, opts.nSeqMax ?? 1,
      threads, opts.threadsBatch || threads, opts.flashAttn ?? -1,
      opts.kvUnified ?? true, opts.offloadKqv ?? true,
    ) as Pointer | null;
    if (!handle) {
      const why = String(s.llmshim_last_error() ?? "").trim();
      throw new ContextError(`failed to create a context (n_ctx ${opts.nCtx}, n_seq_max ${opts.nSeqMax ?? 1})${why ? `: ${why}` : ""}`);
    }
    this.#ptr = handle;
    this.model = model;
    this.nCtx = s.llmshim_n_ctx(handle);
    this.nBatch = s.llmshim_n_batch(handle);
    this.nSeqMax = s.llmshim_n_seq_max(handle);
    this.nVocab = model.info.nVocab;
  }

  get handle(): Pointer {
    if (!this.#ptr) throw new Error("context was freed");
    return this.#ptr;
  }

  /** Decodes the batch's filled entries; returns llama_decode's status (see DecodeStatus). */
  decode(batch: Batch): number {
    if (batch.length === 0) return DecodeStatus.ok;
    const status = shim().llmshim_decode(this.handle, batch.handle, batch.length);
    this.#logitsStale = true;
    return status;
  }

  /** Logits of output row `row` of the last decode (rows are the flagged tokens in batch order). */
  logitsRow(row: number): Float32Array {
    if (this.#logitsStale) this.#refreshLogits(); // once per decode, not once per row
    return this.#logits.subarray(row * this.nVocab, (row + 1) * this.nVocab);
  }

  /** One logit of output row `row` (no view allocated: the per-token sanity check reads it). */
  logit(row: number, token: number): number {
    if (this.#logitsStale) this.#refreshLogits();
    return this.#logits[row * this.nVocab + token]!;
  }

  /**
   * torch.argmax of output row `row`, computed natively (SIMD) straight from llama.cpp's buffer: the
   * greedy fast path, ~6x cheaper than a JS loop over the row (see native/kernels.c).
   */
  argmaxRow(row: number): number {
    if (this.#logitsStale) this.#refreshLogits();
    if (!(row >= 0 && (row + 1) * this.nVocab <= this.#logits.length)) throw new RangeError(`logits row ${row} is out of range`);
    return shim().llmshim_argmax((this.#logitsBase + row * this.nVocab * 4) as Pointer, this.nVocab);
  }

  /** Re-reads llama.cpp's logits pointer; the view is rebuilt only if the buffer moved. */
  #refreshLogits(): void {
    const base = shim().llmshim_logits(this.handle) as Pointer | null;
    if (!base) throw new ContextError("no logits: nothing was decoded with a logits flag");
    this.#logitsStale = false;
    if (Number(base) === this.#logitsBase) return;
    this.#logitsBase = Number(base);
    const rows = Math.max(this.nBatch, this.nSeqMax);
    this.#logits = new Float32Array(toArrayBuffer(base, 0, rows * this.nVocab * 4));
  }

  /** Removes positions [p0, p1) of a sequence (p1 < 0: to the end; seq < 0: all sequences). */
  seqRm(seq: number, p0 = -1, p1 = -1): boolean {
    return shim().llmshim_seq_rm(this.handle, seq, p0, p1);
  }

  seqCp(src: number, dst: number, p0 = -1, p1 = -1): void {
    shim().llmshim_seq_cp(this.handle, src, dst, p0, p1);
  }

  /** Largest position held for the sequence, -1 when empty. */
  seqPosMax(seq: number): number {
    return shim().llmshim_seq_pos_max(this.handle, seq);
  }

  clearMemory(): void {
    shim().llmshim_memory_clear(this.handle, true);
  }

  /** Serialises one sequence's KV state into a buffer of its own. */
  saveSequence(seq: number): Uint8Array {
    return this.saveSequenceInto(seq, (size) => new Uint8Array(size));
  }

  /**
   * Serialises one sequence's KV state into a buffer `alloc(size)` provides (e.g. the payload of a
   * session record, so that the bytes are written once); returns the filled part.
   */
  saveSequenceInto(seq: number, alloc: (size: number) => Uint8Array): Uint8Array {
    const s = shim();
    const size = Number(s.llmshim_state_seq_size(this.handle, seq));
    const dst = alloc(size);
    if (size === 0) return dst.subarray(0, 0);
    if (dst.length < size) throw new ContextError(`state buffer of ${dst.length} bytes < ${size}`);
    const n = Number(s.llmshim_state_seq_get(this.handle, ptr(dst), size, seq));
    if (n === 0) throw new ContextError(`saving sequence ${seq} failed`);
    return dst.subarray(0, n);
  }

  /** Restores a state saved by saveSequence into sequence `seq`; false if it did not fit. */
  restoreSequence(seq: number, state: Uint8Array): boolean {
    if (state.length === 0) return false;
    return Number(shim().llmshim_state_seq_set(this.handle, ptr(state), state.length, seq)) > 0;
  }

  free(): void {
    if (this.#ptr) shim().llmshim_context_free(this.#ptr);
    this.#ptr = null;
  }

  [Symbol.dispose](): void {
    this.free();
  }
}

export function defaultThreads(): number {
  return Math.max(1, navigator.hardwareConcurrency || 1);
}
