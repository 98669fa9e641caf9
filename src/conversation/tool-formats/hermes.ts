// Hermes / Qwen: <tool_call>\n{"name": …, "arguments": {…}}\n</tool_call>, one block per call, with
// text allowed before them (Qwen2.5, Qwen3, Hermes 2 Pro and 3).
import { MarkerParser } from "../reply-parser.ts";
import { callTags, calling, choiceConstraint, templateInput, type ToolFormat } from "./format.ts";

const OPEN = "<tool_call>";
const CLOSE = "</tool_call>";

export const hermes: ToolFormat = {
  name: "hermes",
  specialText: [OPEN, CLOSE],
  render: (conv) => templateInput(conv),
  constraint(conv) {
    const tags = callTags(conv, (name) => `${OPEN}\n{"name": ${name}, "arguments": `, `}\n${CLOSE}`);
    return choiceConstraint(conv, [OPEN], tags, "\n", [OPEN, CLOSE]);
  },
  parser: (conv) => (calling(conv) ? new MarkerParser({ markers: [{ text: OPEN, inBody: false }], array: false, close: CLOSE }) : null),
};
