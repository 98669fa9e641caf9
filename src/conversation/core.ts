// The conversation core: one turn of a conversation, whatever API asked for it. The adapters
// (chat completions, Responses, Messages) translate their request into a Conversation plus
// sampling options, and the core's reply events back into their own shapes; tools, structured
// output, stop strings, sessions and usage are handled here once.
import type { ConstraintSpec } from "../constraints/messages.ts";
import type { GenerationConfig, PromptSpec, TokenLogprob } from "../engine/messages.ts";
import { HttpError } from "../http/errors.ts";
import type { ChatTemplate } from "./chat-template.ts";
import type { Choice, Run, Running } from "./engine-run.ts";
import type { ReplyParser } from "./reply-parser.ts";
import { stopList } from "./stop-filter.ts";
import { calling } from "./tool-formats/format.ts";
import { planTurn, Reply, type TurnPlan } from "./turn.ts";
import type { Conversation, ReplyEvent } from "./types.ts";

/** Sampling as OpenAI's fields spell it (each adapter maps its own onto these). */
export interface Sampling {
  temperature?: number | null;
  top_p?: number | null;
  top_k?: number;
  seed?: number | null;
  n?: number | null;
  stop?: string | string[] | null;
  request_id?: string;
  /** structured output for an answer: OpenAI's response_format (or llama-server's fields) */
  response_format?: unknown;
  json_schema?: unknown;
  grammar?: unknown;
  presence_penalty?: number | null;
  frequency_penalty?: number | null;
  logit_bias?: Record<string, number> | null;
  repetition_penalty?: number;
  num_beams?: number;
  length_penalty?: number;
}

/** What the core needs from the server: the template, the engine, the checks of sampling fields. */
export interface CoreDeps {
  template(): ChatTemplate;
  items(body: Sampling, prompts: { prompt: string; pieces?: string[]; sync?: boolean }[]): PromptSpec[];
  config(body: Sampling, maxTokens: number | undefined, logprobs: number | null): GenerationConfig;
  constraint(body: Sampling): ConstraintSpec | undefined;
  run(o: Run): Running;
  /** a refusal in the API's own words (its field names, its codes) */
  words(err: HttpError): HttpError;
}

export interface TurnRequest {
  conv: Conversation;
  sampling: Sampling;
  /** undefined: up to the context */
  maxTokens?: number;
  /** alternatives per token when asked for, else null */
  logprobs: number | null;
  signal: AbortSignal;
  /** the session the turn continues (and becomes), instead of one-off sequences */
  session?: { requestId: string };
}

/** Each choice's reply as it streams: events (content and calls), then its end. */
export interface TurnHandlers {
  /** generation began: the prompt's tokens and those the cache held (the first choice's) */
  onStart?(prompt: { promptTokens: number; cachedTokens: number }): void;
  onAccepted?(sessions: string[]): void;
  onEvents?(index: number, events: ReplyEvent[], logprobs: TokenLogprob[]): void;
  /** the choice ended; `reply` is all it said (endOf(choice, reply) is its finish reason) */
  onEnd?(choice: Choice, reply: Reply): void;
}

export interface TurnResult {
  choices: Choice[];
  replies: Reply[];
  logprobs: TokenLogprob[][];
}

/** Plans the turn and starts it; every refusal, before or during the run, in the API's words. */
export function startTurn(deps: CoreDeps, req: TurnRequest, h: TurnHandlers = {}): { result: Promise<TurnResult>; abort(): void } {
  let running: { result: Promise<TurnResult>; abort(): void };
  try {
    running = plannedTurn(deps, req, h);
  } catch (err) {
    throw err instanceof HttpError ? deps.words(err) : err;
  }
  return worded(running, deps.words);
}

/** A run whose refusal (an HttpError) comes out in `words`. */
export function worded<T extends { result: Promise<unknown> }>(running: T, words: (err: HttpError) => HttpError): T {
  return { ...running, result: running.result.catch((err) => Promise.reject(err instanceof HttpError ? words(err) : err)) };
}

function plannedTurn(deps: CoreDeps, req: TurnRequest, h: TurnHandlers): { result: Promise<TurnResult>; abort(): void } {
  // response_format beside tools: an answer that calls no tool must match it
  const asked = deps.constraint(req.sampling);
  const conv = req.conv.tools.length > 0 && asked ? { ...req.conv, answerSchema: answerSchema(asked, calling(req.conv)) } : req.conv;
  const plan = planOrRefuse(deps.template(), conv);
  // with a session, it follows the conversation: it keeps what it shares with it and decodes the rest
  const sampling = req.session ? { ...req.sampling, request_id: req.session.requestId } : req.sampling;
  const items = deps.items(sampling, [{ prompt: plan.prompt, pieces: plan.pieces, sync: true }]);
  // the constraint was read above (asked); the tool format's includes the answer's and replaces it
  const config = deps.config({ ...sampling, response_format: null, json_schema: null, grammar: null }, req.maxTokens, req.logprobs);
  const constraint = plan.constraint ?? asked;
  if (constraint) config.constraint = constraint;
  if (plan.specialText.length) config.special_text = plan.specialText;
  const parsers = items.map(() => plan.parser());
  const replies = items.map(() => new Reply());
  const logprobs: TokenLogprob[][] = items.map(() => []);
  const stops = stopList(sampling.stop);
  const running = deps.run({
    items, config, stops, signal: req.signal,
    onStart: h.onStart,
    onAccepted: h.onAccepted,
    onDelta: (i, text, lps) => {
      const events = parse(parsers[i]!, text);
      replies[i]!.add(events);
      logprobs[i]!.push(...lps);
      h.onEvents?.(i, events, lps);
    },
    onChoice: (c) => {
      const events = parsers[c.index]?.end() ?? [];
      replies[c.index]!.add(events);
      if (events.length) h.onEvents?.(c.index, events, []);
      h.onEnd?.(c, replies[c.index]!);
    },
  });
  return { result: running.result.then((choices) => ({ choices, replies, logprobs })), abort: running.abort };
}

/** The turn's plan; a template that throws is the client's 400 (its messages), not a 500. */
export function planOrRefuse(template: ChatTemplate, conv: Conversation): TurnPlan {
  try {
    return planTurn(template, conv);
  } catch (err) {
    if (err instanceof HttpError) throw err;
    throw new HttpError(400, "template_error", `the chat template refused these messages: ${(err as Error).message}`, "messages");
  }
}

/** without tools the text is all content */
const parse = (parser: ReplyParser | null, text: string): ReplyEvent[] => (parser ? parser.push(text) : [{ type: "text", text }]);

/** why a reply ended, in the core's terms: a reply that called tools and ended by itself ended for them */
export const endOf = (c: Choice, reply: Reply): "stop" | "length" | "tool_calls" => (reply.calls.length > 0 && c.finish === "stop" ? "tool_calls" : c.finish);

function answerSchema(spec: ConstraintSpec, calling: boolean): Record<string, unknown> | undefined {
  switch (spec.type) {
    case "json_schema": return JSON.parse(spec.schema) as Record<string, unknown>;
    case "json_object": return { type: "object" };
    default:
      if (!calling) return undefined; // a grammar over the whole reply, tools or not
      throw new HttpError(400, "conflicting_constraints", `${spec.field ?? "grammar"} cannot be combined with tools: use response_format, or tool_choice "none"`, spec.field);
  }
}
