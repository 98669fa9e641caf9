// The session tiers' settings (SESSION_*, RESPONSES_STORE_BYTES, REPLICA_ID): host RAM, the persistent
// store (a directory, Redis or none), expiry, and how replicas share sessions.
import { homedir, hostname } from "node:os";
import { join } from "node:path";
import { bool, ConfigError, int, num, seconds, type Env } from "./env-parse.ts";

export interface SessionSettings {
  /** tier 1: bytes of KV state kept in host RAM */
  ramBytes: number;
  /** tier 2: "dir" (SESSION_DIR), a redis:// URL, or "off" */
  store: "dir" | "off" | { redis: string };
  dir: string;
  /** cap of the persistent tier, bytes (0: none; default 10 GiB) */
  storeBytes: number;
  /** idle expiry, seconds (0: never) */
  ttlS: number;
  /** RESPONSES_STORE_BYTES: bytes of stored responses kept in memory or SESSION_DIR, least recently used dropped first (0: no cap) */
  responsesBytes: number;
  /** fsync each record written to SESSION_DIR */
  fsync: boolean;
  /** seconds one store operation may take before it counts as failed (a hung disk or NFS mount) */
  storeTimeoutS: number;
  /** when KV states are written to the store: at eviction and shutdown only, or also after every request */
  kvWrites: "evict" | "finish";
  /** this replica's name (REPLICA_ID): the x-replica header, lease holder and session writer */
  replicaId: string;
  /** seconds a session lease lasts unless renewed (shared Redis store only; 0: no leases) */
  leaseTtlS: number;
  /** milliseconds a lease held by another replica is waited for before 409 (its release may be on its way) */
  leaseWaitMs: number;
}

export function sessionSettings(env: Env): SessionSettings {
  const raw = (env.SESSION_STORE ?? "").trim();
  let store: SessionSettings["store"];
  if (raw === "" || raw === "dir") store = "dir";
  else if (["off", "none", "false"].includes(raw.toLowerCase())) store = "off";
  else if (/^rediss?:\/\//.test(raw)) store = { redis: raw };
  else throw new ConfigError(`SESSION_STORE must be "dir", "off" or a redis:// URL, got "${raw}"`);
  const cache = env.LLM_CACHE_DIR || join(homedir(), ".cache", "bun-llm-server");
  return {
    ramBytes: int(env, "SESSION_RAM_BYTES", 2 * 1024 ** 3),
    store,
    dir: env.SESSION_DIR || join(cache, "sessions"),
    storeBytes: int(env, "SESSION_STORE_BYTES", 10 * 1024 ** 3),
    ttlS: num(env, "SESSION_TTL_S", 0),
    responsesBytes: int(env, "RESPONSES_STORE_BYTES", 1024 ** 3),
    fsync: bool(env, "SESSION_FSYNC", true),
    storeTimeoutS: seconds(env, "SESSION_STORE_TIMEOUT_S", 10),
    kvWrites: kvWrites(env, typeof store === "object"),
    replicaId: replicaId(env),
    leaseTtlS: num(env, "SESSION_LEASE_TTL_S", 3),
    leaseWaitMs: int(env, "SESSION_LEASE_WAIT_MS", 250),
  };
}

/** SESSION_KV_WRITES: "auto" is "finish" on a shared (Redis) store, so any replica restores the KV state, and "evict" on a directory. */
function kvWrites(env: Env, shared: boolean): SessionSettings["kvWrites"] {
  const v = (env.SESSION_KV_WRITES ?? "auto").trim().toLowerCase();
  if (v === "auto" || v === "") return shared ? "finish" : "evict";
  if (v === "finish" || v === "evict") return v;
  throw new ConfigError(`SESSION_KV_WRITES must be "auto", "finish" or "evict", got "${env.SESSION_KV_WRITES}"`);
}

/** REPLICA_ID: letters, digits and ._- (it goes into a header and Redis); default host name and pid. */
function replicaId(env: Env): string {
  const v = (env.REPLICA_ID ?? "").trim();
  if (v === "") return `${hostname()}-${process.pid}`;
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(v)) throw new ConfigError(`REPLICA_ID must be 1-64 letters, digits, ".", "_" or "-", got "${env.REPLICA_ID}"`);
  return v;
}
