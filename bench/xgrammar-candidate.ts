// The microbench's view of xgrammar's WASM build (@mlc-ai/web-xgrammar 0.1.27), the precomputed-mask
// engine measured against llama.cpp's (src/native/grammar.ts) in bench/structured-micro.ts. The
// server uses it through src/constraints/ (grammar workers); this file is the bench's own wrapper
// (XGRAMMAR_MODULE points it at another copy of the package).
//
// Costs to plan for (see bench/results-structured.md): the tokenizer info takes ~60-160 ms per
// vocabulary, and compiling a JSON schema ~0.7-2.4 s for 49k-152k vocabularies; both run
// synchronously in WASM on the calling thread (the API is async in name only), so compile off the
// decode thread and cache compiled grammars by schema text. A matcher per sequence is ~5-15 us.
import { readGguf } from "../src/gguf/reader.ts";
import { applyTokenMask } from "../src/sampling/token-mask.ts";
import { getStringArray } from "../src/gguf/types.ts";
import type { Model } from "../src/native/model.ts";

// biome-ignore lint: untyped optional module
type Any = any;

export class XGrammarError extends Error {
  override name = "XGrammarError";
}

let loading: Promise<Any> | undefined;

/** Imports the xgrammar module once (XGRAMMAR_MODULE overrides the name: a path to its lib/index.js). */
export function loadXGrammar(): Promise<XGrammar> {
  loading ??= (async () => {
    const name = process.env.XGRAMMAR_MODULE || "@mlc-ai/web-xgrammar";
    try {
      const mod = await import(name);
      return mod.default ?? mod;
    } catch (err) {
      loading = undefined;
      throw new XGrammarError(`cannot load xgrammar (${name}): ${(err as Error).message}; install it with \`bun add @mlc-ai/web-xgrammar@0.1.27\``);
    }
  })();
  return loading.then((xg) => new XGrammar(xg));
}

export interface XgVocabulary {
  /** the tokenizer's raw token strings by id ("Ġthe", "▁the", "<0x0A>"), as GGUF stores them */
  tokens: string[];
  /** byte_level: GPT-2 style BPE; byte_fallback: SentencePiece with <0xNN> tokens; raw: plain text */
  vocabType: "byte_level" | "byte_fallback" | "raw";
  /** logits row length (may exceed tokens.length when padded) */
  nVocab: number;
  /** end-of-generation token ids */
  stopTokens: number[];
}

/** The vocabulary xgrammar needs, from a GGUF file and its loaded model (vocab-only is enough). */
export function vocabularyFromGguf(path: string, model: Model): XgVocabulary {
  const file = readGguf(path);
  const tokens = getStringArray(file.metadata, "tokenizer.ggml.tokens");
  if (!tokens) throw new XGrammarError(`${path} has no tokenizer.ggml.tokens`);
  const kind = String(file.metadata.get("tokenizer.ggml.model")?.value ?? "gpt2");
  return {
    tokens,
    vocabType: kind === "llama" ? "byte_fallback" : "byte_level",
    nVocab: model.info.nVocab,
    stopTokens: model.info.eogTokens,
  };
}

export class XGrammar {
  constructor(readonly xg: Any) {}

  /** Builds the per-vocabulary tokenizer info (tens of ms; once per model). */
  async tokenizer(v: XgVocabulary): Promise<XgTokenizer> {
    const info = await this.xg.TokenizerInfo.createTokenizerInfo(v.tokens, v.vocabType, false, v.nVocab, v.stopTokens);
    return new XgTokenizer(this.xg, info, v.nVocab);
  }
}

export interface XgJsonOptions {
  /** allow any whitespace between JSON tokens (xgrammar's default true; false: compact ", " / ": ") */
  anyWhitespace?: boolean;
  /** reject properties the schema does not name unless additionalProperties says otherwise (default true) */
  strictMode?: boolean;
}

