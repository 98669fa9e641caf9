// The HTTP thread's handle on the engine worker: tickets, per-request callbacks, readiness.
import { SessionLeases } from "../cluster/leases.ts";
import { leasesEnabled, type Settings } from "../config.ts";
import { errorFields, logEvent } from "../log.ts";
import {
  busyError, type CachedSequenceInfo, type EngineStats, type ErrorInfo, type FinishReason, type FromEngine, type GenerationConfig, type ModelFacts,
  type PromptSpec, type SessionList, type SessionSource, type ToEngine, type TokenLogprob,
} from "./messages.ts";
import type { RequestHandlers, RequestObserver } from "./request-handlers.ts";

type Pending = { resolve: (v: unknown) => void };

interface Active {
  handlers: RequestHandlers;
  open: number;
  ids: string[];
  /** waiting for its leases: an abort that came meanwhile is sent right after the submit */
  leasing?: { aborted: boolean; delivered?: number[] };
}

export class EngineClient {
  readonly #worker: Worker;
  #nextTicket = 1;
  readonly #requests = new Map<number, Active>();
  readonly #calls = new Map<number, Pending>();
  /** request_id -> the ticket generating it; a second submit for it is answered 409 here */
  readonly active = new Map<string, number>();
  /**
   * ticket -> its leases (the token once granted) until both are known: the engine wrote what its
   * sessions became, and its stream ended (or was cut, written); a ticket without a stream has ended
   */
  readonly #leased = new Map<number, { token: string | null; written: boolean; ended: boolean }>();
  model: ModelFacts | null = null;
  #loadProgress: Float32Array | null = null;
  fatal: string | null = null;
  /** why the session store is unusable (generation goes on from RAM), null when it is fine */
  degraded: string | null = null;
  /** why the model cannot generate any more (non-finite logits), null while it can */
  broken: string | null = null;
  /** shutting down: new generations are refused with 503 */
  draining = false;
  observer: RequestObserver | null = null;
  /** session leases in the shared Redis store (null: one server, or SESSION_LEASE_TTL_S=0) */
  readonly leases: SessionLeases | null;
  #closed: Promise<{ written: number; failed: number } | null> | null = null;
  #closedResolve: (v: { written: number; failed: number } | null) => void = () => {};
  readonly ready: Promise<ModelFacts>;
  #readyResolve!: (model: ModelFacts) => void;
  #readyReject!: (err: Error) => void;

