// The pipelining front's HTTP/1.1 framing, alone: where each message ends, however the bytes are split.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { MAX_LINE_BYTES, MessageScanner, type Head } from "../src/http/front/framing.ts";

const bytes = (s: string) => Buffer.from(s, "latin1");

/** ends of every message in `chunks` (offsets into their concatenation), plus the heads seen */
function scan(side: "request" | "response", chunks: Buffer[], methods: string[] = []) {
  const heads: Head[] = [];
  const queue = [...methods];
  const s = new MessageScanner(side, (h) => heads.push(h), () => queue.shift());
  const ends: number[] = [];
  let base = 0;
  for (const c of chunks) {
    let from = 0;
    for (;;) {
      const end = s.feed(c, from);
      if (end < 0) break;
      ends.push(base + end);
      from = end;
    }
    base += c.length;
  }
  return { ends, heads, opaque: s.opaque, idle: s.idle };
}

const POST = "POST /api/generate-one HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{\"a\":\"\r\n\"}";
const GET = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
const CHUNKED = "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n1A\r\n" + "z".repeat(26) + "\r\n0\r\nX-Trailer: 1\r\n\r\n";

describe("requests", () => {
  test("pipelined requests end where they end, with their methods", () => {
    const all = POST + GET + CHUNKED;
    const r = scan("request", [bytes(all)]);
    expect(r.ends).toEqual([POST.length, POST.length + GET.length, all.length]);
    expect(r.heads.map((h) => h.method)).toEqual(["POST", "GET", "POST"]);
    expect(r.idle).toBe(true);
  });

  test("the same ends however the bytes are split (body bytes that look like heads included)", () => {
    const all = bytes("\r\n" + POST + GET + CHUNKED + GET);
    const whole = scan("request", [all]).ends;
    expect(whole).toHaveLength(4);
    fc.assert(fc.property(fc.uniqueArray(fc.integer({ min: 1, max: all.length - 1 }), { maxLength: 12 }), (cuts) => {
      const at = [0, ...cuts.sort((a, b) => a - b), all.length];
      const chunks = at.slice(1).map((end, i) => all.subarray(at[i], end));
      expect(scan("request", chunks).ends).toEqual(whole);
    }), { numRuns: Number(process.env.FUZZ_RUNS ?? 300) });
  });

  test("a request in progress is not idle; one not yet ended reports no end", () => {
    const r = scan("request", [bytes(POST.slice(0, 40))]);
    expect(r.ends).toEqual([]);
    expect(r.idle).toBe(false);
  });

  const opaque = {
    "Content-Length and Transfer-Encoding together": "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
    "two different Content-Lengths": "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
    "a Content-Length that is not a number": "POST / HTTP/1.1\r\nContent-Length: 0x10\r\n\r\n",
    "a transfer coding other than chunked last": "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
    "an obs-folded header": "GET / HTTP/1.1\r\nX-A: 1\r\n  folded\r\n\r\n",
    "a malformed request line": "GET /\r\nHost: x\r\n\r\n",
    "an upgrade": "GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
    "a bad chunk size": "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    "chunk data not followed by CRLF": "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n",
  };
  for (const [what, text] of Object.entries(opaque)) {
    test(`${what}: opaque (Bun answers it), no message end reported`, () => {
      const r = scan("request", [bytes(text + GET)]);
      expect(r.opaque).toBe(true);
      expect(r.ends).toEqual([]);
    });
  }

  test("a head longer than MAX_LINE_BYTES is opaque", () => {
    const r = scan("request", [bytes(`GET / HTTP/1.1\r\nX-Big: ${"a".repeat(MAX_LINE_BYTES)}\r\n\r\n`)]);
    expect(r.opaque).toBe(true);
  });

  test("equal repeated Content-Lengths are one length", () => {
    const text = "POST / HTTP/1.1\r\nContent-Length: 2, 2\r\n\r\n{}";
    expect(scan("request", [bytes(text)]).ends).toEqual([text.length]);
  });
});

describe("responses", () => {
  const ok = (body: string) => `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
  const chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";

  test("interim 100 Continue does not end the exchange; the final response does", () => {
    const cont = "HTTP/1.1 100 Continue\r\n\r\n";
    const all = cont + ok("hi") + chunked;
    const r = scan("response", [bytes(all)], ["POST", "GET"]);
    expect(r.ends).toEqual([cont.length + ok("hi").length, all.length]);
    expect(r.heads.map((h) => h.status)).toEqual([200, 200]);
  });

  test("a HEAD response, 204 and 304 have no body whatever their headers say", () => {
    const head = "HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n";
    const none = "HTTP/1.1 204 No Content\r\n\r\n";
    const nm = "HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n";
    const r = scan("response", [bytes(head + none + nm)], ["HEAD", "GET", "GET"]);
    expect(r.ends).toEqual([head.length, head.length + none.length, head.length + none.length + nm.length]);
  });

  test("a response without a length lasts until the connection closes; 101 is a tunnel", () => {
    expect(scan("response", [bytes("HTTP/1.0 200 OK\r\n\r\nanything at all")]).ends).toEqual([]);
    expect(scan("response", [bytes("HTTP/1.1 101 Switching Protocols\r\n\r\n")]).opaque).toBe(true);
  });
});
