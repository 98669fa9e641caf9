// The project's dlopen symbol tables (the shim's, and the few libc calls). Only src/native/ imports bun:ffi.
import { dlopen, FFIType as T } from "bun:ffi";
import { existsSync } from "node:fs";
import { openPreferredLibrary } from "./library-path.ts";

/** Must equal LLMSHIM_ABI_VERSION in native/shim.h. */
export const SHIM_ABI_VERSION = 4;

const symbols = {
  llmshim_abi_version: { args: [], returns: T.i32 },
  llmshim_llama_version: { args: [], returns: T.cstring },
  llmshim_system_info: { args: [], returns: T.cstring },
  llmshim_supports_gpu_offload: { args: [], returns: T.bool },
  llmshim_init: { args: [T.i32], returns: T.void },
  llmshim_last_error: { args: [], returns: T.cstring },

  llmshim_model_load: { args: [T.ptr, T.i32, T.bool, T.bool, T.ptr, T.ptr], returns: T.ptr },
  llmshim_model_free: { args: [T.ptr], returns: T.void },
  llmshim_model_n_vocab: { args: [T.ptr], returns: T.i32 },
  llmshim_model_n_ctx_train: { args: [T.ptr], returns: T.i32 },
  llmshim_model_n_embd: { args: [T.ptr], returns: T.i32 },
  llmshim_model_n_layer: { args: [T.ptr], returns: T.i32 },
  llmshim_model_n_head: { args: [T.ptr], returns: T.i32 },
  llmshim_model_n_head_kv: { args: [T.ptr], returns: T.i32 },
  llmshim_model_n_params: { args: [T.ptr], returns: T.u64_fast },
  llmshim_model_size: { args: [T.ptr], returns: T.u64_fast },
  llmshim_model_desc: { args: [T.ptr, T.ptr, T.i32], returns: T.i32 },
  llmshim_vocab_special: { args: [T.ptr, T.i32], returns: T.i32 },
  llmshim_vocab_add_bos: { args: [T.ptr], returns: T.bool },
  llmshim_vocab_is_eog: { args: [T.ptr, T.i32], returns: T.bool },
  llmshim_model_chat_template: { args: [T.ptr], returns: T.ptr },

  llmshim_tokenize: { args: [T.ptr, T.ptr, T.i32, T.ptr, T.i32, T.bool, T.bool], returns: T.i32 },
  llmshim_detokenize: { args: [T.ptr, T.ptr, T.i32, T.ptr, T.i32, T.bool, T.bool], returns: T.i32 },
  llmshim_token_to_piece: { args: [T.ptr, T.i32, T.ptr, T.i32, T.i32, T.bool], returns: T.i32 },

  llmshim_context_new: {
    args: [T.ptr, T.u32, T.u32, T.u32, T.u32, T.i32, T.i32, T.i32, T.bool, T.bool],
    returns: T.ptr,
  },
  llmshim_context_free: { args: [T.ptr], returns: T.void },
  llmshim_n_ctx: { args: [T.ptr], returns: T.u32 },
  llmshim_n_batch: { args: [T.ptr], returns: T.u32 },
  llmshim_n_seq_max: { args: [T.ptr], returns: T.u32 },
  llmshim_set_thread_poll: { args: [T.i32], returns: T.void },
  llmshim_decode: { args: [T.ptr, T.ptr, T.i32], returns: T.i32 },
  llmshim_logits: { args: [T.ptr], returns: T.ptr },
  llmshim_argmax: { args: [T.ptr, T.i32], returns: T.i32 },
  llmshim_argmax_scalar: { args: [T.ptr, T.i32], returns: T.i32 },

  llmshim_batch_new: { args: [T.i32, T.i32], returns: T.ptr },
  llmshim_batch_free: { args: [T.ptr], returns: T.void },
  llmshim_batch_tokens: { args: [T.ptr], returns: T.ptr },
  llmshim_batch_pos: { args: [T.ptr], returns: T.ptr },
  llmshim_batch_n_seq: { args: [T.ptr], returns: T.ptr },
  llmshim_batch_seq_ids: { args: [T.ptr], returns: T.ptr },
  llmshim_batch_logits: { args: [T.ptr], returns: T.ptr },

  llmshim_seq_rm: { args: [T.ptr, T.i32, T.i32, T.i32], returns: T.bool },
  llmshim_seq_cp: { args: [T.ptr, T.i32, T.i32, T.i32, T.i32], returns: T.void },
  llmshim_seq_pos_max: { args: [T.ptr, T.i32], returns: T.i32 },
  llmshim_memory_clear: { args: [T.ptr, T.bool], returns: T.void },

  llmshim_state_seq_size: { args: [T.ptr, T.i32], returns: T.u64_fast },
  llmshim_state_seq_get: { args: [T.ptr, T.ptr, T.u64, T.i32], returns: T.u64_fast },
  llmshim_state_seq_set: { args: [T.ptr, T.ptr, T.u64, T.i32], returns: T.u64_fast },

  llmshim_sampler_new: { args: [T.ptr, T.u32, T.i32, T.f32, T.f32, T.f32, T.f32, T.i32], returns: T.ptr },
  llmshim_sampler_free: { args: [T.ptr], returns: T.void },
  llmshim_sampler_sample: { args: [T.ptr, T.ptr, T.i32], returns: T.i32 },

  llmshim_grammar_new: { args: [T.ptr, T.ptr, T.ptr], returns: T.ptr },
  llmshim_grammar_clone: { args: [T.ptr], returns: T.ptr },
  llmshim_grammar_accept: { args: [T.ptr, T.i32], returns: T.bool },
  llmshim_grammar_apply: { args: [T.ptr, T.ptr, T.i32], returns: T.i32 },
  llmshim_grammar_allows: { args: [T.ptr, T.i32], returns: T.bool },
  llmshim_json_schema_to_grammar: { args: [T.ptr, T.ptr, T.i32], returns: T.i32 },
  llmshim_grammar_last_error: { args: [], returns: T.cstring },
  llmshim_gbnf_check: { args: [T.ptr, T.ptr], returns: T.bool },
} as const;

