// Polls GET <url>/health every <interval> ms from its own process (so the load generator's
// event loop does not distort it) until stdin closes; then prints {latenciesMs, failures} as JSON.
// Usage: bun bench/health-probe.ts http://127.0.0.1:PORT [intervalMs=10]
const url = process.argv[2];
const intervalMs = Number(process.argv[3] ?? 10);
if (!url) throw new Error("usage: bun bench/health-probe.ts URL [intervalMs]");

const latenciesMs: number[] = [];
let failures = 0;
let running = true;

void (async () => {
  for await (const _ of Bun.stdin.stream()) {
    // any input, or the end of stdin, stops the probe
    break;
  }
  running = false;
})();

while (running) {
  const t0 = performance.now();
  try {
    const r = await fetch(`${url}/health`);
    await r.arrayBuffer();
    if (r.status === 200) latenciesMs.push(performance.now() - t0);
    else failures++;
  } catch {
    failures++;
  }
  const wait = intervalMs - (performance.now() - t0);
  if (wait > 0) await Bun.sleep(wait);
}
process.stdout.write(JSON.stringify({ latenciesMs, failures }) + "\n");
process.exit(0);
export {};
