// The pipelining front (PIPELINING=true). Bun.serve closes a connection, answering nothing, when a
// request arrives pipelined behind one still being handled (test/repro/bun-pipelining.ts), and every
// one of our handlers is asynchronous. So the public port is this small TCP listener instead: each
// client connection gets one connection to Bun.serve on a private unix socket, and its requests are
// passed on one at a time. Bytes of the request in progress and of every response flow through as
// they come, with backpressure both ways (so Bun's own timeouts and limits, and the engine's view of
// a client that stops reading, are unchanged); a request pipelined behind it waits here until its
// predecessor's response has ended. Responses reach the client in order, and no work is dropped.
// Bun's own sockets, not node:net: a write that fails on a closed upstream must not discard the
// response that arrived before the close (a 413 sent before the body was read).
import type { Socket } from "bun";
import { MessageScanner } from "./framing.ts";

export interface FrontOptions {
  host: string;
  port: number;
  /** unix socket Bun.serve listens on */
  upstream: string;
  /** bytes of pipelined requests held per connection before the client is no longer read */
  maxPipelinedBytes: number;
}

export interface Front {
  readonly port: number;
  /** stops accepting connections; open ones go on until they end */
  close(): void;
}

/** how long a connection Bun has closed keeps draining the client's bytes before it is dropped */
const LINGER_MS = 2000;

type Sock = Socket<FrontConnection>;

export function startFront(opts: FrontOptions): Front {
  const listener = Bun.listen<FrontConnection>({
    hostname: opts.host,
    port: opts.port,
    allowHalfOpen: true,
    socket: {
      open: (client) => void (client.data = new FrontConnection(client, opts)),
      data: (client, d) => client.data.fromClient(d),
      drain: (client) => client.data.clientDrained(),
      end: (client) => client.data.clientEnded(),
      close: (client) => client.data?.clientGone(),
      error: (client) => client.data?.clientGone(),
    },
  });
  return { port: listener.port, close: () => listener.stop(false) };
}

const upstreamHandlers = {
  open: (u: Sock) => u.data.upstreamOpen(u),
  data: (u: Sock, d: Buffer) => u.data.fromUpstream(d),
  drain: (u: Sock) => u.data.upstreamDrained(),
  end: (u: Sock) => u.data.upstreamGone(),
  close: (u: Sock) => u.data.upstreamGone(),
  error: (u: Sock) => u.data.upstreamGone(),
  connectError: (u: Sock) => u.data.upstreamGone(),
};

