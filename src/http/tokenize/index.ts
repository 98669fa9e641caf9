// llama-server's tokenizer routes: POST /tokenize and POST /detokenize (the seed API's error shape).
import { Elysia } from "elysia";
import { DetokenizeBody, DetokenizeResponse, TokenizeBody, TokenizeResponse } from "./model.ts";
import type { TokenizeService } from "./service.ts";

export const tokenizeRoutes = (service: TokenizeService) =>
  new Elysia({ name: "tokenize" })
    .post("/tokenize", ({ body }) => service.tokenize(body), {
      body: TokenizeBody,
      parse: "json", // for the OpenAPI description: the app's own onParse reads every body
      detail: { summary: "Text to the served model's token ids (llama-server's /tokenize: add_special, parse_special, with_pieces)" },
      response: { 200: TokenizeResponse },
    })
    .post("/detokenize", ({ body }) => service.detokenize(body), {
      body: DetokenizeBody,
      parse: "json",
      detail: { summary: "Token ids to text: their pieces one after another, special tokens rendered (llama-server's /detokenize)" },
      response: { 200: DetokenizeResponse },
    });
