// GGUF v3 writer: header built in memory, tensor data streamed to disk in chunks.
import { closeSync, openSync, rmSync, writeSync } from "node:fs";
import { encodeF16 } from "./f16.ts";
import { GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC } from "./reader.ts";
import {
  GGUF_SCALAR_SIZE,
  GgmlType,
  GgufType,
  ggmlTensorBytes,
  type GgufValue,
} from "./types.ts";

/** Tensor data: one view, or a function returning chunks (consumed synchronously, in order). */
export type TensorData = ArrayBufferView | (() => Iterable<ArrayBufferView>);

export interface TensorInput {
  name: string;
  /** ggml order: dims[0] is the row length. */
  dims: number[];
  type: number;
  /**
   * Float32Array chunks are converted to `type` (F32 or F16 only); any other view is copied
   * verbatim as raw bytes (already encoded in `type`).
   */
  data: TensorData;
}

export interface WriteResult {
  bytes: number;
  dataOffset: number;
}

const CHUNK = 4 << 20;
const utf8 = new TextEncoder();

/** Growable little-endian byte buffer for the header. */
class ByteBuilder {
  buf = new Uint8Array(1 << 16);
  dv = new DataView(this.buf.buffer);
  len = 0;

  reserve(n: number): number {
    if (this.len + n > this.buf.length) {
      let cap = this.buf.length * 2;
      while (cap < this.len + n) cap *= 2;
      const next = new Uint8Array(cap);
      next.set(this.buf.subarray(0, this.len));
      this.buf = next;
      this.dv = new DataView(next.buffer);
    }
    const p = this.len;
    this.len += n;
    return p;
  }
  // Note: reserve() may replace buf/dv, so always call it before touching them.
  u8(v: number): void {
    const p = this.reserve(1);
    this.dv.setUint8(p, v);
  }
  u32(v: number): void {
    const p = this.reserve(4);
    this.dv.setUint32(p, v, true);
  }
  u64(v: number | bigint): void {
    const p = this.reserve(8);
    this.dv.setBigUint64(p, BigInt(v), true);
  }
  bytes(b: Uint8Array): void {
    const p = this.reserve(b.length);
    this.buf.set(b, p);
  }
  string(s: string): void {
    const b = utf8.encode(s);
    this.u64(b.length);
    this.bytes(b);
  }
  pad(alignment: number): void {
    const n = (alignment - (this.len % alignment)) % alignment;
    this.reserve(n); // new bytes are zero (fresh buffers are zero-filled and never reused)
  }
}

function writeScalar(b: ByteBuilder, type: number, v: unknown, key: string): void {
  const bad = () => new Error(`GGUF key ${key}: value ${String(v)} does not fit type ${GgufType[type]}`);
  if (type === GgufType.STRING) {
    if (typeof v !== "string") throw bad();
    return b.string(v);
  }
  if (type === GgufType.BOOL) {
    if (typeof v !== "boolean") throw bad();
    return b.u8(v ? 1 : 0);
  }
  const size = GGUF_SCALAR_SIZE[type];
  if (size === undefined) throw new Error(`GGUF key ${key}: unknown type ${type}`);
  const p = b.reserve(size);
  const dv = b.dv;
  if (type === GgufType.UINT64 || type === GgufType.INT64) {
    if (typeof v !== "bigint" && typeof v !== "number") throw bad();
    const big = BigInt(v);
    if (type === GgufType.UINT64) dv.setBigUint64(p, big, true);
    else dv.setBigInt64(p, big, true);
    return;
  }
  if (typeof v !== "number") throw bad();
  const isInt = type !== GgufType.FLOAT32 && type !== GgufType.FLOAT64;
  if (isInt && !Number.isInteger(v)) throw bad();
  switch (type) {
    case GgufType.UINT8: return dv.setUint8(p, v);
    case GgufType.INT8: return dv.setInt8(p, v);
    case GgufType.UINT16: return dv.setUint16(p, v, true);
    case GgufType.INT16: return dv.setInt16(p, v, true);
    case GgufType.UINT32: return dv.setUint32(p, v, true);
    case GgufType.INT32: return dv.setInt32(p, v, true);
    case GgufType.FLOAT32: return dv.setFloat32(p, v, true);
    case GgufType.FLOAT64: return dv.setFloat64(p, v, true);
  }
}

function writeValue(b: ByteBuilder, key: string, v: GgufValue): void {
  b.u32(v.type);
  if (v.type !== GgufType.ARRAY) return writeScalar(b, v.type, v.value, key);
  const items = v.value as ArrayLike<unknown>;
  if ((v.itemType as number) === GgufType.ARRAY) throw new Error(`GGUF key ${key}: nested arrays are not supported`);
  b.u32(v.itemType);
  b.u64(items.length);
  const size = GGUF_SCALAR_SIZE[v.itemType];
  // Fast path: a typed array whose element size matches is copied as raw little-endian bytes.
  if (ArrayBuffer.isView(items) && size !== undefined && (items as Uint8Array).BYTES_PER_ELEMENT === size) {
    const view = items as unknown as Uint8Array;
    const raw = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
    const floatItem = v.itemType === GgufType.FLOAT32 || v.itemType === GgufType.FLOAT64;
    const floatArr = items instanceof Float32Array || items instanceof Float64Array;
    if (floatItem === floatArr) return b.bytes(raw);
  }
  for (let i = 0; i < items.length; i++) writeScalar(b, v.itemType, items[i], `${key}[${i}]`);
}

