import { libraryPath, shim } from "./lib.ts";

export function nativeInfo(): { path: string; llamaVersion: string; systemInfo: string; gpuOffload: boolean } {
  const s = shim();
  return {
    path: libraryPath(),
    llamaVersion: String(s.llmshim_llama_version() ?? ""),
    systemInfo: String(s.llmshim_system_info() ?? ""),
    gpuOffload: s.llmshim_supports_gpu_offload(),
  };
}
