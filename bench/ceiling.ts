// Engine ceiling: llama.cpp's llama-batched-bench on the same model, threads and build.
import { llamaTool } from "../test/helpers/llama-server.ts";

export interface CeilingRow {
  npp: number;
  ntg: number;
  npl: number;
  /** prompt processing tokens/s */
  ppTps: number;
  /** text generation tokens/s, all sequences together */
  tgTps: number;
}

export interface Ceiling {
  command: string;
  rows: CeilingRow[];
}

/** Parses the markdown-like table llama-batched-bench prints (| PP | TG | B | N_KV | T_PP s | S_PP t/s | T_TG s | S_TG t/s | ...). */
export function parseBatchedBench(output: string): CeilingRow[] {
  const rows: CeilingRow[] = [];
  for (const line of output.split("\n")) {
    const cells = line.split("|").map((c) => c.trim()).filter((c) => c !== "");
    if (cells.length < 8 || !cells.every((c) => /^[\d.]+$/.test(c))) continue;
    const n = cells.map(Number);
    rows.push({ npp: n[0]!, ntg: n[1]!, npl: n[2]!, ppTps: n[5]!, tgTps: n[7]! });
  }
  return rows;
}

export async function runCeiling(modelPath: string, opts: { threads: number; npp: number; ntg: number; npl: number[] }): Promise<Ceiling> {
  const bin = llamaTool("llama-batched-bench");
  const args = ["-m", modelPath, "-t", String(opts.threads), "-tb", String(opts.threads), "-c", "4096", "-b", "512", "-ub", "512",
    "-npp", String(opts.npp), "-ntg", String(opts.ntg), "-npl", opts.npl.join(",")];
  const proc = Bun.spawn([bin, ...args], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`llama-batched-bench exited ${code}:\n${err.slice(-2000)}`);
  const rows = parseBatchedBench(out + "\n" + err);
  if (rows.length === 0) throw new Error(`could not parse llama-batched-bench output:\n${(out + err).slice(-2000)}`);
  return { command: `llama-batched-bench ${args.join(" ").replace(modelPath, "MODEL")}`, rows };
}
