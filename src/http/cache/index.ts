// DELETE /api/cache/:request_id drops a cached sequence (its KV cells and its tokens).
import { Elysia, t } from "elysia";
import type { EngineClient } from "../../engine/client.ts";
import { HttpError } from "../errors.ts";

export const cacheRoutes = (engine: EngineClient) =>
  new Elysia({ name: "cache" }).delete(
    "/api/cache/:request_id",
    async ({ params }) => {
      const id = params.request_id;
      if (engine.active.has(id)) throw new HttpError(409, "busy", `request_id "${id}" is generating; it cannot be dropped now`, "request_id");
      if (!engine.model) throw new HttpError(503, "loading", "the model is still loading", undefined, { "retry-after": "2" });
      if (!(await engine.drop(id))) throw new HttpError(404, "not_found", `no cached sequence for request_id "${id}"`, "request_id");
      return { request_id: id, dropped: true };
    },
    { params: t.Object({ request_id: t.String({ minLength: 1 }) }) },
  );
