import { describe, expect, test } from "bun:test";
import { Rng } from "../src/sampling/rng.ts";

describe("Rng (xoshiro128**)", () => {
  test("same seed reproduces the stream; different seeds differ", () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const c = new Rng(43);
    const sa = Array.from({ length: 20 }, () => a.next());
    const sb = Array.from({ length: 20 }, () => b.next());
    const sc = Array.from({ length: 20 }, () => c.next());
    expect(sa).toEqual(sb);
    expect(sa).not.toEqual(sc);
  });
  test("53-bit seeds use the high word", () => {
    const lo = new Rng(5).next();
    expect(new Rng(5 + 2 ** 32).next()).not.toBe(lo);
    expect(new Rng(2 ** 53 - 1).next()).toBeGreaterThanOrEqual(0);
    expect(new Rng(-1).next()).not.toBe(new Rng(2 ** 32 - 1).next());
    expect(() => new Rng(1.5)).toThrow();
  });
  test("values in [0, 1), roughly uniform", () => {
    const r = new Rng(0);
    const bins = new Array(10).fill(0);
    let sum = 0;
    const n = 100000;
    for (let i = 0; i < n; i++) {
      const x = r.next();
      expect(x >= 0 && x < 1).toBe(true);
      sum += x;
      bins[Math.floor(x * 10)]++;
    }
    expect(Math.abs(sum / n - 0.5)).toBeLessThan(0.005);
    for (const b of bins) expect(Math.abs(b / n - 0.1)).toBeLessThan(0.005);
  });
  test("unseeded generators differ", () => {
    expect(new Rng().next()).not.toBe(new Rng().next());
  });
});
