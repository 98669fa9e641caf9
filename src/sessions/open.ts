// Builds the session tiers the settings ask for: the store (directory, Redis or none), the
// engine identity that KV blobs must match, and the manager over both.
import type { Settings } from "../config.ts";
import type { EngineIdentity } from "./blob.ts";
import { DirectoryStore } from "./dir-store.ts";
import { modelFingerprint } from "./fingerprint.ts";
import { SessionManager } from "./manager.ts";
import { RedisStore } from "./redis-store.ts";
import type { SessionStore } from "./store.ts";

/** The KV layout a state blob depends on (cell types are llama.cpp's default F16 here). */
export function contextShape(settings: Settings): string {
  return `${settings.kvUnified ? "unified" : "streams"};k=f16;v=f16;fa=${settings.flashAttn}`;
}

export function openStore(settings: Settings): SessionStore | null {
  const { store } = settings.sessions;
  if (store === "off") return null;
  if (store === "dir") return new DirectoryStore(settings.sessions.dir, { fsync: settings.sessions.fsync });
  return new RedisStore(store.redis);
}

export async function openSessions(settings: Settings, modelPath: string, llamaVersion: string): Promise<SessionManager> {
  const self: EngineIdentity = { model: modelFingerprint(modelPath), llama: llamaVersion, shape: contextShape(settings) };
  const { ramBytes, storeBytes, ttlS } = settings.sessions;
  const manager = new SessionManager(openStore(settings), self, { ramBytes, storeBytes, ttlS });
  await manager.init();
  return manager;
}
