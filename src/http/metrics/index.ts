// GET /metrics: Prometheus text exposition (needs an API key when keys are set, unless METRICS_PUBLIC).
import { Elysia } from "elysia";
import type { Metrics } from "./service.ts";

export const metricsRoutes = (metrics: Metrics) =>
  new Elysia({ name: "metrics" }).get(
    "/metrics",
    async () => {
      const { text, contentType } = await metrics.render();
      return new Response(text, { headers: { "content-type": contentType, "cache-control": "no-store" } });
    },
    { detail: { summary: "Prometheus metrics (vLLM's names, prefix vllm:; the server's own, llm_server:)" } },
  );
