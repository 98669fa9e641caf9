// One Redis connection (Bun's built-in client) with a deadline on every operation. Shared by the
// session store (engine thread) and the session leases (HTTP thread); each thread has its own.
import { RedisClient } from "bun";

/** The URL without its user name and password, for logs. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^@/]*@/i, "$1");
}

export class RedisConnection {
  readonly description: string;
  readonly #url: string;
  readonly timeoutMs: number;
  #client: RedisClient | null = null;
  #connecting: Promise<RedisClient> | null = null;
  #closed = false;

  constructor(url: string, timeoutMs: number) {
    this.#url = url;
    this.timeoutMs = timeoutMs;
    this.description = redactUrl(url);
  }

  // Reconnection is ours, not the client's: its own retries give up for good after maxRetries, and
  // its offline queue would run a command we already reported as failed. So commands fail at once
  // while disconnected, and the next operation dials again.
  #connect(): Promise<RedisClient> {
    if (this.#closed) return Promise.reject(new Error(`${this.description} is closed`));
    const c = this.#client;
    if (c?.connected) return Promise.resolve(c);
    if (this.#connecting) return this.#connecting;
    c?.close();
    const client = new RedisClient(this.#url, {
      connectionTimeout: this.timeoutMs,
      autoReconnect: false,
      enableOfflineQueue: false,
    });
    this.#client = client;
    const p = client.connect().then(
      () => client,
      (e) => {
        client.close();
        throw e;
      },
    );
    this.#connecting = p;
    const done = () => {
      if (this.#connecting === p) this.#connecting = null;
    };
    p.then(done, done);
    return p;
  }

  /** Runs `op` on a connected client within the deadline; a timed-out client is dropped (it may be wedged). */
  async run<T>(what: string, op: (c: RedisClient) => Promise<T>): Promise<T> {
    let timer: Timer | undefined;
    const work = this.#connect().then(op);
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        work.catch(() => {});
        const c = this.#client;
        this.#client = null;
        this.#connecting = null;
        c?.close();
        reject(Object.assign(new Error(`${this.description}: ${what} timed out after ${this.timeoutMs} ms`), { code: "ETIMEDOUT" }));
      }, this.timeoutMs);
    });
    try {
      return await Promise.race([work, deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** EVAL of a Lua script (`keys` then `args`); Uint8Array arguments go through as raw bulk strings. */
  eval(what: string, script: string, keys: string[], args: (string | Uint8Array)[]): Promise<unknown> {
    // send() is typed string[] but passes Uint8Array arguments through unchanged
    return this.run(what, (c) => c.send("EVAL", [script, String(keys.length), ...keys, ...args] as string[]));
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#client?.close();
    this.#client = null;
    this.#connecting = null;
  }
}
