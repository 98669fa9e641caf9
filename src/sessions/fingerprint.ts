// A file's identity for session blobs (the model; the native library when it has no build info):
// SHA-256 over its size and sampled chunks (the first and last MiB and 16 slices between), so
// that a multi-GB GGUF is identified in milliseconds. Files that differ in their header or in a
// sampled slice get different fingerprints.
import { closeSync, fstatSync, openSync, readSync } from "node:fs";

const EDGE = 1 << 20;
const SLICE = 64 << 10;
const SLICES = 16;

export function modelFingerprint(path: string): string {
  const fd = openSync(path, "r");
  try {
    const size = fstatSync(fd).size;
    const h = new Bun.CryptoHasher("sha256").update(`size:${size};`);
    const buf = new Uint8Array(EDGE);
    const sample = (at: number, len: number) => {
      const n = readSync(fd, buf, 0, Math.min(len, Math.max(0, size - at)), at);
      h.update(buf.subarray(0, n));
    };
    sample(0, EDGE);
    for (let i = 1; i <= SLICES; i++) sample(Math.floor((size * i) / (SLICES + 1)), SLICE);
    sample(Math.max(0, size - EDGE), EDGE);
    return h.digest("hex").slice(0, 32);
  } finally {
    closeSync(fd);
  }
}
