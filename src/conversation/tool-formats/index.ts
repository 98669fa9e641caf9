// The tool-call format a chat template speaks, read from the template's own text: the markers its
// model family writes. A template that renders no tools gets the generic JSON format.
import type { ToolFormat } from "./format.ts";
import { generic } from "./generic.ts";
import { hermes } from "./hermes.ts";
import { llama3 } from "./llama3.ts";
import { mistral } from "./mistral.ts";

export type { ToolFormat } from "./format.ts";

export function toolFormatOf(template: string): ToolFormat {
  if (!/\btools\b/.test(template)) return generic;
  // Qwen3-Coder and relatives write XML inside <tool_call> (<function=…>): not this JSON format
  if (template.includes("<tool_call>") && !template.includes("<function=")) return hermes;
  if (template.includes("[TOOL_CALLS]")) return mistral;
  if (template.includes("<|start_header_id|>") && template.includes('"parameters"')) return llama3;
  return generic;
}

export const TOOL_FORMATS = { hermes, llama3, mistral, generic } as const;
