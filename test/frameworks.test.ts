// Agent frameworks as the client, on the real model (SmolLM2, whose template knows no tools: the
// generic format): LangChain JS's ChatOpenAI with bindTools through a whole tool loop, and
// withStructuredOutput by each of its methods. What LangChain parses must be what was asked for.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { AIMessage, HumanMessage, ToolMessage, type BaseMessage } from "@langchain/core/messages";
import { tool } from "@langchain/core/tools";
import { ChatOpenAI } from "@langchain/openai";
import { z } from "zod";
import { ensureDefaultModel } from "../src/gguf/default-model.ts";
import { startTestApp, type TestApp } from "./helpers/app.ts";

setDefaultTimeout(240_000);

let t: TestApp;
let llm: ChatOpenAI;
beforeAll(async () => {
  t = await startTestApp({ MODEL_PATH: await ensureDefaultModel(), CTX_SIZE: "4096", PARALLEL: "2" });
  llm = new ChatOpenAI({
    model: "smollm2", apiKey: "unused", temperature: 0, maxTokens: 200, maxRetries: 0,
    configuration: { baseURL: "http://local/v1", fetch: (url: string | URL | Request, init?: RequestInit) => t.app.handle(new Request(url as string, init)) },
  });
}, 600_000);
afterAll(() => t?.close());

const calls: { city: string; unit: string }[] = [];
const weather = tool(
  async ({ city, unit }) => {
    calls.push({ city, unit });
    return `It is 21 degrees ${unit} and sunny in ${city}.`;
  },
  {
    name: "get_weather",
    description: "Get the current weather in a city",
    schema: z.object({ city: z.string().describe("The city, e.g. Paris"), unit: z.enum(["celsius", "fahrenheit"]) }),
  },
);

describe("LangChain JS (@langchain/openai) on SmolLM2", () => {
  test("bindTools: the model calls the tool, LangChain runs it, the result goes back, and the model answers", async () => {
    const withTools = llm.bindTools([weather], { tool_choice: "any" });
    const messages: BaseMessage[] = [new HumanMessage("What is the weather in Paris right now?")];
    const first = (await withTools.invoke(messages)) as AIMessage;
    expect(first.tool_calls?.length).toBeGreaterThan(0);
    const call = first.tool_calls![0]!;
    expect(call.name).toBe("get_weather");
    expect(["celsius", "fahrenheit"]).toContain(call.args.unit);
    expect(typeof call.args.city).toBe("string");
    messages.push(first);
    for (const c of first.tool_calls!) messages.push((await weather.invoke(c)) as ToolMessage);
    expect(calls.length).toBe(first.tool_calls!.length);
    // the answer, tools still bound (auto): the model may answer in text now that it has the result
    const answer = (await llm.bindTools([weather]).invoke(messages)) as AIMessage;
    if (answer.tool_calls?.length) for (const c of answer.tool_calls) expect(c.name).toBe("get_weather");
    else expect(String(answer.content).length).toBeGreaterThan(0);
  });

  test("a streamed tool call comes back whole through LangChain's chunk merging", async () => {
    const stream = await llm.bindTools([weather], { tool_choice: "any" }).stream("Weather in Oslo, in celsius?");
    let merged: Awaited<ReturnType<typeof stream.next>>["value"] | undefined;
    for await (const chunk of stream) merged = merged ? merged.concat(chunk) : chunk;
    const call = merged!.tool_calls![0]!;
    expect(call.name).toBe("get_weather");
    expect(["celsius", "fahrenheit"]).toContain(call.args.unit);
  });

  const Person = z.object({ name: z.string().max(40), age: z.number().int().min(0).max(150), city: z.string().max(40) });
  for (const method of ["functionCalling", "jsonSchema", "jsonMode"] as const) {
    test(`withStructuredOutput (${method}): a parsed object of the schema`, async () => {
      const structured = llm.withStructuredOutput(Person, { method, name: "person" });
      const out = await structured.invoke("Alice is 31 years old and lives in Lyon. Give her name, age and city as JSON.");
      expect(Person.safeParse(out).success).toBe(true);
    });
  }
});
