// Grammar-constrained decoding with llama.cpp's GBNF engine (a llama_sampler underneath), and its
// JSON-Schema -> GBNF converter. One Grammar holds one parse state: clone() a compiled one per
// sequence, applyMask() / allows() before choosing a token, accept() the chosen token.
import { ptr, type Pointer } from "bun:ffi";
import { shim } from "./lib.ts";
import type { Model } from "./model.ts";

export class GrammarError extends Error {
  override name = "GrammarError";
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function lastError(fallback: string): string {
  const why = String(shim().llmshim_grammar_last_error() ?? "").trim();
  return why || fallback;
}

export class Grammar {
  #ptr: Pointer | null;
  /** size of the vocabulary it was compiled for: the length applyMask() expects */
  readonly nVocab: number;

  private constructor(handle: Pointer, nVocab: number) {
    this.#ptr = handle;
    this.nVocab = nVocab;
  }

  /** Compiles GBNF text for the model's vocabulary; throws GrammarError with the parser's message (line:column). */
  static fromGbnf(model: Model, text: string, root = "root"): Grammar {
    const src = encoder.encode(`${text}\0`);
    const rootName = encoder.encode(`${root}\0`);
    const handle = shim().llmshim_grammar_new(model.handle, ptr(src), ptr(rootName)) as Pointer | null;
    if (!handle) throw new GrammarError(lastError("invalid grammar"));
    return new Grammar(handle, model.info.nVocab);
  }

  /** JSON Schema text -> GBNF -> Grammar. */
  static fromJsonSchema(model: Model, schemaText: string): Grammar {
    return Grammar.fromGbnf(model, jsonSchemaToGbnf(schemaText), "root");
  }

  get handle(): Pointer {
    if (!this.#ptr) throw new Error("grammar was freed");
    return this.#ptr;
  }

  /** An independent copy of the current parse state (cheap next to compiling: no parsing). */
  clone(): Grammar {
    const handle = shim().llmshim_grammar_clone(this.handle) as Pointer | null;
    if (!handle) throw new GrammarError(lastError("cannot clone the grammar"));
    return new Grammar(handle, this.nVocab);
  }

  /**
   * Advances the parse state by one token. Returns false, and changes nothing, when the grammar
   * does not allow the token here (llama.cpp itself would abort on a disallowed end-of-generation token).
   */
  accept(token: number): boolean {
    return shim().llmshim_grammar_accept(this.handle, token);
  }

  /**
   * Sets the logits of every token the grammar rejects to -Infinity, in place, and returns how many
   * stay finite (0: nothing can follow; the caller decides how to end). `row` is one logits row:
   * index = token id, length at most nVocab.
   */
  applyMask(row: Float32Array): number {
    if (row.length === 0) return 0;
    if (row.length > this.nVocab) throw new RangeError(`logits row has ${row.length} entries, the vocabulary ${this.nVocab}`);
    const n = shim().llmshim_grammar_apply(this.handle, ptr(row), row.length);
    if (n < 0) throw new GrammarError(lastError("grammar mask failed"));
    return n;
  }

  /** Whether the grammar allows this one token now: the cheap check before falling back to applyMask(). */
  allows(token: number): boolean {
    return shim().llmshim_grammar_allows(this.handle, token);
  }

  free(): void {
    if (this.#ptr) shim().llmshim_sampler_free(this.#ptr);
    this.#ptr = null;
  }

  [Symbol.dispose](): void {
    this.free();
  }
}

let schemaOut = new Uint8Array(16384);

/** llama.cpp's JSON-Schema -> GBNF conversion (root rule "root"); throws GrammarError with the converter's message. */
export function jsonSchemaToGbnf(schemaText: string): string {
  const src = encoder.encode(`${schemaText}\0`);
  for (;;) {
    const n = shim().llmshim_json_schema_to_grammar(ptr(src), ptr(schemaOut), schemaOut.length);
    if (n > 0) return decoder.decode(schemaOut.subarray(0, n));
    if (n === 0) throw new GrammarError(lastError("JSON schema conversion failed"));
    schemaOut = new Uint8Array(-n * 2);
  }
}

/** Why llama.cpp's GBNF parser refuses this grammar (with its line:column), or null when it parses. */
export function gbnfError(text: string, root = "root"): string | null {
  const src = encoder.encode(`${text}\0`);
  const rootName = encoder.encode(`${root}\0`);
  return shim().llmshim_gbnf_check(ptr(src), ptr(rootName)) ? null : lastError("invalid grammar");
}
