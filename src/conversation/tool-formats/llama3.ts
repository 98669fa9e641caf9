// Llama 3.1-3.3 JSON tool calling: the reply is {"name": …, "parameters": {…}}, one call per turn
// (the templates refuse more), sometimes after <|python_tag|>.
import { MarkerParser } from "../reply-parser.ts";
import { callTags, calling, choiceConstraint, templateInput, type ToolFormat } from "./format.ts";

const TAG = "<|python_tag|>";

export const llama3: ToolFormat = {
  name: "llama3",
  specialText: [TAG],
  render: (conv) => templateInput(conv),
  constraint(conv) {
    const tags = callTags(conv, (name) => `{"name": ${name}, "parameters": `, "}");
    return choiceConstraint({ ...conv, maxToolCalls: 1 }, ['{"name": '], tags, "");
  },
  parser: (conv) => (calling(conv) ? new MarkerParser({ markers: [{ text: TAG, inBody: false }, { text: '{"name"', inBody: true }], array: false }) : null),
};
