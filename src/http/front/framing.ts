// Where HTTP/1.1 messages end in a byte stream (RFC 9112 §6), found without buffering or changing
// the bytes. The pipelining front uses one scanner per direction to hand Bun one request at a
// time. Whatever it cannot frame without doubt (a malformed or oversized head, conflicting lengths,
// an unknown transfer coding, an upgrade) turns the scanner "opaque": from then on the bytes pass
// through untouched and Bun, the real parser, answers them (a 400 and a closed connection).

type State = "head" | "length" | "chunk-size" | "chunk-data" | "chunk-end" | "trailer" | "until-close" | "opaque";

/** longest head (request line + headers) or chunk-size/trailer line the scanner will frame */
export const MAX_LINE_BYTES = 64 * 1024;

export interface Head {
  /** requests: the method; responses: undefined */
  method?: string;
  /** responses: the status code; requests: undefined */
  status?: number;
}

export class MessageScanner {
  #state: State = "head";
  #head = ""; // latin1 text of the head read so far
  #line = ""; // the chunk-size or trailer line read so far
  #left = 0; // bytes left in a Content-Length body or a chunk

  /**
   * `side`: which messages this scanner frames. `onHead` sees each head (final responses only);
   * `requestMethod` gives the method of the request a final response answers (a HEAD request's
   * response has no body), in order.
   */
  constructor(
    readonly side: "request" | "response",
    private readonly onHead: (head: Head) => void = () => {},
    private readonly requestMethod: () => string | undefined = () => undefined,
  ) {}

  /** true once the scanner gave up framing: every later byte belongs to no message it knows */
  get opaque(): boolean {
    return this.#state === "opaque";
  }

  /** true between messages: nothing of the next one has been seen yet */
  get idle(): boolean {
    return this.#state === "head" && this.#head.length === 0;
  }

