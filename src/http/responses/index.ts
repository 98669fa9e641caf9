// OpenAI's Responses API: POST /v1/responses, and the stored responses by id.
import { Elysia, t } from "elysia";
import { ResponseBody } from "./model.ts";
import type { ResponsesService } from "./service.ts";

export const responsesRoutes = (service: ResponsesService) =>
  new Elysia({ name: "responses" })
    .post("/v1/responses", ({ body, request }) => service.create(body, request.signal), {
      body: ResponseBody,
      parse: "json",
      detail: { summary: "OpenAI Responses API: a turn, continued from a stored response by previous_response_id (its durable session); typed SSE events when streamed" },
    })
    .get("/v1/responses/:id", ({ params }) => service.get(params.id), { detail: { summary: "A stored response" } })
    .delete("/v1/responses/:id", ({ params }) => service.delete(params.id), { detail: { summary: "Deletes a stored response" } })
    .get("/v1/responses/:id/input_items", ({ params, query }) => service.inputItems(params.id, query), {
      query: t.Object({ order: t.Optional(t.Union([t.Literal("asc"), t.Literal("desc")])), limit: t.Optional(t.String()), after: t.Optional(t.String()), include: t.Optional(t.Unknown()) }),
      detail: { summary: "A stored response's input items" },
    });
