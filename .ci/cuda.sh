#!/usr/bin/env bash
# CI: proves the `cuda` build on this GPU-less machine and that its binary starts without the
# NVIDIA driver: `auto` trains on the CPU and says why, `cuda` fails with a message naming the
# device (no panic, no "error while loading shared libraries").
#
# The build is .ci/cuda/build.sh (a copy of the workplace's ../shared/cuda recipe: CUDA's
# compiler from its PyPI wheels, the libraries as link-only stubs). Its toolchain and target dir live in a cache OUTSIDE the clone
# (GRADLAB_CUDA_CACHE, /var/cache/gradlab-cuda; 4.3 GB), kept between CI runs. Measured on the
# 2-core machine: cold (every dependency and candle's kernels through nvcc, beside two other
# cargo builds) 41 min; the vendored kernels crate and gradlab again 12 min; warm 2 s when
# nothing changed, 6 s after a small change to gradlab's sources (incremental).
# The clone's path changes every run, and cargo keys a path crate (gradlab, vendor/candle-*)
# by its path, so the sources are mirrored into a fixed folder in the cache first, rewriting only
# files whose content changed: the target dir does not grow by a copy per run, and unchanged
# sources keep their times, so cargo rebuilds only what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

CACHE=${GRADLAB_CUDA_CACHE:-/var/cache/gradlab-cuda}
mkdir -p "$CACHE"
# One CI run at a time uses the cache (the mirror and the target dir are shared).
exec 9>"$CACHE/lock"
flock 9

SRC=$CACHE/src
python3 - "$ROOT" "$SRC" <<'EOF'
import filecmp, os, shutil, sys
src, dst = sys.argv[1:]
skip = {".git", "target", "runs"}
keep = set()
for d, dirs, files in os.walk(src):
    dirs[:] = [x for x in dirs if not (d == src and x in skip)]
    rel = os.path.relpath(d, src)
    os.makedirs(os.path.join(dst, rel), exist_ok=True)
    for f in files:
        a, b = os.path.join(d, f), os.path.normpath(os.path.join(dst, rel, f))
        keep.add(b)
        if not (os.path.isfile(b) and filecmp.cmp(a, b, shallow=False)):
            shutil.copy(a, b)  # new mtime: cargo sees the change
for d, dirs, files in os.walk(dst, topdown=False):
    for f in files:
        p = os.path.join(d, f)
        if p not in keep:
            os.remove(p)
    if d != dst and not os.listdir(d):
        os.rmdir(d)
EOF

export CUDA_WORK=$CACHE/toolchain CARGO_TARGET_DIR=$CACHE/target
unset RUST_BACKTRACE
start=$SECONDS
# The core only: the GUI's dependencies add nothing to what this proves.
(cd "$SRC" && .ci/cuda/build.sh stub --no-default-features)
echo "ci/cuda: built in $((SECONDS - start)) s"
BIN=$CARGO_TARGET_DIR/debug/gradlab

fail() { echo "ci/cuda: $*" >&2; exit 1; }
# Loaded at run time, never linked: the binary must start where none of these exist.
if ldd "$BIN" | grep -E 'libcuda|libcudart|nvrtc|cublas|curand'; then
  fail "$BIN links the NVIDIA libraries above: it would not start without the driver"
fi
if ldconfig -p | grep -q 'libcuda\.so\.1'; then
  echo "ci/cuda: an NVIDIA driver is installed here: the no-driver start-up checks do not apply"
  exit 0
fi

run=(train --builtin xor_mlp --epochs 1 -q --no-record)
out=$("$BIN" "${run[@]}" --device auto 2>&1) || fail "device = auto did not train on the CPU:"$'\n'"$out"
grep -qx 'device: CPU (auto: no NVIDIA driver)' <<<"$out" \
  || fail "device = auto did not say it fell back to the CPU:"$'\n'"$out"

set +e
out=$("$BIN" "${run[@]}" --device cuda 2>&1)
rc=$?
set -e
[ $rc -ne 0 ] || fail "device = cuda succeeded without a driver:"$'\n'"$out"
[ $rc -ne 101 ] && ! grep -q 'panicked' <<<"$out" || fail "device = cuda panicked:"$'\n'"$out"
grep -q '`cuda`: the NVIDIA driver (libcuda.so.1) could not be loaded' <<<"$out" \
  || fail "device = cuda failed without naming the device and the driver:"$'\n'"$out"
echo "ci/cuda: the cuda build starts without a driver: auto trains on the CPU, cuda fails clearly"
