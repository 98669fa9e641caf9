// The Elysia app: feature modules plus one error mapping to the API's JSON error shape.
import { cors } from "@elysiajs/cors";
import { openapi } from "@elysiajs/openapi";
import { Elysia } from "elysia";
import type { Settings } from "../config.ts";
import type { EngineClient } from "../engine/client.ts";
import { cacheRoutes } from "./cache/index.ts";
import { errorFields, logEvent } from "../log.ts";
import { ApiKeys, needsKey } from "./auth.ts";
import { readJsonObject } from "./body.ts";
import { errorShapeOf, HttpError } from "./errors.ts";
import { generateRoutes } from "./generate/index.ts";
import { GenerateService } from "./generate/service.ts";
import { healthRoutes } from "./health/index.ts";
import { metricsRoutes } from "./metrics/index.ts";
import { Metrics } from "./metrics/service.ts";
import { messagesRoutes } from "./messages/index.ts";
import { MessagesService } from "./messages/service.ts";
import { openaiRoutes } from "./openai/index.ts";
import { responsesRoutes } from "./responses/index.ts";
import { ResponsesService } from "./responses/service.ts";
import { openResponseStore } from "./responses/store.ts";
import { playgroundRoutes } from "./playground/index.ts";
import { OpenAIService } from "./openai/service.ts";
import { tokenizeRoutes } from "./tokenize/index.ts";
import { TokenizeService } from "./tokenize/service.ts";
import { Vocabulary } from "./tokenize/vocab.ts";
import { validationRefusal, type SchemaError } from "./validation-message.ts";


export function createApp(engine: EngineClient, settings: Settings) {
  const service = new GenerateService(engine, settings);
  const openai = new OpenAIService(engine, settings, service);
  const metrics = new Metrics(engine);
  const vocab = new Vocabulary(engine); // the tokenizer on this thread, loaded on first use
  const keys = new ApiKeys(settings.apiKeys);
  const app = new Elysia({ normalize: false });
  if (settings.corsOrigins.length > 0) {
    const any = settings.corsOrigins.includes("*");
    app.use(cors({
      origin: any ? true : settings.corsOrigins, credentials: !any, maxAge: 600,
      allowedHeaders: ["authorization", "content-type", "x-api-key", "anthropic-version", "anthropic-beta", "anthropic-dangerous-direct-browser-access", ...(settings.sessionHeader ? [settings.sessionHeader] : [])], exposeHeaders: ["x-session", "x-replica", "retry-after"],
    }));
  }
  app.use(openapi({
    path: "/openapi",
    documentation: {
      info: { title: "bun-llm-server", version: "0.1.0", description: "The seed API (/api), the OpenAI-compatible API (/v1: completions, chat completions, Responses), the Anthropic Messages API (/v1/messages), tokenize/detokenize, health and metrics. Schemas are the ones that validate requests." },
      components: {
        securitySchemes: {
          bearer: { type: "http", scheme: "bearer", description: "one of API_KEYS, when set" },
          apiKey: { type: "apiKey", in: "header", name: "x-api-key", description: "one of API_KEYS, when set (Anthropic's header; either scheme works on every route)" },
        },
      },
    },
    exclude: { methods: ["OPTIONS"] },
  }));
  return app
    // Malformed percent-escapes in the path are a bad request, not an unknown route; past
    // MAX_CONNECTIONS requests in flight, new ones get 503 (health checks always get through).
    .onRequest(({ request, set }) => {
      set.headers["x-replica"] = settings.sessions.replicaId; // which replica answered, behind a load balancer
      const path = pathOf(request);
      const inFlight = app.server?.pendingRequests ?? 0;
      if (inFlight > settings.maxConnections && path !== "/health") {
        return new HttpError(503, "too_many_connections", `more than MAX_CONNECTIONS (${settings.maxConnections}) requests in flight; retry later`, undefined, { "retry-after": "1" }).toResponse(errorShapeOf(path));
      }
      try {
        decodeURIComponent(path);
      } catch {
        return new HttpError(400, "invalid_path", `the request path has a malformed percent-escape: ${JSON.stringify(path.slice(0, 200))}`).toResponse(errorShapeOf(path));
      }
      if (keys.enabled && needsKey(request.method, path, settings.metricsPublic) && !keys.acceptsRequest(request.headers)) {
        return new HttpError(401, "invalid_api_key", "a valid API key is required: send Authorization: Bearer <key> (or x-api-key: <key>)", undefined, { "www-authenticate": "Bearer" }).toResponse(errorShapeOf(path));
      }
    })
    // Any content type is read as JSON: the contract's own fetch example sends text/plain.
    .onParse(({ request }) => {
      if (request.method !== "POST") return; // bodies only matter on the POST routes
      return readJsonObject(request, settings);
    })
    .onError(({ code, error, request }) => {
      const shape = errorShapeOf(pathOf(request));
      if (error instanceof HttpError) return error.toResponse(shape);
      const cause = (error as { cause?: unknown }).cause; // errors thrown by onParse arrive wrapped
      if (cause instanceof HttpError) return cause.toResponse(shape);
      const fail = (status: number, code: string, message: string, field?: string, headers?: Record<string, string>) =>
        new HttpError(status, code, message, field, headers).toResponse(shape);
      switch (code) {
        case "VALIDATION": {
          // the rule the value breaks, in words read off the route's schema (validation-message.ts)
          const { field, message } = validationRefusal(error.all as SchemaError[], WHOLE[error.type] ?? "request");
          return fail(422, "invalid_field", message, field || undefined);
        }
        case "PARSE":
          return fail(400, "invalid_json", "the request body could not be parsed");
        case "NOT_FOUND": {
          const allow = allowedMethods(app.routes, pathOf(request));
          if (allow.length === 0) return fail(404, "not_found", "no such route");
          return fail(405, "method_not_allowed", `${request.method} is not allowed here; use ${allow.join(" or ")}`, undefined, { allow: allow.join(", ") });
        }
        default:
          logEvent("error", "unexpected_error", errorFields(error), "http");
          return fail(500, "internal", "internal server error");
      }
    })
    .use(healthRoutes(engine))
    .use(generateRoutes(service))
    .use(cacheRoutes(engine))
    .use(openaiRoutes(openai))
    .use(messagesRoutes(new MessagesService(openai, vocab)))
    .use(tokenizeRoutes(new TokenizeService(vocab)))
    .use(responsesRoutes(new ResponsesService(openai, openResponseStore(settings.sessions))))
    .use(metricsRoutes(metrics))
    .use(playgroundRoutes());
}

/** what a refused part of the request is called when the error is about it as a whole */
const WHOLE: Record<string, string> = { body: "request body", query: "query string", params: "path", headers: "headers" };

/** The request's path. Bun's request.url is only the path when the request had no Host header (HTTP/1.0, as HAProxy's health checks send). */
const pathOf = (request: Request): string => new URL(request.url, "http://localhost").pathname;

/** The methods the app's own routes (Elysia's table: "/api/cache/:request_id") take at `path`, for 405 + Allow. */
function allowedMethods(routes: readonly { method: string; path: string }[], path: string): string[] {
  const matches = (pattern: string) => {
    const want = pattern.split("/"), got = path.split("/");
    return want.length === got.length && want.every((p, i) => p.startsWith(":") ? got[i] !== "" : p === got[i]);
  };
  return [...new Set(routes.filter((r) => matches(r.path)).map((r) => r.method))];
}
