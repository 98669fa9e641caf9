// Running sequences kept in one run of consecutive llama.cpp slots (src/engine/slot-layout.ts):
// the pure choice of swaps, the table's bookkeeping, and on the real engine, texts unchanged by the
// moves while every step decodes as one run.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { EngineStats } from "../src/engine/messages.ts";
import { SequenceTable } from "../src/engine/seq-table.ts";
import { SeqState, Sequence } from "../src/engine/sequence.ts";
import { compaction, type Resident } from "../src/engine/slot-layout.ts";
import { startTestApp, uid, type TestApp } from "./helpers/app.ts";

const r = (seqId: number, running: boolean, cells = 10): Resident => ({ seqId, running, cells });
const moved = (rs: Resident[], slots: number, max = Infinity) => compaction(rs, slots, max).map((s) => [s.running.seqId, s.to, s.occupant?.seqId ?? null]);

describe("compaction (pure)", () => {
  test("one run already, or fewer than two running: nothing moves", () => {
    expect(moved([r(2, true), r(3, true), r(4, true), r(0, false)], 8)).toEqual([]);
    expect(moved([r(5, true), r(0, false)], 8)).toEqual([]);
  });

  test("the window that holds most running sequences; of equal ones, the fewest cells to copy", () => {
    // running 0,1,2,4 with an idle sequence in 3: [0,4) moves 4 (5 cells), [1,5) would move 0 (50)
    expect(moved([r(0, true, 50), r(1, true), r(2, true), r(3, false), r(4, true, 5)], 8)).toEqual([[4, 3, 3]]);
    expect(moved([r(0, true, 5), r(1, true), r(2, true), r(3, false), r(4, true, 50)], 8)).toEqual([[0, 3, 3]]);
  });

  test("no swap when the cheapest one would copy more than the bound (SLOT_COMPACT_MAX_TOKENS)", () => {
    const rs = [r(0, true, 500), r(1, true), r(2, false, 300), r(3, true, 400)];
    expect(moved(rs, 4, 699)).toEqual([]);
    expect(moved(rs, 4, 700)).toEqual([[3, 2, 2]]); // 400 + 300 cells
  });

  test("a free hole is used before an idle sequence's slot", () => {
    // running 0, 3, 6 (3 slots): [2,5) or others hold one; free slots are taken before idle 1 moves
    const swaps = compaction([r(0, true), r(1, false), r(3, true), r(6, true)], 8);
    expect(swaps).toHaveLength(2);
    expect(swaps.filter((s) => s.occupant)).toHaveLength(0);
    const after = new Set([0, 3, 6].map((id) => swaps.find((s) => s.running.seqId === id)?.to ?? id));
    const ids = [...after].sort((a, b) => a - b);
    expect(ids[2]! - ids[0]!).toBe(2);
    expect(ids).not.toContain(1);
  });
});

describe("sequence table", () => {
  test("compact() trades slots with an idle sequence in the hole, queues one move, keeps the free list", () => {
    // 5 slots: no window of 4 holds 3 running sequences and a free slot, so an idle one must move
    const table = new SequenceTable({ slots: 5, kvCells: 10_000, maxEntries: 100, logEvictions: false });
    const seqs = Array.from({ length: 4 }, (_, i) => new Sequence(`s${i}`, [1, 2, 3], 100));
    for (const s of seqs) (table.add(s), table.admit(s, 8), table.transition(s, SeqState.Running), (s.nPast = 3));
    expect(seqs.map((s) => s.seqId)).toEqual([0, 1, 2, 3]);
    table.transition(seqs[1]!, SeqState.Idle); // a hole at 1, held by an idle sequence
    const late = new Sequence("late", [1, 2, 3, 4, 5], 100);
    table.add(late);
    table.admit(late, 8);
    table.transition(late, SeqState.Running);
    late.nPast = 5;
    expect(late.seqId).toBe(4); // next to 3
    table.kvOps.length = 0;
    expect(table.compact()).toBe(1);
    const running = [seqs[0]!, seqs[2]!, seqs[3]!, late].map((s) => s.seqId).sort((a, b) => a - b);
    expect(running[3]! - running[0]!).toBe(3);
    expect(table.kvOps).toHaveLength(1);
    const op = table.kvOps[0]!;
    expect(op.kind).toBe("move");
    if (op.kind !== "move") return;
    expect(op.moves).toHaveLength(2); // a swap: the running one in, the idle one out
    for (const m of op.moves) expect(m.target.seqId).toBe(m.to);
    expect(new Set(op.moves.map((m) => m.from))).toEqual(new Set(op.moves.map((m) => m.to)));
    expect(table.compact()).toBe(0);
    // the free list still holds exactly the slot no resident holds: one more sequence fills it
    const more = ["x"].map((id) => new Sequence(id, [1], 100));
    for (const s of more) (table.add(s), table.admit(s, 1));
    const held = [...table.all()].filter((s) => s.seqId >= 0).map((s) => s.seqId);
    expect(new Set(held).size).toBe(held.length);
    expect(held.every((id) => id >= 0 && id < 5)).toBe(true);
  });
});

describe("on the engine", () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ PARALLEL: "4", CACHE_SEQUENCES: "8" });
  });
  afterAll(() => t.close());

  const stats = async () => (await (await t.app.handle(new Request("http://local/api/stats"))).json()) as EngineStats;
  const prompts = ["The cat sat", "Once upon a time", "A B C D", "Rain falls", "Numbers: 1 2 3", "Hello world", "Blue sky", "Sea and sand"];
  const lengths = [3, 28, 9, 22, 5, 17, 30, 11];

  test("requests that end at different times: swapped into the holes, every step one run, texts as alone", async () => {
    const alone: string[] = [];
    for (let i = 0; i < prompts.length; i++) alone.push(await t.generate(uid(), prompts[i]!, { max_new_tokens: lengths[i] }));
    const before = await stats();
    const got: string[] = new Array(prompts.length);
    let next = 0;
    // 4 clients in a closed loop: each finished request is followed at once by the next
    await Promise.all(Array.from({ length: 4 }, async () => {
      for (let i = next++; i < prompts.length; i = next++) got[i] = await t.generate(uid(), prompts[i]!, { max_new_tokens: lengths[i] });
    }));
    const after = await stats();
    expect(got).toEqual(alone);
    expect(after.slotSwaps - before.slotSwaps).toBeGreaterThan(0);
    expect(after.idRuns - before.idRuns).toBe(after.steps - before.steps);
  });
});
