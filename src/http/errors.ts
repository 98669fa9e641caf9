// The one error shape of the API: {"error": {"code", "message", "field"?}} with a 4xx/5xx status.
import type { EngineClient } from "../engine/client.ts";
import type { ErrorInfo } from "../engine/messages.ts";

export class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  readonly field?: string;
  readonly headers: Record<string, string>;

  constructor(status: number, code: string, message: string, field?: string, headers: Record<string, string> = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
    this.headers = headers;
  }

  static from(info: ErrorInfo): HttpError {
    const headers: Record<string, string> = info.status === 503 ? { "retry-after": "1" } : {};
    return new HttpError(info.status, info.code, info.message, info.field, headers);
  }

  /**
   * The seed API's shape, or on /v1 OpenAI's ({"error": {"message", "type", "param", "code"}}),
   * where a refused field is a 400 (OpenAI has no 422) and the type follows the status.
   */
  toResponse(shape: ErrorShape = "seed"): Response {
    if (shape === "openai") {
      const status = this.status === 422 ? 400 : this.status;
      const error = { message: this.message, type: openaiType(status), param: this.field ?? null, code: this.code };
      return Response.json({ error }, { status, headers: this.headers });
    }
    const error: Record<string, string> = { code: this.code, message: this.message };
    if (this.field) error.field = this.field;
    return Response.json({ error }, { status: this.status, headers: this.headers });
  }
}

export type ErrorShape = "seed" | "openai";

/** the route family's error shape: OpenAI's on /v1 */
export const errorShapeOf = (path: string): ErrorShape => (path.startsWith("/v1/") ? "openai" : "seed");

function openaiType(status: number): string {
  if (status === 401) return "authentication_error";
  if (status === 403) return "permission_error";
  if (status === 404) return "not_found_error";
  if (status === 429) return "rate_limit_error";
  if (status >= 500) return "server_error";
  return "invalid_request_error";
}

/** "/generation_config/top_p" or "/prompts/0/request_id" -> "generation_config.top_p", "prompts[0].request_id" */
export function fieldFromPointer(pointer: string): string {
  const parts = pointer.split("/").filter(Boolean).map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"));
  let out = "";
  for (const p of parts) out += /^\d+$/.test(p) ? `[${p}]` : out ? `.${p}` : p;
  return out;
}

/** 503 (with Retry-After) until the engine has a model: still loading, or failed to load. */
export function requireModel(engine: EngineClient): void {
  if (engine.broken) throw new HttpError(503, "model_broken", engine.broken);
  if (engine.model) return;
  const message = engine.fatal ? `the model failed to load: ${engine.fatal}` : "the model is still loading; retry shortly";
  throw new HttpError(503, "loading", message, undefined, { "retry-after": "2" });
}
