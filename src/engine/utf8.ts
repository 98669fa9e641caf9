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
 * breaks maxLength and the like. Before the draw, the tokens that cannot follow the text so far are
 * struck from the row: at a character boundary those that cannot start one, inside a character
 * those that do not continue it (each list made once per model, on first use).
 */
export class Utf8Guard {
  #atBoundary: Int32Array | null = null;
  /** by continuation bytes owed (1-3): the tokens that continue such a character, usually few */
  readonly #continuing: (Int32Array | null)[] = [null, null, null, null];
  /** their logits while the row is cleared (one buffer, reused) */
  #kept = new Float32Array(0);

  constructor(private readonly piece: (token: number) => Uint8Array, private readonly nVocab: number) {}

  ok(need: number, token: number): boolean {
    return utf8Continues(need, this.piece(token));
  }

  /** Strikes from `row` every token that cannot follow text owing `need` continuation bytes. */
  strike(need: number, row: Float32Array): void {
    if (need === 0) {
      this.#atBoundary ??= this.#tokens((t) => !this.ok(0, t));
      for (const t of this.#atBoundary) row[t] = -Infinity;
      return;
    }
    const keep = (this.#continuing[need] ??= this.#tokens((t) => this.ok(need, t)));
    if (this.#kept.length < keep.length) this.#kept = new Float32Array(keep.length);
    for (let i = 0; i < keep.length; i++) this.#kept[i] = row[keep[i]!]!;
    row.fill(-Infinity);
    for (let i = 0; i < keep.length; i++) row[keep[i]!] = this.#kept[i]!;
  }

  #tokens(test: (token: number) => boolean): Int32Array {
    const ids: number[] = [];
    for (let t = 0; t < this.nVocab; t++) if (test(t)) ids.push(t);
    return Int32Array.from(ids);
  }
}
