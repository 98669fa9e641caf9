// Where libllmshim.so lives: LLM_LIB_PATH (the compiled binary sets it to its extracted copy), or native/build/.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { cacheRoot } from "../gguf/paths.ts";

export const projectRoot = resolve(import.meta.dir, "../..");

export function resolveLibraryPath(): string {
  if (process.env.LLM_LIB_PATH) return resolve(process.env.LLM_LIB_PATH);
  return join(projectRoot, "native/build/libllmshim.so");
}

/** dlopen cannot read Bun's embedded file system: copy the library out once, named by its content hash. */
export function extractEmbeddedLibrary(embedded: string): string {
  const bytes = readFileSync(embedded);
  const dir = join(cacheRoot(), "lib");
  const target = join(dir, `libllmshim-${Bun.hash(bytes).toString(16)}.so`);
  if (!existsSync(target)) {
    mkdirSync(dir, { recursive: true });
    const tmp = `${target}.${process.pid}.tmp`;
    writeFileSync(tmp, bytes);
    renameSync(tmp, target);
  }
  return target;
}
