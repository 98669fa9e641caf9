// `bun scripts/sdk-chat.ts [http://localhost:8080] [question]`: the official openai SDK streaming a chat
// completion from this server (every chunk printed as JSON, then the usage chunk).
import OpenAI from "openai";

const base = process.argv[2] ?? "http://localhost:8080";
const question = process.argv[3] ?? "Write a haiku about cats";
const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: process.env.API_KEY ?? "unused" });
const stream = await client.chat.completions.create({
  model: "any", stream: true, stream_options: { include_usage: true }, max_tokens: 64, temperature: 0,
  messages: [{ role: "user", content: question }],
});
for await (const chunk of stream) console.log(JSON.stringify(chunk));
