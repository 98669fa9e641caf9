// A function tool as the conversation core takes it, from any API's spelling (chat's function
// object, the Responses API's flat tool, Anthropic's input_schema): one tool per name, and its
// parameters checked as a response_format schema is (strict: an unenforceable keyword is a 400
// naming it) or loosened to what the grammar can enforce, within MAX_GRAMMAR_BYTES.
import type { Tool } from "../conversation/types.ts";
import { checkSchema, looseSchema } from "./constraint.ts";
import { HttpError } from "./errors.ts";

interface ToolSpelling {
  name: string;
  description?: string | null;
  /** a JSON Schema object; a boolean schema or none: any arguments object */
  parameters?: unknown;
  strict: boolean;
}

/** One request's tools, checked one by one; `at` names the tool's name and schema fields in errors. */
export class ToolChecker {
  readonly #seen = new Set<string>();

  constructor(private readonly maxBytes: number) {}

  tool(t: ToolSpelling, at: { name: string; schema: string }): Tool {
    if (this.#seen.has(t.name)) throw new HttpError(400, "invalid_field", `two tools are named "${t.name}"`, at.name);
    this.#seen.add(t.name);
    let parameters = t.parameters !== null && typeof t.parameters === "object" ? (t.parameters as Record<string, unknown>) : undefined;
    if (parameters) {
      if (t.strict) checkSchema(parameters, at.schema);
      else parameters = looseSchema(parameters) as Record<string, unknown>;
      if (Buffer.byteLength(JSON.stringify(parameters)) > this.maxBytes) {
        throw new HttpError(400, "grammar_too_large", `${at.schema} is over MAX_GRAMMAR_BYTES (${this.maxBytes})`, at.schema);
      }
    }
    return { name: t.name, ...(t.description ? { description: t.description } : {}), ...(parameters ? { parameters } : {}), ...(t.strict ? { strict: true } : {}) };
  }
}
