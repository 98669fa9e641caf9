// Scale-out: replicas behind HAProxy (routing by request_id) sharing one Redis as their session
// store, every process started and stopped here. Two replicas run; a third slot is declared in
// HAProxy's configuration and started later. Greedy texts are compared with one uninterrupted
// server (in-process, same model and settings) doing the same turns.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { exampleConfig, kubernetesConfig } from "../src/cluster/haproxy-config.ts";
import { LocalCluster, type ReplicaProcess } from "../src/cluster/cluster.ts";
import { missingCommands } from "../src/cluster/processes.ts";
import { ensureModel } from "../src/gguf/models.ts";
import OpenAI from "openai";
import { startTestApp, type TestApp } from "./helpers/app.ts";

setDefaultTimeout(180_000);

const missing = missingCommands({ "redis-server": "redis-server", haproxy: "haproxy" });
const LEASE_TTL_S = 2;
const SETTINGS = { PARALLEL: "4", CTX_SIZE: "2048", THREADS: "1", SESSION_LEASE_TTL_S: String(LEASE_TTL_S), SHUTDOWN_GRACE_S: "60" };

let cluster: LocalCluster;
let reference: TestApp;

beforeAll(async () => {
  if (missing.length > 0) return;
  const model = await ensureModel("tiny");
  const env = { MODEL_PATH: model, LLM_LIB_PATH: join(import.meta.dir, "../native/build/libllmshim.so"), ...SETTINGS };
  [cluster, reference] = await Promise.all([
    LocalCluster.start({ replicas: 2, slots: 3, env, checkIntervalMs: 500 }),
    startTestApp({ ...SETTINGS, SESSION_STORE: "off" }),
  ]);
});

afterAll(async () => {
  await Promise.all([cluster?.stop(), reference?.close()]);
});

interface Answer {
  status: number;
  text: string;
  replica: string | null;
  session: string | null;
}

const body = (id: string, prompt: string, n: number, stream = false) =>
  JSON.stringify({ request_id: id, prompt, stream_response: stream, generation_config: { do_sample: false, max_new_tokens: n } });

async function gen(base: string, id: string, prompt: string, n = 8): Promise<Answer> {
  const r = await fetch(`${base}/api/generate-one`, { method: "POST", body: body(id, prompt, n) });
  return { status: r.status, text: await r.text(), replica: r.headers.get("x-replica"), session: r.headers.get("x-session") };
}

const idsOn = (replica: string, count: number, tag: string) => cluster.idsOn(replica, count, tag);

/** A long greedy stream through `base`, started: resolves once its first text arrived. */
async function startStream(base: string, id: string, n: number) {
  const r = await fetch(`${base}/api/generate-one`, { method: "POST", body: body(id, "Once upon a time", n, true) });
  expect(r.status).toBe(200);
  const reader = r.body!.getReader();
  let text = new TextDecoder().decode((await reader.read()).value);
  const rest = (async () => {
    for (;;) {
      const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
      if (done) return text;
      text += new TextDecoder().decode(value);
    }
  })();
  return { replica: r.headers.get("x-replica")!, rest };
}

const TURNS = ["The quick brown fox", " jumps over", ""];

describe("deployment files", () => {
  const configs = [["../deploy/haproxy.cfg", exampleConfig], ["../deploy/k8s/haproxy.cfg", kubernetesConfig]] as const;
  test("deploy/haproxy.cfg and deploy/k8s/haproxy.cfg are the generator's output", () => {
    for (const [path, make] of configs) expect(readFileSync(join(import.meta.dir, path), "utf8")).toBe(make());
  });

  test.skipIf(!Bun.which("haproxy"))("HAProxy accepts both configurations (haproxy -c)", () => {
    for (const [path] of configs) {
      const r = Bun.spawnSync(["haproxy", "-c", "-f", join(import.meta.dir, path)]);
      expect(r.stdout.toString() + r.stderr.toString()).toContain("Configuration file is valid");
    }
  });

  test("the Kubernetes manifests parse, and the replicas' settings are real settings", () => {
    const dir = join(import.meta.dir, "../deploy/k8s");
    const kustomization = Bun.YAML.parse(readFileSync(join(dir, "kustomization.yaml"), "utf8")) as { resources: string[] };
    const docs = kustomization.resources.flatMap((f) => {
      const parsed = Bun.YAML.parse(readFileSync(join(dir, f), "utf8"));
      return (Array.isArray(parsed) ? parsed : [parsed]) as { kind: string; metadata: { name: string }; spec?: any }[];
    });
    expect(docs.map((d) => `${d.kind}/${d.metadata.name}`).sort()).toEqual(
      ["Deployment/haproxy", "Namespace/llm", "Service/llm", "Service/llm-replicas", "Service/redis", "StatefulSet/llm", "StatefulSet/redis"],
    );
    const server = docs.find((d) => d.kind === "StatefulSet" && d.metadata.name === "llm")!.spec.template.spec.containers[0];
    const documented = readFileSync(join(import.meta.dir, "../.env.example"), "utf8");
    for (const e of server.env as { name: string }[]) expect(documented).toMatch(new RegExp(`^${e.name}=`, "m"));
  });

  test("bun run cluster names the missing package and exits 1", () => {
    const bin = mkdtempSync(join(tmpdir(), "only-bun-"));
    symlinkSync(process.execPath, join(bin, "bun"));
    const r = Bun.spawnSync([process.execPath, join(import.meta.dir, "../scripts/cluster.ts"), "--replicas", "2"], { env: { ...process.env, PATH: bin } });
    rmSync(bin, { recursive: true, force: true });
    expect(r.exitCode).toBe(1);
    expect(r.stderr.toString()).toContain("missing redis-server and haproxy: install with `apt-get install -y redis-server haproxy`");
  });
});

