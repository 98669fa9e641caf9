// The Elysia app: feature modules plus one error mapping to the API's JSON error shape.
import { Elysia } from "elysia";
import type { Settings } from "../config.ts";
import type { EngineClient } from "../engine/client.ts";
import { cacheRoutes } from "./cache/index.ts";
import { errorFields, logEvent } from "../log.ts";
import { readJsonObject } from "./body.ts";
import { fieldFromPointer, HttpError } from "./errors.ts";
import { generateRoutes } from "./generate/index.ts";
import { GenerateService } from "./generate/service.ts";
import { healthRoutes } from "./health/index.ts";


export function createApp(engine: EngineClient, settings: Settings) {
  const service = new GenerateService(engine, settings);
  const app = new Elysia({ normalize: false });
  return app
    // Malformed percent-escapes in the path are a bad request, not an unknown route; past
    // MAX_CONNECTIONS requests in flight, new ones get 503 (health checks always get through).
    .onRequest(({ request }) => {
      const path = new URL(request.url).pathname;
      const inFlight = app.server?.pendingRequests ?? 0;
      if (inFlight > settings.maxConnections && path !== "/health") {
        return new HttpError(503, "too_many_connections", `more than MAX_CONNECTIONS (${settings.maxConnections}) requests in flight; retry later`, undefined, { "retry-after": "1" }).toResponse();
      }
      try {
        decodeURIComponent(path);
      } catch {
        return new HttpError(400, "invalid_path", `the request path has a malformed percent-escape: ${JSON.stringify(path.slice(0, 200))}`).toResponse();
      }
    })
    // Any content type is read as JSON: the contract's own fetch example sends text/plain.
    .onParse(({ request }) => {
      if (request.method !== "POST") return; // bodies only matter on the POST routes
      return readJsonObject(request, settings);
    })
    .onError(({ code, error, request }) => {
      if (error instanceof HttpError) return error.toResponse();
      const cause = (error as { cause?: unknown }).cause; // errors thrown by onParse arrive wrapped
      if (cause instanceof HttpError) return cause.toResponse();
      switch (code) {
        case "VALIDATION": {
          const first = error.all[0] as { path?: string; message?: string; summary?: string } | undefined;
          const field = fieldFromPointer(first?.path ?? "");
          const what = first?.summary ?? first?.message ?? "invalid value";
          return new HttpError(422, "invalid_field", field ? `${field}: ${what}` : `request body: ${what}`, field || undefined).toResponse();
        }
        case "PARSE":
          return new HttpError(400, "invalid_json", "the request body could not be parsed").toResponse();
        case "NOT_FOUND": {
          const allow = allowedMethods(app.routes, new URL(request.url).pathname);
          if (allow.length === 0) return new HttpError(404, "not_found", "no such route").toResponse();
          return new HttpError(405, "method_not_allowed", `${request.method} is not allowed here; use ${allow.join(" or ")}`, undefined, { allow: allow.join(", ") }).toResponse();
        }
        default:
          logEvent("error", "unexpected_error", errorFields(error), "http");
          return new HttpError(500, "internal", "internal server error").toResponse();
      }
    })
    .use(healthRoutes(engine))
    .use(generateRoutes(service))
    .use(cacheRoutes(engine));
}

/** The methods the app's own routes (Elysia's table: "/api/cache/:request_id") take at `path`, for 405 + Allow. */
function allowedMethods(routes: readonly { method: string; path: string }[], path: string): string[] {
  const matches = (pattern: string) => {
    const want = pattern.split("/"), got = path.split("/");
    return want.length === got.length && want.every((p, i) => p.startsWith(":") ? got[i] !== "" : p === got[i]);
  };
  return [...new Set(routes.filter((r) => matches(r.path)).map((r) => r.method))];
}
