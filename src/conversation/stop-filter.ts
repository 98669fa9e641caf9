// OpenAI's `stop`: generation ends where one of the strings first appears, and the matched text is
// not returned. Text that might be the start of a stop string is held back until it is not.
import { earliest, partialTail } from "./text-match.ts";

/** OpenAI's `stop` field as a list: one string, several, or none */
export function stopList(stop: string | string[] | null | undefined): string[] {
  if (stop == null) return [];
  return typeof stop === "string" ? [stop] : stop;
}

export class StopFilter {
  #held = "";
  /** a stop string appeared: nothing more is emitted */
  stopped = false;
  /** the stop string that ended the text (the earliest in it; the first listed of those starting there) */
  matched: string | null = null;

  constructor(private readonly stops: readonly string[]) {}

  /** The part of `text` (after what was held back) that is safe to emit now. */
  push(text: string): string {
    if (this.stopped) return "";
    if (this.stops.length === 0) return text;
    const buf = this.#held + text;
    const hit = earliest(buf, this.stops);
    if (hit) {
      this.stopped = true;
      this.matched = this.stops[hit.index]!;
      this.#held = "";
      return buf.slice(0, hit.at);
    }
    const keep = partialTail(buf, this.stops);
    this.#held = buf.slice(buf.length - keep);
    return buf.slice(0, buf.length - keep);
  }

  /** The generation ended without a stop: what was held back is text after all. */
  flush(): string {
    const held = this.#held;
    this.#held = "";
    return this.stopped ? "" : held;
  }
}
