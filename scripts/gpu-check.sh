#!/usr/bin/env bash
# The GPU check in one go, for a 16-core H100 host, in about 9 minutes (GPU_CHECK_BUDGET_S, default
# 540; every step runs under `timeout` and a short step is skipped rather than started late):
#   1. the CUDA library (build-native.sh with GGML_CUDA=1, JOBS=nproc, the GPU's own architecture
#      from nvidia-smi) and the CPU library beside it,
#   2. llama-server and llama-batched-bench from the same source with CUDA,
#   3. which library loads and whether it offloads (nativeInfo),
#   4. bun test on parity, the seed API, sessions and /v1 with GPU_LAYERS=999 and LLM_BACKEND=cuda
#      (no silent fallback to the CPU library),
#   5. `bun run bench --quick` against the CUDA llama-server with FLASH_ATTN=0, then FLASH_ATTN=1
#      (ours takes FLASH_ATTN; llama-server keeps its default, -fa auto),
# then prints one table (also written to $GPU_CHECK_OUT/gpu-check.md with the logs).
# With GGML_CUDA=0 (or no GPU) it runs the same steps on the CPU, skipping only the GPU ones.
#
# Usage: scripts/gpu-check.sh           run the check
#        scripts/gpu-check.sh --pack    here (with network): write .gpu-check/ with what a host with
#                                       no network lacks: bun, node_modules, the llama.cpp source
#                                       (about 55 MB); the check unpacks it when it is there
# Env:   GGML_CUDA=0|1        force the backend (default: CUDA when nvidia-smi lists a GPU)
#        GPU_CHECK_TESTS      test files (default: test/parity*.ts test/api.test.ts test/sessions*.test.ts test/openai.test.ts)
#        GPU_CHECK_BENCH=0    skip the benchmark; GPU_CHECK_BENCH_S: seconds for each of its two runs (150)
#        GPU_CHECK_BUDGET_S   the whole check's seconds (540)
#        GPU_CHECK_OUT        logs and the table (default: a new /tmp dir; where the device tool's $OUT is
#                             set, gpu-check.md and gpu-check-logs.tgz are copied there)
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PACK="$ROOT/.gpu-check"
CACHE="${LLM_CACHE_DIR:-$HOME/.cache/bun-llm-server}"
say() { echo "[gpu-check $(( SECONDS ))s] $*" >&2; }

