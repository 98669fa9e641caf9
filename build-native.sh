#!/usr/bin/env bash
# Builds native/libllmshim.so: llama.cpp (llama + ggml, static) linked into our C shim,
# exporting only the shim's symbols. Source comes from the npm registry (node-llama-cpp's
# git bundle). Everything is cached under $LLM_CACHE_DIR (default ~/.cache/bun-llm-server),
# keyed by llama.cpp commit, backend and flags, so a second run is a no-op.
#
# Usage: ./build-native.sh [--tools TARGET...]   e.g. --tools llama-server llama-batched-bench
# Env:   GGML_CUDA=1            build with CUDA (default: only when nvidia-smi finds a GPU): writes
#                               native/build/libllmshim-cuda.so besides the CPU libllmshim.so
#        CMAKE_CUDA_ARCHITECTURES  default: the GPU's own (nvidia-smi), else 80;89;90 (A100, L4, H100/H200)
#        CUDA_HOME              a CUDA toolkit; without one (no nvcc), CUDA 13.0 wheels from PyPI
#                               (scripts/cuda-toolkit.sh); LLM_CUDA_TOOLKIT=pypi prefers those
#        CUDAFLAGS              extra nvcc flags, e.g. -allow-unsupported-compiler for a too-new g++
#        GGML_NATIVE=0          portable CPU build (default 1: -march=native)
#        GGML_AMX=1             keep ggml's AMX kernels in a native build (default: off, see below)
#        LLAMA_PATCHES=0        build upstream llama.cpp, without native/patches/*.patch (default 1)
#        LLM_CACHE_DIR          cache root
#        LLM_LIB_OUT            where to copy the library (default native/build/libllmshim.so)
set -euo pipefail

NLC_VERSION="3.22.1"            # node-llama-cpp version that carries our llama.cpp source
SHIM_ABI="4"                    # keep in sync with LLMSHIM_ABI_VERSION in native/shim.h
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${LLM_CACHE_DIR:-$HOME/.cache/bun-llm-server}"
SRC_PARENT="$CACHE/src/node-llama-cpp-$NLC_VERSION"
SRC="$SRC_PARENT/llama.cpp"
OUT="${LLM_LIB_OUT:-$ROOT/native/build/libllmshim.so}"
JOBS="${JOBS:-$(nproc 2>/dev/null || echo 2)}"

say() { echo "[build-native] $*" >&2; }
die() { echo "[build-native] ERROR: $*" >&2; exit 1; }

TOOLS=()
if [[ "${1:-}" == "--tools" ]]; then shift; TOOLS=("$@"); fi

need() { command -v "$1" >/dev/null 2>&1 || die "'$1' is required (${2:-install it with your package manager})"; }
need cmake "apt-get install cmake"; need cc "apt-get install build-essential"; need c++ "apt-get install g++"

# One build at a time per cache: the source fetch under one lock, then the library under one per
# backend, reference tools under another (tests build llama-server in the background; library
# users must not wait for that).
mkdir -p "$CACHE"
lock() { # fd name
  command -v flock >/dev/null 2>&1 || return 0
  eval "exec $1>\"\$CACHE/.$2.lock\""
  flock -n "$1" || { say "another build-native.sh is building ($2); waiting for it"; flock "$1"; }
}
lock 8 source

# ---- 1. source -------------------------------------------------------------
if [[ ! -f "$SRC/include/llama.h" ]]; then
  need git; need npm "install Node.js/npm"; need tar
  say "fetching llama.cpp source: npm pack node-llama-cpp@$NLC_VERSION (bundle only)"
  tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "node-llama-cpp@$NLC_VERSION" >/dev/null) || die "npm pack node-llama-cpp@$NLC_VERSION failed (is the npm registry reachable?)"
  tar -xzf "$tmp"/node-llama-cpp-*.tgz -C "$tmp" package/llama/gitRelease.bundle package/llama/llama.cpp.info.json \
    || die "node-llama-cpp@$NLC_VERSION has no llama/gitRelease.bundle"
  mkdir -p "$SRC_PARENT"; rm -rf "$SRC.partial"
  git clone --quiet "$tmp/package/llama/gitRelease.bundle" "$SRC.partial" 2>/dev/null || die "git clone of the bundle failed"
  cp "$tmp/package/llama/llama.cpp.info.json" "$SRC.partial/.node-llama-cpp-info.json"
  mv "$SRC.partial" "$SRC"
  rm -rf "$tmp"; trap - EXIT
