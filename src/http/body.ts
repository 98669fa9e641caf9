// Reading a JSON request body defensively, before any schema sees it: a byte cap enforced while
// reading (never buffering past it), strict UTF-8, a nesting-depth cap checked on the raw text
// (deep nesting overflowed the validator's stack), and a top-level object.
import { HttpError } from "./errors.ts";

export interface BodyLimits {
  maxBodyBytes: number;
  maxJsonDepth: number;
  /** seconds the whole body may take to arrive (a trickling client holds memory and a slot); 0 = no limit */
  bodyTimeoutS: number;
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });
/** the rest of an unread body is not waited for: the connection closes after the answer */
const CLOSE = { connection: "close" };

export async function readJsonObject(request: Request, limits: BodyLimits): Promise<Record<string, unknown>> {
  const bytes = await readCapped(request, limits.maxBodyBytes, limits.bodyTimeoutS);
  let text: string;
  try {
    text = strictUtf8.decode(bytes);
  } catch {
    throw new HttpError(400, "invalid_utf8", "the request body is not valid UTF-8");
  }
  if (text.trim() === "") throw new HttpError(400, "invalid_json", "the request body is empty; expected a JSON object");
  const depth = nestingDepth(text);
  if (depth > limits.maxJsonDepth) throw new HttpError(400, "json_too_deep", `the request body nests deeper than MAX_JSON_DEPTH (${limits.maxJsonDepth})`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, "invalid_json", `the request body is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new HttpError(400, "expected_object", `the request body is ${Array.isArray(value) ? "an array" : value === null ? "null" : `a ${typeof value}`}; expected a JSON object`);
  }
  return value as Record<string, unknown>;
}

async function readCapped(request: Request, max: number, timeoutS: number): Promise<Uint8Array> {
  const declared = Number(request.headers.get("content-length") ?? "0");
  if (declared > max) throw tooLarge(max);
  if (!request.body) return new Uint8Array(0);
  const parts: Uint8Array[] = [];
  let total = 0;
  const reader = request.body.getReader();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = timeoutS > 0
    ? new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new HttpError(408, "body_timeout", `the request body did not arrive within BODY_TIMEOUT_S (${timeoutS} s)`, undefined, CLOSE)), timeoutS * 1000)))
    : null;
  late?.catch(() => {});
  try {
    for (;;) {
      const { done, value } = await (late ? Promise.race([reader.read(), late]) : reader.read());
      if (done) break;
      total += value.length;
      if (total > max) throw tooLarge(max);
      parts.push(value);
    }
  } catch (err) {
    void reader.cancel().catch(() => {});
    throw err;
  } finally {
    clearTimeout(timer);
  }
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) (out.set(p, at), (at += p.length));
  return out;
}

/** Deepest bracket nesting of JSON text, outside strings (one pass, no recursion). */
export function nestingDepth(text: string): number {
  let depth = 0, max = 0, inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92) i++; // backslash: skip the escaped character
      else if (c === 34) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 123 || c === 91) max = Math.max(max, ++depth);
    else if (c === 125 || c === 93) depth--;
  }
  return max;
}

export function tooLarge(max: number): HttpError {
  return new HttpError(413, "body_too_large", `the request body exceeds MAX_BODY_BYTES (${max} bytes)`, undefined, CLOSE);
}