export class XgTokenizer {
  #info: Any;
  #compiler: Any | null = null;
  readonly #cache = new Map<string, XgCompiled>();

  constructor(private readonly xg: Any, info: Any, readonly nVocab: number) {
    this.#info = info;
  }

  async #getCompiler(): Promise<Any> {
    if (!this.#info) throw new Error("xgrammar tokenizer was freed");
    // xgrammar's own cache off: ours below is keyed by the exact text and holds the compiled object
    this.#compiler ??= await this.xg.GrammarCompiler.createGrammarCompiler(this.#info, false);
    return this.#compiler;
  }

  /** Compiles (or returns the cached compile of) a JSON schema. Throws XGrammarError with xgrammar's message. */
  async compileJsonSchema(schema: string, o: XgJsonOptions = {}): Promise<XgCompiled> {
    const key = `json:${o.anyWhitespace ?? true}:${o.strictMode ?? true}:${schema}`;
    return this.#cached(key, async (c) => c.compileJSONSchema(schema, o.anyWhitespace ?? true, undefined, undefined, o.strictMode ?? true));
  }

  /** Compiles (or returns the cached compile of) an EBNF grammar (GBNF syntax). */
  async compileGrammar(ebnf: string, root = "root"): Promise<XgCompiled> {
    return this.#cached(`ebnf:${root}:${ebnf}`, async (c) => c.compileGrammar(ebnf, root));
  }

  async #cached(key: string, compile: (compiler: Any) => Promise<Any>): Promise<XgCompiled> {
    const hit = this.#cache.get(key);
    if (hit) return hit;
    let handle: Any;
    try {
      handle = await compile(await this.#getCompiler());
    } catch (err) {
      throw new XGrammarError(String((err as Error)?.message ?? err));
    }
    const compiled = new XgCompiled(this.xg, handle, this.nVocab);
    this.#cache.set(key, compiled);
    return compiled;
  }

  free(): void {
    for (const c of this.#cache.values()) c.free();
    this.#cache.clear();
    this.#compiler?.dispose();
    this.#compiler = null;
    this.#info?.dispose();
    this.#info = null;
  }
}

export class XgCompiled {
  #handle: Any;

  constructor(private readonly xg: Any, handle: Any, readonly nVocab: number) {
    this.#handle = handle;
  }

  /** A fresh parse state for one sequence (µs). */
  async matcher(): Promise<XgMatcher> {
    if (!this.#handle) throw new Error("compiled grammar was freed");
    return new XgMatcher(await this.xg.GrammarMatcher.createGrammarMatcher(this.#handle), this.nVocab);
  }

  free(): void {
    this.#handle?.dispose();
    this.#handle = null;
  }
}

export class XgMatcher {
  #m: Any;

  constructor(m: Any, readonly nVocab: number) {
    this.#m = m;
  }

  get #live(): Any {
    if (!this.#m) throw new Error("xgrammar matcher was freed");
    return this.#m;
  }

  /** The allowed-token bitmask: bit (t & 31) of word t >> 5 set = token t allowed. A new array per call. */
  nextBitmask(): Promise<Int32Array> {
    return this.#live.getNextTokenBitmask();
  }

  /** Sets rejected logits to -Infinity in place; returns how many stay allowed (0: nothing can follow). */
  async applyMask(row: Float32Array): Promise<number> {
    return applyTokenMask(row, await this.nextBitmask());
  }

  /** Advances by one token; false, and no change, when the grammar does not allow it here. */
  accept(token: number): boolean {
    return this.#live.acceptToken(token);
  }

  /** Undoes the last n accepted tokens. */
  rollBack(n: number): void {
    this.#live.rollBack(n);
  }

  /** true once a stop token was accepted */
  isTerminated(): boolean {
    return this.#live.isTerminated();
  }

  reset(): void {
    this.#live.reset();
  }

  free(): void {
    this.#m?.dispose();
    this.#m = null;
  }
}
