// Streams tool calls out of JSON text as it arrives: one call object ({"name": …, "arguments": …},
// or Llama's "parameters") or an array of them. The name is announced once complete, then the
// arguments go out in fragments as they are written; an object in another key order is read whole
// once it is complete.
import { skipSpace, valueEnd } from "./json-scan.ts";
import type { ReplyEvent } from "./types.ts";

const HEAD = /^\{\s*"name"\s*:\s*("(?:[^"\\]|\\.)*")\s*,\s*"(?:arguments|parameters)"\s*:\s*/;

export interface CallSink {
  emit(e: ReplyEvent): void;
  /** a new call: its index and id */
  open(): { index: number; id: string };
}

/** "pending": more text is needed; "invalid": not tool-call JSON; a number: where the calls end. */
export type Fed = "pending" | "invalid" | number;

export class CallStream {
  #state: "start" | "first" | "object" | "between" = "start";
  #pos = 0; // where reading resumes
  #call: { index: number; argsAt: number; sent: number } | null = null;
  calls = 0;

  constructor(private readonly array: boolean, private readonly sink: CallSink) {}

  /** Reads what `text` (the body from its start) adds; call again with the longer text. */
  feed(text: string): Fed {
    for (;;) {
      const at = skipSpace(text, this.#pos);
      if (at >= text.length) return "pending";
      switch (this.#state) {
        case "start":
          if (this.array && text[at] !== "[") return "invalid";
          this.#pos = this.array ? at + 1 : at;
          this.#state = this.array ? "first" : "object";
          continue;
        case "first":
        case "between":
          if (text[at] === "]") return at + 1;
          if (this.#state === "between") {
            if (text[at] !== ",") return "invalid";
            this.#pos = at + 1;
          } else this.#pos = at;
          this.#state = "object";
          continue;
        case "object": {
          if (text[at] !== "{") return "invalid";
          this.#pos = at;
          if (!this.#stream(text, at)) return "pending"; // the object cannot end before its arguments do
          const end = valueEnd(text, at);
          if (end < 0) return "pending";
          if (!this.#call && !this.#whole(text.slice(at, end))) return "invalid";
          this.#call = null;
          this.calls++;
          this.#pos = end;
          if (!this.array) return end;
          this.#state = "between";
          continue;
        }
      }
    }
  }

  /** The call's name once its head is complete, then whatever its arguments add; false while they are open. */
  #stream(text: string, at: number): boolean {
    if (!this.#call) {
      const head = HEAD.exec(text.slice(at, at + 4096));
      if (!head) return true;
      const { index, id } = this.sink.open();
      this.#call = { index, argsAt: at + head[0].length, sent: at + head[0].length };
      this.sink.emit({ type: "call", index, id, name: JSON.parse(head[1]!) as string });
    }
    const call = this.#call;
    if (call.sent === call.argsAt) call.sent = call.argsAt = skipSpace(text, call.argsAt); // the arguments start at their first character
    const end = valueEnd(text, call.argsAt);
    const upto = end < 0 ? text.length : end;
    if (upto > call.sent) {
      this.sink.emit({ type: "arguments", index: call.index, fragment: text.slice(call.sent, upto) });
      call.sent = upto;
    }
    return end >= 0;
  }

  /** A complete object in another key order: one call with all of its arguments at once. */
  #whole(json: string): boolean {
    let o: { name?: unknown; arguments?: unknown; parameters?: unknown };
    try {
      o = JSON.parse(json);
    } catch {
      return false;
    }
    if (!o || typeof o !== "object" || typeof o.name !== "string") return false;
    const args = o.arguments ?? o.parameters ?? {};
    const { index, id } = this.sink.open();
    this.sink.emit({ type: "call", index, id, name: o.name });
    this.sink.emit({ type: "arguments", index, fragment: typeof args === "string" ? args : JSON.stringify(args) });
    return true;
  }
}
