/**
 * Small seeded PRNG: xoshiro128** (Blackman & Vigna) over four 32-bit words.
 *
 * - `new Rng(seed)` with an integer seed (any safe integer, negative allowed) is
 *   fully deterministic; the seed is expanded into the state with a 32-bit
 *   finalizer mix so that nearby seeds give unrelated streams.
 * - `new Rng()` (or `undefined`) seeds the state from `crypto.getRandomValues`.
 * - `next()` returns a double in [0, 1) with 53 random bits (two draws).
 */

/** Anything that yields uniform doubles in [0, 1). */
export interface RandomSource {
  next(): number;
}

const TWO_POW_32 = 4294967296;
const TWO_POW_26 = 67108864;
const TWO_POW_53 = 9007199254740992;

/** murmur3-style 32-bit finalizer; returns an unsigned 32-bit value. */
function mix32(x: number): number {
  let z = x | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

export class Rng implements RandomSource {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;

  constructor(seed?: number) {
    if (seed === undefined) {
      const words = new Uint32Array(4);
      crypto.getRandomValues(words);
      this.setState(words[0], words[1], words[2], words[3]);
      return;
    }
    if (!Number.isSafeInteger(seed)) {
      throw new RangeError(`Rng seed must be a safe integer, got ${seed}`);
    }
    const lo = seed >>> 0;
    const hi = Math.floor(seed / TWO_POW_32) >>> 0;
    let counter = lo;
    const hiMixed = mix32(hi ^ 0x5bd1e995);
    const out = [0, 0, 0, 0];
    for (let i = 0; i < 4; i++) {
      counter = (counter + 0x9e3779b9) | 0;
      out[i] = mix32(counter ^ mix32(hiMixed + Math.imul(i + 1, 0x632be59b)));
    }
    this.setState(out[0], out[1], out[2], out[3]);
  }

  private setState(a: number, b: number, c: number, d: number): void {
    this.s0 = a | 0;
    this.s1 = b | 0;
    this.s2 = c | 0;
    this.s3 = d | 0;
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1; // all-zero state is a fixed point
  }

  /** Next unsigned 32-bit integer. */
  nextUint32(): number {
    const s1 = this.s1;
    const x = Math.imul(s1, 5);
    const result = Math.imul((x << 7) | (x >>> 25), 9) >>> 0;
    const t = s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    const s3 = this.s3;
    this.s3 = (s3 << 11) | (s3 >>> 21);
    return result;
  }

  /** Uniform double in [0, 1) with 53 bits of randomness. */
  next(): number {
    const hi = this.nextUint32() >>> 5; // 27 bits
    const lo = this.nextUint32() >>> 6; // 26 bits
    return (hi * TWO_POW_26 + lo) / TWO_POW_53;
  }
}
