// The OpenAI-compatible front door: GET /v1/models, POST /v1/completions, POST /v1/chat/completions.
// Errors on these routes take OpenAI's shape (src/http/errors.ts, errorShapeOf).
import { Elysia } from "elysia";
import { ChatBody, CompletionBody } from "./model.ts";
import type { OpenAIService } from "./service.ts";

export const openaiRoutes = (service: OpenAIService) =>
  new Elysia({ name: "openai" })
    .get("/v1/models", () => service.models(), { detail: { summary: "The served model (OpenAI's list shape)" } })
    .get("/v1/models/:model", ({ params }) => service.model(params.model), { detail: { summary: "One model by id" } })
    .post("/v1/completions", ({ body, request }) => service.completions(body, request.signal), {
      body: CompletionBody,
      parse: "json", // for the OpenAPI description: the app's own onParse reads every body
      detail: { summary: "OpenAI text completions, streamed as Server-Sent Events or one JSON object" },
    })
    .post("/v1/chat/completions", ({ body, request }) => service.chat(body, request.signal), {
      body: ChatBody,
      parse: "json",
      detail: { summary: "OpenAI chat completions: the model's chat template, streamed as Server-Sent Events or one JSON object" },
    });