/** Bytes a socket has not taken yet (Bun's write() is unbuffered: it may take part, or none). */
class Outbox {
  #queue: Uint8Array[] = [];
  get empty(): boolean {
    return this.#queue.length === 0;
  }
  /** writes what `sock` takes now and keeps the rest; true when all of it went */
  send(sock: Sock, buf: Uint8Array): boolean {
    this.#queue.push(buf);
    return this.flush(sock);
  }
  /** writes queued bytes until `sock` takes no more; true when the queue is empty */
  flush(sock: Sock): boolean {
    while (this.#queue.length > 0) {
      const buf = this.#queue[0]!;
      const n = sock.write(buf);
      if (n < 0) return (this.#queue = []), true; // closed: its close handler tears down
      if (n < buf.length) return (this.#queue[0] = buf.subarray(n)), false;
      this.#queue.shift();
    }
    return true;
  }
}

class FrontConnection {
  readonly #client: Sock;
  #upstream: Sock | null = null;
  readonly #max: number;
  readonly #toUpstream = new Outbox();
  readonly #toClient = new Outbox();
  /** client bytes not passed on yet: the rest of the request in progress, then pipelined ones */
  readonly #pending: Buffer[] = [];
  #pendingBytes = 0;
  /** requests passed on completely, and final responses received completely */
  #requestsSent = 0;
  #responsesDone = 0;
  /** the method of each request passed on whose response has not begun (a HEAD response has no body) */
  readonly #methods: string[] = [];
  readonly #requests = new MessageScanner("request", (h) => this.#methods.push(h.method!));
  readonly #responses = new MessageScanner("response", undefined, () => this.#methods.shift());
  #clientEnded = false;
  /** no more requests will be passed on: the upstream or the client is gone */
  #closed = false;
  /** end the client once everything queued for it is written */
  #endClient = false;

  constructor(client: Sock, opts: FrontOptions) {
    this.#client = client;
    this.#max = opts.maxPipelinedBytes;
    Bun.connect<FrontConnection>({ unix: opts.upstream, data: this, socket: upstreamHandlers }).catch(() => this.upstreamGone());
  }

  upstreamOpen(u: Sock): void {
    this.#upstream = u;
    if (this.#closed) return void u.terminate();
    this.#pump();
  }

  fromClient(data: Buffer): void {
    if (this.#closed) return; // Bun has closed: what the client still sends is read and dropped
    this.#pending.push(data);
    this.#pendingBytes += data.length;
    this.#pump();
  }

  clientDrained(): void {
    if (!this.#toClient.flush(this.#client)) return;
    if (this.#endClient) return this.#finishClient();
    this.#upstream?.resume();
    this.#maybeFinish();
  }

  clientEnded(): void {
    this.#clientEnded = true;
    this.#maybeFinish();
  }

  /** the client hung up: so does the upstream, and Bun stops a running generation */
  clientGone(): void {
    this.#closed = true;
    this.#upstream?.terminate();
  }

  fromUpstream(data: Buffer): void {
    let from = 0;
    while (from < data.length) {
      const end = this.#responses.feed(data, from);
      if (end < 0) break;
      this.#responsesDone++;
      from = end;
    }
    if (!this.#toClient.send(this.#client, data)) this.#upstream?.pause(); // until the client drains
    if (this.#pending.length > 0) this.#pump();
    else this.#maybeFinish();
  }

  upstreamDrained(): void {
    if (this.#upstream && this.#toUpstream.flush(this.#upstream)) this.#pump();
  }

  /**
   * Bun closed its side (after a Connection: close, a 413 before the body was read, a timeout): the
   * client gets everything sent, then a FIN. Its further bytes are read and dropped for a moment, as
   * Bun itself does, so that closing with unread input does not reset the connection and lose the
   * response.
   */
  upstreamGone(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#pending.length = 0;
    this.#client.resume();
    if (this.#toClient.empty) this.#finishClient();
    else this.#endClient = true;
  }

  #finishClient(): void {
    this.#closed = true;
    this.#client.end();
    setTimeout(() => this.#client.terminate(), LINGER_MS).unref();
  }

  /** passes on client bytes as far as the order of responses allows */
  #pump(): void {
    const upstream = this.#upstream;
    if (!upstream || this.#closed) return; // still connecting: the bytes wait
    while (this.#pending.length > 0 && this.#toUpstream.empty && this.#mayForward()) {
      const buf = this.#pending[0]!;
      const end = this.#requests.feed(buf);
      const part = end < 0 ? buf : buf.subarray(0, end);
      if (end < 0 || end === buf.length) this.#pending.shift();
      else this.#pending[0] = buf.subarray(end);
      this.#pendingBytes -= part.length;
      if (end >= 0) this.#requestsSent++;
      this.#toUpstream.send(upstream, part);
    }
    // the client is read while Bun keeps up and the pipelined queue is within its bound
    if (!this.#toUpstream.empty || this.#pendingBytes > this.#max) this.#client.pause();
    else if (!this.#clientEnded) this.#client.resume();
    this.#maybeFinish();
  }

  /** the request in progress may always go on; a new one only once every earlier one is answered */
  #mayForward(): boolean {
    return this.#requests.opaque || !this.#requests.idle || this.#responsesDone >= this.#requestsSent;
  }

  /** a client that half-closed is closed once every request it sent is answered */
  #maybeFinish(): void {
    if (!this.#clientEnded || this.#closed || this.#pending.length > 0) return;
    if (this.#requests.opaque || this.#responses.opaque) return; // Bun answers and closes
    if (!this.#requests.idle) return this.clientGone(), this.#client.terminate(); // it ended mid-request
    if (this.#responsesDone >= this.#requestsSent && this.#toClient.empty) {
      this.#upstream?.terminate();
      this.#finishClient();
    }
  }
}
