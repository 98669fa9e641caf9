// How a new sequence starts from the KV cells of an idle one that shares its first tokens (the
// sequence table carries the plan out). Pure: it reads the prefix index and the sequences.
import type { PrefixIndex } from "./prefix-index.ts";
import type { Sequence } from "./sequence.ts";

/**
 * inherit: the source is a one-off sequence that the new one continues (its whole prompt and all of
 * its cells shared but a short tail: the next turn of a conversation or tool loop re-renders the last
 * reply a little differently), so the new one takes its slot and cells over: no copy, no stale duplicate.
 * copy: the new one's slot gets the shared cells (a session's state stays the client's; a common
 * system prompt's source keeps the rest for its own next turn).
 */
export type ReusePlan = { kind: "inherit" | "copy"; src: Sequence; keep: number };

/**
 * The plan for `seq` from the idle sequence sharing its longest prefix, when at least `minTokens`
 * are shared (at most all but its last token, which is decoded for the logits). A copy moves all of
 * the source's cells: planned only while they are within 8x the tokens it saves.
 */
export function reusePlan(prefixes: PrefixIndex<Sequence>, minTokens: number, seq: Sequence): ReusePlan | null {
  if (minTokens <= 0) return null;
  const { key: src, length } = prefixes.longest(seq.tokens.view());
  const keep = Math.min(length, seq.length - 1);
  if (!src || keep < minTokens) return null;
  // a continuation shares the source's whole prompt and goes on into what it generated; a request
  // that only shares a system prompt with it leaves it for the others that do (they copy from it)
  if (src.ephemeral && keep >= src.promptLen && src.nPast - keep <= Math.max(16, src.nPast >>> 4)) return { kind: "inherit", src, keep };
  return keep * 8 < src.nPast ? null : { kind: "copy", src, keep };
}
