#!/usr/bin/env bash
# CI: proves the `cuda` build on this GPU-less machine and that its binary starts without the
# NVIDIA driver: `auto` trains on the CPU and says why, `cuda` fails with a message naming the
# device (no panic, no "error while loading shared libraries").
#
# The build is .ci/cuda/build.sh (a copy of the workplace's ../shared/cuda recipe: CUDA's
# compiler from its PyPI wheels, the libraries as link-only stubs). Its toolchain and target dir
# live in a cache OUTSIDE the clone (GRADLAB_CUDA_CACHE, /var/cache/gradlab-cuda; 5.2 GB: the
# target dir 4.7, the toolchain 0.4, the sources 17 MB), kept between CI runs. Measured on the
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
fail() { echo "ci/cuda: $*" >&2; exit 1; }
# One CI run at a time uses the cache (the mirror and the target dir are shared). A cold build
# takes about 40 minutes: wait that long for another run, then give up saying why.
exec 9>"$CACHE/lock"
flock -w 2400 9 || fail "another CI run has held $CACHE/lock for 40 minutes; is one stuck?"

# Only what git would see (tracked, and untracked but not ignored): never target/, runs/ or
# bench/.venv (5.5 GB of PyTorch). Whatever else is in the mirror is removed.
SRC=$CACHE/src
git ls-files -z -co --exclude-standard >"$CACHE/files" || fail "git ls-files failed in $ROOT"
python3 - "$ROOT" "$SRC" "$CACHE/files" <<'EOF'
import filecmp, os, shutil, sys
src, dst, listing = (os.path.abspath(a) for a in sys.argv[1:])
with open(listing, "rb") as f:
    names = [n.decode() for n in f.read().split(b"\0") if n]
keep = set()
for rel in names:
    a, b = os.path.join(src, rel), os.path.normpath(os.path.join(dst, rel))
    if not os.path.isfile(a):  # tracked but deleted in the clone, or a submodule
        continue
    # A path that was a file and is now a folder (or the other way): clear the way.
    p = os.path.dirname(b)
    while p != dst and not os.path.isdir(p):
        if os.path.lexists(p):
            os.remove(p)
            break
        p = os.path.dirname(p)
    os.makedirs(os.path.dirname(b), exist_ok=True)
    if os.path.isdir(b) and not os.path.islink(b):
        shutil.rmtree(b)
    keep.add(b)
    if os.path.islink(b) or not (os.path.isfile(b) and filecmp.cmp(a, b, shallow=False)):
        if os.path.lexists(b):
            os.remove(b)
        shutil.copy(a, b)  # new mtime: cargo sees the change
for d, dirs, files in os.walk(dst, topdown=False):
    # links to folders are listed with the folders and never walked into: remove them as files
    for f in files + [x for x in dirs if os.path.islink(os.path.join(d, x))]:
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

# Loaded at run time, never linked: the binary must start where none of these exist.
if ldd "$BIN" | grep -E 'libcuda|libcudart|nvrtc|cublas|curand'; then
  fail "$BIN links the NVIDIA libraries above: it would not start without the driver"
fi
run=(train --builtin xor_mlp --epochs 1 -q --no-record)
# A driver that loads but cannot start a device (the build's link stubs, whose every call fails,
# first on the library path): `auto` still trains on the CPU and says CUDA failed, `cuda` names
# the failure and what the kernels need, and neither prints a panic or a backtrace.
stub=(env LD_LIBRARY_PATH="$CUDA_WORK/link-stub" RUST_BACKTRACE=1 "$BIN" "${run[@]}")
out=$("${stub[@]}" --device auto 2>&1) || fail "device = auto with a failing driver did not train:"$'\n'"$out"
grep -qx 'device: CPU (auto: CUDA failed, driver or GPU too old?)' <<<"$out" \
  || fail "device = auto with a failing driver did not say so:"$'\n'"$out"
out=$("${stub[@]}" --device cuda 2>&1) && fail "device = cuda succeeded with a failing driver:"$'\n'"$out"
grep -q '`cuda`: CUDA failed (.*580 or later' <<<"$out" && ! grep -qE 'panicked|   0: ' <<<"$out" \
  || fail "device = cuda with a failing driver did not fail clearly:"$'\n'"$out"

# (ldconfig's list is read whole first: `grep -q` stops reading at its match, and under pipefail
# the writer's SIGPIPE would fail the script.)
libs=$(ldconfig -p)
if grep -q 'libcuda\.so\.1' <<<"$libs"; then
  echo "ci/cuda: an NVIDIA driver is installed here: the no-driver start-up checks do not apply"
  exit 0
fi

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
