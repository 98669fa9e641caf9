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

  toResponse(): Response {
    const error: Record<string, string> = { code: this.code, message: this.message };
    if (this.field) error.field = this.field;
    return Response.json({ error }, { status: this.status, headers: this.headers });
  }
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
