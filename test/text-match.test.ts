// Stop strings and tool-call markers in streamed text: the earliest match, and the held-back tail.
import { expect, test } from "bun:test";
import { StopFilter } from "../src/conversation/stop-filter.ts";
import { earliest, partialTail } from "../src/conversation/text-match.ts";

test("earliest: the leftmost match, the first listed of those starting there; partialTail: the longest end that starts a needle", () => {
  expect(earliest("abcXYZ", ["YZ", "cX", "c"])).toEqual({ at: 2, index: 1 });
  expect(earliest("abc", ["x"])).toBeNull();
  expect(partialTail("hello <to", ["<tool_call>", "<|python_tag|>"])).toBe(3);
  expect(partialTail("hello <", ["<tool_call>", "<|python_tag|>"])).toBe(1);
  expect(partialTail("hello <tool_call>", ["<tool_call>"])).toBe(0); // a whole needle is a match, not a tail
});

test("StopFilter: a stop split over chunks is never shown; text that only looked like one is", () => {
  const f = new StopFilter(["END", "ENOUGH"]);
  expect(f.push("one EN")).toBe("one ");
  expect(f.push("OU")).toBe("");
  expect(f.push("x two E")).toBe("ENOUx two ");
  expect(f.push("ND three")).toBe("");
  expect(f.stopped).toBe(true);
  expect(f.matched).toBe("END");
  expect(f.flush()).toBe("");
  const g = new StopFilter(["###"]);
  expect(g.push("a ##")).toBe("a ");
  expect(g.flush()).toBe("##"); // generation ended: held text was text after all
});
