// A reply's text as it streams, split into content and tool calls. Two shapes cover the formats:
// MarkerParser, text in which calls open at a marker (<tool_call>, [TOOL_CALLS], {"name"), and
// JsonReplyParser, a reply that is one JSON object: {"tool_calls": […]} or {"response": "…"}.
// Text that might be the start of a marker is held back until it is not, so no markup leaks
// into content however the stream is cut into chunks.
import { CallStream, type CallSink } from "./call-stream.ts";
import { decodePartialString, skipSpace, stringEnd } from "./json-scan.ts";
import type { ReplyEvent } from "./types.ts";
import { randomHex } from "../ids.ts";
import { earliest, partialTail } from "./text-match.ts";

export interface ReplyParser {
  push(text: string): ReplyEvent[];
  /** the reply ended: what was held back */
  end(): ReplyEvent[];
}

export const newCallId = () => `call_${randomHex(24)}`;

abstract class Base implements ReplyParser {
  protected out: ReplyEvent[] = [];
  #calls = 0;
  protected readonly sink: CallSink = {
    emit: (e) => this.out.push(e),
    open: () => ({ index: this.#calls++, id: newCallId() }),
  };

  protected text(text: string): void {
    if (!text) return;
    const last = this.out.at(-1);
    if (last?.type === "text") last.text += text;
    else this.out.push({ type: "text", text });
  }

  protected take(): ReplyEvent[] {
    return this.out.splice(0);
  }

  abstract push(text: string): ReplyEvent[];
  abstract end(): ReplyEvent[];
}

export interface MarkerSyntax {
  /** where calls open; `inBody`: the marker is the start of the call's JSON ({"name") */
  markers: { text: string; inBody: boolean }[];
  /** the body is an array of calls ([TOOL_CALLS][…]) rather than one call */
  array: boolean;
  /** what closes the body (</tool_call>), if anything */
  close?: string;
}

export class MarkerParser extends Base {
  #buf = "";
  #state: "text" | "body" | "close" = "text";
  #body: CallStream | null = null;
  /** whitespace after a call is held: it is content only if more text follows */
  #afterCall = false;

  readonly #markerTexts: string[];

  constructor(private readonly syntax: MarkerSyntax) {
    super();
    this.#markerTexts = syntax.markers.map((m) => m.text);
  }

  push(text: string): ReplyEvent[] {
    this.#buf += text;
    this.#run();
    return this.take();
  }

  end(): ReplyEvent[] {
    // an unfinished call (cut by max_tokens) is dropped rather than shown as markup
    if (this.#state === "text" && !(this.#afterCall && this.#buf.trim() === "")) this.text(this.#buf);
    this.#buf = "";
    return this.take();
  }

  #run(): void {
    for (;;) {
      if (this.#state === "text") {
        const hit = this.#firstMarker();
        if (!hit) {
          const cut = this.#buf.length - this.#partialMarker();
          const text = this.#buf.slice(0, cut);
          if (this.#afterCall && text.trim() === "") return; // only whitespace since the last call: held
          this.text(text);
          this.#afterCall = false;
          this.#buf = this.#buf.slice(cut);
          return;
        }
        const before = this.#buf.slice(0, hit.at);
        if (!(this.#afterCall && before.trim() === "")) this.text(before); // whitespace between calls is not content
        this.#buf = this.#buf.slice(hit.inBody ? hit.at : hit.at + hit.text.length);
        this.#state = "body";
        this.#body = new CallStream(this.syntax.array, this.sink);
      } else if (this.#state === "body") {
        const fed = this.#body!.feed(this.#buf);
        if (fed === "pending") return;
        if (fed === "invalid") {
          // not a call after all: the text stays content
          if (this.#body!.calls === 0) this.text(this.#buf);
          this.#buf = "";
          this.#state = "text";
          return;
        }
        this.#buf = this.#buf.slice(fed);
        this.#afterCall = true;
        this.#state = this.syntax.close ? "close" : "text";
      } else {
        const close = this.syntax.close!;
        const at = skipSpace(this.#buf, 0);
        const rest = this.#buf.slice(at);
        if (rest.length < close.length && close.startsWith(rest)) return; // may still be the close
        this.#buf = rest.startsWith(close) ? rest.slice(close.length) : this.#buf;
        this.#state = "text";
      }
    }
  }

  #firstMarker(): { at: number; text: string; inBody: boolean } | null {
    const hit = earliest(this.#buf, this.#markerTexts);
    return hit && { at: hit.at, ...this.syntax.markers[hit.index]! };
  }

  /** length of the longest end of the buffer that begins some marker */
  #partialMarker(): number {
    return partialTail(this.#buf, this.#markerTexts);
  }
}

const CALLS = /^\{\s*"tool_calls"\s*:\s*/;
const RESPONSE = /^\{\s*"response"\s*:\s*"/;

/** A reply that is one JSON object: {"tool_calls": [{"name", "arguments"}…]} or {"response": "…"}. */
export class JsonReplyParser extends Base {
  #buf = "";
  #mode: "undecided" | "calls" | "response" | "plain" | "done" = "undecided";
  #from = 0; // the body's start in #buf
  #body: CallStream | null = null;

  push(text: string): ReplyEvent[] {
    this.#buf += text;
    this.#run();
    return this.take();
  }

  end(): ReplyEvent[] {
    if (this.#mode === "undecided" || this.#mode === "plain") this.#whole();
    this.#mode = "done";
    return this.take();
  }

  #run(): void {
    if (this.#mode === "undecided") {
      const at = skipSpace(this.#buf, 0);
      const head = this.#buf.slice(at, at + 64);
      let m: RegExpExecArray | null;
      if ((m = CALLS.exec(head))) {
        this.#mode = "calls";
        this.#from = at + m[0].length;
        this.#body = new CallStream(true, this.sink);
      } else if ((m = RESPONSE.exec(head))) {
        this.#mode = "response";
        this.#from = at + m[0].length;
      } else if (head.length > 0 && (head[0] !== "{" || head.length >= 40)) this.#mode = "plain";
    }
    if (this.#mode === "calls") {
      const fed = this.#body!.feed(this.#buf.slice(this.#from));
      if (fed !== "pending") this.#mode = "done";
    } else if (this.#mode === "response") {
      const end = stringEnd(this.#buf, this.#from - 1);
      const raw = this.#buf.slice(this.#from, end < 0 ? undefined : end - 1);
      const { text, used } = decodePartialString(raw);
      this.text(text);
      this.#from += used;
      if (end >= 0) this.#mode = "done";
    }
  }

  /** Not the expected shape while streaming: read the whole reply once it ended. */
  #whole(): void {
    let v: { tool_calls?: unknown; response?: unknown } | null = null;
    try {
      v = JSON.parse(this.#buf);
    } catch {}
    // an answer under response_format is itself JSON: its text is that JSON
    if (v && typeof v === "object" && "response" in v) return this.text(typeof v.response === "string" ? v.response : JSON.stringify(v.response));
    if (v && typeof v === "object" && Array.isArray(v.tool_calls)) {
      const body = new CallStream(true, this.sink);
      if (typeof body.feed(JSON.stringify(v.tool_calls)) === "number") return;
    }
    this.text(this.#buf);
  }
}
