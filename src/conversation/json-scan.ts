// Where a JSON value ends in text that may still be arriving: enough of a scanner to stream tool
// calls (strings, nesting and escapes are respected; the value is not validated).

/** Index after the whitespace at `from`. */
export function skipSpace(text: string, from: number): number {
  let i = from;
  while (i < text.length && (text[i] === " " || text[i] === "\n" || text[i] === "\t" || text[i] === "\r")) i++;
  return i;
}

/** End (exclusive) of the JSON string opening at `at`, or -1 when the text ends first. */
export function stringEnd(text: string, at: number): number {
  for (let j = at + 1; j < text.length; j++) {
    if (text[j] === "\\") j++;
    else if (text[j] === '"') return j + 1;
  }
  return -1;
}

/** End (exclusive) of the JSON value starting at `from` (after whitespace), or -1 when the text ends first. */
export function valueEnd(text: string, from: number): number {
  let i = skipSpace(text, from);
  if (i >= text.length) return -1;
  const c = text[i];
  if (c === '"') return stringEnd(text, i);
  if (c === "{" || c === "[") {
    let depth = 0;
    for (; i < text.length; i++) {
      const ch = text[i];
      if (ch === '"') {
        const e = stringEnd(text, i);
        if (e < 0) return -1;
        i = e - 1;
      } else if (ch === "{" || ch === "[") depth++;
      else if ((ch === "}" || ch === "]") && --depth === 0) return i + 1;
    }
    return -1;
  }
  // a number, true, false or null: up to the next delimiter (the text may still be growing)
  while (i < text.length && !" \n\t\r,]}".includes(text[i]!)) i++;
  return i < text.length ? i : -1;
}

/**
 * The decoded text of a JSON string's characters so far (`raw`: after the opening quote, no closing
 * quote), and how many raw characters that used: an escape cut in half waits for the rest.
 */
export function decodePartialString(raw: string): { text: string; used: number } {
  let used = raw.length;
  const slash = raw.lastIndexOf("\\");
  if (slash >= 0) {
    // count the backslashes ending at `slash`: an odd run means an escape starts there
    let run = 0;
    for (let j = slash; j >= 0 && raw[j] === "\\"; j--) run++;
    const need = raw[slash + 1] === "u" ? 6 : 2;
    if (run % 2 === 1 && raw.length - slash < need) used = slash;
  }
  try {
    return { text: JSON.parse(`"${raw.slice(0, used)}"`) as string, used };
  } catch {
    return { text: "", used: 0 };
  }
}
