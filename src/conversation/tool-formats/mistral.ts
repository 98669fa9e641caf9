// Mistral: [TOOL_CALLS][{"name": …, "arguments": {…}}, …] (Mistral 7B v0.3, Nemo, Small). Its
// templates want tool-call ids of 9 letters and digits: any id is mapped to one, the same every turn.
import { MarkerParser } from "../reply-parser.ts";
import { callTags, calling, callList, tagConstraint, templateInput, type ToolFormat } from "./format.ts";

const MARK = "[TOOL_CALLS]";

/** a stable 9-character alphanumeric id for any id */
export function mistralId(id: string): string {
  if (/^[A-Za-z0-9]{9}$/.test(id)) return id;
  const h = new Bun.CryptoHasher("sha256").update(id).digest("base64").replace(/[^A-Za-z0-9]/g, "");
  return h.slice(0, 9).padEnd(9, "0");
}

export const mistral: ToolFormat = {
  name: "mistral",
  specialText: [MARK],
  render: (conv) => templateInput(conv, mistralId),
  constraint(conv) {
    if (!calling(conv)) return undefined;
    const tags = callTags(conv, (name) => `{"name": ${name}, "arguments": `, "}");
    const list = callList(tags, ", ", conv.maxToolCalls);
    const block = { type: "tag", begin: `${MARK}[`, content: list, end: "]" };
    return tagConstraint(conv.toolChoice === "auto" ? { type: "triggered_tags", triggers: [MARK], tags: [block], stop_after_first: true } : block, [MARK]);
  },
  parser: (conv) => (calling(conv) ? new MarkerParser({ markers: [{ text: MARK, inBody: false }], array: true }) : null),
};
