// A Server-Sent-Events response for a generation: it starts once generation does (a queue timeout
// before that is still an ordinary error response), sends what the generation pushes, and stops
// the generation when the client goes away or stops reading (STALL_TIMEOUT_S). Every streaming API
// (chat completions, completions, Responses, Messages) frames its own events through it.
import type { HttpError } from "./errors.ts";
import { TokenTextStream } from "./generate/text-stream.ts";

const SSE_HEADERS = { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-store", "x-accel-buffering": "no" };

/** `data: {json}` (OpenAI's chat and completions) */
export const dataEvent = (data: unknown) => `data: ${JSON.stringify(data)}\n\n`;
/** `event: type` + `data: {json}` (Responses, Anthropic Messages) */
export const namedEvent = (type: string, data: unknown) => `event: ${type}\ndata: ${JSON.stringify(data)}\n\n`;

interface SseControls {
  push(chunk: string): void;
  /** generation began: the response goes out now */
  begin(headers?: Record<string, string>): void;
}

export function sseResponse<T>(stallMs: number, o: {
  start(c: SseControls): { result: Promise<T>; abort(): void };
  /** after the last event of a generation that ended */
  end(result: T, push: (chunk: string) => void): void;
  /** a failure after the response started, as an event */
  fail(err: HttpError, push: (chunk: string) => void): void;
}): Promise<Response> {
  return new Promise((resolve, reject) => {
    let job: { abort(): void } | null = null;
    const out = new TokenTextStream(() => job?.abort(), stallMs);
    const push = (chunk: string) => out.push(chunk, 0);
    let responded = false;
    const respond = (headers: Record<string, string> = {}) => {
      if (responded) return;
      responded = true;
      out.begin();
      resolve(new Response(out.body, { headers: { ...SSE_HEADERS, ...headers } }));
    };
    const running = o.start({ push, begin: respond });
    job = running;
    running.result.then(
      (result) => {
        o.end(result, push);
        out.end();
        respond();
      },
      (err: HttpError) => {
        if (!responded) return reject(err);
        o.fail(err, push);
        out.end();
      },
    );
  });
}
