// The constraint's sampling step: a vocabulary bitmask applied to a logits row (src/sampling/token-mask.ts).
import { describe, expect, test } from "bun:test";
import { allowedIds, applyTokenMask, maskAllows, onlyStopsAllowed } from "../src/sampling/token-mask.ts";

/** bit by bit: the reference the word- and run-skipping step is held to */
function reference(row: Float32Array, mask: Int32Array): number {
  let n = 0;
  for (let i = 0; i < row.length; i++) if (maskAllows(mask, i)) n++; else row[i] = -Infinity;
  return n;
}

test("applyTokenMask equals the bit-by-bit reference on rows of any length and masks of runs and mixed words", () => {
  let seed = 7;
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  for (let trial = 0; trial < 2000; trial++) {
    const n = 1 + Math.floor(rand() * 300);
    const mask = new Int32Array(Math.ceil(n / 32)).map(() => [0, -1, (rand() * 2 ** 32) | 0][Math.floor(rand() * 3)]!);
    const row = new Float32Array(n).map(() => rand());
    const ref = row.slice();
    expect(applyTokenMask(row, mask)).toBe(reference(ref, mask));
    expect(row).toEqual(ref);
  }
});

test("a mask shorter than the row rejects the rest; onlyStopsAllowed sees a complete text", () => {
  const row = new Float32Array(70).fill(1);
  expect(applyTokenMask(row, Int32Array.of(-1))).toBe(32);
  expect(row[31]).toBe(1);
  expect(row[32]).toBe(-Infinity);
  const mask = new Int32Array(3);
  mask[1] = 1 << 8; // only token 40
  expect(onlyStopsAllowed(mask, [40], 70)).toBe(true);
  expect(onlyStopsAllowed(mask, [41], 70)).toBe(false);
  mask[2] = 1; // and token 64
  expect(onlyStopsAllowed(mask, [40], 70)).toBe(false);
  expect(onlyStopsAllowed(new Int32Array(3), [40], 70)).toBe(true); // nothing at all allowed: nothing can follow either
});

describe("constrained text stays valid UTF-8", () => {
  test("utf8Continues: lone continuation bytes, bytes UTF-8 never uses and cut characters are refused", async () => {
    const { utf8Continues } = await import("../src/engine/utf8.ts");
    const b = (...x: number[]) => Uint8Array.from(x);
    expect(utf8Continues(0, new TextEncoder().encode("aé✓🦙"))).toBe(true);
    expect(utf8Continues(0, b(0x80))).toBe(false); // a continuation with no lead
    expect(utf8Continues(0, b(0xc0, 0x80))).toBe(false); // never used
    expect(utf8Continues(0, b(0xf5, 0x80, 0x80, 0x80))).toBe(false); // past U+10FFFF
    expect(utf8Continues(0, b(0xe2, 0x41))).toBe(false); // a character cut short
    expect(utf8Continues(0, b(0xe2, 0x9c))).toBe(true); // unfinished is fine: the next token may finish it
    expect(utf8Continues(1, b(0x93, 0x41))).toBe(true);
    expect(utf8Continues(2, b(0x93, 0x41))).toBe(false);
  });
});

test("Utf8Guard strikes, before the one draw, every token that cannot follow: at a boundary and inside a character", async () => {
  const { Utf8Guard } = await import("../src/engine/utf8.ts");
  const pieces = [[0x41], [0x9c], [0x9c, 0x93], [0xe2], [0xc0], [], [0x93, 0x41], [0xf0, 0x9f]].map((p) => Uint8Array.from(p));
  const guard = new Utf8Guard((t) => pieces[t]!, pieces.length);
  const row = () => Float32Array.from(pieces, (_, i) => i + 1);
  const finite = (r: Float32Array) => [...r.keys()].filter((i) => r[i] !== -Infinity);
  const boundary = row();
  guard.strike(0, boundary);
  expect(finite(boundary)).toEqual([0, 3, 5, 7]); // no lone continuation, no C0; an empty piece is harmless
  const inside = row();
  guard.strike(2, inside); // e.g. after 0xE2: two continuation bytes owed
  expect(finite(inside)).toEqual([1, 2, 5]);
  expect([...inside].filter(Number.isFinite)).toEqual([2, 3, 6]); // the survivors keep their logits
  const last = row();
  guard.strike(1, last);
  expect(finite(last)).toEqual([1, 5, 6]);
});

test("allowedIds lists the allowed tokens below the vocabulary size in order, or -1 past its limit", () => {
  let seed = 11;
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  for (let trial = 0; trial < 1000; trial++) {
    const n = 1 + Math.floor(rand() * 300);
    const mask = new Int32Array(Math.ceil(n / 32) + (rand() < 0.3 ? 1 : 0)).map(() => [0, -1, (rand() * 2 ** 32) | 0][Math.floor(rand() * 3)]!);
    const expected: number[] = [];
    for (let t = 0; t < n; t++) if (maskAllows(mask, t)) expected.push(t);
    const out = new Int32Array(n);
    const count = allowedIds(mask, n, out);
    expect(Array.from(out.subarray(0, count))).toEqual(expected);
    if (expected.length > 0) expect(allowedIds(mask, n, out, expected.length - 1)).toBe(-1);
  }
});