fi
# a copy without .git (scripts/gpu-check.sh --pack, for machines with no network) names its commit in .commit
if [[ -e "$SRC/.git" ]]; then need git; COMMIT="$(git -C "$SRC" rev-parse --short=12 HEAD)"
else COMMIT="$(cat "$SRC/.commit" 2>/dev/null)" || die "no commit for $SRC (neither .git nor .commit)"; fi
TAG="$(sed -n 's/.*"tag": *"\([^"]*\)".*/\1/p' "$SRC/.node-llama-cpp-info.json" 2>/dev/null || true)"
say "llama.cpp source: $SRC (node-llama-cpp $NLC_VERSION, tag ${TAG:-?}, commit $COMMIT)"

# ---- 1b. our patches (native/patches/*.patch), applied to a copy of the source ----------------
# The library and the tools built with it (llama-server as the parity reference) share them.
# LLAMA_PATCHES=0 builds upstream llama.cpp instead: the benchmarks' peer, and a fallback.
PATCH_TAG=""
shopt -s nullglob; PATCH_FILES=("$ROOT"/native/patches/*.patch); shopt -u nullglob
if [[ "${LLAMA_PATCHES:-1}" != "0" && ${#PATCH_FILES[@]} -gt 0 ]]; then
  PATCH_TAG="p$(cat "${PATCH_FILES[@]}" | md5sum | cut -c1-8)"
  PSRC="$SRC_PARENT/llama.cpp-$PATCH_TAG"
  if [[ ! -f "$PSRC/.patched" ]]; then
    rm -rf "$PSRC.partial"
    git clone --quiet --shared "$SRC" "$PSRC.partial" || die "copying the source for patching failed"
    for p in "${PATCH_FILES[@]}"; do
      git -C "$PSRC.partial" apply "$p" || die "patch $(basename "$p") does not apply to llama.cpp $COMMIT"
    done
    cp "$SRC/.node-llama-cpp-info.json" "$PSRC.partial/" 2>/dev/null || true
    touch "$PSRC.partial/.patched"; rm -rf "$PSRC"; mv "$PSRC.partial" "$PSRC"
  fi
  SRC="$PSRC"
  say "patched with ${#PATCH_FILES[@]} patch(es) from native/patches ($PATCH_TAG)"
fi

# ---- 2. backend and flags ----------------------------------------------------
BACKEND=cpu
if [[ "${GGML_CUDA:-}" == "1" ]]; then BACKEND=cuda
elif [[ -z "${GGML_CUDA:-}" ]] && command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q GPU; then
  say "nvidia-smi found a GPU: building with CUDA (set GGML_CUDA=0 to force CPU)"; BACKEND=cuda
fi
NATIVE="${GGML_NATIVE:-1}"
FLAGS=(-DBUILD_SHARED_LIBS=OFF -DCMAKE_POSITION_INDEPENDENT_CODE=ON -DCMAKE_BUILD_TYPE=Release
  -DGGML_NATIVE="$([[ $NATIVE == 1 ]] && echo ON || echo OFF)" -DGGML_OPENMP=OFF
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=ON -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON
  -DLLAMA_BUILD_APP=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF)
# ggml's AMX kernels (-march=native enables them on CPUs that report amx_int8) fault on machines
# whose kernel or hypervisor does not grant the tile state to ggml's threads: the first quantized
# matmul dies with a general protection fault at ldtilecfg (seen with Q4_1 SmolLM2 here, in
# llama-server too). Off unless GGML_AMX=1; -U works whatever -march the targets add later.
if [[ $NATIVE == 1 && "${GGML_AMX:-0}" != "1" ]] && grep -qm1 'amx_tile' /proc/cpuinfo 2>/dev/null; then
  FLAGS+=(-DCMAKE_C_FLAGS="-U__AMX_TILE__ -U__AMX_INT8__ -U__AMX_BF16__" -DCMAKE_CXX_FLAGS="-U__AMX_TILE__ -U__AMX_INT8__ -U__AMX_BF16__")
fi
# the library lock is per backend from here: a CUDA build (an hour on a 2-core machine) does not
# hold up CPU builds (the CUDA build runs one itself, below)
exec 8>&-; lock 8 "library-$BACKEND"
CUDA_LIBS=()
CUDA_TAG=""
INFO_NAME="build-info.json"
if [[ $BACKEND == cuda ]]; then
  # One library for every host: the CPU library is always built as well, and the server loads
  # native/build/libllmshim-cuda.so first, falling back to native/build/libllmshim.so where the
  # CUDA one cannot load (src/native/library-path.ts). LLM_LIB_OUT set: only the CUDA one, there.
  if [[ -z "${LLM_LIB_OUT:-}" ]]; then
    say "CUDA build: the CPU library (native/build/libllmshim.so, the fallback without CUDA) first"
    GGML_CUDA=0 bash "$ROOT/build-native.sh" || die "building the CPU library failed"
    OUT="$ROOT/native/build/libllmshim-cuda.so"
    INFO_NAME="build-info-cuda.json"
  fi
  # The toolkit: a system one wins (CUDA_HOME, CUDA_PATH, /usr/local/cuda, nvcc on PATH); without
  # one (or with LLM_CUDA_TOOLKIT=pypi) the pinned CUDA 13.0 wheels from PyPI (scripts/cuda-toolkit.sh).
  CUDA_ROOT=""
  if [[ "${LLM_CUDA_TOOLKIT:-}" != "pypi" ]]; then
    for d in "${CUDA_HOME:-}" "${CUDA_PATH:-}" /usr/local/cuda "$(command -v nvcc >/dev/null 2>&1 && dirname "$(dirname "$(command -v nvcc)")")"; do
      [[ -n "$d" && -x "$d/bin/nvcc" ]] && { CUDA_ROOT="$d"; break; }
    done
  fi
  if [[ -z "$CUDA_ROOT" ]]; then
    say "no CUDA toolkit on this machine (no nvcc): using the pinned CUDA $(bash "$ROOT/scripts/cuda-toolkit.sh" --version) wheels from PyPI"
    CUDA_ROOT="$(bash "$ROOT/scripts/cuda-toolkit.sh")" || die "getting the CUDA toolkit from PyPI failed (scripts/cuda-toolkit.sh); install a CUDA toolkit and set CUDA_HOME, or build for CPU with GGML_CUDA=0"
  fi
  NVCC="$CUDA_ROOT/bin/nvcc"
  CUDA_VER="$("$NVCC" --version 2>/dev/null | sed -n 's/.*, V\([0-9][0-9.]*\).*/\1/p' | tail -1)"
  [[ -n "$CUDA_VER" ]] || die "$NVCC --version does not run: $("$NVCC" --version 2>&1 | tail -1)"
  CUBLAS_DIR=""
  for l in lib64 lib targets/x86_64-linux/lib targets/sbsa-linux/lib; do
    ls "$CUDA_ROOT/$l"/libcublas.so* >/dev/null 2>&1 && { CUBLAS_DIR="$CUDA_ROOT/$l"; break; }
  done
  if [[ -z "$CUBLAS_DIR" ]] && ! ldconfig -p 2>/dev/null | grep -q libcublas.so; then
    die "CUDA requested but cuBLAS was not found: nvcc is at $NVCC but no libcublas.so sits in its toolkit or the linker cache. ggml-cuda needs cuBLAS; install it (e.g. the toolkit's libcublas-dev, then set CUDA_HOME), use the CUDA wheels from PyPI with LLM_CUDA_TOOLKIT=pypi, or build for CPU with GGML_CUDA=0."
  fi
  # Architectures: CMAKE_CUDA_ARCHITECTURES; else this machine's GPUs (nvidia-smi: 9.0 -> 90);
  # with no GPU to ask, A100 (80), L4 / RTX 4090 (89) and H100 / H200 (90), each as machine code + PTX.
  if [[ -n "${CMAKE_CUDA_ARCHITECTURES:-}" ]]; then ARCH="$CMAKE_CUDA_ARCHITECTURES"
  elif ARCH="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | tr -d ' .' | grep -E '^[0-9]+$' | sort -un | paste -sd';')" && [[ -n "$ARCH" ]]; then
    say "CUDA architecture(s) of this machine's GPU(s) (nvidia-smi): $ARCH"
  else
    ARCH="80;89;90"; say "no GPU to ask: CUDA architectures $ARCH (A100, L4/RTX 4090, H100/H200); set CMAKE_CUDA_ARCHITECTURES to choose"
  fi
  say "CUDA $CUDA_VER at $CUDA_ROOT, architectures $ARCH"
  # GGML_CUDA_NO_VMM: ggml's memory pool without the driver API, so the library needs no libcuda to
  # link (the wheels ship no stub) and no libcuda.so.1 to load: without a driver it loads, finds no
  # GPU and serves on its CPU backend. CUDAFLAGS (CMake's env), e.g. -allow-unsupported-compiler
  # when nvcc rejects the host g++, goes into the key below.
  FLAGS+=(-DGGML_CUDA=ON -DGGML_CUDA_NO_VMM=ON -DCMAKE_CUDA_ARCHITECTURES="$ARCH"
    -DCMAKE_CUDA_COMPILER="$NVCC" -DCUDAToolkit_ROOT="$CUDA_ROOT")
  # RUNPATH: the toolkit's lib dir (found there without LD_LIBRARY_PATH), then the library's own dir.
  # --no-undefined: a driver-API symbol left in would make the library unloadable without libcuda.
  CUDA_LIBS=(-L"${CUBLAS_DIR:-/usr/local/cuda/lib64}" -lcudart -lcublas -lcublasLt -Wl,--no-undefined
    -Wl,-rpath,"${CUBLAS_DIR:-/usr/local/cuda/lib64}" -Wl,-rpath,'$ORIGIN')
  CUDA_TAG="-$CUDA_VER-sm${ARCH//;/_}"
fi
CPUKEY=""
[[ $NATIVE == 1 ]] && CPUKEY="$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | md5sum | cut -c1-8)"
SHIM_HASH="$(cat "$ROOT"/native/*.c "$ROOT/native/shim.h" | md5sum | cut -c1-10)"
# the key names our patches, and the toolkit version and architectures of a CUDA build (e.g. …-p1234abcd-cuda-13.0.88-sm80_89_90-…)
KEY="$COMMIT${PATCH_TAG:+-$PATCH_TAG}-$BACKEND$CUDA_TAG-$(echo "${FLAGS[*]} $CPUKEY${CUDA_TAG:+ ${CUDAFLAGS:-}}" | md5sum | cut -c1-10)"
BUILD="$CACHE/build/$KEY"
LIB="$BUILD/libllmshim-$SHIM_HASH.so"

# ---- 3. llama + ggml static libraries ----------------------------------------
# Builds one cmake target, printing every 20th step so a long first build shows progress.
build_target() {
  local log="$BUILD/$1.log" rc=0
  # grep finds no step lines when ninja has nothing to do: not a failure (pipefail + set -e would exit silently)
  cmake --build "$BUILD/cmake" --target "$1" -j "$JOBS" 2>&1 | tee "$log" \
    | { grep --line-buffered -E "^\[[0-9]+/[0-9]+\]" || true; } | awk '{ if (NR % 20 == 1) print "[build-native]   " $0; fflush() }' >&2 || rc=$?
  [[ $rc -eq 0 ]] || { grep -iE -m 20 "error" "$log" >&2; die "building target $1 failed (log: $log)"; }
}
GEN=(); command -v ninja >/dev/null 2>&1 && GEN=(-G Ninja)
mkdir -p "$BUILD"
if [[ ! -f "$BUILD/cmake/CMakeCache.txt" ]]; then
  say "configuring ($BACKEND) in $BUILD/cmake"
  cmake -S "$SRC" -B "$BUILD/cmake" "${GEN[@]}" "${FLAGS[@]}" >"$BUILD/configure.log" 2>&1 \
    || { tail -30 "$BUILD/configure.log" >&2; die "cmake configure failed (log: $BUILD/configure.log)"; }
fi
if [[ ! -f "$BUILD/stamp-llama" ]]; then
  say "building llama + ggml ($BACKEND, $JOBS jobs); this takes a few minutes the first time"
  start=$SECONDS
  build_target llama
  touch "$BUILD/stamp-llama"; say "llama built in $((SECONDS - start)) s"
fi
# llama.cpp's common/ library: the JSON-Schema -> GBNF converter that native/grammar.cpp calls
if [[ ! -f "$BUILD/stamp-common" ]]; then
  say "building llama-common (JSON-Schema converter for native/grammar.cpp)"
  start=$SECONDS
  build_target llama-common
  touch "$BUILD/stamp-common"; say "llama-common built in $((SECONDS - start)) s"
fi

# ---- 4. the shim: one self-contained shared library ---------------------------
# SHIM_HASH covers native/*.c and shim.h; the C++ sources (grammar.cpp) join the library's name here
CXX_HASH="$(cat "$ROOT"/native/*.cpp 2>/dev/null | md5sum | cut -c1-6)"
LIB="$BUILD/libllmshim-$SHIM_HASH-$CXX_HASH.so"
if [[ ! -f "$LIB" ]]; then
  say "linking $LIB"
  mapfile -t ARCHIVES < <(find "$BUILD/cmake" -name 'libllama.a' -o -name 'libggml*.a' -o -name 'libllama-common*.a' | sort -r)
  [[ ${#ARCHIVES[@]} -ge 5 ]] || die "static libraries not found under $BUILD/cmake"
  OBJS=()
  for c in "$ROOT"/native/*.c; do
    o="$BUILD/$(basename "$c" .c).o"
    cc -O2 -fPIC -fvisibility=hidden -I"$SRC/include" -I"$SRC/ggml/include" -c "$c" -o "$o" || die "compiling $c failed"
    OBJS+=("$o")
  done
  # src/ for llama-grammar.h (the grammar parser's error positions), common/ for the JSON-Schema converter
  for c in "$ROOT"/native/*.cpp; do
    [[ -f "$c" ]] || continue
    o="$BUILD/$(basename "$c" .cpp).cpp.o"
    c++ -std=c++17 -O2 -fPIC -fvisibility=hidden -I"$SRC/include" -I"$SRC/ggml/include" -I"$SRC/src" -I"$SRC/common" \
      -I"$SRC/vendor" -c "$c" -o "$o" || die "compiling $c failed"
    OBJS+=("$o")
  done
  # only llmshim_* leave the library: C++ objects would otherwise export their std:: template instances
  printf '{ global: llmshim_*; local: *; };\n' >"$BUILD/llmshim.map"
  c++ -shared -o "$LIB.tmp" "${OBJS[@]}" -Wl,--start-group "${ARCHIVES[@]}" -Wl,--end-group \
    -Wl,--exclude-libs,ALL -Wl,--gc-sections -Wl,--version-script="$BUILD/llmshim.map" "${CUDA_LIBS[@]}" -lpthread -ldl -lm \
    || die "linking the shim failed"
  mv "$LIB.tmp" "$LIB"
fi
mkdir -p "$(dirname "$OUT")"
if ! cmp -s "$LIB" "$OUT"; then cp "$LIB" "$OUT.tmp" && mv "$OUT.tmp" "$OUT"; fi
printf '{"nodeLlamaCpp":"%s","tag":"%s","commit":"%s","patches":"%s","backend":"%s","abi":%s,"key":"%s"}\n' \
  "$NLC_VERSION" "$TAG" "$COMMIT" "$PATCH_TAG" "$BACKEND" "$SHIM_ABI" "$KEY" >"$(dirname "$OUT")/$INFO_NAME"
say "library ready: $OUT ($BACKEND, llama.cpp $COMMIT)"

# ---- 5. optional reference tools from the same source and flags ------------------
exec 8>&-
[[ ${#TOOLS[@]} -gt 0 ]] && lock 9 "tools-$BACKEND"
for t in "${TOOLS[@]}"; do
  bin="$(find "$BUILD/cmake/bin" -maxdepth 1 -name "$t" 2>/dev/null | head -1)"
  if [[ -z "$bin" || ! -f "$BUILD/stamp-$t" ]]; then
    say "building reference tool $t (same source and flags)"
    build_target "$t"
    touch "$BUILD/stamp-$t"
  fi
  echo "$BUILD/cmake/bin/$t"
done
