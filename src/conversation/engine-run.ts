// One engine submit for a turn's items (n choices, or one prompt each), with OpenAI's stop strings
// applied to each item's text: the API adapters' one way into the engine. No HTTP here beyond
// HttpError, the error every adapter words in its own shape.
import type { EngineClient } from "../engine/client.ts";
import type { GenerationConfig, PromptSpec, TokenLogprob } from "../engine/messages.ts";
import { HttpError, requireModel } from "../http/errors.ts";
import { StopFilter } from "./stop-filter.ts";

export interface Choice {
  index: number;
  text: string;
  finish: "stop" | "length";
  /** the stop string that ended it, if one did */
  stopSequence: string | null;
  promptTokens: number;
  /** prompt tokens taken from the KV cache, a stored session or a reused prefix */
  cachedTokens: number;
  completionTokens: number;
  /** per token of `text`, when asked for (and no onDelta took them) */
  logprobs: TokenLogprob[];
}

export interface Run {
  items: PromptSpec[];
  config: GenerationConfig;
  stops: string[];
  signal: AbortSignal;
  /** generation began; the first item's prompt tokens, and those the cache already held */
  onStart?(prompt: { promptTokens: number; cachedTokens: number }): void;
  /** what each item's session starts from (new, continued, restored, recomputed) */
  onAccepted?(sessions: string[]): void;
  /** each item's text as it passes its stop filter (without it, the text is gathered into the choice) */
  onDelta?(index: number, text: string, logprobs: TokenLogprob[]): void;
  onChoice?(choice: Choice): void;
}

export interface Running {
  result: Promise<Choice[]>;
  abort(): void;
}

export function runTurn(engine: EngineClient, o: Run): Running {
  requireModel(engine);
  let ticket = 0;
  const result = new Promise<Choice[]>((resolve, reject) => {
    const filters = o.items.map(() => new StopFilter(o.stops));
    const texts = o.items.map(() => "");
    const entries: TokenLogprob[][] = o.items.map(() => []); // returned with the text
    const waiting: TokenLogprob[][] = o.items.map(() => []); // their text is held back by the stop filter
    const stopAt: (number | null)[] = o.items.map(() => null);
    const choices: Choice[] = [];
    let open = o.items.length;
    let started = false;
    const onAbort = () => engine.abort(ticket);
    o.signal.addEventListener("abort", onAbort, { once: true });
    const emit = (i: number, text: string) => {
      if (text === "") return;
      const lps = waiting[i]!.splice(0);
      if (o.onDelta) o.onDelta(i, text, lps);
      else (texts[i] += text), entries[i]!.push(...lps);
    };
    ticket = engine.submit(o.items, true, o.config, {
      accepted: (_prefixes, sessions) => o.onAccepted?.(sessions),
      started: (_i, _session, promptTokens, cachedTokens) => void (!started && ((started = true), o.onStart?.({ promptTokens, cachedTokens }))),
      text: (i, text, delivered, logprobs) => {
        const f = filters[i]!;
        if (f.stopped) return;
        if (logprobs) waiting[i]!.push(...logprobs);
        emit(i, f.push(text));
        if (!f.stopped) return;
        stopAt[i] = delivered;
        // every choice has met a stop: the rest would be thrown away
        if (filters.every((x) => x.stopped)) engine.abort(ticket, stopAt.map((d) => d ?? 0));
      },
      done: (i, reason, generated, _length, promptTokens, cached) => {
        const f = filters[i]!;
        emit(i, f.flush());
        const choice: Choice = {
          index: i, text: texts[i]!, finish: f.stopped || reason === "eos" ? "stop" : "length", stopSequence: f.matched, promptTokens,
          cachedTokens: cached, completionTokens: stopAt[i] ?? generated, logprobs: entries[i]!,
        };
        choices[i] = choice;
        o.onChoice?.(choice);
        if (--open > 0) return;
        o.signal.removeEventListener("abort", onAbort);
        resolve(choices);
      },
      error: (e) => {
        o.signal.removeEventListener("abort", onAbort);
        reject(HttpError.from(e));
      },
    });
  });
  return { result, abort: () => engine.abort(ticket) };
}

/** token counts; a prompt is counted once however many (n) choices it has, as OpenAI counts it */
export function usageOf(choices: Choice[], n: number) {
  const first = choices.filter((c) => c.index % n === 0);
  const promptTokens = first.reduce((sum, c) => sum + c.promptTokens, 0);
  const cachedTokens = first.reduce((sum, c) => sum + c.cachedTokens, 0);
  const completionTokens = choices.reduce((sum, c) => sum + c.completionTokens, 0);
  return { promptTokens, cachedTokens, completionTokens };
}
