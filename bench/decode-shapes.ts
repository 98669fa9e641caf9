// `bun bench/decode-shapes.ts`: llama_decode time for batch shapes the scheduler produces, with and
// without flash attention, per-sequence KV streams and one unified buffer (bench model, 2 threads).
// Shows where a suffix decoded after a reused prefix spends its time. Prints a table and writes
// bench/results-decode-shapes.md.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Batch, Context, Model } from "../src/native/index.ts";
import { ensureModel } from "../src/gguf/models.ts";

const model = Model.load(await ensureModel("bench"));
const toks = model.tokenize("hello world ".repeat(400), true, false);
const DEPTH = 570;
const cases: [string, [number, number, number][]][] = [
  ["8 seqs × 1 token at depth 0", [2, 3, 4, 5, 6, 7, 8, 9].map((s) => [s, 0, 1])],
  [`8 seqs × 1 token at depth ${DEPTH}`, [2, 3, 4, 5, 6, 7, 8, 9].map((s) => [s, DEPTH, 1])],
  [`1 seq × 21 tokens at depth ${DEPTH}`, [[3, DEPTH, 21]]],
  [`7 seqs × 21 tokens at depth ${DEPTH}`, [3, 4, 5, 6, 7, 8, 9].map((s) => [s, DEPTH, 21])],
  ["1 seq × 512 tokens from 0", [[4, 0, 512]]],
];
const rows: string[] = [];
for (const kvUnified of [false, true]) {
  for (const flashAttn of [1, 0]) {
    const ctx = new Context(model, { nCtx: 2048 * 16, nBatch: 512, nSeqMax: 16, threads: 2, threadsBatch: 2, kvUnified, flashAttn });
    const batch = new Batch(512, 1);
    const fill = (s: number, upTo: number) => {
      ctx.seqRm(s, -1, -1);
      for (let at = 0; at < upTo; at += 512) {
        batch.clear();
        for (let i = at; i < Math.min(upTo, at + 512); i++) batch.add(toks[i]!, i, s, i === upTo - 1);
        ctx.decode(batch);
      }
    };
    const cells: string[] = [];
    for (const [, entries] of cases) {
      for (const [s, pos] of entries) fill(s, pos);
      batch.clear();
      for (const [s, pos, n] of entries) for (let k = 0; k < n; k++) batch.add(toks[pos + k]!, pos + k, s, k === n - 1);
      const t0 = performance.now();
      ctx.decode(batch);
      cells.push((performance.now() - t0).toFixed(0));
    }
    rows.push(`| ${kvUnified ? "unified" : "per-sequence streams"} | ${flashAttn ? "on" : "off"} | ${cells.join(" | ")} |`);
    batch.free();
    ctx.free();
  }
}
const table = [
  `llama_decode ms, bench model (${(model.info.nParams / 1e6).toFixed(0)}M, F16), 2 threads, ${new Date().toISOString()}`,
  "",
  `| KV | flash attention | ${cases.map(([c]) => c).join(" | ")} |`,
  `|${"---|".repeat(cases.length + 2)}`,
  ...rows,
].join("\n");
console.log(table);
writeFileSync(join(import.meta.dir, "results-decode-shapes.md"), table + "\n");
process.exit(0);
