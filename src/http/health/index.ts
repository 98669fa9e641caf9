// GET /health: 503 while the model loads or the server drains, 200 with model facts once ready
// ("degraded" while the session store is unusable: generation goes on). Never waits on the engine.
import { Elysia } from "elysia";
import type { EngineClient } from "../../engine/client.ts";
import type { ModelFacts } from "../../engine/messages.ts";

/** the model's facts a health check needs (not its chat template or control-token list) */
const facts = ({ chatTemplate, controlTokens, bosText, eosText, ...rest }: ModelFacts) => ({ ...rest, chat_template: chatTemplate !== null });

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
      if (engine.broken) {
        set.status = 503;
        return { status: "broken", error: engine.broken, model: facts(engine.model) };
      }
      if (engine.draining) {
        set.status = 503;
        set.headers["retry-after"] = "5";
        return { status: "draining", in_flight: engine.inFlight };
      }
      if (engine.degraded) return { status: "degraded", degraded: engine.degraded, model: facts(engine.model), in_flight: engine.inFlight };
      return { status: "ok", model: facts(engine.model), in_flight: engine.inFlight };
    })
    .get("/api/stats", async () => engine.stats());
