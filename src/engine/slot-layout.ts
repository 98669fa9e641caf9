// Where sequences sit among the llama.cpp sequence slots. With per-sequence KV streams
// (KV_UNIFIED=false) llama.cpp evaluates each run of consecutive seq ids in a batch as its own graph
// (llama_batch_allocr::split_equal, sequential), so 8 running sequences in slots {0,1,2,4,5,6,7,8}
// cost two passes over the weights per step instead of one. Pure functions over slot numbers.

/** Lower is better: slots next to a busy one first, then by id. */
function slotRank(id: number, busy: ReadonlySet<number>, slots: number): number {
  return busy.has(id - 1) || busy.has(id + 1) ? id : id + slots;
}

/** Index in `free` of the slot a new sequence should take: next to a busy one when there is such, else the lowest. */
export function bestFreeSlot(free: readonly number[], busy: ReadonlySet<number>, slots: number): number {
  let pick = 0;
  for (let i = 1; i < free.length; i++) if (slotRank(free[i]!, busy, slots) < slotRank(free[pick]!, busy, slots)) pick = i;
  return pick;
}

/**
 * `n` of these idle candidates to evict for slots, each the best slot for a new sequence at that
 * point: next to a busy slot (or to a slot just taken) first, then the lowest.
 */
export function slotVictims<T extends { seqId: number }>(candidates: readonly T[], n: number, busy: ReadonlySet<number>, slots: number): T[] {
  const left = [...candidates], near = new Set(busy), out: T[] = [];
  for (; n > 0 && left.length > 0; n--) {
    let pick = 0;
    for (let i = 1; i < left.length; i++) if (slotRank(left[i]!.seqId, near, slots) < slotRank(left[pick]!.seqId, near, slots)) pick = i;
    const v = left.splice(pick, 1)[0]!;
    out.push(v);
    near.add(v.seqId); // the new sequence will sit there: its neighbours are next best
  }
  return out;
}

export interface Resident {
  seqId: number;
  /** in the next batch: its slot must join the others' run */
  running: boolean;
  /** KV cells a move copies */
  cells: number;
}

/** A swap of two slots' contents: `running` goes to slot `to`; what sat there (if anything) goes to `running`'s old slot. */
export interface SlotSwap<T extends Resident> {
  running: T;
  to: number;
  /** the resident that sat in `to` and takes `running`'s old slot, or null when `to` was free */
  occupant: T | null;
}

/**
 * The fewest swaps that put every running sequence into one run of consecutive slots: the window
 * of `running.length` slots that already holds the most running sequences (ties: the fewest cells
 * to copy), each running sequence outside it swapped with a non-running slot inside it. Empty when
 * they already form one run, or when the swaps would copy more than `maxCells` cells. Residents not
 * running (idle cached sequences) may move out of the way; free slots are the ones no resident holds.
 */
export function compaction<T extends Resident>(residents: readonly T[], slots: number, maxCells = Infinity): SlotSwap<T>[] {
  const running = residents.filter((r) => r.running);
  const k = running.length;
  if (k < 2) return [];
  let lo = slots, hi = -1;
  for (const r of running) (lo = Math.min(lo, r.seqId)), (hi = Math.max(hi, r.seqId));
  if (hi - lo + 1 === k) return [];
  const bySlot = new Map<number, T>(residents.map((r) => [r.seqId, r]));
  let best = -1, bestInside = -1, bestCost = Infinity;
  for (let a = 0; a + k <= slots; a++) {
    let inside = 0, cost = 0;
    for (let s = a; s < a + k; s++) {
      const r = bySlot.get(s);
      if (r?.running) inside++;
      else if (r) cost += r.cells; // an idle resident that would move out
    }
    for (const r of running) if (r.seqId < a || r.seqId >= a + k) cost += r.cells;
    if (inside > bestInside || (inside === bestInside && cost < bestCost)) (best = a), (bestInside = inside), (bestCost = cost);
  }
  if (bestCost > maxCells) return [];
  const holes: number[] = [];
  for (let s = best; s < best + k; s++) if (!bySlot.get(s)?.running) holes.push(s);
  // free holes first, so that fewer idle residents move
  holes.sort((x, y) => (bySlot.has(x) ? 1 : 0) - (bySlot.has(y) ? 1 : 0) || x - y);
  const out = running.filter((r) => r.seqId < best || r.seqId >= best + k);
  return out.map((r, i) => ({ running: r, to: holes[i]!, occupant: bySlot.get(holes[i]!) ?? null }));
}
