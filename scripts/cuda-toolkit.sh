#!/usr/bin/env bash
# A CUDA toolkit from PyPI for build-native.sh when the machine has none (no nvcc): downloads
# NVIDIA's pinned wheels with `pip download --no-deps`, checks each one's SHA-256 against the
# hashes below, unpacks them and lays them out as a CUDA_HOME (bin/nvcc, include/, lib64/ with
# the unversioned .so links CMake's FindCUDAToolkit looks for). Prints that directory on stdout;
# a second run only prints it.
#
# Why CUDA 13.0 and not 12.x: the CUDA 12 wheels on PyPI carry no compiler. nvidia-cuda-nvcc-cu12
# (12.0 .. 12.9.86) holds ptxas, libnvvm and headers only: no nvcc driver, cicc, cudafe++ or
# fatbinary. CUDA 13 split the compiler into nvidia-cuda-nvcc (nvcc, cudafe++, fatbinary, nvlink,
# ptxas), nvidia-nvvm (cicc, libdevice) and nvidia-cuda-crt (crt headers), all of it on PyPI.
# 13.0 matches the nvcc and driver (580) on the H100/H200 machines we test on; a library built
# with it needs an R580 or newer driver (CUDA 13 minor-version compatibility) and runs on
# compute capability 7.5 and up (Turing .. Blackwell: A100 8.0, L4/4090 8.9, H100/H200 9.0).
# The host compiler is the system g++ (12 and 13 checked here); CUDA 13.0 accepts GCC 6 .. 15.
#
# Usage: scripts/cuda-toolkit.sh              fetch once, verify, assemble; print the CUDA_HOME
#        scripts/cuda-toolkit.sh --version    print the pinned toolkit version (nvcc's), nothing else
# Env:   LLM_CACHE_DIR   cache root (default ~/.cache/bun-llm-server): wheels in cuda/wheels/,
#                        the toolkit in cuda/<version>-<arch>/
set -euo pipefail

VERSION="13.0.88"   # nvcc's version: the toolkit's name in the cache and part of build-native.sh's key
# name==version, then per machine: wheel file, SHA-256. x86_64 hashes were computed from the
# downloaded files; aarch64 ones are PyPI's published digests (not downloaded here).
WHEELS_x86_64=(
  "nvidia-cuda-nvcc==13.0.88    nvidia_cuda_nvcc-13.0.88-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl    56fe502eb77625a12f25172caa3cdddb4e4c8ba2c8c17dba44b164761b380f03"
  "nvidia-nvvm==13.0.88         nvidia_nvvm-13.0.88-py3-none-manylinux2010_x86_64.manylinux_2_12_x86_64.whl         c5f41ffeb6466944a026dfa5317d7d85355c119bbec279205d22f1869d1054e0"
  "nvidia-cuda-crt==13.0.88     nvidia_cuda_crt-13.0.88-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl     2c8043c7c9e02492716426e9919fc78d2c5b3b2a7a768a88e952676b08aa55a4"
  "nvidia-cuda-runtime==13.0.96 nvidia_cuda_runtime-13.0.96-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl 7f82250d7782aa23b6cfe765ecc7db554bd3c2870c43f3d1821f1d18aebf0548"
  "nvidia-cublas==13.0.2.14     nvidia_cublas-13.0.2.14-py3-none-manylinux_2_27_x86_64.whl                          0cf238ffdbe46c00cb9aa98e7bca745c223a5ca5a53e686ac8b3e5a08fe80d6c"
  "nvidia-cuda-cccl==13.0.85    nvidia_cuda_cccl-13.0.85-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl    e0da7ad981f3a8aff08241b5bfc1af868742a63e2762f53a5171c492ef242649"
)
WHEELS_aarch64=(
  "nvidia-cuda-nvcc==13.0.88    nvidia_cuda_nvcc-13.0.88-py3-none-manylinux2014_aarch64.manylinux_2_17_aarch64.whl    c7ff28f86a24effdc6c034fa15230c549a273e4771b10a7fec14996f8cf3307f"
  "nvidia-nvvm==13.0.88         nvidia_nvvm-13.0.88-py3-none-manylinux2014_aarch64.manylinux_2_17_aarch64.whl         c4376a291d72d22a315d9d2f69bdae8f8cd83a627f75bad395cee49a0fe65dc1"
  "nvidia-cuda-crt==13.0.88     nvidia_cuda_crt-13.0.88-py3-none-manylinux2014_aarch64.manylinux_2_17_aarch64.whl     ee2ea2a97073e02ee62bb27841f437332be2c248e3eac013df07997ada39c003"
  "nvidia-cuda-runtime==13.0.96 nvidia_cuda_runtime-13.0.96-py3-none-manylinux2014_aarch64.manylinux_2_17_aarch64.whl ef9bcbe90493a2b9d810e43d249adb3d02e98dd30200d86607d8d02687c43f55"
  "nvidia-cublas==13.0.2.14     nvidia_cublas-13.0.2.14-py3-none-manylinux_2_27_aarch64.whl                           17165c296de689662b96e0ef4f21dfbff3092ff00d0e3e59470f5acb08c0f87d"
  "nvidia-cuda-cccl==13.0.85    nvidia_cuda_cccl-13.0.85-py3-none-manylinux2014_aarch64.manylinux_2_17_aarch64.whl    6f0203e29fed809ee2b7fe9b1344df66ecab990c37d6a2e0e189b26d6c97ed7c"
)

say() { echo "[cuda-toolkit] $*" >&2; }
die() { echo "[cuda-toolkit] ERROR: $*" >&2; exit 1; }

