// The session tiers' vocabulary: their limits, what a request starts from, a state to restore, and a
// session's facts as the engine hands them over and as the store keeps them.

export interface SessionLimits {
  /** tier 1 budget, bytes */
  ramBytes: number;
  /** tier 2 cap, bytes (0: none) */
  storeBytes: number;
  /** idle expiry, seconds (0: none) */
  ttlS: number;
  /** seconds a store operation may take (0: no limit) */
  storeTimeoutS?: number;
}

/** What a session's next request starts from (the x-session header). */
export type SessionSource = "new" | "continued" | "restored" | "recomputed";

/** KV state to load into a slot: its first `kvTokens` tokens equal the sequence's. */
export interface Restore {
  payload: Uint8Array;
  kvTokens: number;
  from: "ram" | "store";
  /** the whole encoded record (given back to RAM when the restore is not used after all) */
  record: Uint8Array;
}

/** A session's persisted facts (its meta record). */
export interface StoredSession {
  tokens: Int32Array;
  promptLen: number;
  lastUsed: number;
}

export interface SessionSnapshot {
  requestId: string;
  tokens: Int32Array;
  promptLen: number;
  lastUsed: number;
}
