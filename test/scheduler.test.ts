// Scheduling policy and the sequence table, without the model (plain objects, no native calls).
import { describe, expect, test } from "bun:test";
import { SampleJob } from "../src/engine/job.ts";
import { Scheduler } from "../src/engine/scheduler.ts";
import { SequenceTable } from "../src/engine/seq-table.ts";
import { SeqState, Sequence } from "../src/engine/sequence.ts";
import { TokenSampler } from "../src/sampling/sampler.ts";

const sampler = () => new TokenSampler({ doSample: false, temperature: 1, topK: 0, topP: 1, repetitionPenalty: 1 });
const seqOf = (id: string, n: number) => new Sequence(id, Array.from({ length: n }, (_, i) => i + 1), 100);

function setup(slots = 4, kvCells = 100, parallel = 2, batch = 16) {
  const table = new SequenceTable({ slots, kvCells, maxEntries: 100, logEvictions: false });
  return { table, sched: new Scheduler(table, parallel, batch) };
}

function submit(table: SequenceTable, sched: Scheduler, seq: Sequence, maxNew: number): SampleJob {
  if (table.get(seq.requestId)) table.transition(seq, SeqState.Queued);
  else table.add(seq);
  const job = new SampleJob(1, 0, seq, maxNew, sampler());
  sched.enqueue(job);
  return job;
}

describe("sequence table", () => {
  test("only the allowed lifecycle transitions happen", () => {
    const { table } = setup();
    const s = seqOf("a", 3);
    table.add(s);
    expect(s.state).toBe(SeqState.Queued);
    expect(() => table.transition(s, SeqState.Idle)).not.toThrow();
    expect(() => table.transition(s, SeqState.Running)).toThrow(/not allowed/);
    table.transition(s, SeqState.Evicted);
    expect(() => table.transition(s, SeqState.Idle)).toThrow(/not allowed/);
  });

  test("a new sequence takes a free slot next to a running one (one llama.cpp ubatch per run of consecutive ids)", () => {
    const { table } = setup(8, 1000);
    const seqs = Array.from({ length: 6 }, (_, i) => seqOf(`s${i}`, 4));
    for (const s of seqs) {
      table.add(s);
      table.admit(s, 8);
      table.transition(s, SeqState.Running);
    }
    expect(seqs.map((s) => s.seqId)).toEqual([0, 1, 2, 3, 4, 5]);
    for (const s of seqs.slice(0, 4)) table.transition(s, SeqState.Idle);
    table.drop("s0");
    table.drop("s1"); // free: 0, 1, 6, 7; running: 4, 5
    const next = seqOf("n", 4);
    table.add(next);
    expect(table.admit(next, 8, 1)).toEqual([7]); // own slot 6 next to 5, its extra slot next to 6
    expect(next.seqId).toBe(6);
    const lone = seqOf("lone", 4);
    table.add(lone);
    table.admit(lone, 8);
    expect(lone.seqId).toBe(0); // nothing free borders a running slot: the lowest
  });

  test("for a slot, an old idle sequence next to a running one is evicted first; the recent half is kept", () => {
    const { table } = setup(8, 1000);
    const seqs = Array.from({ length: 8 }, (_, i) => seqOf(`s${i}`, 4));
    for (const s of seqs) {
      table.add(s);
      table.admit(s, 8);
      table.transition(s, SeqState.Running);
      s.nPast = 4;
    }
    for (const i of [7, 0, 4, 1, 2, 3, 6]) table.transition(seqs[i]!, SeqState.Idle); // least recently used first; s5 runs
    const n = seqOf("n", 4);
    table.add(n);
    expect(table.admit(n, 8)).toEqual([]);
    expect(seqs.filter((s) => s.state === SeqState.Evicted).map((s) => s.requestId)).toEqual(["s4"]); // 3rd oldest, next to slot 5
    expect(n.seqId).toBe(4);
    expect(seqs[6]!.state).toBe(SeqState.Idle); // also next to 5, but among the recent half
  });

  test("admission evicts the least recently used idle sequence, never a busy one", () => {
    const { table } = setup(2, 100);
    const [a, b, c] = [seqOf("a", 10), seqOf("b", 10), seqOf("c", 10)];
    for (const s of [a, b]) {
      table.add(s);
      expect(table.admit(s, 20)).toEqual([]);
      table.transition(s, SeqState.Running);
      s.nPast = 10;
      table.transition(s, SeqState.Idle);
    }
    table.touch(a); // b is now least recently used
    table.add(c);
    expect(table.admit(c, 20)).toEqual([]);
    expect(b.state).toBe(SeqState.Evicted);
    expect(a.state).toBe(SeqState.Idle);
    expect(table.kvOps).toContainEqual({ kind: "rm", seq: 1, from: -1 });
    table.transition(c, SeqState.Running);
    table.transition(a, SeqState.Queued); // busy: may not be evicted
    const d = seqOf("d", 5);
    table.add(d);
    expect(table.admit(d, 10)).toBeNull();
  });

  test("a one-off sequence that the new one continues is taken over (its slot and cells, no copy); a session or a shared prefix is copied", () => {
    const make = (limits = {}) => new SequenceTable({ slots: 4, kvCells: 1000, maxEntries: 100, logEvictions: false, minPrefixTokens: 4, ...limits });
    /** an idle resident holding `tokens`, all in the KV cache */
    const idleOf = (table: SequenceTable, id: string, tokens: number[], ephemeral: boolean, promptLen = 30) => {
      const s = new Sequence(id, tokens, 100, promptLen); // 30 prompt tokens, then generated ones
      s.ephemeral = ephemeral;
      table.add(s);
      table.admit(s, tokens.length);
      table.transition(s, SeqState.Running);
      s.nPast = tokens.length;
      table.transition(s, SeqState.Idle);
      return s;
    };
    const turn1 = Array.from({ length: 40 }, (_, i) => i + 1);
    // the next turn: turn 1 but its last 3 tokens re-rendered, then new ones
    const turn2 = [...turn1.slice(0, 37), 900, 901, 902, 903, 904];

    let table = make();
    const old = idleOf(table, "old", turn1, true);
    const slot = old.seqId;
    table.kvOps.length = 0;
    const next = new Sequence("next", turn2, 100);
    table.add(next);
    expect(table.admit(next, turn2.length + 8)).toEqual([]);
    expect(next.seqId).toBe(slot);
    expect(next.nPast).toBe(37);
    expect(table.get("old")).toBeUndefined();
    expect(table.kvOps).toEqual([{ kind: "rm", seq: slot, from: 37 }]); // the re-rendered tail leaves
    expect(table.inherited).toBe(1);

    // a session's cells stay its own: copied
    table = make();
    const session = idleOf(table, "session", turn1, false);
    table.kvOps.length = 0;
    const other = new Sequence("other", turn2, 100);
    table.add(other);
    table.admit(other, turn2.length + 8);
    expect(other.seqId).not.toBe(session.seqId);
    expect(table.kvOps).toEqual([{ kind: "fork", src: session.seqId, target: other, keep: 37 }]);
    expect(table.get("session")).toBe(session);

    // a one-off sharing only its first half (a common system prompt): copied, the rest kept for its own next turn
    table = make();
    const shared = idleOf(table, "shared", turn1, true);
    table.kvOps.length = 0;
    const branch = new Sequence("branch", [...turn1.slice(0, 20), 700, 701], 100);
    table.add(branch);
    table.admit(branch, 30);
    expect(branch.seqId).not.toBe(shared.seqId);
    expect(table.kvOps).toEqual([{ kind: "fork", src: shared.seqId, target: branch, keep: 20 }]);
    expect(table.inherited).toBe(0);

    // a short one-off whose prompt is mostly a system prompt: another question with that system
    // prompt shares all but a short tail of its cells, yet does not continue it (it diverges inside
    // its prompt): copied, so that the other clients with that system prompt can copy it too
    table = make();
    const system = Array.from({ length: 32 }, (_, i) => i + 1);
    const asked = idleOf(table, "asked", [...system, 500, 501, 502, 503, 504, 505], true, 35);
    table.kvOps.length = 0;
    const second = new Sequence("second", [...system, 600, 601], 100);
    table.add(second);
    table.admit(second, 40);
    expect(table.kvOps).toEqual([{ kind: "fork", src: asked.seqId, target: second, keep: 32 }]);
    expect(table.get("asked")).toBe(asked);
  });

  test("cells are reserved for running sequences' growth", () => {
    const { table } = setup(4, 50);
    const a = seqOf("a", 10);
    table.add(a);
    expect(table.admit(a, 40)).toEqual([]);
    table.transition(a, SeqState.Running);
    const b = seqOf("b", 5);
    table.add(b);
    expect(table.admit(b, 15)).toBeNull(); // 40 + 15 > 50
    expect(table.admit(b, 10)).toEqual([]);
  });
});

