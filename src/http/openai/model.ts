// Request schemas of the OpenAI-compatible routes (/v1/completions, /v1/chat/completions): every
// field of OpenAI's request bodies, plus our extensions (top_k, repetition_penalty, num_beams,
// length_penalty, request_id) and llama-server's (json_schema, grammar). Fields that change nothing
// here are accepted; values we cannot honour are refused by the service (src/http/openai/request-check.ts),
// naming the field. Unknown fields are refused, as OpenAI refuses them.
import { t } from "elysia";
import { Int, JsonSchema, Nullable } from "../generate/model.ts";


/** stop: one string or up to MAX_STOP (16) of them */
const MAX_STOP = 16;
export const Stop = t.Union([t.String({ minLength: 1, maxLength: 512 }), t.Array(t.String({ minLength: 1, maxLength: 512 }), { maxItems: MAX_STOP })]);

const common = {
  model: t.Optional(t.String({ maxLength: 512 })),
  temperature: Nullable(t.Number({ minimum: 0, maximum: 2 })),
  top_p: Nullable(t.Number({ exclusiveMinimum: 0, maximum: 1 })),
  n: Nullable(Int({ minimum: 1, maximum: 16 })),
  stream: Nullable(t.Boolean()),
  stream_options: Nullable(t.Object({ include_usage: Nullable(t.Boolean()), include_obfuscation: Nullable(t.Boolean()) }, { additionalProperties: false })),
  stop: Nullable(Stop),
  seed: Nullable(Int({ minimum: 0, maximum: 2 ** 32 - 1 })),
  user: Nullable(t.String({ maxLength: 512 })),
  // accepted, and change nothing here
  store: Nullable(t.Boolean()),
  metadata: Nullable(t.Record(t.String(), t.String({ maxLength: 512 }), { maxProperties: 16 })),
  service_tier: Nullable(t.String({ maxLength: 64 })),
  safety_identifier: Nullable(t.String({ maxLength: 512 })),
  prompt_cache_key: Nullable(t.String({ maxLength: 512 })),
  prompt_cache_retention: Nullable(t.String({ maxLength: 64 })),
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
    echo: Nullable(t.Boolean()),
    best_of: Nullable(Int({ minimum: 1, maximum: 16 })),
    suffix: Nullable(t.String()),
  },
  { additionalProperties: false },
);

/** a content part: text (and refusal) is read; any other kind is refused by the service, naming it */
const ContentPart = t.Object({ type: t.String({ maxLength: 64 }), text: t.Optional(t.String()), refusal: t.Optional(t.String()) }, { additionalProperties: true });

const ToolCallIn = t.Object(
  {
    id: t.String({ minLength: 1, maxLength: 512 }),
    type: t.Optional(t.Literal("function")),
    function: t.Object({ name: t.String({ minLength: 1, maxLength: 256 }), arguments: t.String() }, { additionalProperties: false }),
  },
  { additionalProperties: false },
);

/** one shape for every role (the service checks what each role needs), so that a bad role is named as such */
export const ChatMessage = t.Object(
  {
    role: t.Union([t.Literal("system"), t.Literal("developer"), t.Literal("user"), t.Literal("assistant"), t.Literal("tool")]),
    content: t.Optional(t.Union([t.String(), t.Array(ContentPart, { maxItems: 256 }), t.Null()])),
    name: Nullable(t.String({ maxLength: 256 })),
    tool_calls: Nullable(t.Array(ToolCallIn, { maxItems: 128 })),
    tool_call_id: Nullable(t.String({ maxLength: 512 })),
    refusal: Nullable(t.String()),
    audio: t.Optional(t.Unknown()),
    function_call: t.Optional(t.Unknown()),
  },
  { additionalProperties: false },
);

export const ToolIn = t.Object(
  {
    type: t.String({ maxLength: 64 }),
    function: t.Optional(t.Object(
      {
        name: t.String({ pattern: "^[A-Za-z0-9_.:-]{1,64}$" }),
        description: Nullable(t.String()),
        parameters: t.Optional(JsonSchema),
        strict: Nullable(t.Boolean()),
      },
      { additionalProperties: false },
    )),
  },
  { additionalProperties: true },
);

export const ChatBody = t.Object(
  {
    ...common,
    messages: t.Array(ChatMessage, { minItems: 1, maxItems: 4096 }),
    max_tokens: Nullable(Int({ minimum: 1 })),
    max_completion_tokens: Nullable(Int({ minimum: 1 })),
    logprobs: Nullable(t.Boolean()),
    top_logprobs: Nullable(Int({ minimum: 0, maximum: 20 })),
    tools: Nullable(t.Array(ToolIn, { maxItems: 128 })),
    tool_choice: Nullable(t.Union([t.String({ maxLength: 64 }), t.Record(t.String(), t.Unknown())])),
    parallel_tool_calls: Nullable(t.Boolean()),
    // refused by the service unless neutral: what a text-only model cannot do
    modalities: Nullable(t.Array(t.String({ maxLength: 32 }), { maxItems: 4 })),
    audio: t.Optional(t.Unknown()),
    prediction: t.Optional(t.Unknown()),
    reasoning_effort: Nullable(t.String({ maxLength: 32 })),
    verbosity: Nullable(t.String({ maxLength: 32 })),
    web_search_options: t.Optional(t.Unknown()),
    functions: t.Optional(t.Unknown()),
    function_call: t.Optional(t.Unknown()),
  },
  { additionalProperties: false },
);

export type CompletionInput = typeof CompletionBody.static;
export type ChatInput = typeof ChatBody.static;
export type ChatMessageInput = typeof ChatMessage.static;
