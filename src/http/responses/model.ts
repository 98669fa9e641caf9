// Request schema of POST /v1/responses: every field of OpenAI's Responses API body. Items and tools
// are checked by input.ts with messages that name the item (input[2].call_id); fields that change
// nothing here are accepted, values this server cannot honour are refused by name (service.ts).
import { t } from "elysia";
import { Int, JsonSchema, Nullable } from "../generate/model.ts";
import { Stop } from "../openai/model.ts";

const Item = t.Record(t.String(), t.Unknown());

const TextFormat = t.Union([
  t.Object({ type: t.Literal("text") }, { additionalProperties: false }),
  t.Object({ type: t.Literal("json_object") }, { additionalProperties: false }),
  t.Object({
    type: t.Literal("json_schema"), name: t.String({ maxLength: 256 }), schema: JsonSchema,
    description: Nullable(t.String()), strict: Nullable(t.Boolean()),
  }, { additionalProperties: false }),
]);

export const ResponseBody = t.Object(
  {
    model: t.Optional(t.String({ maxLength: 512 })),
    input: t.Union([t.String(), t.Array(Item, { maxItems: 4096 })]),
    instructions: Nullable(t.String()),
    previous_response_id: Nullable(t.String({ maxLength: 256 })),
    max_output_tokens: Nullable(Int({ minimum: 1 })),
    temperature: Nullable(t.Number({ minimum: 0, maximum: 2 })),
    top_p: Nullable(t.Number({ exclusiveMinimum: 0, maximum: 1 })),
    tools: Nullable(t.Array(Item, { maxItems: 128 })),
    tool_choice: Nullable(t.Union([t.String({ maxLength: 64 }), Item])),
    parallel_tool_calls: Nullable(t.Boolean()),
    max_tool_calls: Nullable(Int({ minimum: 1 })),
    text: Nullable(t.Object({ format: t.Optional(TextFormat), verbosity: Nullable(t.String({ maxLength: 32 })) }, { additionalProperties: false })),
    store: Nullable(t.Boolean()),
    metadata: Nullable(t.Record(t.String(), t.String({ maxLength: 512 }), { maxProperties: 16 })),
    stream: Nullable(t.Boolean()),
    stream_options: Nullable(t.Object({ include_obfuscation: Nullable(t.Boolean()) }, { additionalProperties: false })),
    user: Nullable(t.String({ maxLength: 512 })),
    safety_identifier: Nullable(t.String({ maxLength: 512 })),
    prompt_cache_key: Nullable(t.String({ maxLength: 512 })),
    prompt_cache_retention: Nullable(t.String({ maxLength: 64 })),
    service_tier: Nullable(t.String({ maxLength: 64 })),
    truncation: Nullable(t.Union([t.Literal("auto"), t.Literal("disabled")])),
    include: Nullable(t.Array(t.String({ maxLength: 128 }), { maxItems: 16 })),
    top_logprobs: Nullable(Int({ minimum: 0, maximum: 20 })),
    // refused unless neutral (service.ts)
    reasoning: t.Optional(t.Unknown()),
    background: Nullable(t.Boolean()),
    conversation: t.Optional(t.Unknown()),
    prompt: t.Optional(t.Unknown()),
    // extensions, as on /v1/chat/completions
    seed: Nullable(Int({ minimum: 0, maximum: 2 ** 32 - 1 })),
    top_k: t.Optional(Int({ minimum: 0 })),
    stop: Nullable(Stop),
  },
  { additionalProperties: false },
);

export type ResponseInput = typeof ResponseBody.static;
