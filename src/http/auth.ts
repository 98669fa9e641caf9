// API keys (API_KEYS, API_KEYS_FILE). Keys are kept only as SHA-256 digests and every request's key
// is compared against all of them with timingSafeEqual, so the time taken says nothing about how
// much of a key was right. Keys are never logged.
import { createHash, timingSafeEqual } from "node:crypto";

const digest = (key: string) => createHash("sha256").update(key).digest();

export class ApiKeys {
  readonly #digests: Buffer[];

  constructor(keys: readonly string[]) {
    this.#digests = keys.map(digest);
  }

  get enabled(): boolean {
    return this.#digests.length > 0;
  }

  /** whether an Authorization header carries one of the keys (`Bearer <key>`) */
  accepts(authorization: string | null): boolean {
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization ?? "");
    const given = digest(m?.[1] ?? "");
    let ok = false;
    for (const d of this.#digests) ok = timingSafeEqual(d, given) || ok; // no early exit
    return ok && m !== null;
  }
}

/** Routes open without a key: health checks, the playground page (static: it asks for the key), and /metrics when METRICS_PUBLIC. */
export function needsKey(method: string, path: string, metricsPublic: boolean): boolean {
  if (method === "OPTIONS") return false; // CORS preflight carries no credentials
  if (path === "/health" || (path === "/" && method === "GET")) return false;
  return !(path === "/metrics" && metricsPublic);
}
