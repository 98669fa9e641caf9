// The OpenAI-compatible front door: GET /v1/models, POST /v1/completions, POST /v1/chat/completions.
// Errors on these routes take OpenAI's shape (src/http/errors.ts, errorShapeOf).
import { Elysia } from "elysia";
import { ChatBody, CompletionBody } from "./model.ts";
import type { OpenAIService } from "./service.ts";

/**
 * SESSION_HEADER (none by default; x-session-id in a cluster) names the session when the body does
 * not: a proxy routes on a header without reading the body (HAProxy sees only its first
 * tune.bufsize bytes). The body's field wins.
 */
function withHeaderId<B extends { request_id?: string }>(body: B, request: Request, name: string): B {
  const header = name ? request.headers.get(name) : null;
  return body.request_id || !header ? body : { ...body, request_id: header };
}

export const openaiRoutes = (service: OpenAIService) =>
  new Elysia({ name: "openai" })
    .get("/v1/models", () => service.models(), { detail: { summary: "The served model (OpenAI's list shape)" } })
    .get("/v1/models/:model", ({ params }) => service.model(params.model), { detail: { summary: "One model by id" } })
    .post("/v1/completions", ({ body, request }) => service.completions(withHeaderId(body, request, service.settings.sessionHeader), request.signal), {
      body: CompletionBody,
      parse: "json", // for the OpenAPI description: the app's own onParse reads every body
      detail: { summary: "OpenAI text completions, streamed as Server-Sent Events or one JSON object" },
    })
    .post("/v1/chat/completions", ({ body, request }) => service.chat(withHeaderId(body, request, service.settings.sessionHeader), request.signal), {
      body: ChatBody,
      parse: "json",
      detail: { summary: "OpenAI chat completions: the model's chat template, streamed as Server-Sent Events or one JSON object" },
    });
