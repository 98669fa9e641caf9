// `bun scripts/sdk-parse.ts [http://localhost:8080] [question]`: the official openai SDK's
// chat.completions.parse with a zod schema (zodResponseFormat) against this server: the parsed object.
import OpenAI from "openai";
import { zodResponseFormat } from "openai/helpers/zod";
import { z } from "zod";

const base = process.argv[2] ?? "http://localhost:8080";
const question = process.argv[3] ?? "What is the capital of France? Answer in JSON.";
const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: process.env.API_KEY ?? "unused" });
const Answer = z.object({ capital: z.string(), country: z.string(), population_millions: z.number() });
const completion = await client.chat.completions.parse({
  model: "any", temperature: 0, max_tokens: 120, messages: [{ role: "user", content: question }],
  response_format: zodResponseFormat(Answer, "answer"),
});
const choice = completion.choices[0]!;
console.log(JSON.stringify({ finish_reason: choice.finish_reason, content: choice.message.content, parsed: choice.message.parsed, usage: completion.usage }, null, 2));
