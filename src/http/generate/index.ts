// Routes of the seed API: POST /api/generate-one, POST /api/generate-batch.
import { Elysia, t } from "elysia";
import { BatchItem, GenerateBatchBody, GenerateOneBody } from "./model.ts";
import type { GenerateService } from "./service.ts";

export const generateRoutes = (service: GenerateService) =>
  new Elysia({ name: "generate" })
    .get("/api/generation-defaults", () => service.defaults(), { detail: { summary: "generation_config's defaults (from the server's settings)" } })
    .post("/api/generate-one", ({ body, request }) => service.generateOne(body, request.signal), {
      body: GenerateOneBody,
      parse: "json", // for the OpenAPI description: the app's own onParse reads every body
      detail: { summary: "Generate text for one prompt (streamed plain text, or one text body)" },
    })
    .post("/api/generate-batch", ({ body, request }) => service.generateBatch(body, request.signal), {
      body: GenerateBatchBody,
      parse: "json",
      response: { 200: t.Array(BatchItem) },
      detail: { summary: "Generate for several prompts decoded together; JSON array in input order" },
    });

