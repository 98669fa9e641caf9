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
