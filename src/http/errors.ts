// The API's error shapes: the seed API's {"error": {"code", "message", "field"?}}, OpenAI's on /v1 and
// Anthropic's on /v1/messages, each with a 4xx/5xx status.
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
   * or on /v1/messages Anthropic's ({"type": "error", "error": {"type", "message"}}), where a
   * refused field is a 400 (neither has 422) and the type follows the status.
   */
  toResponse(shape: ErrorShape = "seed"): Response {
    const status = shape !== "seed" && this.status === 422 ? 400 : this.status;
    switch (shape) {
      case "openai": {
        const error = { message: this.message, type: openaiType(status), param: this.field ?? null, code: this.code };
        return Response.json({ error }, { status, headers: this.headers });
      }
      case "anthropic": {
        // Anthropic's errors have no field of their own: the message names it
        const message = this.field && !this.message.includes(this.field) ? `${this.field}: ${this.message}` : this.message;
        return Response.json({ type: "error", error: { type: anthropicType(status), message } }, { status, headers: this.headers });
      }
      case "seed": {
        const error: Record<string, string> = { code: this.code, message: this.message };
        if (this.field) error.field = this.field;
        return Response.json({ error }, { status, headers: this.headers });
      }
      default: {
        const never: never = shape;
        throw new Error(`unknown error shape ${String(never)}`);
      }
    }
  }
}

export type ErrorShape = "seed" | "openai" | "anthropic";

/** the route family's error shape: Anthropic's on /v1/messages, OpenAI's on the rest of /v1 */
export function errorShapeOf(path: string): ErrorShape {
  if (path === "/v1/messages" || path.startsWith("/v1/messages/")) return "anthropic";
  return path.startsWith("/v1/") ? "openai" : "seed";
}

function openaiType(status: number): string {
  if (status === 401) return "authentication_error";
  if (status === 403) return "permission_error";
  if (status === 404) return "not_found_error";
  if (status === 429) return "rate_limit_error";
  if (status >= 500) return "server_error";
  return "invalid_request_error";
}

/** Anthropic's error types (its docs' list; 503, loading or a full queue, is its "overloaded") */
export function anthropicType(status: number): string {
  if (status === 401) return "authentication_error";
  if (status === 403) return "permission_error";
  if (status === 404) return "not_found_error";
  if (status === 408 || status === 504) return "timeout_error";
  if (status === 413) return "request_too_large";
  if (status === 429) return "rate_limit_error";
  if (status === 503 || status === 529) return "overloaded_error";
  if (status >= 500) return "api_error";
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
