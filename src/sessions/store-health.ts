// Whether the persistent store works. Every store operation runs through run(): a failure is
// logged, counted and makes the store "degraded" (generation goes on from RAM) instead of throwing;
// the store counts as healthy again once the operation that failed works (a full disk may still
// take a small meta record while the large KV blobs keep failing).
import { logEvent } from "../log.ts";

export class StoreHealth {
  readonly #where: string;
  /** why the store is not usable now (null: healthy) */
  degraded: string | null = null;
  errors = 0;
  /** called when `degraded` changes */
  onChange: (degraded: string | null) => void = () => {};
  /** the operation whose failure made the store degraded */
  #failedOp: string | null = null;

  readonly #timeoutMs: number;

  /** `timeoutMs`: an operation still pending after it fails (0: no limit) */
  constructor(where: string, timeoutMs = 0) {
    this.#where = where;
    this.#timeoutMs = timeoutMs;
  }

  /** f's result, or null when it failed. `op` names it ("get", "put kv", …). */
  async run<T>(op: string, f: () => Promise<T>): Promise<T | null> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const v = this.#timeoutMs <= 0 ? await f() : await Promise.race([f(), new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within SESSION_STORE_TIMEOUT_S (${this.#timeoutMs / 1000} s)`)), this.#timeoutMs);
      })]);
      if (this.#failedOp === null || this.#failedOp === op || !this.#failedOp.startsWith("put")) this.#set(null, null);
      return v;
    } catch (err) {
      this.errors++;
      const reason = `${op} on ${this.#where} failed: ${(err as Error).message}`;
      logEvent("error", "session_store_error", { op, reason });
      this.#set(reason, op);
      return null;
    } finally {
      clearTimeout(timer);
    }
  }

  #set(reason: string | null, op: string | null): void {
    this.#failedOp = op;
    if (this.degraded === reason) return;
    this.degraded = reason;
    this.onChange(reason);
  }
}