# ---- --pack: bun, node_modules and the llama.cpp source for a machine with no network -------------
if [[ "${1:-}" == "--pack" ]]; then
  set -e
  mkdir -p "$PACK"
  exclude="$(git rev-parse --git-path info/exclude)"   # kept out of git; the device tool's carry takes it along
  grep -qs '^/.gpu-check/' "$exclude" || echo "/.gpu-check/" >>"$exclude"
  src="$(GGML_CUDA=0 bash build-native.sh 2>&1 >/dev/null | sed -n 's/.*llama.cpp source: \(.*\) (node-llama-cpp.*/\1/p' | head -1)"
  [[ -n "$src" && -f "$src/include/llama.h" ]] || { echo "build-native.sh named no llama.cpp source" >&2; exit 1; }
  commit="$(git -C "$src" rev-parse --short=12 HEAD 2>/dev/null || cat "$src/.commit")"
  rel="${src#"$CACHE"/}"
  [[ "$rel" != "$src" ]] || { echo "$src is not under $CACHE" >&2; exit 1; }
  echo "$commit" >"$src/.commit"
  # the source without git history, docs and other models' vocabularies (the tests use these three)
  skip=(--exclude="$rel/.git" --exclude="$rel/docs" --exclude="$rel/media")
  for f in "$src"/models/ggml-vocab-*; do
    case "$(basename "$f")" in ggml-vocab-llama-spm.gguf | ggml-vocab-llama-bpe.gguf | ggml-vocab-gpt-2.gguf) ;; *) skip+=(--exclude="$rel/models/$(basename "$f")") ;; esac
  done
  tar -C "$CACHE" "${skip[@]}" -cf - "$rel" | xz -T0 -6 >"$PACK/llama-src.tar.xz"
  # node_modules without what only the type checker and the browser tests need
  tar --exclude=node_modules/typescript --exclude=node_modules/playwright-core --exclude=node_modules/bun-types \
    --exclude=node_modules/@types -cf - node_modules | xz -T0 -6 >"$PACK/node_modules.tar.xz"
  xz -T0 -6 -c "$(readlink -f "$(command -v bun)")" >"$PACK/bun.xz"
  du -ch "$PACK"/*.xz >&2
  echo "carry .gpu-check; run: bash scripts/gpu-check.sh" >&2
  exit 0
fi

START=$SECONDS
BUDGET="${GPU_CHECK_BUDGET_S:-540}"
# the device tool brings back at most 8 files from $OUT: there, the table and one archive of the logs
RES="${GPU_CHECK_OUT:-$(mktemp -d /tmp/gpu-check.XXXXXX)}"
mkdir -p "$RES"
left() { echo $(( BUDGET - (SECONDS - START) )); }
STATUS=()   # "step | result | seconds" rows for the summary
# step NAME CAP RESERVE CMD...: runs CMD under timeout min(CAP, time left - RESERVE); its output goes to $RES/NAME.log
step() {
  local name="$1" cap="$2" reserve="$3"; shift 3
  local t; t=$(( $(left) - reserve )); (( t > cap )) && t=$cap
  if (( t < 15 )); then STATUS+=("$name | skipped: out of time | 0"); say "$name: skipped (out of time)"; return 1; fi
  say "$name (up to ${t}s)"
  local s=$SECONDS rc=0
  timeout --kill-after=10 "$t" "$@" >"$RES/$name.log" 2>&1 || rc=$?
  local why="ok"
  if (( rc == 124 || rc == 137 )); then why="TIMED OUT after ${t}s"; elif (( rc != 0 )); then why="FAILED (exit $rc)"; fi
  STATUS+=("$name | $why | $(( SECONDS - s ))")
  say "$name: $why in $(( SECONDS - s ))s (log: $RES/$name.log)"
  (( rc == 0 )) || tail -15 "$RES/$name.log" >&2
  return $rc
}
unxz_to() { # file.xz -> stdout (xz, or Python's lzma where xz is missing)
  if command -v xz >/dev/null 2>&1; then xz -dc "$1"; else python3 -c 'import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), sys.stdout.buffer)' "$1"; fi
}

# ---- 0. what a machine with no network lacks, from .gpu-check/ (--pack) ----------------------------
if [[ -d "$PACK" ]]; then
  if ! command -v bun >/dev/null 2>&1 && [[ -f "$PACK/bun.xz" ]]; then
    mkdir -p /tmp/gpu-check-bin && unxz_to "$PACK/bun.xz" >/tmp/gpu-check-bin/bun && chmod +x /tmp/gpu-check-bin/bun
    export PATH="/tmp/gpu-check-bin:$PATH"; say "bun from .gpu-check ($(bun --version))"
  fi
  if [[ ! -d node_modules && -f "$PACK/node_modules.tar.xz" ]]; then unxz_to "$PACK/node_modules.tar.xz" | tar -x; say "node_modules from .gpu-check"; fi
  if [[ -f "$PACK/llama-src.tar.xz" ]]; then
    mkdir -p "$CACHE"; rel="$(unxz_to "$PACK/llama-src.tar.xz" | tar -t | head -1)"; rel="${rel%%/llama.cpp*}/llama.cpp"
    [[ -f "$CACHE/$rel/include/llama.h" ]] || { unxz_to "$PACK/llama-src.tar.xz" | tar -x -C "$CACHE"; say "llama.cpp source from .gpu-check into $CACHE/$rel"; }
  fi
fi
command -v bun >/dev/null 2>&1 || { say "bun is missing (run scripts/gpu-check.sh --pack where there is network, carry .gpu-check)"; exit 1; }

# ---- 1. the machine ------------------------------------------------------------------------------
if [[ -z "${GGML_CUDA:-}" ]]; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q GPU; then GGML_CUDA=1; else GGML_CUDA=0; fi
fi
export GGML_CUDA JOBS="${JOBS:-$(nproc)}" GPU_LAYERS=999
if [[ $GGML_CUDA == 1 ]]; then export LLM_BACKEND=cuda; else export LLM_BACKEND=cpu; fi
{
  echo "host: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -m)"
  if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv,noheader 2>&1 | sed 's/^/gpu: /'
  else echo "gpu: none (no nvidia-smi)"; fi
  echo "nvcc: $(command -v nvcc || echo none) $(nvcc --version 2>/dev/null | tail -1)"
  ls -d /usr/local/cuda* 2>/dev/null | sed 's/^/toolkit dir: /'
  echo "backend: GGML_CUDA=$GGML_CUDA LLM_BACKEND=$LLM_BACKEND JOBS=$JOBS budget ${BUDGET}s"
} | tee "$RES/machine.txt" >&2

# ---- 2. builds: the CPU library in the background while the CUDA one builds --------------------------
cpu_pid=""
if [[ $GGML_CUDA == 1 ]]; then
  (GGML_CUDA=0 timeout "$BUDGET" bash build-native.sh >"$RES/build-cpu.log" 2>&1) & cpu_pid=$!
fi
step build-library 400 130 bash build-native.sh
[[ -n "$cpu_pid" ]] && wait "$cpu_pid"
step build-tools 150 100 bash build-native.sh --tools llama-server llama-batched-bench
ls -la native/build/ >>"$RES/build-library.log" 2>&1

# ---- 3. which library serves, and does it offload --------------------------------------------------
step native-info 30 90 bun -e '
  const { nativeInfo } = await import("./src/native/index.ts");
  const i = nativeInfo();
  console.log(JSON.stringify({ path: i.path, gpuOffload: i.gpuOffload, llamaVersion: i.llamaVersion, systemInfo: i.systemInfo }));'
cat "$RES/native-info.log" >&2

# ---- 4. tests -----------------------------------------------------------------------------------------
read -r -a TESTS <<<"${GPU_CHECK_TESTS:-$(ls test/parity*.ts test/api.test.ts test/sessions*.test.ts test/openai.test.ts 2>/dev/null | tr '\n' ' ')}"
step tests 150 $([[ "${GPU_CHECK_BENCH:-1}" == 0 ]] && echo 0 || echo 70) bun test "${TESTS[@]}"
TESTLINE="$(grep -E '^ *[0-9]+ (pass|fail)|^Ran ' "$RES/tests.log" 2>/dev/null | tr -s ' \n' ' ')"

# ---- 5. benchmark, FLASH_ATTN=0 then 1 (bench/results.md is put back as it was) ----------------------
if [[ "${GPU_CHECK_BENCH:-1}" != 0 ]]; then
  saved="$(mktemp)"; cp bench/results.md "$saved" 2>/dev/null || true
  for fa in 0 1; do
    export FLASH_ATTN=$fa
    step "bench-fa$fa" "${GPU_CHECK_BENCH_S:-150}" $(( fa == 0 ? 35 : 0 )) bun run bench --quick
    # written only at the bench's end, so a changed file is a whole report (even if the exit was cut short)
    cmp -s bench/results.md "$saved" || cp bench/results.md "$RES/bench-fa$fa.md"
    cp "$saved" bench/results.md 2>/dev/null || true
  done
  rm -f "$saved"
fi

# ---- the table ------------------------------------------------------------------------------------------
{
  echo "# GPU check ($(date -u +%FT%TZ), $(( SECONDS - START ))s of ${BUDGET}s)"
  echo
  sed 's/^/- /' "$RES/machine.txt"
  echo "- library: $(tail -1 "$RES/native-info.log" 2>/dev/null | cut -c1-300)"
  echo "- tests (${TESTS[*]}): ${TESTLINE:-no result}"
  echo
  echo "| step | result | seconds |"
  echo "|---|---|---|"
  for r in "${STATUS[@]}"; do echo "| $r |"; done
  echo
  if ls "$RES"/bench-fa*.md >/dev/null 2>&1; then
    echo "Benchmark (\`bun run bench --quick\`, synthetic bench model; ours with FLASH_ATTN as named, llama-server with its defaults):"
    echo
    awk -F'|' '
      FNR == 1 { fa = (FILENAME ~ /fa1/) ? 1 : 0; intable = 0; over = 0 }
      over { next }
      !/^\|/ { if (intable) over = 1; next }   # the first table only (the file keeps other benches sections)
      { intable = 1 }
      $2 !~ /Workload/ && $2 !~ /^-+$/ {
        key = $2 "|" $3
        if (!(key in seen)) { seen[key] = 1; order[++n] = key }
        v[key, fa] = $4 "|" $5 "|" $6
      }
      END {
        print "| Workload | Metric | FA=0 ours | FA=0 llama-server | FA=0 ratio | FA=1 ours | FA=1 llama-server | FA=1 ratio |"
        print "|---|---|---|---|---|---|---|---|"
        for (i = 1; i <= n; i++) {
          k = order[i]; a = ((k, 0) in v) ? v[k, 0] : " – | – | – "; b = ((k, 1) in v) ? v[k, 1] : " – | – | – "
          print "|" k "|" a "|" b "|"
        }
      }' "$RES"/bench-fa*.md
  else
    echo "Benchmark: no result (see the bench logs in $RES)"
  fi
} | tee "$RES/gpu-check.md"
if [[ -n "${OUT:-}" && -z "${GPU_CHECK_OUT:-}" && -d "$OUT" ]]; then
  cp "$RES/gpu-check.md" "$OUT/" && tar -czf "$OUT/gpu-check-logs.tgz" -C "$RES" . && RES="$OUT (gpu-check.md, gpu-check-logs.tgz)"
fi
say "done in $(( SECONDS - START ))s; logs and gpu-check.md in $RES"
