// Request schemas of the OpenAI-compatible routes (/v1/completions, /v1/chat/completions), the
// fields of OpenAI's API this server honours plus our extensions (top_k, repetition_penalty,
// num_beams, length_penalty, request_id). Unknown fields are refused, as OpenAI refuses them.
import { t } from "elysia";
import { JsonSchema } from "../generate/model.ts";

/** integers must be JSON numbers (no "16" strings), as on the seed API */
const Int = (o: { minimum?: number; maximum?: number } = {}) => t.Number({ ...o, multipleOf: 1 });
const Nullable = <T extends Parameters<typeof t.Optional>[0]>(s: T) => t.Optional(t.Union([s, t.Null()]));

/** stop: one string or up to MAX_STOP (16) of them */
export const MAX_STOP = 16;
const Stop = t.Union([t.String({ minLength: 1, maxLength: 512 }), t.Array(t.String({ minLength: 1, maxLength: 512 }), { maxItems: MAX_STOP })]);

const common = {
  model: t.Optional(t.String({ maxLength: 512 })),
  temperature: Nullable(t.Number({ minimum: 0, maximum: 2 })),
  top_p: Nullable(t.Number({ exclusiveMinimum: 0, maximum: 1 })),
  n: Nullable(Int({ minimum: 1, maximum: 16 })),
  stream: Nullable(t.Boolean()),
  stream_options: Nullable(t.Object({ include_usage: t.Optional(t.Boolean()) }, { additionalProperties: false })),
  stop: Nullable(Stop),
  seed: Nullable(Int({ minimum: 0, maximum: 2 ** 32 - 1 })),
  user: t.Optional(t.String({ maxLength: 512 })),
  // accepted at their neutral values only, until the sampler implements them
  presence_penalty: Nullable(t.Number({ minimum: -2, maximum: 2 })),
  frequency_penalty: Nullable(t.Number({ minimum: -2, maximum: 2 })),
  logit_bias: Nullable(t.Record(t.String(), t.Number({ minimum: -100, maximum: 100 }))),
  // structured output: OpenAI's response_format, or llama-server's json_schema / grammar
  response_format: Nullable(t.Union([
    t.Object({ type: t.Literal("text") }, { additionalProperties: false }),
    t.Object({ type: t.Literal("json_object") }, { additionalProperties: false }),
    t.Object({
      type: t.Literal("json_schema"),
      json_schema: t.Object({
        name: t.String({ maxLength: 256 }), description: t.Optional(t.String()), schema: t.Optional(JsonSchema), strict: Nullable(t.Boolean()),
      }, { additionalProperties: false }),
    }, { additionalProperties: false }),
  ])),
  json_schema: Nullable(JsonSchema),
  grammar: Nullable(t.String()),
  // extensions
  top_k: t.Optional(Int({ minimum: 0 })),
  repetition_penalty: t.Optional(t.Number({ exclusiveMinimum: 0 })),
  num_beams: t.Optional(Int({ minimum: 1 })),
  length_penalty: t.Optional(t.Number()),
  request_id: t.Optional(t.String({ minLength: 1, maxLength: 512 })),
};

export const CompletionBody = t.Object(
  {
    ...common,
    prompt: t.Union([t.String(), t.Array(t.String(), { minItems: 1, maxItems: 64 })]),
    max_tokens: Nullable(Int({ minimum: 1 })),
    logprobs: Nullable(Int({ minimum: 0, maximum: 5 })),
    echo: t.Optional(t.Boolean()),
  },
  { additionalProperties: false },
);

const TextPart = t.Object({ type: t.Literal("text"), text: t.String() }, { additionalProperties: false });

export const ChatMessage = t.Object(
  {
    role: t.Union([t.Literal("system"), t.Literal("developer"), t.Literal("user"), t.Literal("assistant")]),
    content: t.Union([t.String(), t.Array(TextPart, { maxItems: 256 })]),
    name: t.Optional(t.String({ maxLength: 256 })),
  },
  { additionalProperties: false },
);

export const ChatBody = t.Object(
  {
    ...common,
    messages: t.Array(ChatMessage, { minItems: 1, maxItems: 4096 }),
    max_tokens: Nullable(Int({ minimum: 1 })),
    max_completion_tokens: Nullable(Int({ minimum: 1 })),
    logprobs: Nullable(t.Boolean()),
    top_logprobs: Nullable(Int({ minimum: 0, maximum: 20 })),
  },
  { additionalProperties: false },
);

export type CompletionInput = typeof CompletionBody.static;
export type ChatInput = typeof ChatBody.static;
export type ChatMessageInput = typeof ChatMessage.static;
