// One cached conversation: the tokens of a request_id and where they live in the KV cache.
import { TokenHistory } from "../sampling/token-history.ts";
import type { Restore } from "../sessions/session-types.ts";

/**
 * Lifecycle of a sequence. Changed only by SequenceTable.transition():
 *   Queued  -> Running | Idle | Evicted      (admitted, or aborted while waiting)
 *   Running -> Idle                          (finished, aborted or failed)
 *   Idle    -> Queued | Evicted              (continued, or its KV cells were reclaimed)
 *   Evicted -> Queued                        (continued: its tokens are decoded again)
 * Idle and Evicted sequences can be dropped from the table (DELETE /api/cache/:id, LRU bound, TTL);
 * a Queued one that never started decoding is withdrawn when its request goes away.
 * An Evicted sequence's KV state may wait in the session tiers (RAM, store) for a restore.
 */
export const SeqState = { Queued: "queued", Running: "running", Idle: "idle", Evicted: "evicted" } as const;
export type SeqState = (typeof SeqState)[keyof typeof SeqState];

export class Sequence {
  readonly requestId: string;
  /** prompt + generated tokens; the last one may not be in the KV cache yet */
  readonly tokens: TokenHistory;
  /** number of leading prompt tokens */
  readonly promptLen: number;
  /** tokens [0, nPast) are in the KV cache under seqId */
  nPast = 0;
  /** llama sequence id, -1 when none is held */
  seqId = -1;
  state: SeqState = SeqState.Queued;
  /** KV cells this sequence may grow to while running (admission reserves them) */
  reserve = 0;
  /** ms since the epoch of its last state change (TTL, LRU in the store) */
  lastUsed = Date.now();
  /** KV state fetched from the session tiers, loaded into the slot it is admitted to */
  restore: Restore | null = null;
  /** the last restore was refused by llama.cpp (its tokens are decoded again instead) */
  restoreFailed = false;
  /** a one-off sequence (PromptSpec.ephemeral): cached in the KV only, for its prefix; never listed, saved or persisted */
  ephemeral = false;

  /** `promptLen`: leading prompt tokens when `tokens` already hold generated ones (a stored session) */
  constructor(requestId: string, tokens: ArrayLike<number>, vocabSize: number, promptLen = tokens.length) {
    this.requestId = requestId;
    this.tokens = new TokenHistory(tokens, vocabSize);
    this.promptLen = promptLen;
  }

  get length(): number {
    return this.tokens.length;
  }

  /** tokens known but not yet decoded into the KV cache */
  get pending(): number {
    return this.tokens.length - this.nPast;
  }

  get generated(): number {
    return this.tokens.length - this.promptLen;
  }

  get busy(): boolean {
    return this.state === SeqState.Queued || this.state === SeqState.Running;
  }
}