describe("scheduler", () => {
  test("decode tokens first, then prompt chunks within the step budget", () => {
    const { table, sched } = setup(4, 1000, 3, 8);
    const a = seqOf("a", 4);
    const ja = submit(table, sched, a, 10);
    let plan = sched.schedule();
    expect(plan.entries).toHaveLength(1);
    expect(plan.entries[0]!.count).toBe(4);
    expect(plan.entries[0]!.logits).toBe(true);
    a.nPast = 4;
    a.tokens.push(50); // sampled: one pending token
    submit(table, sched, seqOf("b", 20), 10);
    plan = sched.schedule();
    expect(plan.entries.map((e) => [e.job.seq.requestId, e.count, e.logits])).toEqual([["a", 1, true], ["b", 7, false]]);
    expect(ja.seq.state).toBe(SeqState.Running);
  });

  test("admission is FIFO and bounded by PARALLEL", () => {
    const { table, sched } = setup(8, 1000, 2, 64);
    for (const id of ["a", "b", "c"]) submit(table, sched, seqOf(id, 3), 5);
    const plan = sched.schedule();
    expect(plan.entries.map((e) => e.job.seq.requestId)).toEqual(["a", "b"]);
    expect(sched.queue.map((j) => j.seq.requestId)).toEqual(["c"]);
    sched.remove(sched.running[0]!);
    expect(sched.schedule().entries.map((e) => e.job.seq.requestId)).toContain("c");
  });
});
