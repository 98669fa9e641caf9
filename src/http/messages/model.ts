// Request schemas of Anthropic's Messages API (POST /v1/messages, /v1/messages/count_tokens): every
// field of its request body. What a text-only model cannot do (image and document blocks, server
// tools, extended thinking, containers) is accepted by shape and refused by the service, naming the
// field; fields that change nothing here are accepted; unknown fields are refused, as Anthropic does.
import { t } from "elysia";
import { Int, JsonSchema, Nullable } from "../generate/model.ts";

/** integers must be JSON numbers (no "16" strings), as on the other APIs */
const Closed = { additionalProperties: false } as const;

/** prompt caching is automatic here (every prefix is reused): the marker is accepted and changes nothing */
const CacheControl = Nullable(t.Object({ type: t.Literal("ephemeral"), ttl: t.Optional(t.Union([t.Literal("5m"), t.Literal("1h")])) }, Closed));

const TextBlock = t.Object(
  { type: t.Literal("text"), text: t.String(), cache_control: CacheControl, citations: Nullable(t.Array(t.Unknown())) },
  Closed,
);

/** block types a text-only model cannot read, or that only Anthropic's own server tools produce */
export const UNSUPPORTED_BLOCKS = [
  "image", "document", "search_result", "container_upload", "tool_reference", "server_tool_use", "web_search_tool_result",
  "web_fetch_tool_result", "code_execution_tool_result", "bash_code_execution_tool_result",
  "text_editor_code_execution_tool_result", "tool_search_tool_result", "mcp_tool_use", "mcp_tool_result",
] as const;
export type UnsupportedBlock = (typeof UNSUPPORTED_BLOCKS)[number];
const Unsupported = t.Union(UNSUPPORTED_BLOCKS.map((type) => t.Object({ type: t.Literal(type) }, { additionalProperties: true })));

const ToolUseBlock = t.Object(
  {
    type: t.Literal("tool_use"),
    id: t.String({ minLength: 1, maxLength: 512 }),
    name: t.String({ minLength: 1, maxLength: 256 }),
    input: t.Record(t.String(), t.Unknown()),
    cache_control: CacheControl,
    caller: t.Optional(t.Object({ type: t.String({ maxLength: 64 }) }, { additionalProperties: true })),
  },
  Closed,
);

const ToolResultBlock = t.Object(
  {
    type: t.Literal("tool_result"),
    tool_use_id: t.String({ minLength: 1, maxLength: 512 }),
    content: t.Optional(t.Union([t.String(), t.Array(t.Union([TextBlock, Unsupported]), { maxItems: 1024 })])),
    is_error: t.Optional(t.Boolean()),
    cache_control: CacheControl,
    toolset_name: Nullable(t.String({ maxLength: 256 })),
  },
  Closed,
);

/** earlier turns' thinking (from another model): dropped, as Anthropic drops it from the context */
const ThinkingBlock = t.Object({ type: t.Literal("thinking"), thinking: t.String(), signature: t.Optional(t.String()) }, Closed);
const RedactedThinkingBlock = t.Object({ type: t.Literal("redacted_thinking"), data: t.String() }, Closed);

const ContentBlock = t.Union([TextBlock, ToolUseBlock, ToolResultBlock, ThinkingBlock, RedactedThinkingBlock, ...Unsupported.anyOf]);

export const MessageParam = t.Object(
  {
    role: t.Union([t.Literal("user"), t.Literal("assistant"), t.Literal("system")]),
    content: t.Union([t.String(), t.Array(ContentBlock, { maxItems: 4096 })]),
  },
  Closed,
);

/** a custom tool; server tools (web_search_…, bash_…) have a type of their own and are refused by name */
const ToolParam = t.Object(
  {
    name: t.String({ pattern: "^[A-Za-z0-9_-]{1,128}$" }),
    type: Nullable(t.String({ maxLength: 64 })),
    description: t.Optional(t.String()),
    input_schema: t.Optional(JsonSchema),
    strict: t.Optional(t.Boolean()),
    cache_control: CacheControl,
    eager_input_streaming: Nullable(t.Boolean()),
    input_examples: t.Optional(t.Array(t.Record(t.String(), t.Unknown()), { maxItems: 64 })),
    defer_loading: t.Optional(t.Boolean()),
    allowed_callers: t.Optional(t.Array(t.String({ maxLength: 64 }), { maxItems: 8 })),
  },
  { additionalProperties: true },
);

