// llama-server's /tokenize and /detokenize on the served model's vocabulary (loaded on the HTTP
// thread, vocabulary only): the same tokenizer calls, defaults and output as llama-server's
// handlers (tools/server: tokenize_mixed, common_token_to_piece with special tokens rendered).
import { HttpError } from "../errors.ts";
import { wellFormed } from "../generate/service.ts";
import type { DetokenizeInput, TokenizeInput } from "./model.ts";
import type { Vocabulary } from "./vocab.ts";

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

export type Piece = string | number[];

export class TokenizeService {
  constructor(private readonly vocab: Vocabulary) {}

  tokenize(body: TokenizeInput): { tokens: number[] | { id: number; piece: Piece }[] } {
    const model = this.vocab.model();
    const addSpecial = body.add_special ?? false;
    const parseSpecial = body.parse_special ?? true;
    const parts = typeof body.content === "string" ? [body.content] : body.content;
    const ids: number[] = [];
    // as llama-server's tokenize_mixed: special tokens (BOS) only before a first part that is text
    parts.forEach((p, i) => {
      const field = typeof body.content === "string" ? "content" : `content[${i}]`;
      if (typeof p === "number") {
        ids.push(this.#checkId(p, field, model.info.nVocab));
        return;
      }
      wellFormed(p, field);
      ids.push(...model.tokenize(p, addSpecial && i === 0, parseSpecial));
    });
    if (!body.with_pieces) return { tokens: ids };
    return { tokens: ids.map((id) => ({ id, piece: pieceOf(model.tokenPiece(id, true)) })) };
  }

  detokenize(body: DetokenizeInput): { content: string } {
    const model = this.vocab.model();
    body.tokens.forEach((id, i) => this.#checkId(id, `tokens[${i}]`, model.info.nVocab));
    // the pieces one after another, special tokens rendered (llama-server's tokens_to_str)
    return { content: model.piecesText(body.tokens, true) };
  }

  #checkId(id: number, field: string, nVocab: number): number {
    if (id >= nVocab) throw new HttpError(422, "invalid_field", `${field} is ${id}, not a token id of this model (0..${nVocab - 1})`, field);
    return id;
  }
}

/** a piece as llama-server shows it: its text when it is valid UTF-8, else its bytes */
function pieceOf(bytes: Uint8Array): Piece {
  try {
    return utf8.decode(bytes);
  } catch {
    return [...bytes];
  }
}
