// Beams as llama sequences: after each beam-search step, the new beams take over their parents'
// KV slots (the first child keeps the slot, further children get a copy via seq_cp into a slot
// freed by a beam that had no children). Pure policy: it only queues KV edits on the table.
import type { Constraint } from "../constraints/pool.ts";
import type { BeamSearchResult } from "../sampling/beam-search.ts";
import { applyTokenMask, maskAllows } from "../sampling/token-mask.ts";
import type { BeamJob } from "./job.ts";
import type { SequenceTable } from "./seq-table.ts";

/** The prompt is decoded: its logits row starts the search; every beam forks from the sequence. */
export function startBeams(job: BeamJob, row: Float32Array, table: SequenceTable): boolean {
  const seq = job.seq;
  job.basePos = seq.nPast;
  const slots = [seq.seqId, ...job.spare];
  job.spare = [];
  const root = job.constraint;
  if (root) applyTokenMask(row, root.mask());
  const result = job.search.step([row]);
  if (root) {
    job.constraints = followParents([root], result.beams.map((b) => ({ parent: 0, token: b.token })));
    job.constraint = null; // the beams hold it now
  }
  job.beams = result.beams.map((b, i) => {
    if (i > 0) table.copySlot(seq.seqId, slots[i]!);
    return { seqId: slots[i]!, token: b.token };
  });
  return result.done;
}

/** One step with the live beams' logits rows (job.rows, by beam index). */
export function advanceBeams(job: BeamJob, table: SequenceTable): boolean {
  const parents = job.beams;
  job.constraints.forEach((c, i) => c && applyTokenMask(job.rows[i]!, c.mask()));
  const result = job.search.step(job.rows);
  job.rows = [];
  if (job.constraints.length > 0) job.constraints = followParents(job.constraints, result.beams);
  const children = new Array<number>(parents.length).fill(0);
  for (const b of result.beams) children[b.parent]!++;
  const free: number[] = [];
  parents.forEach((p, i) => {
    if (children[i] === 0) free.push(p.seqId);
  });
  job.beams = result.beams.map((b) => {
    const parent = parents[b.parent]!;
    if (children[b.parent]! > 0) {
      children[b.parent] = 0; // the first child keeps the parent's slot
      return { seqId: parent.seqId, token: b.token };
    }
    const dst = free.pop()!;
    table.copySlot(parent.seqId, dst);
    return { seqId: dst, token: b.token };
  });
  return result.done;
}

/**
 * Each new beam's constraint: a parent's first child takes the parent's, every other child a fork
 * of it (made before any child advances it), a parent without children closes its own. A beam
 * whose token its grammar refuses (when fewer tokens are allowed than the search keeps candidates,
 * it takes a -inf one, as Hugging Face's does) has none: its score is -inf, it never wins.
 */
function followParents(parents: (Constraint | null)[], beams: { parent: number; token: number }[]): (Constraint | null)[] {
  const allowed = beams.map((b) => parents[b.parent] != null && maskAllows(parents[b.parent]!.mask(), b.token));
  const taken = new Set<number>();
  const next = beams.map((b, i) => {
    if (!allowed[i]) return null;
    if (taken.has(b.parent)) return parents[b.parent]!.fork();
    taken.add(b.parent);
    return parents[b.parent]!;
  });
  parents.forEach((c, i) => taken.has(i) || c?.close());
  beams.forEach((b, i) => next[i]?.accept(b.token));
  return next;
}

/**
 * Ends the search: the winner's tokens join the sequence, which moves to the live beam whose KV
 * holds the longest prefix of them; every other slot is freed. Tokens not in that KV stay pending
 * (a continuation decodes them first).
 */
export function concludeBeams(job: BeamJob, table: SequenceTable, eos: number): BeamSearchResult {
  const seq = job.seq;
  const slots = job.beams.length > 0 ? job.beams.map((b) => b.seqId) : [seq.seqId];
  const result = job.search.finalize(); // empty when no step was taken
  let best = 0;
  let keep = -1;
  job.beams.forEach((_, i) => {
    const live = job.search.liveTokens(i);
    let l = 0;
    // a live beam's KV holds all its tokens but the newest (not yet fed)
    while (l < result.tokens.length && l < live.length - 1 && live[l] === result.tokens[l]) l++;
    if (l > keep) (keep = l), (best = i);
  });
  const chosen = slots[best]!;
  table.releaseSlots([...slots.filter((s) => s !== chosen), ...job.spare]);
  job.spare = [];
  job.beams = [];
  if (chosen !== seq.seqId || keep >= 0) table.rebind(seq, chosen, job.basePos + Math.max(keep, 0));
  for (const t of result.tokens) seq.tokens.push(t);
  if (result.finishedByEos) seq.tokens.push(eos);
  return result;
}
