// The radix tree behind shared-prefix reuse, alone: against a brute-force longest common prefix.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { PrefixIndex } from "../src/engine/prefix-index.ts";

const lcp = (a: number[], b: ArrayLike<number>) => {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
};

describe("PrefixIndex", () => {
  test("finds the longest shared prefix and its owner; splits and prunes as keys come and go", () => {
    const ix = new PrefixIndex<string>();
    ix.insert("a", [1, 2, 3, 4, 5]);
    ix.insert("b", [1, 2, 9]);
    expect(ix.longest([1, 2, 3, 7])).toEqual({ key: "a", length: 3 });
    expect(ix.longest([1, 2, 9, 9])).toEqual({ key: "b", length: 3 });
    expect(ix.longest([1, 2])).toMatchObject({ length: 2 });
    expect(ix.longest([5])).toEqual({ key: null, length: 0 });
    ix.remove("a");
    expect(ix.longest([1, 2, 3, 4, 5])).toEqual({ key: "b", length: 2 });
    ix.insert("b", [7]); // replaces b's tokens
    expect(ix.longest([1, 2])).toEqual({ key: null, length: 0 });
    expect(ix.size).toBe(1);
  });

  test("matches a brute force over random inserts, removals and queries", () => {
    const tokens = fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 12 });
    const op = fc.oneof(
      fc.record({ kind: fc.constant("insert" as const), key: fc.integer({ min: 0, max: 5 }), tokens }),
      fc.record({ kind: fc.constant("remove" as const), key: fc.integer({ min: 0, max: 5 }) }),
    );
    fc.assert(fc.property(fc.array(op, { maxLength: 30 }), fc.array(tokens, { minLength: 1, maxLength: 8 }), (ops, queries) => {
      const ix = new PrefixIndex<number>();
      const ref = new Map<number, number[]>();
      for (const o of ops) {
        if (o.kind === "insert") ix.insert(o.key, o.tokens), ref.set(o.key, o.tokens);
        else ix.remove(o.key), ref.delete(o.key);
      }
      for (const q of queries) {
        const want = Math.max(0, ...[...ref.values()].map((t) => lcp(t, q)));
        const got = ix.longest(q);
        expect(got.length).toBe(want);
        if (want > 0) expect(lcp(ref.get(got.key!)!, q)).toBe(want);
        else expect(got.key).toBeNull();
      }
    }), { numRuns: Number(process.env.FUZZ_RUNS ?? 500) });
  });
});
