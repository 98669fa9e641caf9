// Messages between the HTTP thread and the engine worker: small typed records, one union per direction.
import type { GenerationDefaults, Settings } from "../config.ts";
import type { SessionSource } from "../sessions/session-types.ts";
import type { ConstraintSpec } from "../constraints/messages.ts";
import type { AttentionChoice } from "./attention-probe.ts";

export type { SessionSource };

export type GenerationConfig = GenerationDefaults & {
  seed?: number;
  /** OpenAI's processors (/v1 only; sampling with num_beams 1): [token id, bias] pairs, additive penalties */
  logit_bias?: [number, number][];
  presence_penalty?: number;
  frequency_penalty?: number;
  /** return each generated token's log-probability and this many alternatives (0..20); absent: none */
  logprobs?: number;
  /** max_new_tokens came from the defaults, not the client: shrink it to fit the context instead of refusing */
  fitMaxNewTokens?: boolean;
  /** what the generated text must match (JSON Schema, any JSON object, GBNF); absent: anything */
  constraint?: ConstraintSpec;
  /** control tokens whose text the output shows (tool-call markers such as "[TOOL_CALLS]"); others stay hidden */
  special_text?: string[];
};

export interface PromptSpec {
  requestId: string;
  prompt: string;
  /**
   * How `prompt` becomes tokens. Absent: the seed API's way (the model's BOS added; special-token
   * text such as "<s>" parsed as control tokens when PARSE_SPECIAL). Present: `pieces` tokenized one
   * after another, control-token text parsed inside each, nothing added: a rendered chat template,
   * cut wherever message content held control-token text, so that content can never forge a turn.
   */
  pieces?: string[];
  /** no session (an OpenAI request without request_id): never listed, saved or persisted; its cells stay cached for prefix reuse until evicted */
  ephemeral?: boolean;
  /**
   * An existing session is brought in line with this prompt instead of continued as it is: it keeps
   * the tokens it shares with the prompt and takes the rest of the prompt after them (a chat that
   * re-sends its whole conversation each turn, under one request_id). Absent: the seed API's way.
   */
  sync?: boolean;
  /** another replica wrote this session since this one did (its lease said so): forget the local copy, load the store's */
  stale?: boolean;
  /** added to generation_config.seed for this item (OpenAI's n choices of one prompt draw differently); default 0 */
  seedOffset?: number;
}

/** A generated token's log-probability under the raw model output, and the most likely alternatives. */
export interface TokenLogprob {
  token: string;
  bytes: number[];
  logprob: number;
  top: { token: string; bytes: number[]; logprob: number }[];
}

/** HTTP thread -> engine */
export type ToEngine =
  | { type: "init"; settings: Settings }
  | { type: "submit"; ticket: number; items: PromptSpec[]; onlyNewTokens: boolean; config: GenerationConfig }
  /** `delivered[index]`: tokens of that item the client received (a cut stream); absent: keep all */
  | { type: "abort"; ticket: number; delivered?: number[] }
  | { type: "drop"; ticket: number; requestId: string }
  | { type: "describe"; ticket: number; requestId: string }
  | { type: "list"; ticket: number; after: string; limit: number }
  /**
   * a finished stream's client left before all of it was sent: keep `length` tokens, if the session
   * still has `expect`; then `settled` for `ticket` (its last lease hold) once that is written
   */
  | { type: "cut"; requestId: string; length: number; expect: number; ticket?: number }
  | { type: "stats"; ticket: number }
  | { type: "shutdown" };

export interface ErrorInfo {
  status: number;
  code: string;
  message: string;
  field?: string;
}

/** 409 for a request_id that is already generating (`field` names it in the request body). */
export function busyError(requestId: string, field: string, replica?: string): ErrorInfo {
  const where = replica ? ` on replica ${replica}` : "";
  return { status: 409, code: "busy", message: `request_id "${requestId}" is already generating${where}; wait for it to finish or abort it`, field };
}

export interface EngineStats {
  running: number;
  queued: number;
  cachedSequences: number;
  kvCellsUsed: number;
  kvCells: number;
  evictions: number;
  /** new sequences that started from an idle sequence's copied prefix, and the tokens they skipped */
  prefixHits: number;
  prefixTokens: number;
  /** of those, the ones that took a one-off sequence's slot over instead of copying (a continued conversation) */
  prefixTakeovers: number;
  steps: number;
  tokensGenerated: number;
  /** wall time of decode steps (schedule + run + postprocess + message flush), microseconds */
  stepUs: number;
  /** part of stepUs spent handing the step's messages to the HTTP thread (postMessage), microseconds */
  postUs: number;
  /** time inside llama_decode, microseconds; stepUs - decodeUs = host overhead */
  decodeUs: number;
  /** sequences fed in all steps together (batch 16 for 10 steps = 160) */
  sequenceSteps: number;
  /** runs of consecutive slot ids in all steps together: with per-sequence KV streams llama.cpp
   * evaluates each run as its own graph, so idRuns / steps above 1 is the cost of scattered slots */
  idRuns: number;
  /** running sequences moved into a hole so that they stay one run of slots (see slot-layout.ts) */
  slotSwaps: number;
  sessions: SessionStats;
}

