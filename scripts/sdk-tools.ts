// `bun scripts/sdk-tools.ts [http://localhost:8080]`: a tool loop against this server as agents run
// one, printed as a transcript: the official openai SDK (a call, the tool's result, the answer; then
// the same call streamed, chunk by chunk), and LangChain JS (bindTools, a tool run, the answer).
import { HumanMessage, type AIMessage, type BaseMessage, type ToolMessage } from "@langchain/core/messages";
import { tool } from "@langchain/core/tools";
import { ChatOpenAI } from "@langchain/openai";
import OpenAI from "openai";
import type { ChatCompletionMessageParam, ChatCompletionTool } from "openai/resources/chat/completions";
import { z } from "zod";

const base = process.argv[2] ?? "http://localhost:8080";
const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: process.env.API_KEY ?? "unused" });
const tools: ChatCompletionTool[] = [{
  type: "function",
  function: {
    name: "get_weather", description: "Get the current weather in a city", strict: true,
    parameters: { type: "object", properties: { city: { type: "string" }, unit: { enum: ["celsius", "fahrenheit"] } }, required: ["city", "unit"], additionalProperties: false },
  },
}];
const runTool = (args: { city: string; unit: string }) => `It is 21 degrees ${args.unit} and sunny in ${args.city}.`;
const show = (label: string, v: unknown) => console.log(`--- ${label}\n${JSON.stringify(v, null, 1)}`);

console.log("=== openai SDK: a tool loop");
const messages: ChatCompletionMessageParam[] = [{ role: "user", content: "What is the weather in Paris right now?" }];
const first = await client.chat.completions.create({ model: "any", messages, tools, tool_choice: "auto", temperature: 0, max_tokens: 120 });
show("1. the model's reply (finish_reason, message)", { finish_reason: first.choices[0]!.finish_reason, message: first.choices[0]!.message, usage: first.usage });
const calls = first.choices[0]!.message.tool_calls ?? [];
messages.push(first.choices[0]!.message);
for (const c of calls) if (c.type === "function") messages.push({ role: "tool", tool_call_id: c.id, content: runTool(JSON.parse(c.function.arguments)) });
show("2. tool results sent back", messages.slice(2));
const last = await client.chat.completions.create({ model: "any", messages, tools, temperature: 0, max_tokens: 120 });
show("3. the answer", { finish_reason: last.choices[0]!.finish_reason, message: last.choices[0]!.message, usage: last.usage });

console.log("\n=== openai SDK: the call streamed (delta.tool_calls per chunk)");
const stream = await client.chat.completions.create({ model: "any", messages: messages.slice(0, 1), tools, tool_choice: "required", temperature: 0, max_tokens: 120, stream: true });
for await (const chunk of stream) {
  const c = chunk.choices[0];
  if (c) console.log(JSON.stringify({ delta: c.delta, finish_reason: c.finish_reason }));
}

console.log("\n=== LangChain JS: bindTools, the tool run by LangChain, the answer");
const llm = new ChatOpenAI({ model: "any", apiKey: process.env.API_KEY ?? "unused", temperature: 0, maxTokens: 120, configuration: { baseURL: `${base}/v1` } });
const weather = tool(async (a) => runTool(a), { name: "get_weather", description: "Get the current weather in a city", schema: z.object({ city: z.string(), unit: z.enum(["celsius", "fahrenheit"]) }) });
const history: BaseMessage[] = [new HumanMessage("What is the weather in Oslo?")];
const ai = (await llm.bindTools([weather], { tool_choice: "any" }).invoke(history)) as AIMessage;
show("tool_calls as LangChain parsed them", ai.tool_calls);
history.push(ai);
for (const c of ai.tool_calls ?? []) history.push((await weather.invoke(c)) as ToolMessage);
const answer = (await llm.bindTools([weather]).invoke(history)) as AIMessage;
show("the answer", { content: answer.content, tool_calls: answer.tool_calls });
