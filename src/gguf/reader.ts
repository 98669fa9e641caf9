// GGUF v2/v3 reader (little endian). Parses metadata and tensor infos; tensor data is not loaded.
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import {
  GGUF_ARRAY_CTOR,
  GGUF_SCALAR_SIZE,
  GgufType,
  ggmlTensorBytes,
  type GgufArrayData,
  type GgufItemType,
  type GgufMetadata,
  type GgufValue,
  type TensorInfo,
} from "./types.ts";

export interface GgufFile {
  path: string;
  version: number;
  metadata: GgufMetadata;
  tensors: TensorInfo[];
  alignment: number;
  /** Absolute file offset where tensor data starts (tensor.offset is relative to it). */
  dataOffset: number;
  fileSize: number;
}

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as little-endian u32
export const GGUF_DEFAULT_ALIGNMENT = 32;
const MAX_DIMS = 4;
const INITIAL_PREFIX = 2 << 20;
const HOST_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Thrown internally when the parsed prefix of the file is too short; the caller reads more. */
class NeedMore extends Error {}
const NEED_MORE = new NeedMore("need more data");

class Cursor {
  pos = 0;
  readonly dv: DataView;
  /** Buffer view of the same bytes: its toString("utf8") is the fastest decoder for short strings in Bun. */
  readonly nodeBuf: Buffer;
  constructor(
    readonly buf: Uint8Array,
    readonly fileSize: number,
    readonly path: string,
  ) {
    this.dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.nodeBuf = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  need(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    if (this.buf.length < this.fileSize) throw NEED_MORE;
    throw new Error(
      `truncated GGUF file: ${this.path} (needed ${n} bytes at offset ${this.pos}, file has ${this.fileSize})`,
    );
  }

  corrupt(what: string): Error {
    return new Error(`corrupt GGUF file: ${this.path}: ${what} (at offset ${this.pos})`);
  }

  u32(): number {
    this.need(4);
    const v = this.dv.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  /** u64 as a JS number; rejects values that cannot be represented exactly. */
  u64(what: string): number {
    this.need(8);
    const lo = this.dv.getUint32(this.pos, true);
    const hi = this.dv.getUint32(this.pos + 4, true);
    this.pos += 8;
    if (hi >= 0x200000) throw this.corrupt(`${what} too large`);
    return hi * 0x100000000 + lo;
  }

  string(): string {
    const len = this.u64("string length");
    this.need(len);
    const s = this.nodeBuf.toString("utf8", this.pos, this.pos + len);
    this.pos += len;
    return s;
  }

  /** Hot loop for vocab arrays: inlined length reads and bounds checks. */
  stringArray(n: number): string[] {
    const out: string[] = new Array(n);
    const { dv, nodeBuf } = this;
    const end = this.buf.length;
    let p = this.pos;
    for (let i = 0; i < n; i++) {
      if (p + 8 > end) {
        this.pos = p;
        this.need(8);
      }
      const len = dv.getUint32(p, true);
      if (dv.getUint32(p + 4, true) !== 0 || p + 8 + len > end) {
        this.pos = p;
        this.string(); // slow path: throws the right error (too large / truncated / need more)
      }
      p += 8;
      out[i] = nodeBuf.toString("utf8", p, p + len);
      p += len;
    }
    this.pos = p;
    return out;
  }

  scalar(type: number): GgufValue {
    const size = GGUF_SCALAR_SIZE[type];
    if (type === GgufType.STRING) return { type, value: this.string() };
    if (size === undefined) throw this.corrupt(`unknown metadata value type ${type}`);
    this.need(size);
    const p = this.pos;
    const dv = this.dv;
    this.pos += size;
    switch (type) {
      case GgufType.UINT8: return { type, value: dv.getUint8(p) };
      case GgufType.INT8: return { type, value: dv.getInt8(p) };
      case GgufType.UINT16: return { type, value: dv.getUint16(p, true) };
      case GgufType.INT16: return { type, value: dv.getInt16(p, true) };
      case GgufType.UINT32: return { type, value: dv.getUint32(p, true) };
      case GgufType.INT32: return { type, value: dv.getInt32(p, true) };
      case GgufType.FLOAT32: return { type, value: dv.getFloat32(p, true) };
      case GgufType.FLOAT64: return { type, value: dv.getFloat64(p, true) };
      case GgufType.UINT64: return { type, value: dv.getBigUint64(p, true) };
      case GgufType.INT64: return { type, value: dv.getBigInt64(p, true) };
      case GgufType.BOOL: return { type, value: dv.getUint8(p) !== 0 };
    }
    throw this.corrupt(`unknown metadata value type ${type}`);
  }

  array(): GgufValue {
    const itemType = this.u32();
    const n = this.u64("array length");
    if (itemType === GgufType.ARRAY) throw this.corrupt("nested arrays are not supported");
    if (itemType === GgufType.STRING) {
      this.need(n * 8); // every string has at least its 8-byte length
      return { type: GgufType.ARRAY, itemType, value: this.stringArray(n) };
    }
    const size = GGUF_SCALAR_SIZE[itemType];
    if (size === undefined) throw this.corrupt(`unknown array item type ${itemType}`);
    this.need(n * size);
    const start = this.pos;
    this.pos += n * size;
    if (itemType === GgufType.BOOL) {
      const out: boolean[] = new Array(n);
      for (let i = 0; i < n; i++) out[i] = this.buf[start + i] !== 0;
      return { type: GgufType.ARRAY, itemType, value: out };
    }
    const Ctor = GGUF_ARRAY_CTOR[itemType as keyof typeof GGUF_ARRAY_CTOR];
    const value = typedArrayFrom(Ctor, this.buf, start, n, size);
    return { type: GgufType.ARRAY, itemType: itemType as GgufItemType, value };
  }
}

type NumericCtor = (typeof GGUF_ARRAY_CTOR)[keyof typeof GGUF_ARRAY_CTOR];

function typedArrayFrom(Ctor: NumericCtor, buf: Uint8Array, start: number, n: number, size: number): GgufArrayData {
  if (!HOST_LE) throw new Error("GGUF reader: big-endian hosts are not supported");
  const bytes = buf.slice(start, start + n * size); // copy => aligned, independent of the file buffer
  return new Ctor(bytes.buffer, 0, n);
}

function parse(buf: Uint8Array, fileSize: number, path: string): GgufFile {
  const c = new Cursor(buf, fileSize, path);
  if (fileSize < 4 || c.u32() !== GGUF_MAGIC) throw new Error(`not a GGUF file: ${path}`);
  const version = c.u32();
  if (version === 1) throw new Error(`unsupported GGUF version 1 (too old): ${path}`);
  if (version > 3) throw new Error(`unsupported GGUF version ${version}: ${path}`);
  const nTensors = c.u64("tensor count");
  const nKv = c.u64("metadata count");

  const metadata: GgufMetadata = new Map();
  for (let i = 0; i < nKv; i++) {
    const key = c.string();
    const type = c.u32();
    const value = type === GgufType.ARRAY ? c.array() : c.scalar(type);
    if (metadata.has(key)) throw c.corrupt(`duplicate metadata key ${key}`);
    metadata.set(key, value);
  }

  let alignment = GGUF_DEFAULT_ALIGNMENT;
  const al = metadata.get("general.alignment");
  if (al !== undefined) {
    const n = typeof al.value === "number" ? al.value : typeof al.value === "bigint" ? Number(al.value) : NaN;
    if (!Number.isInteger(n) || n <= 0 || (n & (n - 1)) !== 0) {
      throw c.corrupt(`general.alignment must be a power of two, got ${String(al.value)}`);
    }
    alignment = n;
  }

  const tensors: TensorInfo[] = [];
  const names = new Set<string>();
  for (let i = 0; i < nTensors; i++) {
    const name = c.string();
    const nDims = c.u32();
    if (nDims < 1 || nDims > MAX_DIMS) throw c.corrupt(`tensor ${name} has ${nDims} dims`);
    const dims: number[] = [];
    for (let d = 0; d < nDims; d++) dims.push(c.u64(`tensor ${name} dim`));
    const type = c.u32();
    const offset = c.u64(`tensor ${name} offset`);
    if (offset % alignment !== 0) throw c.corrupt(`tensor ${name} offset ${offset} is not aligned to ${alignment}`);
    if (names.has(name)) throw c.corrupt(`duplicate tensor name ${name}`);
    names.add(name);
    tensors.push({ name, dims, type, offset });
  }

  const dataOffset = Math.ceil(c.pos / alignment) * alignment;
  for (const t of tensors) {
    const size = ggmlTensorBytes(t.type, t.dims);
    if (size !== undefined && dataOffset + t.offset + size > fileSize) {
      throw new Error(`truncated GGUF file: ${path} (data of tensor ${t.name} extends past end of file)`);
    }
  }
  return { path, version, metadata, tensors, alignment, dataOffset, fileSize };
}

/** Read a GGUF file's header (metadata + tensor infos). Reads only as much of the file as needed. */
export function readGguf(path: string): GgufFile {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new Error(`GGUF file not found: ${path}`);
    throw new Error(`cannot open GGUF file: ${path}: ${(e as Error).message}`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new Error(`not a GGUF file: ${path} (not a regular file)`);
    const fileSize = st.size;
    let want = Math.min(fileSize, INITIAL_PREFIX);
    for (;;) {
      const buf = readPrefix(fd, want);
      try {
        return parse(buf, fileSize, path);
      } catch (e) {
        if (e !== NEED_MORE) throw e;
        want = Math.min(fileSize, want * 4);
      }
    }
  } finally {
    closeSync(fd);
  }
}

function readPrefix(fd: number, len: number): Uint8Array {
  const buf = new Uint8Array(len);
  let got = 0;
  while (got < len) {
    const n = readSync(fd, buf, got, len - got, got);
    if (n <= 0) break;
    got += n;
  }
  return got === len ? buf : buf.subarray(0, got);
}

/** Absolute byte range of a tensor's data, when its type layout is known. */
export function tensorDataRange(file: GgufFile, tensor: TensorInfo): { start: number; end: number } {
  const size = ggmlTensorBytes(tensor.type, tensor.dims);
  if (size === undefined) throw new Error(`unknown size for ggml type ${tensor.type} (tensor ${tensor.name})`);
  const start = file.dataOffset + tensor.offset;
  return { start, end: start + size };
}

/** Read one tensor's raw bytes from disk. */
export function readTensorBytes(file: GgufFile, name: string): Uint8Array {
  const t = file.tensors.find((x) => x.name === name);
  if (!t) throw new Error(`tensor ${name} not found in ${file.path}`);
  const { start, end } = tensorDataRange(file, t);
  const fd = openSync(file.path, "r");
  try {
    const buf = new Uint8Array(end - start);
    let got = 0;
    while (got < buf.length) {
      const n = readSync(fd, buf, got, buf.length - got, start + got);
      if (n <= 0) throw new Error(`truncated GGUF file: ${file.path} (tensor ${name})`);
      got += n;
    }
    return buf;
  } finally {
    closeSync(fd);
  }
}
