// The playground page in a real browser: Debian's chromium driven by playwright-core (never a browser
// download), on the default model (SmolLM2). Types a prompt, streams a generation, continues the
// session, deletes it, and saves a screenshot under test-output/ (git-ignored; set
// PLAYGROUND_SCREENSHOT=docs/playground.png to refresh the README's).
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { copyFileSync } from "node:fs";
import { ensureDefaultModel } from "../src/gguf/default-model.ts";
import { startServerProcess, type ServerProcess } from "./helpers/server-process.ts";

setDefaultTimeout(120_000);
// the page functions below run in the browser (page.evaluate / waitForFunction), not in Bun
declare const document: any, MutationObserver: any;
const CHROMIUM = "/usr/bin/chromium";
const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const OUT = join(import.meta.dir, "../test-output");

let browser: Browser;
let s: ServerProcess;
let keyed: ServerProcess;
beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)`);
  const model = await ensureDefaultModel(); // real text in the screenshot, streamed slowly enough to watch
  [s, keyed] = await Promise.all([
    startServerProcess({ MODEL_PATH: model, SESSION_STORE: "off" }),
    startServerProcess({ MODEL_PATH: model, SESSION_STORE: "off", API_KEYS: "page-key" }),
  ]);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
}, 180_000);
afterAll(async () => {
  await browser?.close();
  s?.proc.kill("SIGKILL");
  keyed?.proc.kill("SIGKILL");
});

/** clicks `button` and waits for the generation it starts to finish */
async function generate(page: Page, start: () => Promise<void>): Promise<string> {
  await page.evaluate(() => (document.getElementById("status")!.textContent = ""));
  await start();
  await page.waitForFunction(() => /done|error/.test(document.getElementById("status")!.textContent ?? ""));
  expect(await page.textContent("#status")).toContain("done");
  return (await page.textContent("#output")) ?? "";
}

describe("playground", () => {
  test("stream, continue, delete, by keyboard and mouse; a screenshot", async () => {
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    await page.goto(s.url);
    await page.waitForFunction(() => (document.getElementById("model")!.textContent ?? "").startsWith("Model:"));
    expect(await page.inputValue("#max_new_tokens")).not.toBe(""); // defaults came from the server
    const id = await page.inputValue("#request-id");
    await page.fill("#prompt", "<|im_start|>user\nWrite a short poem about cats.<|im_end|>\n<|im_start|>assistant\n");
    await page.fill("#max_new_tokens", "60");
    await page.uncheck("#do_sample");
    // count how the output grows while it streams
    await page.evaluate(() => {
      const out = document.getElementById("output")!;
      (globalThis as unknown as { lengths: number[] }).lengths = [];
      new MutationObserver(() => (globalThis as unknown as { lengths: number[] }).lengths.push(out.textContent!.length)).observe(out, { childList: true, characterData: true, subtree: true });
    });
    const first = await generate(page, async () => {
      await page.focus("#prompt");
      await page.keyboard.press("Control+Enter"); // the keyboard shortcut
    });
    const lengths = await page.evaluate(() => (globalThis as unknown as { lengths: number[] }).lengths.filter((n) => n > 0));
    expect(new Set(lengths).size).toBeGreaterThanOrEqual(2); // the text grew in at least two steps
    expect(first.length).toBeGreaterThan(0);
    expect(await page.textContent("#status")).toContain("session: new");

    const both = await generate(page, () => page.click("#continue"));
    expect(both.startsWith(first)).toBe(true);
    expect(both.length).toBeGreaterThan(first.length);
    expect(await page.textContent("#status")).toContain("session: continued");

    await page.click("#refresh");
    const del = page.getByRole("button", { name: `delete session ${id}` });
    await del.waitFor();
    mkdirSync(OUT, { recursive: true });
    await page.screenshot({ path: join(OUT, "playground.png"), fullPage: true });
    // PLAYGROUND_SCREENSHOT=docs/playground.png refreshes the README's picture from this run
    if (process.env.PLAYGROUND_SCREENSHOT) copyFileSync(join(OUT, "playground.png"), process.env.PLAYGROUND_SCREENSHOT);
    await del.click();
    await del.waitFor({ state: "detached" });
    expect((await fetch(`${s.url}/api/cache/${id}`)).status).toBe(404);
    await page.close();
  });

  test("chat mode streams through /v1/chat/completions", async () => {
    const page = await browser.newPage();
    await page.goto(s.url);
    await page.waitForFunction(() => (document.getElementById("model")!.textContent ?? "").startsWith("Model:"));
    await page.selectOption("#mode", "chat");
    await page.fill("#prompt", "Hello there");
    await page.fill("#max_new_tokens", "12");
    await page.click("#generate");
    await page.waitForFunction(() => /tokens\/s|error/.test(document.getElementById("status")!.textContent ?? ""));
    await page.waitForFunction(() => !document.getElementById("generate").disabled);
    expect(((await page.textContent("#output")) ?? "").length).toBeGreaterThan(0);
    await page.close();
  });

  test("a JSON Schema response format, in both modes, gives JSON that follows it", async () => {
    const page = await browser.newPage();
    await page.goto(s.url);
    await page.waitForFunction(() => (document.getElementById("model")!.textContent ?? "").startsWith("Model:"));
    expect(await page.isHidden("#schema")).toBe(true);
    await page.selectOption("#format", "schema");
    expect(await page.isVisible("#schema")).toBe(true);
    await page.fill("#schema", JSON.stringify({ type: "object", properties: { city: { type: "string", maxLength: 20 }, big: { type: "boolean" } }, required: ["city", "big"], additionalProperties: false }));
    await page.fill("#max_new_tokens", "60");
    await page.fill("#prompt", "<|im_start|>user\nName a city as JSON.<|im_end|>\n<|im_start|>assistant\n");
    const text = await generate(page, () => page.click("#generate"));
    const value = JSON.parse(text) as { city: string; big: boolean };
    expect(Object.keys(value).sort()).toEqual(["big", "city"]);
    expect(typeof value.big).toBe("boolean");
    await page.selectOption("#mode", "chat");
    await page.selectOption("#format", "json");
    expect(await page.isHidden("#schema")).toBe(true);
    await page.fill("#prompt", "Describe a cat as JSON.");
    await page.click("#generate");
    await page.waitForFunction(() => /tokens\/s|error/.test(document.getElementById("status")!.textContent ?? ""));
    await page.waitForFunction(() => !document.getElementById("generate").disabled);
    const chatText = (await page.textContent("#output")) ?? "";
    expect(chatText.startsWith("{")).toBe(true); // an object, cut at max_new_tokens or whole
    await page.close();
  });

  test("with API keys: nothing works until the key is typed, then it does", async () => {
    const page = await browser.newPage();
    await page.goto(keyed.url);
    await page.waitForFunction(() => /401/.test(document.getElementById("status")!.textContent ?? ""));
    await page.fill("#apikey", "page-key");
    await page.dispatchEvent("#apikey", "change");
    await page.waitForFunction(() => document.getElementById("max_new_tokens").value !== "");
    await page.fill("#prompt", "Hi");
    await page.fill("#max_new_tokens", "8");
    const text = await generate(page, () => page.click("#generate"));
    expect(text.length).toBeGreaterThan(0);
    await page.close();
  });

  test("every control has a label", async () => {
    const page = await browser.newPage();
    await page.goto(s.url);
    const unlabeled = await page.evaluate(() =>
      [...document.querySelectorAll("input, select, textarea")].filter((el: { id: string; getAttribute(n: string): string | null }) => !document.querySelector(`label[for="${el.id}"]`) && !el.getAttribute("aria-label")).map((el: { id: string }) => el.id),
    );
    expect(unlabeled).toEqual([]);
    await page.close();
  });
});
