// Chat messages -> the prompt the model was trained on: the GGUF's tokenizer.chat_template (or
// CHAT_TEMPLATE, or ChatML when the model has none) rendered by @huggingface/jinja, the Jinja engine
// of transformers.js, as transformers' apply_chat_template renders it. Message content is data, not
// markup: control-token text inside it ("<|im_start|>", "<s>") is cut apart before rendering, and
// the prompt goes to the engine in pieces split at those cuts, so it can never become a control token.
import { Template } from "@huggingface/jinja";

/** Used when the model has no template and CHAT_TEMPLATE is unset (the common ChatML layout). */
export const DEFAULT_CHAT_TEMPLATE =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

export interface ChatMessage {
  role: string;
  content: string;
  name?: string;
}

/** What a template renders: messages (with tool calls and results, as transformers takes them) and tools. */
export interface TemplateInput {
  messages: Record<string, unknown>[] | ChatMessage[];
  tools?: Record<string, unknown>[];
}

export interface TemplateTokens {
  bosText: string;
  eosText: string;
  /** control-token texts of the vocabulary, longest first */
  controlTokens: string[];
}

/** A private-use character marking where content was cut; never part of the prompt itself. */
const CUT = "\uE000";

export class ChatTemplate {
  readonly #template: Template;

  constructor(readonly source: string, private readonly tokens: TemplateTokens) {
    this.#template = new Template(source); // throws on a template that does not parse
  }

  /** The rendered prompt, plain (for display and tests). */
  render(input: TemplateInput | ChatMessage[], addGenerationPrompt = true): string {
    return this.#render(input, addGenerationPrompt, (c) => c).split(CUT).join("");
  }

  /**
   * The rendered prompt in pieces for the engine (PromptSpec.pieces): control-token text from the
   * template stays whole inside a piece; any that a message, tool call or tool description holds is
   * split across two.
   */
  pieces(input: TemplateInput | ChatMessage[], addGenerationPrompt = true): { prompt: string; pieces: string[] } {
    const pieces = this.#render(input, addGenerationPrompt, (c) => cutControlTokens(c, this.tokens.controlTokens)).split(CUT);
    return { prompt: pieces.join(""), pieces };
  }

  #render(input: TemplateInput | ChatMessage[], addGenerationPrompt: boolean, text: (c: string) => string): string {
    const { messages, tools } = Array.isArray(input) ? { messages: input, tools: undefined } : input;
    const clean = (v: unknown): unknown => mapStrings(v, (s) => text(s.replaceAll(CUT, "")));
    return this.#template.render({
      messages: clean(messages),
      ...(tools ? { tools: clean(tools) } : {}),
      add_generation_prompt: addGenerationPrompt,
      bos_token: this.tokens.bosText,
      eos_token: this.tokens.eosText,
    });
  }
}

/** `v` with every string in it (values, not keys) passed through `f` */
function mapStrings(v: unknown, f: (s: string) => string): unknown {
  if (typeof v === "string") return f(v);
  if (Array.isArray(v)) return v.map((x) => mapStrings(x, f));
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, mapStrings(x, f)]));
  return v;
}

/** `text` with CUT after the first character of every occurrence of a control token's text. */
export function cutControlTokens(text: string, controlTokens: readonly string[]): string {
  const byFirst = firstChars(controlTokens);
  if (byFirst.size === 0) return text;
  let out = "";
  let i = 0;
  outer: while (i < text.length) {
    // only the tokens that start with this character are tried (a vocabulary may have hundreds)
    for (const tok of byFirst.get(text[i]!) ?? []) {
      if (text.startsWith(tok, i)) {
        out += tok[0] + CUT + tok.slice(1); // no control token can match across the cut
        i += tok.length;
        continue outer;
      }
    }
    out += text[i++];
  }
  return out;
}

/** control tokens (of two characters or more) by their first character, longest first, memoised per list */
const indexes = new WeakMap<readonly string[], Map<string, string[]>>();
function firstChars(controlTokens: readonly string[]): Map<string, string[]> {
  let m = indexes.get(controlTokens);
  if (!m) {
    m = new Map();
    for (const tok of controlTokens) if (tok.length > 1) m.set(tok[0]!, [...(m.get(tok[0]!) ?? []), tok]);
    indexes.set(controlTokens, m);
  }
  return m;
}
