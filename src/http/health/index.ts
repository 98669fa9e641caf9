// GET /health: 503 while the model loads, 200 with model facts once ready. Never waits on the engine.
import { Elysia } from "elysia";
import type { EngineClient } from "../../engine/client.ts";

export const healthRoutes = (engine: EngineClient) =>
  new Elysia({ name: "health" })
    .get("/health", ({ set }) => {
      if (engine.fatal) {
        set.status = 503;
        return { status: "error", error: engine.fatal };
      }
      if (!engine.model) {
        set.status = 503;
        return { status: "loading", progress: engine.loadProgress };
      }
      return { status: "ok", model: engine.model, in_flight: engine.inFlight };
    })
    .get("/api/stats", async () => engine.stats());
