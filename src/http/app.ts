// The Elysia app: feature modules plus one error mapping to the API's JSON error shape.
import { Elysia } from "elysia";
import type { Settings } from "../config.ts";
import type { EngineClient } from "../engine/client.ts";
import { cacheRoutes } from "./cache/index.ts";
import { fieldFromPointer, HttpError } from "./errors.ts";
import { generateRoutes } from "./generate/index.ts";
import { GenerateService } from "./generate/service.ts";
import { healthRoutes } from "./health/index.ts";

const utf8 = new TextDecoder();

export function createApp(engine: EngineClient, settings: Settings) {
  const service = new GenerateService(engine, settings);
  return new Elysia({ normalize: false })
    // Any content type is read as JSON: the contract's own fetch example sends text/plain.
    .onParse(async ({ request }) => {
      if (request.method !== "POST") return; // bodies only matter on the POST routes
      const declared = Number(request.headers.get("content-length") ?? "0");
      if (declared > settings.maxBodyBytes) throw tooLarge(settings.maxBodyBytes);
      const bytes = await request.arrayBuffer();
      if (bytes.byteLength > settings.maxBodyBytes) throw tooLarge(settings.maxBodyBytes);
      const text = utf8.decode(bytes);
      if (text.trim() === "") throw new HttpError(400, "invalid_json", "the request body is empty; expected a JSON object");
      try {
        return JSON.parse(text);
      } catch (err) {
        throw new HttpError(400, "invalid_json", `the request body is not valid JSON: ${(err as Error).message}`);
      }
    })
    .onError(({ code, error }) => {
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
        case "NOT_FOUND":
          return new HttpError(404, "not_found", "no such route").toResponse();
        default:
          console.error("[http] unexpected error:", error);
          return new HttpError(500, "internal", "internal server error").toResponse();
      }
    })
    .use(healthRoutes(engine))
    .use(generateRoutes(service))
    .use(cacheRoutes(engine));
}

function tooLarge(max: number): HttpError {
  return new HttpError(413, "body_too_large", `the request body exceeds MAX_BODY_BYTES (${max} bytes)`);
}
