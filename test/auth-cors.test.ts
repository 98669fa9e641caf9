// API keys and CORS on the real app: 401 in each route family's error shape, /health always open,
// keys from API_KEYS and API_KEYS_FILE, and CORS headers for the allowed origin only.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { ApiKeys } from "../src/http/auth.ts";
import { clientOf } from "./helpers/anthropic.ts";
import { startTestApp, type TestApp } from "./helpers/app.ts";

let t: TestApp;
beforeAll(async () => {
  const file = join(mkdtempSync(join(tmpdir(), "keys-")), "keys.txt");
  writeFileSync(file, "# operators\nfile-key-1\n\n  file-key-2  \n");
  t = await startTestApp({ API_KEYS: "env-key-1, env-key-2", API_KEYS_FILE: file, CORS_ORIGINS: "https://app.example" });
});
afterAll(() => t?.close());

const call = (path: string, init: RequestInit & { key?: string; origin?: string } = {}) => {
  const headers = new Headers(init.headers);
  if (init.key) headers.set("authorization", `Bearer ${init.key}`);
  if (init.origin) headers.set("origin", init.origin);
  return t.app.handle(new Request(`http://local${path}`, { ...init, headers }));
};
const gen = JSON.stringify({ request_id: "auth-1", prompt: "Hi", stream_response: false, generation_config: { max_new_tokens: 2 } });

describe("API keys", () => {
  test("/health needs no key", async () => {
    expect((await call("/health")).status).toBe(200);
  });

  test("seed routes: 401 in the seed shape without a key or with a wrong one; every configured key works", async () => {
    for (const key of [undefined, "wrong", "env-key-1x", "Bearer"]) {
      const r = await call("/api/generate-one", { method: "POST", body: gen, key });
      expect(r.status).toBe(401);
      expect(r.headers.get("www-authenticate")).toBe("Bearer");
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe("invalid_api_key");
    }
    for (const key of ["env-key-1", "env-key-2", "file-key-1", "file-key-2"]) {
      expect((await call("/api/stats", { key })).status).toBe(200);
    }
  });

  test("/v1: 401 in OpenAI's shape, which the SDK raises as AuthenticationError; the right key works", async () => {
    const r = await call("/v1/models");
    expect(r.status).toBe(401);
    expect(((await r.json()) as { error: { type: string } }).error.type).toBe("authentication_error");
    const sdk = (apiKey: string) => new OpenAI({ baseURL: "http://local/v1", apiKey, maxRetries: 0, fetch: (url, init) => t.app.handle(new Request(url as string, init as RequestInit)) });
    expect(await sdk("nope").models.list().then(() => null, (e: unknown) => e)).toBeInstanceOf(OpenAI.AuthenticationError);
    expect((await sdk("file-key-2").models.list()).data).toHaveLength(1);
  });

  test("/v1/messages: 401 in Anthropic's shape (the SDK's AuthenticationError); its x-api-key header works, as does Bearer", async () => {
    const r = await call("/v1/messages/count_tokens", { method: "POST", body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "Hi" }] }) });
    expect(r.status).toBe(401);
    expect(await r.json()).toEqual({ type: "error", error: { type: "authentication_error", message: expect.stringContaining("x-api-key") } });
    const sdk = (apiKey: string) => clientOf(t, apiKey);
    const ask = { model: "m", messages: [{ role: "user" as const, content: "Hi" }] };
    expect(await sdk("nope").messages.countTokens(ask).then(() => null, (e: unknown) => e)).toBeInstanceOf(Anthropic.AuthenticationError);
    expect((await sdk("env-key-2").messages.countTokens(ask)).input_tokens).toBeGreaterThan(0);
    const bearer = await call("/v1/messages/count_tokens", { method: "POST", body: JSON.stringify(ask), key: "file-key-1" });
    expect(bearer.status).toBe(200);
    // x-api-key is a key on every route; a wrong one does not pass, nor does an empty one
    expect((await call("/api/stats", { headers: { "x-api-key": "env-key-1" } })).status).toBe(200);
    for (const key of ["env-key-1x", "", " "]) expect((await call("/api/stats", { headers: { "x-api-key": key } })).status).toBe(401);
  });

  test("ApiKeys compares digests: keys of any length, prefixes and empty headers never pass", () => {
    const keys = new ApiKeys(["abc", "a-much-longer-key"]);
    expect(keys.accepts("Bearer abc")).toBe(true);
    expect(keys.accepts("bearer a-much-longer-key")).toBe(true);
    for (const h of [null, "", "Bearer ", "Bearer ab", "Bearer abcd", "Basic abc", "abc"]) expect(keys.accepts(h)).toBe(false);
    expect(new ApiKeys([]).enabled).toBe(false);
  });
});

describe("CORS", () => {
  test("a preflight from the allowed origin is answered without a key, allowing Authorization", async () => {
    const r = await call("/v1/chat/completions", {
      method: "OPTIONS", origin: "https://app.example",
      headers: { "access-control-request-method": "POST", "access-control-request-headers": "authorization, content-type" },
    });
    expect(r.status).toBeLessThan(300);
    expect(r.headers.get("access-control-allow-origin")).toBe("https://app.example");
    expect((r.headers.get("access-control-allow-headers") ?? "").toLowerCase()).toContain("authorization");
  });

  test("a preflight for Anthropic's SDK headers (x-api-key, anthropic-version, anthropic-beta) allows them", async () => {
    const r = await call("/v1/messages", {
      method: "OPTIONS", origin: "https://app.example",
      headers: { "access-control-request-method": "POST", "access-control-request-headers": "x-api-key, anthropic-version, anthropic-beta, content-type" },
    });
    expect(r.status).toBeLessThan(300);
    const allowed = (r.headers.get("access-control-allow-headers") ?? "").toLowerCase();
    for (const h of ["x-api-key", "anthropic-version", "anthropic-beta"]) expect(allowed).toContain(h);
  });

  test("responses carry the CORS headers for the allowed origin only", async () => {
    const ok = await call("/api/stats", { key: "env-key-1", origin: "https://app.example" });
    expect(ok.headers.get("access-control-allow-origin")).toBe("https://app.example");
    expect(ok.headers.get("access-control-expose-headers") ?? "").toContain("x-session");
    const other = await call("/api/stats", { key: "env-key-1", origin: "https://evil.example" });
    expect(other.headers.get("access-control-allow-origin")).toBeNull();
  });
});
