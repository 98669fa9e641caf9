// Tokens to the text messages a request's client receives: pieces through the job's streaming
// UTF-8 decoder (an incomplete character waits for the next token), and the count of tokens
// whose text is complete in what was sent (where a cut stream's session ends, see utf8.ts).
import type { Model } from "../native/index.ts";
import type { Job } from "./job.ts";
import type { Sequence } from "./sequence.ts";
import type { FromEngine, TokenLogprob } from "./messages.ts";
import { utf8Need } from "./utf8.ts";
import { logSumExp, topLogprobs } from "../sampling/openai-processors.ts";

const lossy = new TextDecoder();

/** TextDecoder option for pieces that may end inside a UTF-8 character (one object, not one per token) */
const STREAM = { stream: true } as const;

export class TextOut {
  readonly #model: Model;
  readonly #emit: (msg: FromEngine) => void;
  readonly #shown = new Map<string, ReadonlySet<number>>();

  constructor(model: Model, emit: (msg: FromEngine) => void) {
    this.#model = model;
    this.#emit = emit;
  }

  /**
   * The ids of control tokens whose text a request shows (GenerationConfig.special_text), looked
   * up once per list of texts, not per token. A text that is no single token of this vocabulary is
   * plain text here anyway.
   */
  shown(texts: readonly string[]): ReadonlySet<number> {
    const key = texts.join("\u0000");
    const known = this.#shown.get(key);
    if (known) return known;
    const ids = new Set<number>();
    for (const text of texts) {
      const t = this.#model.tokenize(text, false, true);
      if (t.length === 1 && this.#model.tokenText(t[0]!) === text) ids.add(t[0]!);
    }
    this.#shown.set(key, ids);
    return ids;
  }

  /** Sends one token's text (end-of-generation tokens have none). */
  token(job: Job, token: number): void {
    this.text(job, this.#piece(job, token));
  }

  /** Sends several tokens' text in one message (settled beam tokens). */
  tokens(job: Job, tokens: readonly number[]): void {
    let text = "";
    for (const t of tokens) text += this.#piece(job, t);
    this.text(job, text);
  }

  /** Sends text as it is, e.g. the bytes a decoder held back for an incomplete character. */
  text(job: Job, text: string): void {
    if (!text) return;
    const logprobs = job.kind === "sample" && job.pendingLogprobs.length > 0 ? job.pendingLogprobs.splice(0) : undefined;
    this.#emit({ type: "text", ticket: job.ticket, index: job.index, text, delivered: job.complete, ...(logprobs ? { logprobs } : {}) });
  }

  /** A token's text (characters it completes); counts the tokens whose text is complete so far. */
  #piece(job: Job, token: number): string {
    let text = "";
    if (!this.#model.isEog(token)) {
      let piece = this.#model.tokenPiece(token);
      // a control token the request reads as text (a tool-call marker such as [TOOL_CALLS])
      if (piece.length === 0 && job.shownTokens?.has(token)) piece = this.#model.tokenPiece(token, true);
      job.utf8Need = utf8Need(job.utf8Need, piece);
      text = job.decoder.decode(piece, STREAM);
    }
    job.decodedTokens++;
    if (job.utf8Need === 0) job.complete = job.decodedTokens;
    return text;
  }
}

/** `token`'s log-probability in the raw logits `row`, with the `n` most likely tokens. */
export function tokenLogprob(model: Model, row: Float32Array, token: number, n: number): TokenLogprob {
  const lse = logSumExp(row);
  const entry = (t: number, logprob: number) => {
    const piece = model.tokenPiece(t);
    return { token: lossy.decode(piece), bytes: Array.from(piece), logprob };
  };
  return { ...entry(token, Math.min(0, row[token]! - lse)), top: topLogprobs(row, n, lse).map((c) => entry(c.token, c.logprob)) };
}

/** The full text so far: the prompt as the model saw it (special tokens rendered) + all generated. */
export function renderSoFar(model: Model, seq: Sequence): string {
  const ids = seq.tokens.view();
  return model.detokenize(ids.subarray(0, seq.promptLen), true) + model.piecesText(ids.subarray(seq.promptLen));
}
