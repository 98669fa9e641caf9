// Builds the session tiers the settings ask for: the store (directory, Redis or none), the
// engine identity that KV blobs must match, and the manager over both.
import type { Settings } from "../config.ts";
import { llamaBuildTag } from "../native/library-path.ts";
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
  return new RedisStore(store.redis, { owner: settings.sessions.replicaId });
}

/**
 * The llama.cpp build a state blob must come from: its version and commit (build-native.sh writes
 * build-info.json beside the library), or, without that file (the compiled binary's extracted
 * copy), a fingerprint of the library itself. Backend and CPU flags do not change the format.
 */
export function llamaIdentity(libPath: string, version: string): string {
  const tag = llamaBuildTag(libPath); // our patches change the numbers: they are part of it
  return tag ? `${version} ${tag}` : `${version} lib:${modelFingerprint(libPath)}`;
}

export async function openSessions(settings: Settings, modelPath: string, native: { path: string; llamaVersion: string }): Promise<SessionManager> {
  const self: EngineIdentity = { model: modelFingerprint(modelPath), llama: llamaIdentity(native.path, native.llamaVersion), shape: contextShape(settings) };
  const { ramBytes, storeBytes, ttlS, storeTimeoutS } = settings.sessions;
  const manager = new SessionManager(openStore(settings), self, { ramBytes, storeBytes, ttlS, storeTimeoutS });
  await manager.init();
  return manager;
}