[[ "${1:-}" == "--version" ]] && { echo "$VERSION"; exit 0; }

ARCH="$(uname -m)"
case "$ARCH" in
  x86_64) WHEELS=("${WHEELS_x86_64[@]}"); TARGET=x86_64-linux ;;
  aarch64) WHEELS=("${WHEELS_aarch64[@]}"); TARGET=sbsa-linux ;;
  *) die "no CUDA wheels pinned for $ARCH" ;;
esac
CACHE="${LLM_CACHE_DIR:-$HOME/.cache/bun-llm-server}/cuda"
WHEELDIR="$CACHE/wheels"
HOME_DIR="$CACHE/$VERSION-$ARCH"

# done already: a no-op apart from the path
if [[ -f "$HOME_DIR/.complete" ]]; then echo "$HOME_DIR"; exit 0; fi

mkdir -p "$CACHE"
if command -v flock >/dev/null 2>&1; then
  exec 7>"$CACHE/.toolkit.lock"
  flock -n 7 || { say "another cuda-toolkit.sh is assembling the toolkit; waiting for it"; flock 7; }
  if [[ -f "$HOME_DIR/.complete" ]]; then echo "$HOME_DIR"; exit 0; fi
fi

sha() { sha256sum "$1" | cut -d' ' -f1; }

# ---- 1. the wheels (kept: a re-assembly downloads nothing) ----------------------------------
PIP=()
for p in python3 python; do
  command -v "$p" >/dev/null 2>&1 && "$p" -m pip --version >/dev/null 2>&1 && { PIP=("$p" -m pip); break; }
done
mkdir -p "$WHEELDIR"
for w in "${WHEELS[@]}"; do
  read -r spec file want <<<"$w"
  if [[ -f "$WHEELDIR/$file" && "$(sha "$WHEELDIR/$file")" == "$want" ]]; then continue; fi
  [[ ${#PIP[@]} -gt 0 ]] || die "pip is needed to fetch $spec from PyPI (apt-get install python3-pip), or install the CUDA toolkit and set CUDA_HOME"
  say "downloading $spec"
  tmp="$(mktemp -d "$WHEELDIR/.dl.XXXXXX")"
  "${PIP[@]}" download --quiet --no-deps --only-binary=:all: --disable-pip-version-check -d "$tmp" "$spec" >&2 \
    || { rm -rf "$tmp"; die "pip download $spec failed (is PyPI reachable?)"; }
  [[ -f "$tmp/$file" ]] || { ls "$tmp" >&2; rm -rf "$tmp"; die "pip fetched another file than the pinned $file for $spec (this machine's platform tags?)"; }
  got="$(sha "$tmp/$file")"
  [[ "$got" == "$want" ]] || { rm -rf "$tmp"; die "SHA-256 mismatch for $file: got $got, pinned $want"; }
  mv "$tmp/$file" "$WHEELDIR/$file"; rm -rf "$tmp"
done

# ---- 2. unpack into one tree: every wheel installs under nvidia/cu13/ ----------------------
need() { command -v "$1" >/dev/null 2>&1 || die "'$1' is required ($2)"; }
stage="$CACHE/.stage.$$"
rm -rf "$stage" "$HOME_DIR"; mkdir -p "$stage"
trap 'rm -rf "$stage"' EXIT
for w in "${WHEELS[@]}"; do
  read -r spec file want <<<"$w"
  [[ "$(sha "$WHEELDIR/$file")" == "$want" ]] || die "SHA-256 mismatch for $WHEELDIR/$file"
  if command -v unzip >/dev/null 2>&1; then unzip -q -o "$WHEELDIR/$file" 'nvidia/*' -d "$stage"
  else need python3 "apt-get install unzip"; python3 -m zipfile -e "$WHEELDIR/$file" "$stage"; fi
done
root="$stage/nvidia/cu13"
[[ -x "$root/bin/nvcc" && -x "$root/nvvm/bin/cicc" ]] || die "the wheels did not give bin/nvcc and nvvm/bin/cicc"
chmod +x "$root"/bin/* "$root"/nvvm/bin/* 2>/dev/null || true
find "$root" -name '__init__.py' -delete; rm -rf "$root/.metadata"

# ---- 3. the CUDA_HOME layout ------------------------------------------------------------
# nvcc.profile looks in $TOP/include and $TOP/lib64; CMake also in targets/<arch>/{include,lib};
# find_library wants the unversioned names (libcudart.so -> libcudart.so.13 etc.).
mv "$root/lib" "$root/lib64"; ln -s lib64 "$root/lib"
(cd "$root/lib64" && for f in *.so.*; do base="${f%%.so.*}.so"; [[ -e "$base" ]] || ln -s "$f" "$base"; done)
mkdir -p "$root/targets/$TARGET"
ln -s ../../include "$root/targets/$TARGET/include"; ln -s ../../lib64 "$root/targets/$TARGET/lib"
# No libcuda.so stub ships in these wheels: build-native.sh builds with GGML_CUDA_NO_VMM, so the
# library needs no driver to link and loads (serving on the CPU) where the driver is missing.
"$root/bin/nvcc" --version >/dev/null 2>&1 || die "the unpacked nvcc does not run: $("$root/bin/nvcc" --version 2>&1 | tail -1)"
mv "$root" "$HOME_DIR"
touch "$HOME_DIR/.complete"
say "CUDA $VERSION from PyPI ready in $HOME_DIR ($(du -sh "$HOME_DIR" | cut -f1))"
echo "$HOME_DIR"
