// A grammar worker: compiles one constraint with xgrammar (WASM; a JSON Schema takes 0.7-3.5 s on
// 49k-152k vocabularies, which is why it runs here and not on the decode thread) and then serves
// its matchers: after each accepted token it writes the next allowed-token bitmask into the
// matcher's shared memory, while the engine decodes that token. bench/results-structured.md has
// the measurements that chose xgrammar over llama.cpp's grammar engine (5-27 ms per mask).
declare var self: Worker;

import xgrammar, { type CompiledGrammar, type GrammarMatcher as Matcher } from "@mlc-ai/web-xgrammar";
import { resolveTag, schemaEbnf } from "./schema-ebnf.ts";
import { maskWords, onlyStopsAllowed } from "../sampling/token-mask.ts";
import { FLAG_COMPLETE, FLAG_REJECTED, MASK_HEADER_WORDS, type ConstraintSpec, type FromGrammar, type ToGrammar, type Vocabulary } from "./messages.ts";

let vocab: Vocabulary;
let compiled: CompiledGrammar | null = null;
const matchers = new Map<number, { m: Matcher; shared: Int32Array }>();
let controlWords: Int32Array; // word index, and the bits to clear there, for every textless non-stop token

/** xgrammar reports the reason of a failed compile only on stderr: keep what it prints meanwhile. */
async function capturingErrors<T>(fn: () => Promise<T>): Promise<T> {
  const printed: string[] = [];
  const original = console.error;
  console.error = (...args: unknown[]) => void printed.push(args.map(String).join(" "));
  try {
    return await fn();
  } catch (err) {
    const said = printed.map((l) => l.replace(/^.*?(Error|error):\s*/, "").trim()).filter(Boolean).join("; ");
    throw new Error(said || String((err as Error)?.message ?? err));
  } finally {
    console.error = original;
  }
}

async function compile(spec: ConstraintSpec): Promise<CompiledGrammar> {
  const info = await xgrammar.TokenizerInfo.createTokenizerInfo(vocab.tokens, vocab.vocabType, false, vocab.nVocab, vocab.stopTokens);
  const compiler = await xgrammar.GrammarCompiler.createGrammarCompiler(info, false);
  return capturingErrors(async () => {
    switch (spec.type) {
      // xgrammar's own conversion, ranges placed and strings JSON-safe (schema-ebnf.ts)
      case "json_object": return compiler.compileGrammar(await schemaEbnf({ schema: '{"type": "object"}' }), "root");
      case "json_schema": return compiler.compileGrammar(await schemaEbnf(spec), "root");
      case "grammar": return compiler.compileGrammar(spec.gbnf, "root");
      case "structural_tag": return compiler.compileStructuralTag(JSON.stringify(await resolveTag(JSON.parse(spec.tag))));
      default: {
        const never: never = spec;
        throw new Error(`unknown constraint ${JSON.stringify(never)}`);
      }
    }
  });
}

/** The next bitmask into the matcher's shared memory, control tokens cleared, then its count bumped (the engine waits on it). */
async function publish(entry: { m: Matcher; shared: Int32Array }, rejected = false): Promise<void> {
  const { m, shared } = entry;
  shared.set((await m.getNextTokenBitmask()).subarray(0, shared.length - MASK_HEADER_WORDS), MASK_HEADER_WORDS);
  for (let i = 0; i < controlWords.length; i += 2) shared[MASK_HEADER_WORDS + controlWords[i]!]! &= ~controlWords[i + 1]!;
  const bits = shared.subarray(MASK_HEADER_WORDS);
  const flags = (rejected ? FLAG_REJECTED : 0) | (m.isTerminated() || onlyStopsAllowed(bits, vocab.stopTokens, vocab.nVocab) ? FLAG_COMPLETE : 0);
  Atomics.store(shared, 1, flags);
  Atomics.add(shared, 0, 1);
  Atomics.notify(shared, 0);
}

async function handle(msg: ToGrammar): Promise<void> {
  switch (msg.type) {
    case "compile": {
      vocab = msg.vocab;
      const words = new Map<number, number>();
      const stops = new Set(vocab.stopTokens);
      // control tokens stay forbidden, except those the constraint spells out (a tool-call marker)
      const markers = new Set(msg.spec.type === "structural_tag" ? msg.spec.markers ?? [] : []);
      for (const t of vocab.controlTokens) if (!stops.has(t) && t < vocab.nVocab && !markers.has(vocab.tokens[t]!)) words.set(t >>> 5, (words.get(t >>> 5) ?? 0) | (1 << (t & 31)));
      controlWords = Int32Array.from([...words].flat());
      const t0 = performance.now();
      try {
        compiled = await compile(msg.spec);
        // a grammar no token can start (a $ref cycle that never produces text, a literal the
        // vocabulary cannot spell) would only ever end at once: refused here instead
        const probe = { m: await xgrammar.GrammarMatcher.createGrammarMatcher(compiled), shared: new Int32Array(MASK_HEADER_WORDS + maskWords(vocab.nVocab)) };
        await publish(probe);
        probe.m.dispose();
        if (probe.shared.subarray(MASK_HEADER_WORDS).every((w) => w === 0)) throw new Error("the grammar allows no token at all");
        post({ type: "compiled", ok: true, ms: performance.now() - t0 });
      } catch (err) {
        post({ type: "compiled", ok: false, error: (err as Error).message });
      }
      return;
    }
    case "open": {
      if (!compiled) throw new Error("open before compile");
      const entry = { m: await xgrammar.GrammarMatcher.createGrammarMatcher(compiled), shared: new Int32Array(msg.shared) };
      matchers.set(msg.id, entry);
      let rejected = false;
      for (const t of msg.replay ?? []) rejected ||= !entry.m.acceptToken(t);
      return publish(entry, rejected);
    }
    case "accept": {
      const entry = matchers.get(msg.id);
      if (!entry) return;
      return publish(entry, !entry.m.acceptToken(msg.token));
    }
    case "close": {
      matchers.get(msg.id)?.m.dispose();
      matchers.delete(msg.id);
      return;
    }
    default: {
      const never: never = msg;
      throw new Error(`unknown message ${JSON.stringify(never)}`);
    }
  }
}

const post = (msg: FromGrammar) => self.postMessage(msg);
// one message at a time, in order: an accept must not overtake the open of its matcher
let queue = Promise.resolve();
self.onmessage = (event: MessageEvent<ToGrammar>) => {
  queue = queue.then(() => handle(event.data)).catch((err) => console.error(`[grammar] ${(err as Error).message}`));
};
