// Markdown rendering of the results: an environment header, the comparison table, notes.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";

export interface Row {
  workload: string;
  metric: string;
  ours: string;
  theirs: string;
  ratio: string;
  target: string;
  /** "met" / "missed" when the row has a target, "" otherwise */
  status: string;
}

/** Number with a fixed number of decimals, or "–" when missing. */
export function fmt(n: number | undefined, digits = 1): string {
  return n === undefined || !Number.isFinite(n) ? "–" : n.toFixed(digits);
}

export function fmtRatio(n: number): string {
  return Number.isFinite(n) ? `${n.toFixed(2)}×` : "–";
}

export function verdict(ok: boolean | null): string {
  return ok === null ? "no data" : ok ? "met" : "missed";
}

function escapeCell(s: string): string {
  return s.replace(/\|/g, "\\|").replace(/\n/g, " ");
}

export function renderTable(rows: Row[]): string {
  const head = ["Workload", "Metric", "ours", "llama-server", "ours / llama-server", "Target", "Status"];
  const lines = [`| ${head.join(" | ")} |`, `|${head.map(() => "---").join("|")}|`];
  for (const r of rows) lines.push(`| ${[r.workload, r.metric, r.ours, r.theirs, r.ratio, r.target, r.status].map(escapeCell).join(" | ")} |`);
  return lines.join("\n");
}

export function cpuModel(): string {
  try {
    const info = readFileSync("/proc/cpuinfo", "utf8");
    return /^model name\s*:\s*(.+)$/m.exec(info)?.[1]?.trim() ?? "unknown";
  } catch {
    return cpus()[0]?.model ?? "unknown";
  }
}

export function coreCount(): number {
  return navigator.hardwareConcurrency || cpus().length;
}

export function llamaVersion(root: string): string {
  const path = join(root, "native/build/build-info.json");
  if (!existsSync(path)) return "unknown";
  const b = JSON.parse(readFileSync(path, "utf8")) as { tag?: string; commit?: string; backend?: string; nodeLlamaCpp?: string };
  return `commit ${b.commit ?? "?"} (node-llama-cpp ${b.nodeLlamaCpp ?? "?"} bundle, tag ${b.tag ?? "?"}), backend ${b.backend ?? "?"}`;
}

/** 1-minute load average. */
export function loadAverage(): number {
  try {
    return Number(readFileSync("/proc/loadavg", "utf8").split(" ")[0]);
  } catch {
    return NaN;
  }
}

function cpuTimes(): { busy: number; total: number } {
  const line = readFileSync("/proc/stat", "utf8").split("\n")[0]!; // "cpu  user nice system idle iowait irq softirq steal ..."
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: total - v[3]! - v[4]!, total };
}

/** Share of all CPUs busy over `ms` milliseconds (0..1): other work on the machine before we start. */
export async function cpuBusy(ms = 1000): Promise<number> {
  try {
    const a = cpuTimes();
    await Bun.sleep(ms);
    const b = cpuTimes();
    return (b.busy - a.busy) / Math.max(1, b.total - a.total);
  } catch {
    return NaN;
  }
}

export interface Report {
  title: string;
  facts: [string, string][];
  rows: Row[];
  notes: string[];
}

export function renderReport(r: Report): string {
  const facts = r.facts.map(([k, v]) => `- **${k}:** ${v}`).join("\n");
  const notes = r.notes.length > 0 ? `\n\n## Notes\n\n${r.notes.map((n) => `- ${n}`).join("\n")}` : "";
  return `# ${r.title}\n\n${facts}\n\n${renderTable(r.rows)}${notes}\n`;
}

const marks = (name: string) => [`<!-- section:${name} -->`, `<!-- /section:${name} -->`] as const;

/** Writes `text` as the named section of a results file, replacing that section and keeping the rest. */
export function writeSection(file: string, name: string, text: string): void {
  const [open, close] = marks(name);
  const old = existsSync(file) ? readFileSync(file, "utf8") : "";
  const block = `${open}\n${text.trimEnd()}\n${close}\n`;
  const at = old.indexOf(open), end = old.indexOf(close);
  const next = at >= 0 && end > at ? old.slice(0, at) + block + old.slice(end + close.length + 1) : `${old.trimEnd()}\n\n${block}`;
  writeFileSync(file, next);
}

/** The sections other scripts wrote into a results file (bench/run.ts rewrites the file and keeps them). */
export function sectionsOf(file: string): string {
  if (!existsSync(file)) return "";
  const all = readFileSync(file, "utf8").match(/<!-- section:([\w-]+) -->[\s\S]*?<!-- \/section:\1 -->\n?/g);
  return all ? all.join("\n") : "";
}
