// The session cache: GET /api/cache lists sessions in every tier (paginated), GET
// /api/cache/:request_id describes one (state, tier, bytes), DELETE removes it from every tier.
import { Elysia, t } from "elysia";
import type { EngineClient } from "../../engine/client.ts";
import { HttpError, requireModel } from "../errors.ts";

const Params = t.Object({ request_id: t.String({ minLength: 1 }) });
const ListQuery = t.Object({
  /** cursor: the `next` of the previous page (request_ids sort as strings) */
  after: t.Optional(t.String()),
  limit: t.Optional(t.Numeric({ minimum: 1, maximum: 1000, default: 100 })),
}, { additionalProperties: false });

export const cacheRoutes = (engine: EngineClient) =>
  new Elysia({ name: "cache" })
  .get(
    "/api/cache",
    async ({ query }) => {
      requireModel(engine);
      return engine.list(query.after ?? "", Math.floor(query.limit ?? 100));
    },
    { query: ListQuery },
  )
  .get(
    "/api/cache/:request_id",
    async ({ params }) => {
      requireModel(engine);
      const info = await engine.describe(params.request_id);
      if (!info) throw new HttpError(404, "not_found", `no cached sequence for request_id "${params.request_id}"`, "request_id");
      return info;
    },
    { params: Params },
  )
  .delete(
    "/api/cache/:request_id",
    async ({ params }) => {
      const id = params.request_id;
      if (engine.active.has(id)) throw new HttpError(409, "busy", `request_id "${id}" is generating; it cannot be dropped now`, "request_id");
      requireModel(engine);
      if (!(await engine.drop(id))) throw new HttpError(404, "not_found", `no cached sequence for request_id "${id}"`, "request_id");
      return { request_id: id, dropped: true };
    },
    { params: Params },
  );
