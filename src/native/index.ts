export { Batch } from "./batch.ts";
export { Context, ContextError, DecodeStatus, type ContextOptions } from "./context.ts";
export { libraryPath, NativeLibraryError, shim } from "./lib.ts";
export { Model, ModelLoadError, type ModelInfo, type ModelLoadOptions } from "./model.ts";
export { LlamaSampler, type LlamaSamplerOptions } from "./sampler.ts";
export { projectRoot } from "./library-path.ts";
export { nativeInfo } from "./info.ts";
export { nativeArgmax } from "./kernels.ts";
export { setThreadScheduling } from "./sched.ts";