/** Buffered synchronous file sink. */
class FileSink {
  private buf = new Uint8Array(CHUNK);
  private used = 0;
  written = 0;
  constructor(private readonly fd: number) {}

  write(bytes: Uint8Array): void {
    if (bytes.length >= CHUNK) {
      this.flush();
      this.raw(bytes);
      return;
    }
    if (this.used + bytes.length > CHUNK) this.flush();
    this.buf.set(bytes, this.used);
    this.used += bytes.length;
  }
  zeros(n: number): void {
    if (n > 0) this.write(new Uint8Array(n));
  }
  flush(): void {
    if (this.used > 0) this.raw(this.buf.subarray(0, this.used));
    this.used = 0;
  }
  private raw(bytes: Uint8Array): void {
    let off = 0;
    while (off < bytes.length) off += writeSync(this.fd, bytes, off, bytes.length - off);
    this.written += bytes.length;
  }
}

function tensorSize(t: TensorInput): number {
  if (t.dims.length < 1 || t.dims.length > 4 || t.dims.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new Error(`tensor ${t.name}: invalid dims [${t.dims.join(", ")}]`);
  }
  const size = ggmlTensorBytes(t.type, t.dims);
  if (size === undefined) throw new Error(`tensor ${t.name}: unsupported ggml type ${t.type} for these dims`);
  return size;
}

function* chunksOf(data: TensorData): Iterable<ArrayBufferView> {
  if (typeof data === "function") yield* data();
  else yield data;
}

function streamTensor(sink: FileSink, t: TensorInput, expected: number): void {
  let f16: Uint16Array | undefined;
  let n = 0;
  for (const chunk of chunksOf(t.data)) {
    let bytes: Uint8Array;
    if (chunk instanceof Float32Array) {
      if (t.type === GgmlType.F32) {
        bytes = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      } else if (t.type === GgmlType.F16) {
        if (!f16 || f16.length < chunk.length) f16 = new Uint16Array(chunk.length);
        encodeF16(chunk, f16);
        bytes = new Uint8Array(f16.buffer, 0, chunk.length * 2);
      } else {
        throw new Error(`tensor ${t.name}: cannot convert Float32Array to ggml type ${t.type}; pass raw bytes`);
      }
    } else {
      bytes = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    }
    n += bytes.length;
    if (n > expected) throw new Error(`tensor ${t.name}: got more data than its ${expected} bytes`);
    sink.write(bytes);
  }
  if (n !== expected) throw new Error(`tensor ${t.name}: got ${n} bytes of data, expected ${expected}`);
}

/**
 * Write a GGUF v3 file. Metadata order is preserved. Alignment comes from `general.alignment`
 * when present (default 32). On error the partial file is removed.
 */
export function writeGguf(
  path: string,
  metadata: Map<string, GgufValue> | Iterable<[string, GgufValue]>,
  tensors: TensorInput[],
): WriteResult {
  const meta = metadata instanceof Map ? metadata : new Map(metadata);
  let alignment = GGUF_DEFAULT_ALIGNMENT;
  const al = meta.get("general.alignment");
  if (al !== undefined) {
    if (al.type !== GgufType.UINT32 || al.value <= 0 || (al.value & (al.value - 1)) !== 0) {
      throw new Error("general.alignment must be a UINT32 power of two");
    }
    alignment = al.value;
  }

  const h = new ByteBuilder();
  h.u32(GGUF_MAGIC);
  h.u32(3);
  h.u64(tensors.length);
  h.u64(meta.size);
  for (const [key, value] of meta) {
    h.string(key);
    writeValue(h, key, value);
  }
  const sizes: number[] = [];
  const names = new Set<string>();
  let offset = 0;
  for (const t of tensors) {
    if (names.has(t.name)) throw new Error(`duplicate tensor name ${t.name}`);
    names.add(t.name);
    const size = tensorSize(t);
    sizes.push(size);
    h.string(t.name);
    h.u32(t.dims.length);
    for (const d of t.dims) h.u64(d);
    h.u32(t.type);
    h.u64(offset);
    offset += Math.ceil(size / alignment) * alignment;
  }
  if (tensors.length > 0) h.pad(alignment); // metadata-only files (like ggml-vocab-*.gguf) end unpadded
  const dataOffset = h.len;

  const fd = openSync(path, "w");
  let ok = false;
  try {
    const sink = new FileSink(fd);
    sink.write(h.buf.subarray(0, h.len));
    tensors.forEach((t, i) => {
      streamTensor(sink, t, sizes[i]);
      sink.zeros((alignment - (sizes[i] % alignment)) % alignment);
    });
    sink.flush();
    ok = true;
    return { bytes: sink.written, dataOffset };
  } finally {
    closeSync(fd);
    if (!ok) rmSync(path, { force: true });
  }
}