export type Shim = ReturnType<typeof dlopen<typeof symbols>>["symbols"];

export class NativeLibraryError extends Error {
  override name = "NativeLibraryError";
}

let loaded: { shim: Shim; path: string } | undefined;

/** Opens libllmshim once per thread, checks the ABI and initialises llama.cpp's backends. */
export function shim(): Shim {
  return openLibrary().shim;
}

export function libraryPath(): string {
  return openLibrary().path;
}

function openLibrary(): { shim: Shim; path: string } {
  if (loaded) return loaded;
  const howToBuild = "build it with `./build-native.sh` (or `bun run build-native`), or set LLM_LIB_PATH";
  // the CUDA library first where there is one (LLM_BACKEND), else or on failure the CPU one: library-path.ts
  const { lib, path } = openPreferredLibrary((path) => {
    if (!existsSync(path)) throw new NativeLibraryError(`native library not found at ${path}: ${howToBuild}`);
    let lib: ReturnType<typeof dlopen<typeof symbols>>;
    try {
      lib = dlopen(path, symbols);
    } catch (err) {
      throw new NativeLibraryError(`cannot load native library ${path} (${(err as Error).message}): ${howToBuild}`, { cause: err });
    }
    const abi = lib.symbols.llmshim_abi_version();
    if (abi !== SHIM_ABI_VERSION) {
      lib.close();
      throw new NativeLibraryError(
        `native library ${path} has ABI version ${abi} but this code expects ${SHIM_ABI_VERSION}: rebuild with ./build-native.sh`,
      );
    }
    return lib;
  });
  lib.symbols.llmshim_init(logLevel());
  loaded = { shim: lib.symbols, path };
  return loaded;
}

function logLevel(): number {
  const names: Record<string, number> = { silent: 0, error: 1, warn: 2, info: 3, debug: 4 };
  return names[(process.env.LLAMA_LOG_LEVEL ?? "error").toLowerCase()] ?? 1;
}

const libcSymbols = {
  sched_setscheduler: { args: [T.i32, T.i32, T.ptr], returns: T.i32 },
} as const;

export type Libc = ReturnType<typeof dlopen<typeof libcSymbols>>["symbols"];

let libcLoaded: Libc | null | undefined;

/** The C library's functions we call (Linux), opened once; null where there is no such libc. */
export function libc(): Libc | null {
  if (libcLoaded !== undefined) return libcLoaded;
  libcLoaded = null;
  if (process.platform === "linux") {
    for (const name of ["libc.so.6", "libc.so"]) { // glibc, musl
      try {
        libcLoaded = dlopen(name, libcSymbols).symbols;
        break;
      } catch {} // try the next name
    }
  }
  return libcLoaded;
}