  /**
   * Consumes `buf` from `from`. Returns the offset just after the end of the message that ended
   * there, or -1 when all of the rest belongs to a message that has not ended yet (or to none, once
   * opaque). Call again from the returned offset for the next message.
   */
  feed(buf: Uint8Array, from = 0): number {
    let i = from;
    while (i < buf.length) {
      switch (this.#state) {
        case "opaque":
        case "until-close":
          return -1;
        case "head": {
          const r = this.#feedHead(buf, i);
          if (r < 0) return -1;
          i = r;
          if (this.#ended) return (this.#ended = false), i;
          break;
        }
        case "length": {
          const n = Math.min(this.#left, buf.length - i);
          this.#left -= n;
          i += n;
          if (this.#left === 0) return this.#end(), i;
          break;
        }
        case "chunk-data": {
          const n = Math.min(this.#left, buf.length - i);
          this.#left -= n;
          i += n;
          if (this.#left === 0) (this.#state = "chunk-end"), (this.#line = "");
          break;
        }
        case "chunk-end": {
          if (this.#line === "" && buf[i] === CR && buf[i + 1] === LF) { // the usual case, whole in this buffer
            i += 2;
            this.#state = "chunk-size";
            break;
          }
          this.#line += String.fromCharCode(buf[i++]!);
          if (this.#line.length === 2) {
            if (this.#line !== "\r\n") return this.#giveUp();
            this.#state = "chunk-size";
            this.#line = "";
          }
          break;
        }
        case "chunk-size":
        case "trailer": {
          if (this.#state === "chunk-size" && this.#line === "") {
            const next = this.#hexLine(buf, i);
            if (next >= 0) { // the usual case: hex digits and CRLF, whole in this buffer
              i = next;
              this.#state = this.#left === 0 ? "trailer" : "chunk-data";
              break;
            }
          }
          const lf = buf.indexOf(10, i);
          const stop = lf < 0 ? buf.length : lf + 1;
          this.#line += latin1(buf, i, stop);
          i = stop;
          if (this.#line.length > MAX_LINE_BYTES) return this.#giveUp();
          if (lf < 0) break;
          const line = this.#line;
          this.#line = "";
          if (!line.endsWith("\r\n")) return this.#giveUp();
          if (this.#state === "trailer") {
            if (line === "\r\n") return this.#end(), i;
            break;
          }
          const size = /^([0-9a-fA-F]{1,15})[ \t]*(;[^\r\n]*)?\r\n$/.exec(line);
          if (!size) return this.#giveUp();
          this.#left = parseInt(size[1]!, 16);
          this.#state = this.#left === 0 ? "trailer" : "chunk-data";
          break;
        }
      }
    }
    return -1;
  }

  /**
   * A chunk-size line made of 1-15 hex digits and CRLF that lies whole in `buf` from `at`: sets
   * #left to its size and returns the offset after it (no allocation: this runs once per streamed
   * chunk). -1 for anything else (split across buffers, extensions, junk), which the line-by-line
   * path frames or rejects.
   */
  #hexLine(buf: Uint8Array, at: number): number {
    let size = 0;
    let i = at;
    for (; i < buf.length && i - at < 16; i++) {
      const c = buf[i]!;
      const d = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;
      if (d < 0) break;
      size = size * 16 + d;
    }
    const digits = i - at;
    if (digits === 0 || digits > 15 || buf[i] !== CR || buf[i + 1] !== LF) return -1;
    this.#left = size;
    return i + 2;
  }

  /** set when a head without a body ended its message */
  #ended = false;

  /** reads head bytes; returns the offset after them, or -1 when the scanner gave up */
  #feedHead(buf: Uint8Array, from: number): number {
    const before = this.#head.length;
    const take = Math.min(buf.length, from + MAX_LINE_BYTES + 4 - before);
    this.#head += latin1(buf, from, take);
    // empty lines before a request line are allowed (RFC 9112 §2.2)
    const start = this.#head.search(/[^\r\n]/);
    if (start < 0) {
      if (this.#head.length > MAX_LINE_BYTES) return this.#giveUp();
      return take;
    }
    const end = this.#head.indexOf("\r\n\r\n", Math.max(start, before - 3));
    if (end < 0) return this.#head.length > MAX_LINE_BYTES ? this.#giveUp() : take;
    const used = end + 4 - before; // bytes of this buffer that belong to the head
    const head = this.#head.slice(start, end);
    this.#head = "";
    this.#frame(head);
    return this.#state === "opaque" ? -1 : from + used;
  }

  /** sets the body state from a complete head */
  #frame(text: string): void {
    const lines = text.split("\r\n");
    const first = lines[0]!;
    const fields = new Map<string, string[]>();
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(":");
      if (colon <= 0 || line[0] === " " || line[0] === "\t") return void this.#giveUp(); // obs-fold or junk
      const name = line.slice(0, colon).toLowerCase();
      if (!/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(name)) return void this.#giveUp();
      fields.set(name, [...(fields.get(name) ?? []), line.slice(colon + 1).trim()]);
    }
    const te = fields.get("transfer-encoding");
    const cl = fields.get("content-length");
    const length = cl ? contentLength(cl) : null;
    if (cl && length === null) return void this.#giveUp();
    const chunked = te ? te.join(",").toLowerCase().split(",").map((s) => s.trim()).at(-1) === "chunked" : false;
    if (this.side === "request") {
      const m = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) \S+ HTTP\/1\.[01]$/.exec(first);
      if (!m || (te && (cl || !chunked)) || fields.has("upgrade")) return void this.#giveUp();
      this.onHead({ method: m[1]! });
      return this.#body(chunked ? "chunked" : length ?? 0);
    }
    const m = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(first);
    if (!m) return void this.#giveUp();
    const status = Number(m[1]);
    if (status === 101) return void this.#giveUp(); // a tunnel from here on
    if (status < 200) return; // interim (100 Continue): the final response follows
    const method = this.requestMethod();
    this.onHead({ status, method });
    if (method === "HEAD" || status === 204 || status === 304) return this.#body(0);
    if (te) return this.#body(chunked ? "chunked" : "until-close");
    this.#body(length ?? "until-close");
  }

  #body(kind: number | "chunked" | "until-close"): void {
    if (kind === "chunked") this.#state = "chunk-size";
    else if (kind === "until-close") this.#state = "until-close";
    else if (kind > 0) (this.#state = "length"), (this.#left = kind);
    else (this.#state = "head"), (this.#ended = true); // no body: the message ended with its head
  }

  #end(): void {
    this.#state = "head";
  }

  #giveUp(): -1 {
    this.#state = "opaque";
    this.#head = this.#line = "";
    return -1;
  }
}

/** the Content-Length of a message, or null when its values are malformed or disagree */
function contentLength(values: string[]): number | null {
  const all = new Set(values.flatMap((v) => v.split(",").map((s) => s.trim())));
  if (all.size !== 1) return null;
  const [v] = all;
  return /^\d{1,15}$/.test(v!) ? Number(v) : null;
}

const CR = 13, LF = 10;

const latin1 = (buf: Uint8Array, from: number, to: number) =>
  Buffer.from(buf.buffer, buf.byteOffset + from, to - from).toString("latin1");
