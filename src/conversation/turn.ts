// A conversation's next turn, whatever API asked for it: the prompt its chat template renders
// (tools included, in the model family's format), what constrains the reply, and a parser per
// choice that turns the reply's text into content and tool calls.
import type { ConstraintSpec } from "../constraints/messages.ts";
import type { ChatTemplate } from "./chat-template.ts";
import type { ReplyParser } from "./reply-parser.ts";
import { calling } from "./tool-formats/format.ts";
import { toolFormatOf } from "./tool-formats/index.ts";
import type { Conversation, ReplyEvent, ToolCall } from "./types.ts";

export interface TurnPlan {
  prompt: string;
  pieces: string[];
  /** the tool-call constraint (undefined: none this turn) */
  constraint?: ConstraintSpec;
  /** control-token texts the reply must show */
  specialText: string[];
  /** a parser for one choice's reply, or null when no tool can be called */
  parser(): ReplyParser | null;
}

/** Throws what the template raises (an HTTP adapter turns it into a 400). */
export function planTurn(template: ChatTemplate, conv: Conversation): TurnPlan {
  const format = toolFormatOf(template.source);
  const input = format.render(conv);
  let rendered: { prompt: string; pieces: string[] };
  try {
    rendered = template.pieces(input);
  } catch (err) {
    // Python's Jinja reads an undefined value as "" or an empty list (Hermes 3's template loops over
    // tools unguarded, trims every parameter's description, walks additionalProperties as a schema);
    // @huggingface/jinja refuses undefined there: again with those values filled in
    if (!/UndefinedValue/.test((err as Error).message)) throw err;
    rendered = template.pieces({ ...input, tools: input.tools ? input.tools.map(forStrictTemplates) : [] });
  }
  const { prompt, pieces } = rendered;
  return {
    prompt, pieces,
    constraint: format.constraint(conv),
    specialText: calling(conv) ? format.specialText : [],
    parser: () => format.parser(conv),
  };
}

/** A whole reply from its events: the content and the calls with their complete arguments. */
export class Reply {
  content = "";
  readonly calls: ToolCall[] = [];

  add(events: ReplyEvent[]): void {
    for (const e of events) {
      switch (e.type) {
        case "text": this.content += e.text; break;
        case "call": this.calls[e.index] = { id: e.id, name: e.name, arguments: "" }; break;
        case "arguments": this.calls[e.index]!.arguments += e.fragment; break;
        default: {
          const never: never = e;
          throw new Error(`unknown event ${JSON.stringify(never)}`);
        }
      }
    }
  }
}

/** a template tool with "" for each missing description and no boolean additionalProperties (for display only) */
function forStrictTemplates(tool: Record<string, unknown>): Record<string, unknown> {
  const f = tool.function as { description?: string; parameters?: Record<string, unknown> };
  const fill = (schema: unknown): unknown => {
    if (!schema || typeof schema !== "object" || Array.isArray(schema)) return schema;
    const s = { ...(schema as Record<string, unknown>) };
    if (typeof s.additionalProperties === "boolean") delete s.additionalProperties;
    if (s.properties && typeof s.properties === "object") {
      s.properties = Object.fromEntries(Object.entries(s.properties).map(([k, v]) => [k, { description: "", ...(fill(v) as object) }]));
    }
    if (s.items) s.items = fill(s.items);
    return s;
  };
  return { ...tool, function: { description: "", ...f, ...(f.parameters ? { parameters: fill(f.parameters) } : {}) } };
}