export interface SessionStats {
  /** KV states saved from the KV cache into RAM, moved on to the store, restored from each */
  savedToRam: number;
  spilledToStore: number;
  restoredFromRam: number;
  restoredFromStore: number;
  /** continuations that decoded their tokens again (no usable state) */
  recomputed: number;
  metaWrites: number;
  /** corrupt, truncated, foreign or stale records skipped */
  rejectedBlobs: number;
  /** states dropped from RAM with nowhere to go; sessions dropped by SESSION_STORE_BYTES; expired by TTL */
  droppedRam: number;
  droppedStore: number;
  expired: number;
  storeErrors: number;
  /** evicted sessions dropped from the engine's table by its 4096-entry bound (the store keeps theirs) */
  trimmedEntries: number;
  ramSessions: number;
  ramBytes: number;
  storeSessions: number;
  storeBytes: number;
  store: string;
  degraded: string | null;
}

export interface CachedSequenceInfo {
  request_id: string;
  state: "queued" | "running" | "idle" | "evicted";
  /** where its KV state is: the KV cache, host RAM, or the persistent store */
  tier: "kv" | "ram" | "store";
  /** bytes of its state below the KV cache (RAM record, or store records) */
  state_bytes: number;
  prompt_tokens: number;
  generated_tokens: number;
  /** tokens whose KV cells are held (0 once evicted: restored or decoded again on the next request) */
  kv_cells: number;
  last_used: string;
}

export interface SessionList {
  sessions: Pick<CachedSequenceInfo, "request_id" | "state" | "tier" | "state_bytes" | "last_used">[];
  /** cursor for the next page (pass as `after`), null on the last page */
  next: string | null;
  total: number;
}

export interface ModelFacts {
  path: string;
  description: string;
  nVocab: number;
  nCtxTrain: number;
  nParams: number;
  sizeBytes: number;
  bos: number;
  eos: number;
  llamaVersion: string;
  gpuOffload: boolean;
  ctxSize: number;
  parallel: number;
  kvCells: number;
  /** the flash-attention setting served, and how it was chosen (FLASH_ATTN, or the startup probe) */
  attention: AttentionChoice;
  /** GGUF tokenizer.chat_template, null when the model has none */
  chatTemplate: string | null;
  /** text of the BOS and EOS tokens (for chat templates) */
  bosText: string;
  eosText: string;
  /** text of every control token (<s>, <|im_start|>…), longest first */
  controlTokens: string[];
}

/** engine -> HTTP thread. `index` is the position of the item in the submit's `items`. */
export type FromEngine =
  /** `progress[0]` (shared memory) goes 0 → 1 while llama.cpp loads the weights */
  | { type: "loading"; progress: Float32Array }
  | { type: "ready"; model: ModelFacts }
  | { type: "fatal"; message: string }
  /** `sessions[index]`: what each item starts from */
  | { type: "accepted"; ticket: number; prefixes: string[]; sessions: SessionSource[] }
  /** the item got its slot: generation begins (a stream's response starts here); `session` corrects accepted's */
  /** `at`: when it was admitted, ms since the epoch (performance.timeOrigin + now: comparable across threads) */
  /** `promptTokens`: the sequence's tokens before generating; `cached`: those its KV cells already hold (not decoded again) */
  | { type: "started"; ticket: number; index: number; session?: SessionSource; at: number; promptTokens: number; cached: number }
  /** `delivered`: tokens of the job whose text is complete in what was sent so far */
  | { type: "text"; ticket: number; index: number; text: string; delivered: number; logprobs?: TokenLogprob[] }
  /**
   * `length`: the session's tokens now (a cut after the end needs it); `cached`: of its `promptTokens`,
   * those its KV cells already held when it started (continued, restored, a reused prefix), not decoded again
   */
  | { type: "done"; ticket: number; index: number; reason: FinishReason; generated: number; length: number; promptTokens: number; cached: number }
  | { type: "error"; ticket: number; error: ErrorInfo }
  /**
   * With session leases: every job of the ticket ended and its session writes landed ("request"),
   * or a held stream's cut was written ("stream"); at least once each (receivers are idempotent)
   */
  | { type: "settled"; ticket: number; of: "request" | "stream" }
  | { type: "dropped"; ticket: number; found: boolean }
  | { type: "described"; ticket: number; info: CachedSequenceInfo | null }
  | { type: "stats"; ticket: number; stats: EngineStats }
  | { type: "listed"; ticket: number; list: SessionList }
  /** the session store became unusable (reason) or usable again (null) */
  | { type: "health"; degraded: string | null }
  /** the model produced non-finite logits: it is broken for good */
  | { type: "broken"; message: string }
  /** shutdown finished: sessions written */
  | { type: "closed"; written: number; failed: number };

export type FinishReason = "eos" | "length" | "aborted" | "context";
