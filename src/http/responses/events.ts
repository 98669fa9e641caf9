// A reply as the Responses API's output items, built from its events in the order they were
// written (a message, a call, a message again…), with the typed stream events in the spec's order:
// output_item.added, content_part.added, output_text.delta… .done, content_part.done,
// output_item.done; function_call_arguments.delta… .done between a call's added and done. Each
// event carries its sequence_number.
import type { ReplyEvent } from "../../conversation/types.ts";
import { randomHex } from "../../ids.ts";

export const itemId = (prefix: string) => `${prefix}_${randomHex()}`;

const textPart = (text: string) => ({ type: "output_text", text, annotations: [], logprobs: [] });

type Open =
  | { kind: "message"; id: string; index: number; text: string }
  | { kind: "call"; id: string; index: number; callId: string; name: string; args: string };

/** Builds the output items and the stream's events; `emit(type, data)` writes one (null: a whole response, items only). */
export class ResponseEvents {
  #seq = 0;
  #open: Open | null = null;
  #items = 0;
  /** the items closed so far: the final response's output, the same items the stream showed */
  readonly items: Record<string, unknown>[] = [];

  constructor(private readonly emit: ((type: string, data: Record<string, unknown>) => void) | null) {}

  send(type: string, data: Record<string, unknown>): void {
    this.emit?.(type, { type, sequence_number: this.#seq++, ...data });
  }

  events(events: ReplyEvent[]): void {
    for (const e of events) {
      switch (e.type) {
        case "text": {
          if (this.#open?.kind !== "message") this.#openMessage();
          const m = this.#open as Extract<Open, { kind: "message" }>;
          m.text += e.text;
          this.send("response.output_text.delta", { item_id: m.id, output_index: m.index, content_index: 0, delta: e.text, logprobs: [] });
          break;
        }
        case "call": {
          this.close();
          const id = itemId("fc");
          this.#open = { kind: "call", id, index: this.#items++, callId: e.id, name: e.name, args: "" };
          this.send("response.output_item.added", { output_index: this.#open.index, item: { id, type: "function_call", status: "in_progress", call_id: e.id, name: e.name, arguments: "" } });
          break;
        }
        case "arguments": {
          const c = this.#open as Extract<Open, { kind: "call" }>;
          c.args += e.fragment;
          this.send("response.function_call_arguments.delta", { item_id: c.id, output_index: c.index, delta: e.fragment });
          break;
        }
        default: {
          const never: never = e;
          throw new Error(`unknown event ${JSON.stringify(never)}`);
        }
      }
    }
  }

  #openMessage(): void {
    this.close();
    const id = itemId("msg");
    this.#open = { kind: "message", id, index: this.#items++, text: "" };
    this.send("response.output_item.added", { output_index: this.#open.index, item: { id, type: "message", status: "in_progress", role: "assistant", content: [] } });
    this.send("response.content_part.added", { item_id: id, output_index: this.#open.index, content_index: 0, part: textPart("") });
  }

  /** Closes the item being streamed (its .done events). */
  close(): void {
    const o = this.#open;
    if (!o) return;
    this.#open = null;
    let item: Record<string, unknown>;
    if (o.kind === "message") {
      this.send("response.output_text.done", { item_id: o.id, output_index: o.index, content_index: 0, text: o.text, logprobs: [] });
      this.send("response.content_part.done", { item_id: o.id, output_index: o.index, content_index: 0, part: textPart(o.text) });
      item = { id: o.id, type: "message", status: "completed", role: "assistant", content: [textPart(o.text)] };
    } else {
      this.send("response.function_call_arguments.done", { item_id: o.id, output_index: o.index, name: o.name, arguments: o.args });
      item = { id: o.id, type: "function_call", status: "completed", call_id: o.callId, name: o.name, arguments: o.args };
    }
    this.items.push(item);
    this.send("response.output_item.done", { output_index: o.index, item });
  }

  /** A reply with neither text nor calls still has its (empty) message item, as in the whole response. */
  ensureItem(): void {
    if (this.#items === 0) this.#openMessage();
  }
}