  /** `workerUrl`: the compiled binary names its embedded worker entry; otherwise the file beside this one. */
  constructor(settings: Settings, workerUrl = new URL("./worker.ts", import.meta.url).href) {
    this.#worker = new Worker(workerUrl);
    const { store, leaseTtlS, leaseWaitMs, replicaId } = settings.sessions;
    this.leases = leasesEnabled(settings) && typeof store === "object" ? new SessionLeases(store.redis, { owner: replicaId, ttlMs: leaseTtlS * 1000, waitMs: leaseWaitMs }) : null;
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
    this.#closedResolve(null);
    for (const { token } of this.#leased.values()) if (token) this.leases?.release(token);
    this.#leased.clear();
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

  /**
   * Starts a generation; returns its ticket. Handlers get accepted|error first, then text/done.
   * `hold`: a stream whose session may still be cut to what its client received: its leases also
   * wait for letGo(ticket) or cut(…, ticket).
   */
  submit(items: PromptSpec[], onlyNewTokens: boolean, config: GenerationConfig, handlers: RequestHandlers, hold = false): number {
    const ticket = this.#nextTicket++;
    if (this.draining) {
      this.observer?.failed(ticket, items.length, 503);
      handlers.error({ status: 503, code: "shutting_down", message: "the server is shutting down; retry on another replica or after the restart" });
      return ticket;
    }
    const busy = items.findIndex((i) => this.active.has(i.requestId));
    if (busy >= 0) {
      this.observer?.failed(ticket, items.length, 409);
      handlers.error(busyError(items[busy]!.requestId, items.length > 1 ? `prompts[${busy}].request_id` : "request_id"));
      return ticket; // never registered: abort(ticket) is a no-op
    }
    const ids = items.map((i) => i.requestId);
    for (const id of ids) this.active.set(id, ticket);
    const r: Active = { handlers, open: items.length, ids };
    this.#requests.set(ticket, r);
    this.observer?.submitted(ticket, items.length);
    const sessions = items.filter((i) => !i.ephemeral);
    if (!this.leases || sessions.length === 0) {
      this.#send({ type: "submit", ticket, items, onlyNewTokens, config });
      return ticket;
    }
    r.leasing = { aborted: false };
    this.#leased.set(ticket, { token: null, written: false, ended: !hold });
    void this.leases.acquire(sessions.map((i) => i.requestId)).then(({ token, grant }) => {
      const leasing = r.leasing!;
      r.leasing = undefined;
      const held = this.#leased.get(ticket);
      if (this.#requests.get(ticket) !== r || !held) return this.leases!.release(token); // the engine died meanwhile
      if (!grant.ok) {
        this.#leased.delete(ticket);
        this.#end(ticket);
        this.observer?.failed(ticket, items.length, 409);
        const id = sessions[grant.index]!.requestId;
        const at = items.indexOf(sessions[grant.index]!);
        return this.#safely(() => handlers.error(busyError(id, items.length > 1 ? `prompts[${at}].request_id` : "request_id", grant.holder)), "lease");
      }
      held.token = token;
      // a session another replica wrote since this one did: the engine forgets its own copy first
      const stale = new Set(sessions.filter((_, i) => grant.stale[i]));
      const marked = stale.size === 0 ? items : items.map((i) => (stale.has(i) ? { ...i, stale: true } : i));
      this.#send({ type: "submit", ticket, items: marked, onlyNewTokens, config });
      if (leasing.aborted) this.#send({ type: "abort", ticket, delivered: leasing.delivered });
    });
    return ticket;
  }

  /** `delivered[index]`: tokens of that item the client received (the session is cut there). */
  abort(ticket: number, delivered?: number[]): void {
    const r = this.#requests.get(ticket);
    if (!r) return;
    if (r.leasing) r.leasing = { aborted: true, delivered };
    else this.#send({ type: "abort", ticket, delivered });
  }

  /** Stops every generation in flight (the drain's deadline): what was generated stays cached. */
  abortAll(): void {
    for (const ticket of this.#requests.keys()) this.abort(ticket);
  }

  /** After a stream ended: its client received only part of it; the session keeps `length` of its `expect` tokens. */
  cut(requestId: string, length: number, expect: number, ticket?: number): void {
    this.#send({ type: "cut", requestId, length, expect, ticket });
  }

  /** A held stream ended with nothing to cut: its leases no longer wait for it. */
  letGo(ticket: number): void {
    this.#settled(ticket, "stream");
  }

  list(after: string, limit: number): Promise<SessionList> {
    return this.#call<SessionList>((ticket) => ({ type: "list", ticket, after, limit }));
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

  /**
   * Stops the engine: it writes every session's KV state to the store, then the worker ends.
   * Resolves with what was written (null if the worker did not answer within `timeoutMs`).
   */
  close(timeoutMs = 30_000): Promise<{ written: number; failed: number } | null> {
    if (this.#closed) return this.#closed;
    this.#closed = new Promise((resolve) => (this.#closedResolve = resolve));
    this.#send({ type: "shutdown" });
    const timer = setTimeout(() => this.#closedResolve(null), timeoutMs);
    timer.unref?.();
    void this.#closed.then(() => (clearTimeout(timer), this.#worker.terminate(), void this.leases?.close()));
    return this.#closed;
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
    this.#safely(() => this.#dispatch(msg), msg.type);
  }

  #safely(f: () => void, what: string): void {
    try {
      f();
    } catch (err) {
      logEvent("error", "handler_failed", { message_type: what, ...errorFields(err) }, "engine-client");
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
      case "accepted": return this.#requests.get(msg.ticket)?.handlers.accepted(msg.prefixes, msg.sessions);
      case "text":
        this.observer?.text(msg.ticket, msg.index);
        return this.#requests.get(msg.ticket)?.handlers.text(msg.index, msg.text, msg.delivered, msg.logprobs);
      case "started":
        this.observer?.started(msg.ticket, msg.index, msg.at);
        return this.#requests.get(msg.ticket)?.handlers.started?.(msg.index, msg.session, msg.promptTokens, msg.cached);
      case "listed": return this.#settle(msg.ticket, msg.list);
      case "health": this.degraded = msg.degraded; return;
      case "broken": this.broken = msg.message; return;
      case "closed": return this.#closedResolve({ written: msg.written, failed: msg.failed });
      case "settled": return this.#settled(msg.ticket, msg.of);
      case "done": {
        const r = this.#requests.get(msg.ticket);
        if (!r) return;
        this.observer?.done(msg.ticket, msg.index, msg.reason, msg.generated, msg.promptTokens);
        try {
          r.handlers.done(msg.index, msg.reason, msg.generated, msg.length, msg.promptTokens, msg.cached);
        } finally {
          if (--r.open === 0) this.#end(msg.ticket); // even if the handler threw: the request_id is free again
        }
        return;
      }
      case "error": {
        const r = this.#requests.get(msg.ticket);
        if (!r) return;
        this.#end(msg.ticket);
        this.observer?.failed(msg.ticket, r.ids.length, msg.error.status);
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

  /**
   * One of the two things a ticket's leases wait for is known (idempotent): once the engine wrote
   * what its sessions became and its stream is over, they go (another replica may continue them now).
   */
  #settled(ticket: number, what: "request" | "stream"): void {
    const held = this.#leased.get(ticket);
    if (!held) return;
    if (what === "request") held.written = true;
    else held.ended = true;
    if (!held.written || !held.ended || !held.token) return;
    this.#leased.delete(ticket);
    this.leases?.release(held.token);
  }

  #settle(ticket: number, value: unknown): void {
    this.#calls.get(ticket)?.resolve(value);
    this.#calls.delete(ticket);
  }
}
