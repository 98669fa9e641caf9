// xgrammar's JSON-Schema converter writes the characters of a string with a length bound or a
// pattern as a plain character class: `[^"\\\r\n]{0,12}` for maxLength 12, `[\0-\U0010ffff]` for a
// pattern's ".". Those let a raw control character (a tab, U+0018) or, from a pattern, a raw quote
// or backslash into the string, and the answer is then not JSON at all; llama.cpp's converter
// does the same with a pattern (its `dot ::= [^\x0A\x0D]`, a pattern's `[^x]`). This rewrites the
// classes of the string rules so that they can only write what JSON allows unescaped. (Plain
// strings, basic_string and llama.cpp's `char`, already exclude them.)

/** code points a JSON string never holds unescaped: the controls, the quote and the backslash */
const FORBIDDEN: [number, number][] = [[0x00, 0x1f], [0x22, 0x22], [0x5c, 0x5c]];
const MAX = 0x10ffff;

/** xgrammar's converter's string rules: `string_3 ::= "\"" … "\""` */
const XGRAMMAR_STRINGS = /^string(_\d+)? ::= /;
/**
 * llama.cpp's converter's: every rule but `space` and `char` (a pattern's parts get rules of their
 * own, `word-1 ::= [^x]`; `char`'s escape classes hold a quote and a backslash on purpose; the other
 * classes it writes, digits and hex, are JSON-safe already and stay as written)
 */
export const CONVERTER_STRINGS = /^(?!(space|char) ::= )/;

/** A JSON-Schema converter's grammar, the classes of its string rules (`rules`) made JSON-safe. */
export function jsonSafeStrings(ebnf: string, rules = XGRAMMAR_STRINGS): string {
  return ebnf
    .split("\n")
    .map((line) => (rules.test(line) ? rewriteClasses(line) : line))
    .join("\n");
}

/** Each character class outside a quoted literal, rewritten. */
function rewriteClasses(line: string): string {
  let out = "";
  let i = 0;
  while (i < line.length) {
    const c = line[i]!;
    if (c === '"') {
      const end = skipEscaped(line, i + 1, '"');
      out += line.slice(i, end + 1);
      i = end + 1;
    } else if (c === "[") {
      const end = skipEscaped(line, i + 1, "]");
      out += safeClass(line.slice(i + 1, end));
      i = end + 1;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/** index of the first unescaped `close` from `from` */
function skipEscaped(s: string, from: number, close: string): number {
  let i = from;
  while (i < s.length && s[i] !== close) i += s[i] === "\\" ? 2 : 1;
  return i;
}

/** A class body (between the brackets) as a class that allows none of FORBIDDEN. */
function safeClass(body: string): string {
  const negated = body.startsWith("^");
  const listed = parseRanges(negated ? body.slice(1) : body);
  if (!listed) return `[${body}]`; // an escape this parser does not know: left as written
  const allowed = negated ? subtract([[0, MAX]], listed) : listed;
  const safe = subtract(allowed, FORBIDDEN);
  if (safe.length === 0) return `[${body}]`; // nothing JSON-safe: the pattern cannot be met either way
  if (sameRanges(safe, subtract(allowed, []))) return `[${body}]`; // safe as written
  const write = (rs: [number, number][]) => rs.map(([a, b]) => (a === b ? hex(a) : `${hex(a)}-${hex(b)}`)).join("");
  // all of non-ASCII: written as the ASCII it excludes (a positive class reaching U+10FFFF let
  // xgrammar allow bytes UTF-8 never uses, and a random model's string then never ended); anything
  // else as what it holds (xgrammar clamps a negated class's exclusions to ASCII)
  const complement = subtract([[0, MAX]], safe);
  return complement.every(([, b]) => b < 0x80) ? `[^${write(complement)}]` : `[${write(safe)}]`;
}

const sameRanges = (a: [number, number][], b: [number, number][]) => a.length === b.length && a.every(([x, y], i) => x === b[i]![0] && y === b[i]![1]);

const hex = (cp: number) => `\\U${cp.toString(16).padStart(8, "0")}`;

/** A class body's code-point ranges, or null for an escape not known here. */
function parseRanges(body: string): [number, number][] | null {
  const points: number[] = [];
  const dash: boolean[] = []; // whether an unescaped "-" sat before this point
  let i = 0;
  let pendingDash = false;
  while (i < body.length) {
    let cp: number;
    const c = body[i]!;
    if (c === "-" && points.length > 0 && !pendingDash && i + 1 < body.length) {
      pendingDash = true;
      i++;
      continue;
    }
    if (c === "\\") {
      const e = body[i + 1];
      const hexOf = (n: number) => {
        const h = body.slice(i + 2, i + 2 + n);
        return /^[0-9a-fA-F]+$/.test(h) && h.length === n ? parseInt(h, 16) : NaN;
      };
      if (e === "x") [cp, i] = [hexOf(2), i + 4];
      else if (e === "u") [cp, i] = [hexOf(4), i + 6];
      else if (e === "U") [cp, i] = [hexOf(8), i + 10];
      else if (e !== undefined && e in SIMPLE) [cp, i] = [SIMPLE[e]!, i + 2];
      else return null;
      if (Number.isNaN(cp)) return null;
    } else {
      cp = body.codePointAt(i)!;
      i += cp > 0xffff ? 2 : 1;
    }
    points.push(cp);
    dash.push(pendingDash);
    pendingDash = false;
  }
  if (pendingDash) return null;
  const ranges: [number, number][] = [];
  for (let k = 0; k < points.length; k++) {
    if (dash[k + 1]) {
      if (points[k]! > points[k + 1]!) return null;
      ranges.push([points[k]!, points[k + 1]!]);
      k++;
    } else ranges.push([points[k]!, points[k]!]);
  }
  return ranges;
}

const SIMPLE: Record<string, number> = { "0": 0, n: 10, r: 13, t: 9, f: 12, v: 11, b: 8, "\\": 0x5c, "]": 0x5d, "[": 0x5b, "-": 0x2d, "^": 0x5e, '"': 0x22, "'": 0x27, "/": 0x2f };

/** `from` minus `cut`, as sorted disjoint ranges. */
function subtract(from: [number, number][], cut: [number, number][]): [number, number][] {
  const sorted = [...from].sort((a, b) => a[0] - b[0]);
  const merged: [number, number][] = [];
  for (const [a, b] of sorted) {
    const last = merged.at(-1);
    if (last && a <= last[1] + 1) last[1] = Math.max(last[1], b);
    else merged.push([a, b]);
  }
  let out = merged;
  for (const [ca, cb] of cut) {
    const next: [number, number][] = [];
    for (const [a, b] of out) {
      if (cb < a || ca > b) next.push([a, b]);
      else {
        if (a < ca) next.push([a, ca - 1]);
        if (b > cb) next.push([cb + 1, b]);
      }
    }
    out = next;
  }
  return out;
}
