// A radix tree over token sequences: which stored sequence shares the longest prefix with a new
// prompt. Pure bookkeeping (the sequence table keeps it in step with the KV-resident idle
// sequences); each node knows every key whose tokens pass through it, so removing a key and finding
// an owner for a match are both a walk down one path.

interface RadixNode<K> {
  /** the tokens on the edge into this node */
  edge: Int32Array;
  children: Map<number, RadixNode<K>>;
  /** keys whose tokens pass through (or end at) this node */
  keys: Set<K>;
}

const node = <K>(edge: Int32Array, keys: Iterable<K> = []): RadixNode<K> => ({ edge, children: new Map(), keys: new Set(keys) });

/** length of the common prefix of a[from..] and b */
function common(a: ArrayLike<number>, from: number, b: Int32Array): number {
  const n = Math.min(a.length - from, b.length);
  let i = 0;
  while (i < n && a[from + i] === b[i]) i++;
  return i;
}

export class PrefixIndex<K> {
  readonly #root: RadixNode<K> = node(new Int32Array(0));
  /** what each key was stored with, for its removal */
  readonly #stored = new Map<K, Int32Array>();

  get size(): number {
    return this.#stored.size;
  }

  /** Stores `tokens` (copied) under `key`, replacing what the key had. */
  insert(key: K, tokens: ArrayLike<number>): void {
    this.remove(key);
    const own = Int32Array.from(tokens);
    this.#stored.set(key, own);
    let at = this.#root;
    at.keys.add(key);
    let i = 0;
    while (i < own.length) {
      const child = at.children.get(own[i]!);
      if (!child) {
        at.children.set(own[i]!, node(own.slice(i), [key]));
        return;
      }
      const n = common(own, i, child.edge);
      if (n < child.edge.length) {
        // split the edge: a middle node for the shared part
        const mid = node<K>(child.edge.slice(0, n), child.keys);
        child.edge = child.edge.slice(n);
        mid.children.set(child.edge[0]!, child);
        at.children.set(own[i]!, mid);
        at = mid;
      } else {
        at = child;
      }
      at.keys.add(key);
      i += n;
    }
  }

  /** Forgets `key`; paths no key passes through any more are pruned. */
  remove(key: K): void {
    const own = this.#stored.get(key);
    if (!own) return;
    this.#stored.delete(key);
    let at = this.#root;
    at.keys.delete(key);
    let i = 0;
    while (i < own.length) {
      const child = at.children.get(own[i]!);
      if (!child) return;
      child.keys.delete(key);
      if (child.keys.size === 0) return void at.children.delete(own[i]!);
      at = child;
      i += child.edge.length;
    }
  }

  /**
   * The stored key sharing the longest prefix with `tokens`, and that length (0 and null when
   * nothing shares even one token). Among equals, the key inserted first.
   */
  longest(tokens: ArrayLike<number>): { key: K | null; length: number } {
    let at = this.#root;
    let i = 0;
    let best: K | null = null;
    while (i < tokens.length) {
      const child = at.children.get(tokens[i]!);
      if (!child) break;
      const n = common(tokens, i, child.edge);
      i += n;
      best = child.keys.values().next().value ?? best;
      if (n < child.edge.length) break;
      at = child;
    }
    return { key: i > 0 ? best : null, length: i };
  }
}
