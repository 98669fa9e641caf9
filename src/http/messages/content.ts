// A reply's events (text, tool calls, argument fragments) as Anthropic's content blocks: each run of
// text and each tool call is a block of its own, with its index. The same builder gives a streamed
// reply's content_block_* events and a whole reply's content, so both say the same thing.
// Whitespace alone before a tool call is held, and dropped when the call comes (as the chat
// adapter drops whitespace-only content beside calls).
import type { ReplyEvent } from "../../conversation/types.ts";

export type Block =
  | { type: "text"; text: string }
  | { type: "tool_use"; id: string; name: string; input: Record<string, unknown> };

/** a content_block_* event: its SSE name and data */
export type BlockEvent = [name: "content_block_start" | "content_block_delta" | "content_block_stop", data: object];

/** tool_use ids are Anthropic's toolu_…, made from the core's call_… ids */
const toolUseId = (callId: string) => `toolu_${callId.replace(/^call_/, "")}`;

type Open = { kind: "text"; index: number } | { kind: "tool"; index: number; call: number };

export class ContentBuilder {
  /** the blocks so far; a tool call's input stays its JSON text until close() */
  readonly #blocks: ({ type: "text"; text: string } | { type: "tool_use"; id: string; name: string; json: string })[] = [];
  #open: Open | null = null;
  #blockOfCall = new Map<number, number>();
  /** whitespace held until what follows it is known */
  #space = "";

  /** The events for these reply events, in order. */
  add(events: ReplyEvent[]): BlockEvent[] {
    const out: BlockEvent[] = [];
    for (const e of events) {
      switch (e.type) {
        case "text":
          this.#text(e.text, out);
          break;
        case "call": {
          this.#space = "";
          this.#close(out);
          const index = this.#blocks.length;
          const id = toolUseId(e.id);
          this.#blocks.push({ type: "tool_use", id, name: e.name, json: "" });
          this.#blockOfCall.set(e.index, index);
          this.#open = { kind: "tool", index, call: e.index };
          out.push(["content_block_start", { type: "content_block_start", index, content_block: { type: "tool_use", id, name: e.name, input: {} } }]);
          break;
        }
        case "arguments": {
          const index = this.#blockOfCall.get(e.index);
          const block = index === undefined ? undefined : this.#blocks[index];
          if (index === undefined || block?.type !== "tool_use" || e.fragment === "") break;
          block.json += e.fragment;
          out.push(["content_block_delta", { type: "content_block_delta", index, delta: { type: "input_json_delta", partial_json: e.fragment } }]);
          break;
        }
        default: {
          const never: never = e;
          throw new Error(`unknown event ${JSON.stringify(never)}`);
        }
      }
    }
    return out;
  }

  /** The reply ended: the last block's stop (and held whitespace of a reply without calls, as text). */
  close(): BlockEvent[] {
    const out: BlockEvent[] = [];
    if (this.#space && !this.#blocks.some((b) => b.type === "tool_use")) {
      const space = this.#space;
      this.#space = "";
      this.#text(space, out, true);
    }
    this.#close(out);
    return out;
  }

  /** The whole content: a tool call cut before its arguments were complete (max_tokens) is left out. */
  get content(): Block[] {
    const out: Block[] = [];
    for (const b of this.#blocks) {
      if (b.type === "text") out.push({ type: "text", text: b.text });
      else {
        const input = parseInput(b.json);
        if (input) out.push({ type: "tool_use", id: b.id, name: b.name, input });
      }
    }
    return out;
  }

  #text(text: string, out: BlockEvent[], force = false): void {
    if (text === "") return;
    if (this.#open?.kind !== "text" && !force) {
      // a new text block waits for something other than whitespace
      if (text.trim() === "") {
        this.#space += text;
        return;
      }
      text = this.#space + text;
      this.#space = "";
    }
    if (this.#open?.kind !== "text") {
      this.#close(out);
      const index = this.#blocks.length;
      this.#blocks.push({ type: "text", text: "" });
      this.#open = { kind: "text", index };
      out.push(["content_block_start", { type: "content_block_start", index, content_block: { type: "text", text: "" } }]);
    }
    const block = this.#blocks[this.#open.index] as { text: string };
    block.text += text;
    out.push(["content_block_delta", { type: "content_block_delta", index: this.#open.index, delta: { type: "text_delta", text } }]);
  }

  #close(out: BlockEvent[]): void {
    if (!this.#open) return;
    out.push(["content_block_stop", { type: "content_block_stop", index: this.#open.index }]);
    this.#open = null;
  }
}

/** a call's arguments as the object Anthropic's `input` is; null when they are not one (cut short) */
function parseInput(json: string): Record<string, unknown> | null {
  if (json.trim() === "") return {};
  try {
    const v = JSON.parse(json) as unknown;
    return v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}
