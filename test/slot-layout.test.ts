// Running sequences kept in one run of consecutive llama.cpp slots (src/engine/slot-layout.ts):
// the pure choice of swaps, the table's bookkeeping, the runner's move on a real context (the next
// logits bit for bit the same), and on the real engine, every step decoded as one run.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { EngineStats } from "../src/engine/messages.ts";
import { SequenceTable } from "../src/engine/seq-table.ts";
import { SeqState, Sequence } from "../src/engine/sequence.ts";
import { compaction, type Resident } from "../src/engine/slot-layout.ts";
import { Runner } from "../src/engine/runner.ts";
import type { KvOp } from "../src/engine/kv-ops.ts";
import { ensureModel } from "../src/gguf/models.ts";
import { Batch, Context, Model } from "../src/native/index.ts";
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

describe("the runner's move (llama_state_seq_get/set_data of a sequence's own cells)", () => {
  test("two sequences trade slots: each one's next logits are bit for bit those it had in its old slot", async () => {
    const model = Model.load(await ensureModel("tiny"));
    const ctx = new Context(model, { nCtx: 4 * 128, nBatch: 64, nSeqMax: 4, threads: 2, threadsBatch: 2, flashAttn: 0, kvUnified: false, threadPoll: 0 });
    const batch = new Batch(64, 1);
    const prompts = [[5, 17, 99, 3, 250, 8, 41], [7, 7, 300, 12]];
    /** the logits after `token` at the end of slot `seq`'s cells (then removed again) */
    const next = (seq: number, pos: number, token: number) => {
      batch.clear();
      const row = batch.add(token, pos, seq, true);
      expect(ctx.decode(batch)).toBe(0);
      const out = ctx.logitsRow(row).slice();
      ctx.seqRm(seq, pos, -1);
      return out;
    };
    try {
      prompts.forEach((p, seq) => {
        batch.clear();
        p.forEach((tok, i) => batch.add(tok, i, seq, false));
        expect(ctx.decode(batch)).toBe(0);
      });
      const before = prompts.map((p, seq) => next(seq, p.length, 42));
      const seqs = prompts.map((p, i) => new Sequence(`s${i}`, p, model.info.nVocab));
      const ops: KvOp[] = [{ kind: "move", moves: [{ target: seqs[0]!, from: 0, to: 1, nPast: prompts[0]!.length }, { target: seqs[1]!, from: 1, to: 0, nPast: prompts[1]!.length }] }];
      const sink = { stateBuffer: (_: Sequence, __: number, size: number) => new Uint8Array(size), saved() {}, restored() {} };
      new Runner(ctx, 64, ops, sink).applyKvOps();
      expect([ctx.seqPosMax(1) + 1, ctx.seqPosMax(0) + 1]).toEqual(prompts.map((p) => p.length));
      expect(next(1, prompts[0]!.length, 42)).toEqual(before[0]!);
      expect(next(0, prompts[1]!.length, 42)).toEqual(before[1]!);
      new Runner(ctx, 64, [{ kind: "move", moves: [{ target: seqs[0]!, from: 1, to: 3, nPast: prompts[0]!.length }] }], sink).applyKvOps();
      expect(ctx.seqPosMax(1)).toBe(-1); // the source slot is left empty
      expect(next(3, prompts[0]!.length, 42)).toEqual(before[0]!);
    } finally {
      batch.free();
      ctx.free();
      model.free();
    }
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

  /** A streamed greedy generation, once its first text arrived (so that the next one is admitted after it): its whole text. */
  async function streaming(prompt: string, max: number): Promise<{ text: Promise<string>; cancel: () => Promise<void> }> {
    const res = await t.post("/api/generate-one", { request_id: uid(), prompt, stream_response: true, generation_config: { do_sample: false, max_new_tokens: max } });
    const reader = res.body!.getReader(), decoder = new TextDecoder();
    const first = await reader.read();
    let text = first.done ? "" : decoder.decode(first.value, { stream: true });
    // wrapped: an async function returning a promise would wait for it
    let cancelled = false;
    return {
      text: (async () => {
        for (let part = await reader.read(); !part.done && !cancelled; part = await reader.read()) text += decoder.decode(part.value, { stream: true });
        return text + decoder.decode();
      })(),
      cancel: () => ((cancelled = true), reader.cancel()),
    };
  }

  // The moved cells are checked bit for bit above; texts are not compared with solo runs here: decoding
  // beside others rather than alone changes float rounding (one weight row per kernel call or
  // several), enough to flip a near-tie of this random model now and then, moves or not.
  test("a request that ends between two running ones leaves a hole: a running sequence moves into it", async () => {
    const before = await stats();
    // slots 0, 1, 2 in this order, all three decoding; then the middle one's client goes away:
    // running {0, 2} until the table moves the cheaper one, KV cells and all, next to the other: the
    // last (the first has a long prompt, and runs long: it must still run then, even on a busy machine)
    const first = await streaming("Once upon a time ".repeat(20), 300);
    const middle = await streaming("Blue sky", 400);
    const last = await streaming("The cat sat", 40);
    await middle.cancel();
    await Promise.all([first.text, middle.text, last.text]);
    const after = await stats();
    expect(after.slotSwaps - before.slotSwaps).toBeGreaterThan(0);
    expect(after.idRuns - before.idRuns).toBe(after.steps - before.steps);
  });

  test("requests that end at different times in a closed loop: every step one run", async () => {
    const before = await stats();
    const got: string[] = new Array(prompts.length);
    let next = 0;
    // 4 clients in a closed loop: each finished request is followed at once by the next
    await Promise.all(Array.from({ length: 4 }, async () => {
      for (let i = next++; i < prompts.length; i = next++) got[i] = await t.generate(uid(), prompts[i]!, { max_new_tokens: lengths[i] });
    }));
    const after = await stats();
    expect(got.every((text) => text.length > 0)).toBe(true);
    expect(after.idRuns - before.idRuns).toBe(after.steps - before.steps);
  });
});
