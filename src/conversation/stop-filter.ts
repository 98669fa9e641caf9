// OpenAI's `stop`: generation ends where one of the strings first appears, and the matched text is
// not returned. Text that might be the start of a stop string is held back until it is not.
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
    let cut = -1;
    for (const s of this.stops) {
      const at = buf.indexOf(s);
      if (at >= 0 && (cut < 0 || at < cut)) (cut = at), (this.matched = s);
    }
    if (cut >= 0) {
      this.stopped = true;
      this.#held = "";
      return buf.slice(0, cut);
    }
    // hold back the longest end of buf that begins some stop string
    let keep = 0;
    for (const s of this.stops) {
      for (let len = Math.min(s.length - 1, buf.length); len > keep; len--) {
        if (buf.endsWith(s.slice(0, len))) {
          keep = len;
          break;
        }
      }
    }
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
