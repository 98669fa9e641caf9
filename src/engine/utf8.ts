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
