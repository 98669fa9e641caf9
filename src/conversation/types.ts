// The conversation core's vocabulary, shared by every API surface (chat completions today; the
// Responses and Messages APIs later): a conversation (messages, tools), and what a turn produces.

/** A function the model may call: its JSON-Schema parameters constrain the call's arguments. */
export interface Tool {
  name: string;
  description?: string;
  /** JSON Schema of the arguments object (absent: any object) */
  parameters?: Record<string, unknown>;
  strict?: boolean;
}

/** none: never call; auto: the model decides; required: at least one call; a name: exactly that tool */
export type ToolChoice = "none" | "auto" | "required" | { name: string };

export interface ToolCall {
  id: string;
  name: string;
  /** the arguments as JSON text, as OpenAI sends them */
  arguments: string;
}

export type Message =
  | { role: "system" | "developer" | "user"; content: string; name?: string }
  | { role: "assistant"; content: string | null; toolCalls?: ToolCall[]; name?: string }
  | { role: "tool"; content: string; toolCallId: string; name?: string };

export interface Conversation {
  messages: Message[];
  tools: Tool[];
  toolChoice: ToolChoice;
  /** more than one call in one answer */
  parallelToolCalls: boolean;
  /** the most calls in one answer (MAX_TOOL_CALLS; 1 without parallel calls) */
  maxToolCalls: number;
  /** the JSON Schema a reply that calls no tool must match (response_format beside tools) */
  answerSchema?: Record<string, unknown>;
}

/** What a reply's text becomes, in order, as it streams: text, and tool calls (name first, then argument fragments). */
export type ReplyEvent =
  | { type: "text"; text: string }
  | { type: "call"; index: number; id: string; name: string }
  | { type: "arguments"; index: number; fragment: string };
