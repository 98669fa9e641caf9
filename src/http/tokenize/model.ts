// Request schemas of llama-server's /tokenize and /detokenize (its field names and defaults).
import { t } from "elysia";

/** a token id: a JSON integer (whether the vocabulary has it is the service's check) */
const TokenId = t.Number({ minimum: 0, maximum: 2 ** 31 - 1, multipleOf: 1 });

export const TokenizeBody = t.Object(
  {
    /** text, or llama-server's mixed form: strings and token ids, in order */
    content: t.Union([t.String(), t.Array(t.Union([t.String(), TokenId]))]),
    /** add the model's special tokens (BOS) as its tokenizer does; default false */
    add_special: t.Optional(t.Boolean()),
    /** control-token text such as "<|im_start|>" becomes that token; default true */
    parse_special: t.Optional(t.Boolean()),
    /** each token as {id, piece}: piece a string, or its bytes when they are not valid UTF-8; default false */
    with_pieces: t.Optional(t.Boolean()),
  },
  { additionalProperties: false },
);

export const DetokenizeBody = t.Object({ tokens: t.Array(TokenId) }, { additionalProperties: false });

export const TokenizeResponse = t.Object({
  tokens: t.Union([t.Array(t.Integer()), t.Array(t.Object({ id: t.Integer(), piece: t.Union([t.String(), t.Array(t.Integer())]) }))]),
});
export const DetokenizeResponse = t.Object({ content: t.String() });

export type TokenizeInput = typeof TokenizeBody.static;
export type DetokenizeInput = typeof DetokenizeBody.static;
