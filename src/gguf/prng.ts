// Small deterministic PRNG utilities for synthetic weights (mulberry32 + cheap approximate normals).

/** 32-bit FNV-1a hash of a string, mixed with a numeric seed. */
export function hashSeed(seed: number, label: string): number {
  let h = 0x811c9dc5 ^ Math.imul(seed | 0, 0x9e3779b1);
  for (let i = 0; i < label.length; i++) {
    h ^= label.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h >>> 0;
}

/** Sum of four uniform bytes: mean 510, standard deviation sqrt(4 * (256^2 - 1) / 12). */
const BYTE_SUM_MEAN = 510;
const BYTE_SUM_STD = Math.sqrt((4 * (256 * 256 - 1)) / 12);

/**
 * Stateful generator. `fillNormal` writes approximately N(0, scale^2) values: each sample is the
 * (centered) sum of the four bytes of one mulberry32 output, i.e. an Irwin-Hall approximation
 * bounded at about +-3.5 sigma — plenty for synthetic weights and fast (one PRNG step per value).
 */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed | 0;
  }

  fillNormal(out: Float32Array, start: number, end: number, scale: number): void {
    let s = this.s;
    const k = scale / BYTE_SUM_STD;
    for (let i = start; i < end; i++) {
      s = (s + 0x6d2b79f5) | 0;
      let t = Math.imul(s ^ (s >>> 15), s | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      t = t ^ (t >>> 14);
      const sum = (t & 0xff) + ((t >>> 8) & 0xff) + ((t >>> 16) & 0xff) + (t >>> 24);
      out[i] = (sum - BYTE_SUM_MEAN) * k;
    }
    this.s = s;
  }
}
