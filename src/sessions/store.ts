// The persistent session tier: one interface, two implementations (a local directory, Redis).
// A store keeps opaque records under a key (a hash of the request_id, never the id itself), two
// kinds per key: "meta" (the session's tokens and facts, small, written after every request) and
// "kv" (a KV-state blob, large, written when a session spills out of host RAM or at shutdown).
// Records are encoded by blob.ts; a store never looks inside them. Any replica may read what
// another one wrote: nothing here is per process.

export type RecordKind = "meta" | "kv";

export interface StoredRecord {
  key: string;
  kind: RecordKind;
  bytes: number;
  /** milliseconds since the epoch of the last put or touch */
  lastUsed: number;
}

export interface SessionStore {
  /** "directory /path" or "redis://host:port", for logs and /health */
  readonly description: string;
  /**
   * true: other processes write to it too (Redis shared by replicas), so a lookup must ask it;
   * false: this process owns it (a directory), so its index, read at startup and kept current,
   * answers "is there a record" without I/O.
   */
  readonly shared: boolean;
  /**
   * Durable when it resolves: atomic replace (temp file, fsync, rename) or Redis' own durability.
   * A shared store resolves with its total bytes (every writer's), for SESSION_STORE_BYTES.
   */
  put(key: string, kind: RecordKind, data: Uint8Array): Promise<number | void>;
  /** null when absent */
  get(key: string, kind: RecordKind): Promise<Uint8Array | null>;
  /** Removes both kinds of a key; resolves with whether there was any (absent is fine). */
  delete(key: string): Promise<boolean>;
  /** Every record held, for the startup index, the byte cap and TTL sweeps. */
  list(): Promise<StoredRecord[]>;
  /**
   * Shared stores decide expiry and the byte cap on their own records, since every replica writes
   * them: the least recently used keys by any writer, oldest first (only those used before
   * `before`, when given)...
   */
  oldest?(limit: number, before?: number): Promise<{ key: string; lastUsed: number; bytes: number }[]>;
  /** ...and a delete that does not happen if a record of the key was used at or after `cutoff` (true: deleted). */
  deleteIfIdle?(key: string, cutoff: number): Promise<boolean>;
  close(): void;
}

/** Store keys: a hex SHA-256 of the request_id, so no client string ever names a file or a Redis key. */
export function sessionKey(requestId: string): string {
  return new Bun.CryptoHasher("sha256").update(requestId).digest("hex");
}
