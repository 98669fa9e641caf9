// Deterministic prompts of a target token length. Token counts come from llama-server's
// /tokenize (same vocab as ours), so both servers get the same text of a known size.

const WORDS = (
  "the river morning light stone house quiet garden small window open road winter bright paper " +
  "market green water simple field tower music letter summer mountain evening forest friend train " +
  "story table yellow silver castle orange school island bridge little yesterday harbor kitchen " +
  "coffee travel winter candle soft long over under before after with from about between through " +
  "people thought because every second number strong early clear north south east west city"
).split(" ");

/** xorshift32: tiny deterministic generator for word choice. */
function rng(seed: number): () => number {
  let x = (seed * 2654435761) >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 4294967296;
  };
}

/** `count` pseudo-random words, prefixed with a tag that makes each prompt distinct. */
export function words(tag: string, count: number, seed: number): string {
  const next = rng(seed + 1);
  const out: string[] = [];
  for (let i = 0; i < count; i++) out.push(WORDS[Math.floor(next() * WORDS.length)]!);
  return `${tag}: ${out.join(" ")}.`;
}

export type TokenCounter = (text: string) => Promise<number>;

/** A counter backed by llama-server's POST /tokenize. */
export function llamaServerCounter(baseUrl: string): TokenCounter {
  return async (text) => {
    const r = await fetch(`${baseUrl}/tokenize`, { method: "POST", body: JSON.stringify({ content: text }) });
    if (!r.ok) throw new Error(`/tokenize: ${r.status} ${await r.text()}`);
    return ((await r.json()) as { tokens: number[] }).tokens.length;
  };
}

/** Word count n whose text make(n) is within a few tokens of `target`. */
export async function wordsFor(target: number, count: TokenCounter, make: (n: number) => string): Promise<number> {
  let n = Math.max(1, Math.round(target * 0.7));
  for (let i = 0; i < 6; i++) {
    const got = await count(make(n));
    if (Math.abs(got - target) <= Math.max(1, target * 0.02)) break;
    n = Math.max(1, Math.round(n * (target / got)));
  }
  return n;
}

/** A family of distinct prompts of about the same token length. */
export class PromptSet {
  constructor(
    readonly name: string,
    readonly wordCount: number,
    /** measured token count of the first prompt */
    readonly tokens: number,
  ) {}

  static async create(name: string, target: number, count: TokenCounter): Promise<PromptSet> {
    const n = await wordsFor(target, count, (w) => words(`${name} 0`, w, 0));
    return new PromptSet(name, n, await count(words(`${name} 0`, n, 0)));
  }

  get(index: number): string {
    return words(`${this.name} ${index}`, this.wordCount, index);
  }
}
