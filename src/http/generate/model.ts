// Request schemas of the seed API contract (../shared/seed-api.md). Field names are binding.
import { t } from "elysia";

/**
 * An integer that must be a JSON number: t.Integer would also take numeric strings ("0x10" became
 * 16) because Elysia converts them; every numeric field refuses strings.
 */
export const Int = (o: { minimum?: number; maximum?: number } = {}) => t.Number({ ...o, multipleOf: 1 });

/** an optional field that may also be null (OpenAI's SDKs send nulls for fields they leave unset) */
export const Nullable = <T extends Parameters<typeof t.Optional>[0]>(s: T) => t.Optional(t.Union([s, t.Null()]));

/** a JSON Schema: an object (checked keyword by keyword when used) or a boolean */
export const JsonSchema = t.Union([t.Record(t.String(), t.Unknown()), t.Boolean()]);

export const GenerationConfig = t.Object(
  {
    num_beams: t.Optional(Int({ minimum: 1 })),
    do_sample: t.Optional(t.Boolean()),
    temperature: t.Optional(t.Number({ minimum: 0 })),
    top_p: t.Optional(t.Number({ exclusiveMinimum: 0, maximum: 1 })),
    top_k: t.Optional(Int({ minimum: 0 })),
    max_new_tokens: t.Optional(Int({ minimum: 1 })),
    repetition_penalty: t.Optional(t.Number({ exclusiveMinimum: 0 })),
    length_penalty: t.Optional(t.Number()),
    /** extension: fixes the random draws of do_sample for reproducible output */
    seed: t.Optional(Int({ minimum: 0, maximum: 2 ** 32 - 1 })),
    /** extension: the generated text is JSON valid under this JSON Schema */
    json_schema: t.Optional(JsonSchema),
    /** extension: the generated text matches this GBNF grammar (llama.cpp's format, root rule "root") */
    grammar: t.Optional(t.String()),
  },
  { additionalProperties: false },
);

const RequestId = t.String({ minLength: 1, maxLength: 512 });
/** may be empty (or anything) when the request_id has a session: the session's tokens are continued */
const Prompt = t.String();

export const GenerateOneBody = t.Object(
  {
    request_id: RequestId,
    prompt: Prompt,
    only_new_tokens: t.Optional(t.Boolean({ default: true })),
    stream_response: t.Optional(t.Boolean({ default: true })),
    generation_config: t.Optional(GenerationConfig),
  },
  { additionalProperties: false },
);

export const BatchPrompt = t.Object({ request_id: RequestId, prompt: Prompt }, { additionalProperties: false });

export const GenerateBatchBody = t.Object(
  {
    prompts: t.Array(BatchPrompt, { minItems: 1 }),
    only_new_tokens: t.Optional(t.Boolean({ default: true })),
    generation_config: t.Optional(GenerationConfig),
  },
  { additionalProperties: false },
);

/** What a generation started from; the `x-session` header of generate-one, `session` of batch items. */
export const SessionSource = t.Union([t.Literal("new"), t.Literal("continued"), t.Literal("restored"), t.Literal("recomputed")]);

export const BatchItem = t.Object({
  request_id: t.String(),
  prompt: t.Optional(t.String()),
  response: t.String(),
  session: SessionSource,
});

export type GenerationConfigInput = typeof GenerationConfig.static;
export type GenerateOneInput = typeof GenerateOneBody.static;
export type GenerateBatchInput = typeof GenerateBatchBody.static;
export type BatchItemOutput = typeof BatchItem.static;
