// A streaming HTTP/1.1 client on a raw socket, for tests that must know exactly which bytes
// arrived: it reads a chunked response until `stopAfter` body bytes came, then half-closes (its
// write side), keeps reading what the server still sends, and returns the whole decoded body.
import { connect } from "node:net";

export async function readThenHangUp(port: number, path: string, body: unknown, stopAfter: number, timeoutMs = 10_000): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: "127.0.0.1", port, allowHalfOpen: true });
    const payload = JSON.stringify(body);
    let raw = Buffer.alloc(0);
    let hungUp = false;
    const timer = setTimeout(() => (sock.destroy(), reject(new Error("raw HTTP client timed out"))), timeoutMs);
    sock.on("connect", () => sock.write(`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(payload)}\r\n\r\n${payload}`));
    sock.on("data", (d: Buffer) => {
      raw = Buffer.concat([raw, d]);
      if (!hungUp && decode(raw).body.length >= stopAfter) {
        hungUp = true;
        sock.end();
      }
    });
    const finish = () => {
      clearTimeout(timer);
      const { status, body } = decode(raw);
      resolve({ status, text: new TextDecoder().decode(body) });
    };
    sock.on("close", finish);
    sock.on("error", (e) => (hungUp ? finish() : (clearTimeout(timer), reject(e))));
  });
}

/** Status and de-chunked body bytes received so far (a partial last chunk is left out). */
function decode(raw: Buffer): { status: number; body: Buffer } {
  const headEnd = raw.indexOf("\r\n\r\n");
  if (headEnd < 0) return { status: 0, body: Buffer.alloc(0) };
  const status = Number(raw.subarray(0, headEnd).toString("latin1").split(" ")[1]);
  const parts: Buffer[] = [];
  let at = headEnd + 4;
  for (;;) {
    const lineEnd = raw.indexOf("\r\n", at);
    if (lineEnd < 0) break;
    const size = parseInt(raw.subarray(at, lineEnd).toString("latin1"), 16);
    if (!(size > 0) || lineEnd + 2 + size > raw.length) break;
    parts.push(raw.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
  return { status, body: Buffer.concat(parts) };
}

export interface RawResponse { status: number; headers: Record<string, string>; body: string }

/**
 * Writes `bytes` on one connection (in pieces of `pieceBytes`, `pieceMs` apart; all at once by
 * default), half-closes unless told not to, and returns every response that came back, in order,
 * once the server closed the connection (or `timeoutMs` passed).
 */
export async function exchange(port: number, bytes: string, opts: { pieceBytes?: number; pieceMs?: number; halfClose?: boolean; timeoutMs?: number } = {}): Promise<RawResponse[]> {
  const raw = await new Promise<Buffer>((resolve) => {
    const sock = connect({ host: "127.0.0.1", port, allowHalfOpen: true });
    const chunks: Buffer[] = [];
    const done = () => (clearTimeout(timer), resolve(Buffer.concat(chunks)));
    const timer = setTimeout(() => (sock.destroy(), done()), opts.timeoutMs ?? 20_000);
    sock.on("connect", async () => {
      const all = Buffer.from(bytes);
      const step = opts.pieceBytes ?? all.length;
      for (let at = 0; at < all.length; at += step) {
        sock.write(all.subarray(at, at + step));
        if (opts.pieceMs) await Bun.sleep(opts.pieceMs);
      }
      if (opts.halfClose !== false) sock.end();
    });
    sock.on("data", (d: Buffer) => chunks.push(d));
    sock.on("close", done);
    sock.on("error", () => {});
  });
  return parseResponses(raw);
}

/** Splits raw bytes into HTTP/1.1 responses (Content-Length or chunked bodies). */
export function parseResponses(raw: Buffer): RawResponse[] {
  const out: RawResponse[] = [];
  let at = 0;
  while (at < raw.length) {
    const headEnd = raw.indexOf("\r\n\r\n", at);
    if (headEnd < 0) break;
    const [first, ...lines] = raw.subarray(at, headEnd).toString("latin1").split("\r\n");
    const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(":")).toLowerCase(), l.slice(l.indexOf(":") + 1).trim()]));
    at = headEnd + 4;
    let body: Buffer<ArrayBufferLike> = Buffer.alloc(0);
    if (headers["transfer-encoding"] === "chunked") {
      const parts: Buffer[] = [];
      for (;;) {
        const lineEnd = raw.indexOf("\r\n", at);
        if (lineEnd < 0) return out;
        const size = parseInt(raw.subarray(at, lineEnd).toString("latin1"), 16);
        at = lineEnd + 2;
        if (size === 0) {
          at += 2;
          break;
        }
        parts.push(raw.subarray(at, at + size));
        at += size + 2;
      }
      body = Buffer.concat(parts);
    } else {
      const n = Number(headers["content-length"] ?? 0);
      body = raw.subarray(at, at + n);
      at += n;
    }
    out.push({ status: Number(first!.split(" ")[1]), headers, body: body.toString("utf8") });
  }
  return out;
}
