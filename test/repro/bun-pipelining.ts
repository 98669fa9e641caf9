// Minimal reproduction (Bun 1.4.5, not our code): Bun.serve closes a connection, answering
// nothing, when an HTTP/1.1 request is pipelined behind one whose handler is still pending (an
// async handler: reading the body, or any await). uWS denies "async pipelining" (HttpContext.h,
// HTTP_RESPONSE_PENDING: us_socket_close). Public reports: oven-sh/bun pull requests 32868, 33664,
// 35036, 38128 (none released in 1.4.5). Our handlers are async (bodies are read asynchronously),
// so the server's port is a small front by default (src/http/front/, PIPELINING=true) that hands
// Bun one request at a time per connection; test/pipelining.test.ts checks pipelined requests are
// all answered, in order.
//
//   bun test/repro/bun-pipelining.ts sync    # handler returns at once: both responses, in order
//   bun test/repro/bun-pipelining.ts async   # handler awaits: connection closed, zero responses
import { connect } from "node:net";

const mode = process.argv[2] ?? "async";
const server = Bun.serve({
  port: 0,
  async fetch(req) {
    if (mode === "async") await Bun.sleep(10);
    return new Response(`${req.method} ${new URL(req.url).pathname}\n`);
  },
});
const sock = connect({ host: "127.0.0.1", port: server.port! });
let got = "";
sock.on("connect", () => sock.write("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}GET /b HTTP/1.1\r\nHost: x\r\n\r\n"));
sock.on("data", (d) => (got += d));
const report = (how: string) => {
  const statuses = got.match(/HTTP\/1\.1 \d{3}/g) ?? [];
  console.log(`${mode}: ${statuses.length} response(s), connection ${how}`);
  server.stop(true);
  process.exit(0);
};
sock.on("close", () => report("closed by the server"));
setTimeout(() => report("still open"), 1000);
