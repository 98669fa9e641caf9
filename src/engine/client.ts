// The HTTP thread's handle on the engine worker: tickets, per-request callbacks, readiness.
import type { Settings } from "../config.ts";
import { busyError, type CachedSequenceInfo, type EngineStats, type ErrorInfo, type FinishReason, type FromEngine, type GenerationConfig, type ModelFacts, type PromptSpec, type ToEngine } from "./messages.ts";

export interface RequestHandlers {
  accepted(prefixes: string[]): void;
  text(index: number, text: string): void;
  done(index: number, reason: FinishReason, generated: number): void;
  error(error: ErrorInfo): void;
}

type Pending = { resolve: (v: unknown) => void };

export class EngineClient {
  readonly #worker: Worker;
  #nextTicket = 1;
  readonly #requests = new Map<number, { handlers: RequestHandlers; open: number; ids: string[] }>();
  readonly #calls = new Map<number, Pending>();
  /** request_id -> the ticket generating it; a second submit for it is answered 409 here */
  readonly active = new Map<string, number>();
  model: ModelFacts | null = null;
  #loadProgress: Float32Array | null = null;
  fatal: string | null = null;
  readonly ready: Promise<ModelFacts>;
  #readyResolve!: (model: ModelFacts) => void;
  #readyReject!: (err: Error) => void;

  /** `workerUrl`: the compiled binary names its embedded worker entry; otherwise the file beside this one. */
  constructor(settings: Settings, workerUrl = new URL("./worker.ts", import.meta.url).href) {
    this.#worker = new Worker(workerUrl);
    this.ready = new Promise((resolve, reject) => ((this.#readyResolve = resolve), (this.#readyReject = reject)));
    this.#worker.onmessage = (ev: MessageEvent<FromEngine[]>) => {
      for (const msg of ev.data) this.#safeDispatch(msg);
    };
    this.#worker.onerror = (ev) => this.#die(ev.message || "engine worker crashed");
    this.ready.catch(() => {});
    this.#send({ type: "init", settings });
  }

  /** The engine is gone: fail everything in flight (nothing may hang) and report unhealthy. */
  #die(message: string): void {
    this.fatal = message;
    this.model = null;
    this.#readyReject(new Error(message));
    for (const [, r] of this.#requests) r.handlers.error({ status: 500, code: "engine_crashed", message });
    this.#requests.clear();
    this.active.clear();
    for (const [, c] of this.#calls) c.resolve(null);
    this.#calls.clear();
  }

  /** 0..1 while the model loads (read from memory shared with the worker) */
  get loadProgress(): number {
    return this.#loadProgress?.[0] ?? 0;
  }

  get inFlight(): number {
    return this.#requests.size;
  }

  /** Starts a generation; returns its ticket. Handlers get accepted|error first, then text/done. */
  submit(items: PromptSpec[], onlyNewTokens: boolean, config: GenerationConfig, handlers: RequestHandlers): number {
    const ticket = this.#nextTicket++;
    const busy = items.findIndex((i) => this.active.has(i.requestId));
    if (busy >= 0) {
      handlers.error(busyError(items[busy]!.requestId, items.length > 1 ? `prompts[${busy}].request_id` : "request_id"));
      return ticket; // never registered: abort(ticket) is a no-op
    }
    const ids = items.map((i) => i.requestId);
    for (const id of ids) this.active.set(id, ticket);
    this.#requests.set(ticket, { handlers, open: items.length, ids });
    this.#send({ type: "submit", ticket, items, onlyNewTokens, config });
    return ticket;
  }

  abort(ticket: number): void {
    if (this.#requests.has(ticket)) this.#send({ type: "abort", ticket });
  }

  drop(requestId: string): Promise<boolean> {
    return this.#call<boolean>((ticket) => ({ type: "drop", ticket, requestId }));
  }

  describe(requestId: string): Promise<CachedSequenceInfo | null> {
    return this.#call<CachedSequenceInfo | null>((ticket) => ({ type: "describe", ticket, requestId }));
  }

  stats(): Promise<EngineStats> {
    return this.#call<EngineStats>((ticket) => ({ type: "stats", ticket }));
  }

  close(): void {
    this.#send({ type: "shutdown" });
    setTimeout(() => this.#worker.terminate(), 200).unref?.();
  }

  #call<T>(make: (ticket: number) => ToEngine): Promise<T> {
    const ticket = this.#nextTicket++;
    return new Promise<T>((resolve) => {
      this.#calls.set(ticket, { resolve: resolve as (v: unknown) => void });
      this.#send(make(ticket));
    });
  }

  #send(msg: ToEngine): void {
    this.#worker.postMessage(msg);
  }

  /** A failing request handler (e.g. a stream the client closed) must never disturb the others. */
  #safeDispatch(msg: FromEngine): void {
    try {
      this.#dispatch(msg);
    } catch (err) {
      console.error(`[engine-client] handler for ${msg.type} failed:`, err);
    }
  }

  #dispatch(msg: FromEngine): void {
    switch (msg.type) {
      case "loading": this.#loadProgress = msg.progress; return;
      case "ready": this.model = msg.model; return this.#readyResolve(msg.model);
      case "fatal": return this.#die(msg.message);
      case "dropped": return this.#settle(msg.ticket, msg.found);
      case "described": return this.#settle(msg.ticket, msg.info);
      case "stats": return this.#settle(msg.ticket, msg.stats);
      case "accepted": return this.#requests.get(msg.ticket)?.handlers.accepted(msg.prefixes);
      case "text": return this.#requests.get(msg.ticket)?.handlers.text(msg.index, msg.text);
      case "done": {
        const r = this.#requests.get(msg.ticket);
        if (!r) return;
        r.handlers.done(msg.index, msg.reason, msg.generated);
        if (--r.open === 0) this.#end(msg.ticket);
        return;
      }
      case "error": {
        const r = this.#requests.get(msg.ticket);
        if (!r) return;
        this.#end(msg.ticket);
        r.handlers.error(msg.error);
        return;
      }
      default: {
        const never: never = msg;
        throw new Error(`unknown engine message ${JSON.stringify(never)}`);
      }
    }
  }

  #end(ticket: number): void {
    const r = this.#requests.get(ticket);
    if (!r) return;
    this.#requests.delete(ticket);
    for (const id of r.ids) if (this.active.get(id) === ticket) this.active.delete(id);
  }

  #settle(ticket: number, value: unknown): void {
    this.#calls.get(ticket)?.resolve(value);
    this.#calls.delete(ticket);
  }
}
