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
    return this.#matches(m?.[1] ?? "") && m !== null;
  }

  /** whether a request carries one of the keys: `Authorization: Bearer <key>`, or `x-api-key: <key>` (Anthropic's SDKs) */
  acceptsRequest(headers: Headers): boolean {
    const bearer = this.accepts(headers.get("authorization"));
    const apiKey = headers.get("x-api-key");
    const keyed = this.#matches(apiKey?.trim() ?? "") && !!apiKey?.trim();
    return bearer || keyed;
  }

  #matches(key: string): boolean {
    const given = digest(key);
    let ok = false;
    for (const d of this.#digests) ok = timingSafeEqual(d, given) || ok; // no early exit
    return ok;
  }
}

/** Routes open without a key: health checks, the playground page (static: it asks for the key), and /metrics when METRICS_PUBLIC. */
export function needsKey(method: string, path: string, metricsPublic: boolean): boolean {
  if (method === "OPTIONS") return false; // CORS preflight carries no credentials
  if (path === "/health" || (path === "/" && method === "GET")) return false;
  return !(path === "/metrics" && metricsPublic);
}
