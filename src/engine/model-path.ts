// MODEL_PATH, or the synthetic default model (written on first use and cached).
import { resolve } from "node:path";

export async function resolveModelPath(modelPath: string | null): Promise<string> {
  if (modelPath) return resolve(modelPath);
  const { ensureModel } = await import("../gguf/models.ts");
  console.log("[engine] MODEL_PATH is not set: using the synthetic default model (preset 'tiny')");
  return ensureModel("tiny");
}