const Parallel = { disable_parallel_tool_use: t.Optional(t.Boolean()) };
const ToolChoiceParam = t.Union([
  t.Object({ type: t.Literal("auto"), ...Parallel }, Closed),
  t.Object({ type: t.Literal("any"), ...Parallel }, Closed),
  t.Object({ type: t.Literal("tool"), name: t.String({ minLength: 1, maxLength: 128 }), ...Parallel }, Closed),
  t.Object({ type: t.Literal("none") }, Closed),
]);

const ThinkingParam = t.Union([
  t.Object({ type: t.Literal("disabled") }, Closed),
  t.Object({ type: t.Literal("adaptive"), display: Nullable(t.String({ maxLength: 32 })) }, Closed),
  t.Object({ type: t.Literal("enabled"), budget_tokens: Int({ minimum: 0 }), display: Nullable(t.String({ maxLength: 32 })) }, Closed),
  t.Object({ type: t.Literal("between_tools") }, Closed),
]);

const OutputConfig = t.Object(
  {
    effort: Nullable(t.Union(["low", "medium", "high", "xhigh", "max"].map((e) => t.Literal(e)))),
    /** structured output: the answer follows the JSON Schema */
    format: Nullable(t.Object({ type: t.Literal("json_schema"), schema: t.Record(t.String(), t.Unknown()) }, Closed)),
  },
  Closed,
);

/** what /v1/messages and /v1/messages/count_tokens both take */
const common = {
  model: t.String({ minLength: 1, maxLength: 512 }),
  messages: t.Array(MessageParam, { minItems: 1, maxItems: 10000 }),
  system: t.Optional(t.Union([t.String(), t.Array(TextBlock, { maxItems: 1024 })])),
  tools: t.Optional(t.Array(ToolParam, { maxItems: 128 })),
  tool_choice: t.Optional(ToolChoiceParam),
  thinking: t.Optional(ThinkingParam),
  output_config: t.Optional(OutputConfig),
  /** the structured-outputs beta's spelling of output_config.format (deprecated, still sent by beta clients) */
  output_format: Nullable(t.Object({ type: t.Literal("json_schema"), schema: t.Record(t.String(), t.Unknown()) }, Closed)),
  cache_control: CacheControl,
  speed: Nullable(t.Union([t.Literal("standard"), t.Literal("fast")])),
  user_profile_id: t.Optional(t.String({ maxLength: 512 })),
  workspace_id: t.Optional(t.String({ maxLength: 512 })),
};

export const MessagesBody = t.Object(
  {
    ...common,
    max_tokens: Int({ minimum: 1 }),
    stop_sequences: t.Optional(t.Array(t.String({ minLength: 1, maxLength: 512 }), { maxItems: 64 })),
    stream: t.Optional(t.Boolean()),
    temperature: Nullable(t.Number({ minimum: 0, maximum: 1 })),
    top_p: Nullable(t.Number({ exclusiveMinimum: 0, maximum: 1 })),
    top_k: Nullable(Int({ minimum: 0 })),
    // accepted, and change nothing here
    metadata: t.Optional(t.Object({ user_id: Nullable(t.String({ maxLength: 512 })) }, Closed)),
    service_tier: t.Optional(t.Union([t.Literal("auto"), t.Literal("standard_only")])),
    inference_geo: Nullable(t.String({ maxLength: 64 })),
    // refused by the service unless null: what this server does not have
    container: t.Optional(t.Unknown()),
    diagnostics: t.Optional(t.Unknown()),
  },
  Closed,
);

export const CountTokensBody = t.Object(common, Closed);

export type MessagesInput = typeof MessagesBody.static;
export type CountTokensInput = typeof CountTokensBody.static;
export type CommonInput = MessagesInput | CountTokensInput;
export type ContentBlockInput = typeof ContentBlock.static;
