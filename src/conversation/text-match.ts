// Finding strings in streamed text: where the first of several appears, and how much of the end
// may still be the start of one (held back until the next chunk says). Stop strings and tool-call
// markers both stream this way.

/** The earliest occurrence of any needle (the first listed of those starting there), or null. */
export function earliest(text: string, needles: readonly string[]): { at: number; index: number } | null {
  let best: { at: number; index: number } | null = null;
  needles.forEach((n, index) => {
    const at = text.indexOf(n);
    if (at >= 0 && (!best || at < best.at)) best = { at, index };
  });
  return best;
}

/** Length of the longest end of `text` that begins some needle (without being all of it). */
export function partialTail(text: string, needles: readonly string[]): number {
  let keep = 0;
  for (const n of needles) {
    for (let len = Math.min(n.length - 1, text.length); len > keep; len--) {
      if (text.endsWith(n.slice(0, len))) {
        keep = len;
        break;
      }
    }
  }
  return keep;
}
