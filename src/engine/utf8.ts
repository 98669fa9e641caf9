// UTF-8 boundary tracking for streamed text: how many continuation bytes the byte stream still
// owes after a token's piece (0: the text sent so far ends on a whole character). It tells which
// tokens a client has fully received when its stream is cut.

/** Continuation bytes still expected after `bytes`, given `need` expected before them. */
export function utf8Need(need: number, bytes: Uint8Array): number {
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (need > 0 && (b & 0xc0) === 0x80) need--;
    else if (b < 0x80) need = 0;
    else if ((b & 0xe0) === 0xc0) need = 1;
    else if ((b & 0xf0) === 0xe0) need = 2;
    else if ((b & 0xf8) === 0xf0) need = 3;
    else need = 0; // an invalid byte is replaced by U+FFFD at once
  }
  return need;
}

/**
 * Whether `bytes` continue valid UTF-8 after text that owes `need` continuation bytes: no lone
 * continuation byte, no lead byte cut short by the next one, and no byte UTF-8 never uses
 * (C0, C1, F5-FF). (Overlong and surrogate forms are not checked.)
 */
export function utf8Continues(need: number, bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (need > 0) {
      if ((b & 0xc0) !== 0x80) return false;
      need--;
    } else if (b >= 0x80) {
      if (b >= 0xc2 && b <= 0xdf) need = 1;
      else if (b >= 0xe0 && b <= 0xef) need = 2;
      else if (b >= 0xf0 && b <= 0xf4) need = 3;
      else return false;
    }
  }
  return true;
}

/**
 * Constrained text stays valid UTF-8: a grammar engine that matches bytes can let a lone
 * continuation byte or an impossible byte through inside a string, which decodes to U+FFFD and
 * breaks maxLength and the like. At a character boundary the tokens that cannot start a character
 * (listed once per model) are struck from the row; inside a character, a draw that does not
 * continue it is drawn again.
 */
export class Utf8Guard {
  #atBoundary: Int32Array | null = null;
  /** the row before a draw inside a character, kept for a redraw (one buffer, reused: no allocation per token) */
  #kept: Float32Array | null = null;

  constructor(private readonly piece: (token: number) => Uint8Array, private readonly nVocab: number) {}

  ok(need: number, token: number): boolean {
    return utf8Continues(need, this.piece(token));
  }

  /** A copy of `row` in a buffer this guard reuses (valid until the next call). */
  keep(row: Float32Array): Float32Array {
    if (this.#kept?.length !== row.length) this.#kept = new Float32Array(row.length);
    this.#kept.set(row);
    return this.#kept;
  }

  /** Strikes the tokens that cannot follow a whole character. */
  strikeAtBoundary(row: Float32Array): void {
    if (!this.#atBoundary) {
      const ids: number[] = [];
      for (let t = 0; t < this.nVocab; t++) if (!utf8Continues(0, this.piece(t))) ids.push(t);
      this.#atBoundary = Int32Array.from(ids);
    }
    for (const t of this.#atBoundary) row[t] = -Infinity;
  }
}
