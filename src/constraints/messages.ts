// What a request may constrain its output to, and the messages between the engine and a grammar
// worker (one worker per compiled grammar: compiling one never stalls another's masks).

/** Exactly one per request: a JSON Schema (text), any JSON value, or a GBNF grammar. */
export type ConstraintSpec = (
  /**
   * `rules`: [placeholder, EBNF] pairs; the schema holds each placeholder as a `const` string, whose
   * literal in the compiled grammar becomes that expression (an exact integer range)
   */
  | { type: "json_schema"; schema: string; rules?: [string, string][] }
  | { type: "json_object" }
  | { type: "grammar"; gbnf: string }
  /**
   * xgrammar's structural tag (JSON text): free text with tagged, schema-constrained parts, such as
   * tool calls that begin at a trigger ("<tool_call>"). `markers`: control-token texts the tag's
   * literals use ("[TOOL_CALLS]"), allowed although control tokens are otherwise never allowed.
   */
  | { type: "structural_tag"; tag: string; markers?: string[] }
) & {
  /** the request field that asked for it, named in errors */
  field?: string;
};

/** A structural tag's schema part, written by the engine thread, made a grammar by the worker (schema-ebnf.ts resolveTag). */
export const TAG_SCHEMA = "bun_llm_json_schema";
export interface TagSchema {
  type: typeof TAG_SCHEMA;
  schema: string;
  rules: [string, string][];
}

/** The vocabulary xgrammar needs: the tokenizer's raw token strings, its kind and the stop tokens. */
export interface Vocabulary {
  tokens: string[];
  /** byte_level: GPT-2 style BPE; byte_fallback: SentencePiece with <0xNN> tokens; raw: plain text */
  vocabType: "byte_level" | "byte_fallback" | "raw";
  /** logits row length (may exceed tokens.length) */
  nVocab: number;
  /** end-of-generation ids: allowed only where the grammar may end */
  stopTokens: number[];
  /** control tokens (not end-of-generation): never allowed inside constrained text */
  controlTokens: number[];
}

/**
 * A matcher's shared state, written by the worker and read by the engine: word 0 counts the masks
 * written, word 1 holds flags, the rest is the allowed-token bitmask for the next token.
 */
export const MASK_HEADER_WORDS = 2;
export const FLAG_COMPLETE = 1; // nothing but end-of-generation may follow: the text is complete
export const FLAG_REJECTED = 2; // the worker refused a token the engine accepted (a bug): stop the sequence

export type ToGrammar =
  | { type: "compile"; vocab: Vocabulary; spec: ConstraintSpec }
  | { type: "open"; id: number; shared: SharedArrayBuffer; replay?: number[] }
  | { type: "accept"; id: number; token: number }
  | { type: "close"; id: number };

export type FromGrammar =
  | { type: "compiled"; ok: true; ms: number }
  | { type: "compiled"; ok: false; error: string };

export function specKey(spec: ConstraintSpec): string {
  switch (spec.type) {
    case "json_schema": return `schema:${spec.rules ? `${JSON.stringify(spec.rules)}:` : ""}${spec.schema}`;
    case "json_object": return "json";
    case "grammar": return `gbnf:${spec.gbnf}`;
    case "structural_tag": return `tag:${JSON.stringify(spec.markers ?? [])}:${spec.tag}`;
    default: {
      const never: never = spec;
      throw new Error(`unknown constraint ${JSON.stringify(never)}`);
    }
  }
}