describe.skipIf(missing.length > 0)(`cluster (2 replicas, HAProxy, Redis)${missing.length ? `: needs ${missing.join(", ")}` : ""}`, () => {
  test("the same request_id keeps landing on one replica; ids spread over both; each response names its replica", async () => {
    const seen = new Map<string, Set<string>>();
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 12; i++) {
        const a = await gen(cluster.front, `sticky-${i}`, round === 0 ? `Hello number ${i}` : " more", 4);
        expect(a.status).toBe(200);
        expect(a.session).toBe(round === 0 ? "new" : "continued"); // never moved, so never restored
        (seen.get(`sticky-${i}`) ?? seen.set(`sticky-${i}`, new Set()).get(`sticky-${i}`)!).add(a.replica!);
      }
    }
    for (const replicas of seen.values()) expect(replicas.size).toBe(1);
    const used = new Set([...seen.values()].flatMap((s) => [...s]));
    expect([...used].sort()).toEqual(["r1", "r2"]);
    // /v1 routes by the body's request_id, or by x-session-id (the replicas' SESSION_HEADER) without one
    const v1 = await fetch(`${cluster.front}/v1/completions`, {
      method: "POST", headers: { "x-session-id": "sticky-3" }, body: JSON.stringify({ prompt: " and", max_tokens: 2, temperature: 0 }),
    });
    expect(v1.status).toBe(200);
    expect(v1.headers.get("x-replica")).toBe([...seen.get("sticky-3")!][0]!);
    await v1.text();
    // a batch goes where its first prompt's session is
    for (const id of ["sticky-4", "sticky-7"]) {
      const batch = await fetch(`${cluster.front}/api/generate-batch`, {
        method: "POST", body: JSON.stringify({ prompts: [{ request_id: id, prompt: " again" }], generation_config: { do_sample: false, max_new_tokens: 2 } }),
      });
      expect(batch.status).toBe(200);
      expect(batch.headers.get("x-replica")).toBe([...seen.get(id)!][0]!);
      await batch.text();
    }
  });

  test("beam-search turns, continued on another replica, continue from the winning beam's KV state", async () => {
    // the winner's slot may be one a copy was queued into at the last step: its state must include it
    const ids = await idsOn("r1", 6, "beams");
    for (const [i, id] of ids.entries()) {
      const beams = { do_sample: false, num_beams: 2 + (i % 3), max_new_tokens: 6 + i };
      const prompt = ["The quick brown fox", "Once upon a time", "In the beginning", "Hello", "A B C", "Numbers: 1 2 3"][i]!;
      const want = [await reference.generate(id, prompt, beams), await reference.generate(id, " and then", { max_new_tokens: 8 })];
      const first = await fetch(`${cluster.front}/api/generate-one`, {
        method: "POST", body: JSON.stringify({ request_id: id, prompt, stream_response: false, generation_config: beams }),
      });
      const text = await first.text();
      expect(first.headers.get("x-replica")).toBe("r1");
      const second = await gen(cluster.replicas.get("r2")!.url, id, " and then", 8);
      expect(second.session).toBe("restored");
      expect([text, second.text]).toEqual(want);
    }
  });

  test("a request_id generating on one replica is refused with 409 by the other, which continues it once it is free", async () => {
    const [id] = await idsOn("r1", 1, "lease");
    const stream = await startStream(cluster.front, id!, 500);
    expect(stream.replica).toBe("r1");
    const other = await gen(cluster.replicas.get("r2")!.url, id!, " more", 4);
    expect(other.status).toBe(409);
    const err = JSON.parse(other.text).error;
    expect(err.code).toBe("busy");
    expect(err.field).toBe("request_id");
    expect(err.message).toContain("on replica r1");
    expect((await gen(cluster.replicas.get("r1")!.url, id!, " more", 4)).status).toBe(409); // the holder itself, as one server
    const metrics = await (await fetch(`${cluster.replicas.get("r2")!.url}/metrics`)).text();
    expect(Number(/llm_server:session_lease_events_total\{event="conflicts"\} (\d+)/.exec(metrics)?.[1])).toBeGreaterThanOrEqual(1);
    await stream.rest;
    const after = await gen(cluster.replicas.get("r2")!.url, id!, " more", 4);
    expect(after.status).toBe(200);
    expect(after.session).toBe("restored"); // its KV state came from Redis
  });

  test("a session continued elsewhere and back continues from its newest version; a delete on another replica reaches the holder's copy", async () => {
    const [id, gone] = await idsOn("r1", 2, "moved");
    const prompts = ["The quick brown fox", " jumps over", " the lazy", " dog"];
    const want: string[] = [];
    for (const p of prompts) want.push(await reference.generate(id!, p, { max_new_tokens: 6 }));
    const r2 = cluster.replicas.get("r2")!.url;
    const got = [await gen(cluster.front, id!, prompts[0]!, 6), await gen(cluster.front, id!, prompts[1]!, 6), await gen(r2, id!, prompts[2]!, 6), await gen(cluster.front, id!, prompts[3]!, 6)];
    expect(got.map((a) => [a.replica, a.session])).toEqual([["r1", "new"], ["r1", "continued"], ["r2", "restored"], ["r1", "restored"]]);
    expect(got.map((a) => a.text)).toEqual(want);

    expect((await gen(cluster.front, gone!, "Remember this", 4)).replica).toBe("r1");
    expect((await fetch(`${r2}/api/cache/${gone}`, { method: "DELETE" })).status).toBe(200);
    const again = await gen(cluster.front, gone!, "", 4); // r1 still had it in its KV cache
    expect(again.status).toBe(422);
    expect(JSON.parse(again.text).error.message).toContain("has no session to continue");
  });

  test("a Responses conversation's turns land on one replica (HAProxy hashes the conversation part of previous_response_id) and continue its session there", async () => {
    const client = new OpenAI({ baseURL: `${cluster.front}/v1`, apiKey: "unused", maxRetries: 0 });
    const replicas: (string | null)[] = [];
    const sessions: (string | null)[] = [];
    let previous: string | undefined;
    for (const input of ["One", "Two", "Three", "Four"]) {
      const { data, response } = await client.responses
        .create({ model: "m", input, temperature: 0, max_output_tokens: 4, ...(previous ? { previous_response_id: previous } : {}) })
        .withResponse();
      if (previous) expect(data.id.slice(0, 37)).toBe(previous.slice(0, 37)); // resp_ + the conversation's 32 hex
      replicas.push(response.headers.get("x-replica"));
      sessions.push(response.headers.get("x-session"));
      previous = data.id;
    }
    expect(new Set(replicas.slice(1)).size).toBe(1);
    // turn 2 may have moved it from the least-loaded replica that took turn 1 (restored from Redis)
    expect(sessions.slice(2)).toEqual(["continued", "continued"]);
  });

  let r1Ids: string[] = [];
  test("kill -9 of the replica holding a session: continued through HAProxy, the text is exactly the uninterrupted server's; its lease on a running id expires", async () => {
    r1Ids = await idsOn("r1", 2, "failover");
    const [held, running] = r1Ids as [string, string];
    const want: string[] = [];
    for (const p of TURNS) want.push(await reference.generate(held, p, { max_new_tokens: 8 }));
    const got: Answer[] = [];
    for (const p of TURNS.slice(0, 2)) got.push(await gen(cluster.front, held, p));
    expect(got.map((a) => a.replica)).toEqual(["r1", "r1"]);
    const stream = await startStream(cluster.front, running, 1500);
    expect(stream.replica).toBe("r1");
    // a Responses conversation on r1, through the official SDK: two turns there, the third after the crash
    const sdk = (base: string) => new OpenAI({ baseURL: `${base}/v1`, apiKey: "unused", maxRetries: 0 });
    const turn = (input: string, previous?: string) => ({ model: "m", input, temperature: 0, max_output_tokens: 6, ...(previous ? { previous_response_id: previous } : {}) });
    const onR1 = sdk(cluster.replicas.get("r1")!.url);
    const t1 = await onR1.responses.create(turn("Tell me a story"));
    const t2 = await onR1.responses.create(turn("Go on", t1.id));
    const ref1 = (await (await reference.post("/v1/responses", turn("Tell me a story"))).json()) as { id: string; output_text: string };
    const ref2 = (await (await reference.post("/v1/responses", turn("Go on", ref1.id))).json()) as { id: string; output_text: string };
    const ref3 = (await (await reference.post("/v1/responses", turn("And then?", ref2.id))).json()) as { id: string; output_text: string };
    expect([t1.output_text, t2.output_text]).toEqual([ref1.output_text, ref2.output_text]);

    const r1 = cluster.replicas.get("r1")!;
    r1.kill();
    await r1.exited;
    const { data: t3, response: raw } = await sdk(cluster.front).responses.create(turn("And then?", t2.id)).withResponse();
    expect(raw.headers.get("x-replica")).toBe("r2");
    expect(raw.headers.get("x-session")).toBe("restored");
    expect(t3.output_text).toBe(ref3.output_text);
    expect(t3.usage!.input_tokens_details.cached_tokens).toBeGreaterThanOrEqual(t2.usage!.input_tokens);
    const third = await gen(cluster.front, held, TURNS[2]!);
    expect(third.status).toBe(200);
    expect(third.replica).toBe("r2");
    expect(third.session).toBe("restored");
    expect([...got.map((a) => a.text), third.text]).toEqual(want);
    await stream.rest; // cut by the crash

    // the crashed replica's lease on `running` holds for at most SESSION_LEASE_TTL_S
    const t0 = Date.now();
    const first = await gen(cluster.front, running, " again", 4);
    expect(first.status).toBe(409);
    expect(JSON.parse(first.text).error.message).toContain("on replica r1");
    let a = first;
    while (a.status === 409 && Date.now() - t0 < (LEASE_TTL_S + 5) * 1000) {
      await Bun.sleep(100);
      a = await gen(cluster.front, running, " again", 4);
    }
    expect(a.status).toBe(200);
    expect(a.replica).toBe("r2");
    expect(Date.now() - t0).toBeLessThan((LEASE_TTL_S + 2) * 1000);
  });

  test("a replica added later takes over about half of the ids and restores them from Redis", async () => {
    // r1 is gone: r2 holds every session; then r3 (a declared slot) starts and joins
    const ids = Array.from({ length: 40 }, (_, i) => `scale-${i}`);
    const texts = new Map<string, string[]>();
    for (const id of ids) {
      const a = await gen(cluster.front, id, `Session ${id} says`, 4);
      expect(a.replica).toBe("r2");
      texts.set(id, [a.text]);
    }
    await cluster.startSlot("r3");
    await cluster.waitRouted(["r3"]);
    const moved: string[] = [];
    for (const id of ids) {
      const a = await gen(cluster.front, id, " then", 4);
      expect(a.status).toBe(200);
      // r3 restores from Redis; r2 holds its sessions (40 > PARALLEL slots: some from its RAM tier)
      expect(a.replica === "r3" ? ["restored"] : ["continued", "restored"]).toContain(a.session!);
      texts.get(id)!.push(a.text);
      if (a.replica === "r3") moved.push(id);
    }
    expect(moved.length).toBeGreaterThanOrEqual(8); // consistent hashing: about half of 40
    expect(moved.length).toBeLessThanOrEqual(32);
    const stats = (await (await fetch(`${cluster.replicas.get("r3")!.url}/api/stats`)).json()) as { sessions: { restoredFromStore: number } };
    expect(stats.sessions.restoredFromStore).toBe(moved.length);
    // a moved session's texts are the uninterrupted server's
    for (const id of moved.slice(0, 3)) {
      const want = [await reference.generate(id, `Session ${id} says`, { max_new_tokens: 4 }), await reference.generate(id, " then", { max_new_tokens: 4 })];
      expect(texts.get(id)).toEqual(want);
    }
  });

  test("a SIGTERMed replica finishes its in-flight stream while new requests go to the other", async () => {
    const [streamId, ...others] = await idsOn("r3", 4, "drain");
    const r3 = cluster.replicas.get("r3")! as ReplicaProcess;
    const want = await reference.generate(streamId!, "Once upon a time", { max_new_tokens: 600 });
    const stream = await startStream(cluster.front, streamId!, 600);
    expect(stream.replica).toBe("r3");
    r3.proc.kill("SIGTERM");
    await Bun.sleep(50);
    for (const id of others) {
      const a = await gen(cluster.front, id, "Hello", 4);
      expect(a.status).toBe(200);
      expect(a.replica).toBe("r2");
    }
    expect(await stream.rest).toBe(want); // every token, as one uninterrupted server
    expect(await r3.exited).toBe(0);
  });
});
