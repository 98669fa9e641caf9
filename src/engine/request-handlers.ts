// What the HTTP side hands the engine client for each request, and what watches every request (metrics).
import type { ErrorInfo, FinishReason, SessionSource, TokenLogprob } from "./messages.ts";

export interface RequestHandlers {
  /** `sessions[index]`: what each item starts from (new, continued, restored, recomputed) */
  accepted(prefixes: string[], sessions: SessionSource[]): void;
  /** the item got its slot and generation begins: its prompt's tokens, and those already cached */
  started?(index: number, session: SessionSource | undefined, promptTokens: number, cached: number): void;
  /** `delivered`: the item's tokens whose text is complete once this text is sent */
  text(index: number, text: string, delivered: number, logprobs?: TokenLogprob[]): void;
  /**
   * `length`: the session's tokens now; `promptTokens`: its tokens before this generation; `cached`:
   * of those, the ones taken from the KV cache, a restored state or a reused prefix (not decoded again)
   */
  done(index: number, reason: FinishReason, generated: number, length: number, promptTokens: number, cached: number): void;
  error(error: ErrorInfo): void;
}

/** Sees every request's life on the HTTP thread (metrics); never called on the engine thread. */
export interface RequestObserver {
  submitted(ticket: number, items: number): void;
  /** `at`: admission time, ms since the epoch (the message itself arrives after the first decode step) */
  started(ticket: number, index: number, at: number): void;
  text(ticket: number, index: number): void;
  done(ticket: number, index: number, reason: FinishReason, generated: number, promptTokens: number): void;
  failed(ticket: number, items: number, status: number): void;
}
