// Anthropic's Messages API: POST /v1/messages and POST /v1/messages/count_tokens. Errors on these
// routes take Anthropic's shape (src/http/errors.ts, errorShapeOf); its SDKs' x-api-key,
// anthropic-version and anthropic-beta headers are accepted (app.ts).
import { Elysia, t } from "elysia";
import { CountTokensBody, MessagesBody } from "./model.ts";
import type { MessagesService } from "./service.ts";

export const messagesRoutes = (service: MessagesService) =>
  new Elysia({ name: "messages" })
    .post("/v1/messages", ({ body, request }) => service.create(body, request.signal), {
      body: MessagesBody,
      parse: "json", // for the OpenAPI description: the app's own onParse reads every body
      detail: { summary: "Anthropic Messages: the model's chat template, tools, streamed as Server-Sent Events (event: lines) or one JSON message" },
    })
    .post("/v1/messages/count_tokens", ({ body }) => service.countTokens(body), {
      body: CountTokensBody,
      parse: "json",
      response: { 200: t.Object({ input_tokens: t.Integer() }) },
      detail: { summary: "Anthropic's token count: the prompt as the chat template renders it, tools included" },
    });
