// `bun scripts/sdk-agents.ts [http://localhost:8080]`: the two newer APIs against this server, as a
// transcript: a 3-turn Responses conversation by previous_response_id (the official openai SDK;
// usage shows each turn's cached prompt tokens, the x-session header where its state came from),
// and an Anthropic Messages tool round trip (the official @anthropic-ai/sdk: tool_use, tool_result,
// the answer, streamed).
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";

const base = process.argv[2] ?? "http://localhost:8080";
const key = process.env.API_KEY ?? "unused";
const show = (label: string, v: unknown) => console.log(`--- ${label}\n${JSON.stringify(v, null, 1)}`);

console.log("=== openai SDK: responses.create, 3 turns by previous_response_id");
const openai = new OpenAI({ baseURL: `${base}/v1`, apiKey: key });
let previous: string | undefined;
for (const input of ["Name three colours of the rainbow.", "Which one is warmest?", "Say it in French."]) {
  const { data, response } = await openai.responses
    .create({ model: "any", instructions: "You are a concise assistant.", input, max_output_tokens: 48, temperature: 0, ...(previous ? { previous_response_id: previous } : {}) })
    .withResponse();
  show(`turn: ${input}`, { id: data.id, previous_response_id: data.previous_response_id, output_text: data.output_text, usage: data.usage, "x-session": response.headers.get("x-session") });
  previous = data.id;
}

console.log("\n=== Anthropic SDK: messages with a tool round trip");
const anthropic = new Anthropic({ baseURL: base, apiKey: key });
const tools: Anthropic.Tool[] = [{
  name: "get_weather", description: "Get the current weather in a city",
  input_schema: { type: "object", properties: { city: { type: "string" }, unit: { type: "string", enum: ["celsius", "fahrenheit"] } }, required: ["city", "unit"] },
}];
const messages: Anthropic.MessageParam[] = [{ role: "user", content: "What is the weather in Paris right now?" }];
const first = await anthropic.messages.create({ model: "any", max_tokens: 120, tools, tool_choice: { type: "any" }, messages });
show("1. the reply (stop_reason, content)", { stop_reason: first.stop_reason, content: first.content, usage: first.usage });
messages.push({ role: "assistant", content: first.content });
messages.push({
  role: "user",
  content: first.content.filter((b) => b.type === "tool_use").map((b) => ({ type: "tool_result" as const, tool_use_id: (b as Anthropic.ToolUseBlock).id, content: "It is 21 degrees celsius and sunny." })),
});
console.log("--- 2. the answer, streamed (messages.stream events)");
const stream = anthropic.messages.stream({ model: "any", max_tokens: 80, tools, messages });
for await (const e of stream) console.log(JSON.stringify(e));
show("final message", await stream.finalMessage());
