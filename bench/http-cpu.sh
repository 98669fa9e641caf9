#!/usr/bin/env bash
# `bash bench/http-cpu.sh [SETTING=value ...]`: CPU time of our server's HTTP thread per streamed
# token (8 concurrent /v1/chat/completions streams x 32 tokens, 4 rounds, curl clients; bench model,
# 2 threads, 8 slots). Settings go to the server, e.g. PIPELINING=false. Needs the bench model
# (any `bun bench/openai.ts` run makes it) and the native library.
set -euo pipefail
cd "$(dirname "$0")/.."
model=$(ls ~/.cache/bun-llm-server/models/bench-*.gguf | head -1)
port=$((20000 + RANDOM % 20000))
env "$@" MODEL_PATH="$model" PORT=$port HOST=127.0.0.1 THREADS=2 THREADS_BATCH=2 PARALLEL=8 CTX_SIZE=2048 SESSION_STORE=off \
  LLM_LIB_PATH="$PWD/native/build/libllmshim.so" bun scripts/serve.ts >/dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do curl -sf "localhost:$port/health" >/dev/null && break; sleep 1; done
cpu() { awk '{print $1}' "/proc/$server/task/$server/schedstat"; } # the main (HTTP) thread, ns
c0=$(cpu)
for r in 1 2 3 4; do
  pids=()
  for i in $(seq 1 8); do
    curl -sN "localhost:$port/v1/chat/completions" -H 'content-type: application/json' \
      -d "{\"model\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":\"Question $r$i: what is a library for?\"}],\"max_tokens\":32,\"temperature\":0,\"stream\":true}" >/dev/null &
    pids+=($!)
  done
  wait "${pids[@]}"
done
c1=$(cpu)
echo "HTTP thread CPU per streamed token: $(( (c1 - c0) / 1000 / (4 * 8 * 32) )) us ($*)"
