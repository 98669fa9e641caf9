// A loaded GGUF model: weights, vocabulary and tokenizer.
import { CString, ptr, type Pointer } from "bun:ffi";
import { existsSync, openSync, readSync, closeSync, statSync } from "node:fs";
import { shim } from "./lib.ts";

export class ModelLoadError extends Error {
  override name = "ModelLoadError";
}

export interface ModelLoadOptions {
  /** layers to offload to the GPU; -1 = all (ignored on CPU builds) */
  gpuLayers?: number;
  mmap?: boolean;
  /** load only the vocabulary (tokenizer tests, fast metadata) */
  vocabOnly?: boolean;
  /** a Float32Array of length >= 1 that receives load progress 0..1 (may be shared memory) */
  progress?: Float32Array;
}

export interface ModelInfo {
  description: string;
  nVocab: number;
  nCtxTrain: number;
  nEmbd: number;
  nLayer: number;
  nHead: number;
  nHeadKv: number;
  nParams: number;
  sizeBytes: number;
  bos: number;
  eos: number;
  addBos: boolean;
  eogTokens: number[];
  chatTemplate: string | null;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class Model {
  #ptr: Pointer | null;
  readonly path: string;
  readonly info: ModelInfo;
  // Scratch buffers owned by the model, grown on demand; pointers are taken at call time.
  #tokens = new Int32Array(4096);
  #bytes = new Uint8Array(16384);
  /** plain piece bytes by token id, filled on first use (a dense array: null = not yet asked) */
  readonly #pieces: (Uint8Array | null)[];
  /** 1 for end-of-generation token ids */
  readonly #eog: Uint8Array;

  private constructor(handle: Pointer, path: string, vocabOnly: boolean) {
    this.#ptr = handle;
    this.path = path;
    this.info = this.#readInfo(vocabOnly);
    this.#pieces = new Array<Uint8Array | null>(this.info.nVocab).fill(null);
    this.#eog = new Uint8Array(this.info.nVocab);
    for (const t of this.info.eogTokens) this.#eog[t] = 1;
  }

  static load(path: string, opts: ModelLoadOptions = {}): Model {
    checkGgufFile(path);
    const progress = opts.progress ? ptr(opts.progress) : null;
    const cpath = encoder.encode(`${path}\0`);
    const handle = shim().llmshim_model_load(ptr(cpath), opts.gpuLayers ?? -1, opts.mmap ?? true, opts.vocabOnly ?? false, progress, null) as Pointer | null;
    if (!handle) {
      const why = String(shim().llmshim_last_error() ?? "").trim();
      throw new ModelLoadError(`failed to load model ${path}${why ? `: ${why}` : ""}`);
    }
    return new Model(handle, path, opts.vocabOnly ?? false);
  }

  get handle(): Pointer {
    if (!this.#ptr) throw new Error("model was freed");
    return this.#ptr;
  }

  tokenize(text: string, addSpecial: boolean, parseSpecial: boolean): Int32Array {
    const bytes = encoder.encode(text);
    if (bytes.length === 0 && !addSpecial) return new Int32Array(0);
    const need = bytes.length + 8;
    if (this.#tokens.length < need) this.#tokens = new Int32Array(need);
    const n = shim().llmshim_tokenize(this.handle, bytes.length ? ptr(bytes) : null, bytes.length, ptr(this.#tokens), this.#tokens.length, addSpecial, parseSpecial);
    if (n < 0) throw new Error(`tokenization failed (${n})`);
    return this.#tokens.slice(0, n);
  }

  /** Text of a token sequence. `special`: render control tokens such as <s> (unparse_special). */
  detokenize(tokens: ArrayLike<number>, special = false, removeSpecial = false): string {
    if (tokens.length === 0) return "";
    return decoder.decode(this.detokenizeBytes(tokens, special, removeSpecial));
  }

  detokenizeBytes(tokens: ArrayLike<number>, special = false, removeSpecial = false): Uint8Array {
    const ids = tokens instanceof Int32Array ? tokens : Int32Array.from(tokens);
    for (;;) {
      const n = shim().llmshim_detokenize(this.handle, ptr(ids), ids.length, ptr(this.#bytes), this.#bytes.length, removeSpecial, special);
      if (n >= 0) return this.#bytes.slice(0, n);
      this.#bytes = new Uint8Array(-n * 2);
    }
  }

  /**
   * Text of tokens as their pieces concatenated (what streaming emits). Unlike detokenize(), a
   * SentencePiece leading space of the first token is kept, so texts of consecutive runs concatenate.
   */
  piecesText(tokens: ArrayLike<number>, special = false): string {
    const parts: Uint8Array[] = [];
    let n = 0;
    for (let i = 0; i < tokens.length; i++) {
      const p = this.tokenPiece(tokens[i]!, special);
      parts.push(p);
      n += p.length;
    }
    const all = new Uint8Array(n);
    let off = 0;
    for (const p of parts) all.set(p, off), (off += p.length);
    return decoder.decode(all);
  }

  /**
   * Raw bytes of one token's piece (may be part of a UTF-8 character). Plain pieces are cached per
   * token id: the engine asks once per generated token, and the FFI call plus copy cost ~2 us each
   * right after a decode step has evicted the CPU caches. Do not mutate the returned array.
   */
  tokenPiece(token: number, special = false): Uint8Array {
    if (special || !(token >= 0 && token < this.#pieces.length)) return this.#piece(token, special);
    return (this.#pieces[token] ??= this.#piece(token, false));
  }

  #piece(token: number, special: boolean): Uint8Array {
    for (;;) {
      const n = shim().llmshim_token_to_piece(this.handle, token, ptr(this.#bytes), this.#bytes.length, 0, special);
      if (n >= 0) return this.#bytes.slice(0, n);
      this.#bytes = new Uint8Array(-n * 2);
    }
  }

  /** Text of one token as special-token text renders ("<s>"); "" for an id outside the vocabulary. */
  tokenText(token: number): string {
    return token >= 0 && token < this.info.nVocab ? decoder.decode(this.#piece(token, true)) : "";
  }

  /**
   * Text of every control token (those that render only as special-token text: <s>, <|im_start|>),
   * longest first, as llama.cpp matches them when parsing special tokens. One pass over the vocabulary.
   */
  controlTokens(): string[] {
    const out = new Set<string>();
    for (let t = 0; t < this.info.nVocab; t++) {
      if (this.#piece(t, false).length > 0) continue;
      const text = decoder.decode(this.#piece(t, true));
      if (text.length > 0) out.add(text);
    }
    return [...out].sort((a, b) => b.length - a.length);
  }

  /**
   * Ids of every token that has no text of its own (control tokens such as <|im_start|>, padding):
   * constrained output never contains them. One pass over the vocabulary.
   */
  textlessTokens(): number[] {
    const out: number[] = [];
    for (let t = 0; t < this.info.nVocab; t++) if (this.#piece(t, false).length === 0) out.push(t);
    return out;
  }

  /** End-of-generation token (EOS, EOT, ...): read once at load, no native call per token. */
  isEog(token: number): boolean {
    return this.#eog[token] === 1;
  }

  free(): void {
    if (this.#ptr) shim().llmshim_model_free(this.#ptr);
    this.#ptr = null;
  }

  [Symbol.dispose](): void {
    this.free();
  }

  #readInfo(vocabOnly: boolean): ModelInfo {
    const s = shim();
    const h = this.handle;
    const desc = new Uint8Array(256);
    const n = s.llmshim_model_desc(h, ptr(desc), desc.length);
    const nVocab = s.llmshim_model_n_vocab(h);
    const eogTokens: number[] = [];
    for (let t = 0; t < nVocab; t++) if (s.llmshim_vocab_is_eog(h, t)) eogTokens.push(t);
    const tmpl = s.llmshim_model_chat_template(h) as Pointer | null;
    return {
      description: decoder.decode(desc.subarray(0, Math.max(0, Math.min(n, 255)))),
      nVocab,
      nCtxTrain: vocabOnly ? 0 : s.llmshim_model_n_ctx_train(h),
      nEmbd: vocabOnly ? 0 : s.llmshim_model_n_embd(h),
      nLayer: vocabOnly ? 0 : s.llmshim_model_n_layer(h),
      nHead: vocabOnly ? 0 : s.llmshim_model_n_head(h),
      nHeadKv: vocabOnly ? 0 : s.llmshim_model_n_head_kv(h),
      nParams: Number(s.llmshim_model_n_params(h)),
      sizeBytes: Number(s.llmshim_model_size(h)),
      bos: s.llmshim_vocab_special(h, 0),
      eos: s.llmshim_vocab_special(h, 1),
      addBos: s.llmshim_vocab_add_bos(h),
      eogTokens,
      chatTemplate: tmpl ? new CString(tmpl).toString() : null,
    };
  }
}

/** Fails early with a clear message for a missing path or a file that is not GGUF. */
function checkGgufFile(path: string): void {
  if (!existsSync(path)) throw new ModelLoadError(`model file not found: ${path}`);
  const st = statSync(path);
  if (!st.isFile()) throw new ModelLoadError(`model path is not a file: ${path}`);
  const head = new Uint8Array(4);
  const fd = openSync(path, "r");
  try {
    readSync(fd, head, 0, 4, 0);
  } finally {
    closeSync(fd);
  }
  if (decoder.decode(head) !== "GGUF") throw new ModelLoadError(`not a GGUF file (bad magic): ${path}`);
}
