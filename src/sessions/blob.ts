// The on-disk / in-Redis record of a session: a small binary envelope around the session's tokens
// and, for "kv" records, llama.cpp's per-sequence state bytes. Pure functions, no I/O.
//
//   "LLMSESS1" | u32 header length | u32 CRC-32 of everything after this field | header JSON
//   | tokens (nTokens × i32, little endian) | payload (kv records: llama_state_seq_get_data bytes)
//
// The header decides compatibility (model fingerprint, llama.cpp version, context shape); the
// checksum catches truncation and corruption. A record that fails either is never used: the
// session falls back to decoding its tokens again, so output is never wrong.
import type { RecordKind } from "./store.ts";

const MAGIC = new TextEncoder().encode("LLMSESS1");
const PREFIX = MAGIC.length + 8;
const FORMAT_VERSION = 1;

/** What a KV blob must match to be restored into this process's context. */
export interface EngineIdentity {
  /** fingerprint of the model file (see fingerprint.ts) */
  model: string;
  /** llama.cpp version the state was written by (its serialisation is not a stable format) */
  llama: string;
  /** the context's KV layout: streams or unified, cell types, flash attention */
  shape: string;
}

export interface SessionHeader extends EngineIdentity {
  v: number;
  kind: RecordKind;
  requestId: string;
  /** tokens in the record (prompt + generated); a kv record's payload holds the first `kvTokens` */
  nTokens: number;
  promptLen: number;
  kvTokens: number;
  /** ms since the epoch */
  lastUsed: number;
}

export interface SessionRecord {
  header: SessionHeader;
  tokens: Int32Array;
  /** KV state bytes (empty for meta records) */
  payload: Uint8Array;
}

export class BlobError extends Error {
  override name = "BlobError";
}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * A record laid out before its payload exists, so that llama.cpp can write a KV state straight
 * into it (no second copy of a blob that may be hundreds of MB): fill `payload`, then finish().
 */
export class RecordBuilder {
  readonly #out: Uint8Array;
  readonly #payloadAt: number;
  /** where the payload goes (up to `payloadLen` bytes) */
  readonly payload: Uint8Array;

  constructor(header: Omit<SessionHeader, "v" | "nTokens">, tokens: Int32Array, payloadLen: number) {
    const json = utf8.encode(JSON.stringify({ ...header, v: FORMAT_VERSION, nTokens: tokens.length }));
    this.#payloadAt = PREFIX + json.length + tokens.length * 4;
    const out = (this.#out = new Uint8Array(this.#payloadAt + payloadLen));
    out.set(MAGIC, 0);
    const view = new DataView(out.buffer);
    view.setUint32(MAGIC.length, json.length, true);
    out.set(json, PREFIX);
    for (let i = 0, at = PREFIX + json.length; i < tokens.length; i++, at += 4) view.setInt32(at, tokens[i]!, true);
    this.payload = out.subarray(this.#payloadAt);
  }

  /** The record, with `written` payload bytes and its checksum. */
  finish(written: number): Uint8Array {
    const out = this.#out.subarray(0, this.#payloadAt + written);
    new DataView(out.buffer).setUint32(MAGIC.length + 4, Bun.hash.crc32(out.subarray(PREFIX)) >>> 0, true);
    return out;
  }
}

export function encodeRecord(header: Omit<SessionHeader, "v" | "nTokens">, tokens: Int32Array, payload: Uint8Array = new Uint8Array(0)): Uint8Array {
  const b = new RecordBuilder(header, tokens, payload.length);
  b.payload.set(payload);
  return b.finish(payload.length);
}

/** Parses and checks a record; throws BlobError saying what is wrong (truncated, corrupt, foreign). */
export function decodeRecord(bytes: Uint8Array): SessionRecord {
  if (bytes.length < PREFIX || !MAGIC.every((b, i) => bytes[i] === b)) throw new BlobError("not a session record (bad magic)");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = view.getUint32(MAGIC.length, true);
  if (PREFIX + headerLen > bytes.length) throw new BlobError("truncated header");
  if ((Bun.hash.crc32(bytes.subarray(PREFIX)) >>> 0) !== view.getUint32(MAGIC.length + 4, true)) throw new BlobError("checksum mismatch (corrupt or truncated)");
  let header: SessionHeader;
  try {
    header = JSON.parse(fromUtf8.decode(bytes.subarray(PREFIX, PREFIX + headerLen)));
  } catch {
    throw new BlobError("unreadable header");
  }
  if (!validHeader(header)) throw new BlobError("malformed header");
  if (header.v !== FORMAT_VERSION) throw new BlobError(`format version ${header.v}, expected ${FORMAT_VERSION}`);
  const tokensAt = PREFIX + headerLen;
  const payloadAt = tokensAt + header.nTokens * 4;
  if (payloadAt > bytes.length) throw new BlobError("truncated tokens");
  const tokens = new Int32Array(header.nTokens);
  for (let i = 0; i < tokens.length; i++) tokens[i] = view.getInt32(tokensAt + i * 4, true);
  return { header, tokens, payload: bytes.subarray(payloadAt) };
}

function validHeader(h: unknown): h is SessionHeader {
  if (typeof h !== "object" || h === null) return false;
  const r = h as Record<string, unknown>;
  const nat = (k: string) => Number.isInteger(r[k]) && (r[k] as number) >= 0;
  return (r.kind === "meta" || r.kind === "kv") && typeof r.requestId === "string" && typeof r.model === "string"
    && typeof r.llama === "string" && typeof r.shape === "string" && nat("v") && nat("nTokens") && nat("promptLen")
    && nat("kvTokens") && nat("lastUsed") && (r.promptLen as number) <= (r.nTokens as number) && (r.kvTokens as number) <= (r.nTokens as number);
}

/** Why a KV record cannot be restored here, or null when it can. */
export function incompatibility(header: SessionHeader, self: EngineIdentity): string | null {
  if (header.model !== self.model) return "written for another model file";
  if (header.llama !== self.llama) return `written by llama.cpp ${header.llama}, this is ${self.llama}`;
  if (header.shape !== self.shape) return `written for KV layout ${header.shape}, this is ${self.shape}`;
  return null;
}
