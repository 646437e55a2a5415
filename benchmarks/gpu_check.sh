#!/usr/bin/env bash
# gpuchain GPU check: one command that verifies the CUDA path and measures the targets.
#
#   benchmarks/gpu_check.sh OUTDIR [--quick] [--previous DIR] [--cache TARBALL] [--kemu DIR]
#
# Runs from the checkout (PYTHONPATH=.); needs Python with CuPy (cupy-cuda13x), PyTorch,
# JAX, pytest, hypothesis, nvidia-ml-py and matplotlib; no network. Steps, and the time
# each is estimated to take on one H200 (16 CPU cores), from the counts at the time of
# writing: 1172 `pytest -m gpu` cases (656 kernel cases at ~0.02 s, 38 layer-norm kernel
# cases at ~0.03 s, 472 op-table cases on CuPy at ~0.08 s, 4 training-parity/OOM cases at
# ~2 s, 2 distributed GPU cases at ~15 s), 113 gpuchain kernel builds (NVRTC: 4 files x 3
# dtypes; all 113 took 4-5 s on 2 CPU cores here, ~0.04 s each) and ~236 CuPy
# elementwise/reduction kernels built on first use (~0.5 per op-table case, ~0.15 s each
# cold). The script recomputes these counts when
# it starts (check.json "counts"; `python -m benchmarks.gpu_check counts FILE`).
#
#   step       what                                                      estimate  cap
#   env        nvidia-smi -L, driver, CUDA, CuPy/torch/JAX versions,       20 s    30 s
#              NVML telemetry; test and kernel-build counts
#   compile    NVRTC compile check for the device's own arch (sm_90),      10 s    30 s
#              113 builds, fails on errors or register spills
#   pytest     pytest -m gpu tests/gpu tests/test_distributed_gpu.py:     155 s   210 s
#              kernels vs NumPy, op table on CuPy, fused dense, 20-step
#              training parity, OOM, NCCL at world size 1; junit XML +
#              slowest durations (25 s fixed + 90 s of cases
#              + 236 CuPy kernels x 0.15 s + 113 builds x 0.04 s)
#   bench      bandwidth suite (fused act-grad+bias-grad vs D2D copy,      175 s   195 s
#              4 shapes, CUDA events, ~25 s) and the target train step
#              (batch 8192, 4x4096 relu, Adam, TF32 off and on; gpuchain,
#              torch eager, torch.compile with warm-up bounded at 60 s
#              and reported apart; GEMM share; ~150 s)
#   pack       tarball of the CuPy kernel cache (reused with --cache)       5 s    15 s
#   total                                                                  365 s   480 s
#
# The caps (timeout per step) add up to 8 minutes, so the whole check ends within 8 minutes
# whatever happens. Writes 8 files into OUTDIR: check.log (everything printed), check.json
# (steps, environment, counts), summary.md (steps table + benchmark tables), pytest.xml,
# pytest.log, results.json, results.png, cupy-kernel-cache.tar.gz.
#
# --quick: rerun only what failed in a previous run (--previous DIR holding its check.json,
#   pytest.xml and results.json; default OUTDIR itself): the failed test cases (from the
#   junit XML, plus any it never reached), the benchmark suites whose cross-checks failed
#   (all, if the bench step failed), the compile check if it failed; env and pack always run.
# --cache TARBALL: unpack a previous run's kernel cache first (default: the previous run's
#   cupy-kernel-cache.tar.gz with --quick), so CuPy and gpuchain kernels are not rebuilt.
# --kemu DIR: with no GPU, run tests/gpu/test_kernels.py under the CPU kernel harness in DIR
#   (e.g. ../shared/kemu) instead of letting the GPU tests skip.
# Without a usable GPU every GPU step is skipped or run at CPU scale, and says so.
set -uo pipefail

usage() { sed -n '2,4p' "$0" >&2; exit 2; }
[ $# -ge 1 ] || usage
OUT=$1; shift
QUICK=0; PREV=""; CACHE=""; KEMU=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --previous) PREV=${2:?--previous needs a folder}; shift ;;
    --cache) CACHE=${2:?--cache needs a file}; shift ;;
    --kemu) KEMU=${2:?--kemu needs a folder}; shift ;;
    *) echo "gpu_check.sh: unknown option $1" >&2; usage ;;
  esac
  shift
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 2
PY=${PYTHON:-python3}
[ -z "${PYTHON:-}" ] && [ -x .venv/bin/python ] && PY=.venv/bin/python
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export XLA_PYTHON_CLIENT_PREALLOCATE=false
mkdir -p "$OUT" || exit 2
OUT=$(cd "$OUT" && pwd)
if [ "$QUICK" = 1 ]; then
  PREV=${PREV:-$OUT}
  [ -f "$PREV/check.json" ] || { echo "gpu_check.sh: --quick needs a previous run's check.json in $PREV" >&2; exit 2; }
  PREV=$(cd "$PREV" && pwd)
  WORK0=$(mktemp -d); cp -a "$PREV/." "$WORK0/"; PREV=$WORK0  # OUTDIR is overwritten below
  [ -z "$CACHE" ] && [ -f "$PREV/cupy-kernel-cache.tar.gz" ] && CACHE="$PREV/cupy-kernel-cache.tar.gz"
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK" ${WORK0:+"$WORK0"}' EXIT
rm -f "$OUT"/{check.log,check.json,summary.md,pytest.xml,pytest.log,results.json,results.png,cupy-kernel-cache.tar.gz}
LOG="$OUT/check.log"
: >"$LOG"
: >"$WORK/steps.tsv"
export CUPY_CACHE_DIR="$WORK/cupy-cache"
mkdir -p "$CUPY_CACHE_DIR"
if [ -n "$CACHE" ]; then
  tar xzf "$CACHE" -C "$CUPY_CACHE_DIR" && echo "kernel cache: unpacked $CACHE" >>"$LOG"
fi

say() { echo "[gpu_check $(date -u +%H:%M:%S)] $*" | tee -a "$LOG"; }
record() { printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" >>"$WORK/steps.tsv"; }
prev_status() {  # status of step $1 in the previous run's check.json ("" when none)
  "$PY" -m benchmarks.gpu_check step-status "$PREV/check.json" "$1" 2>/dev/null
}
# step NAME CAP ESTIMATE CMD...: exit 0 ok, 77 skipped, 124 cap reached, else failed.
# CMD may be one of the functions below (exported, run by a child bash under timeout).
step() {
  local name=$1 cap=$2 est=$3 t0 rc status ms
  shift 3
  say "step $name (estimate ${est} s, cap ${cap} s): $*"
  t0=$(date +%s%N)
  # SIGINT first: pytest then still writes its junit XML for the cases it finished
  timeout -s INT --kill-after=15 "$cap" bash -c '"$@"' _ "$@" >>"$LOG" 2>&1
  rc=$?
  case $rc in 0) status=ok ;; 77) status=skipped ;; 124|130|137) status=timeout ;; *) status=failed ;; esac
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  record "$name" "$status" "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))" "$est" "${DETAIL:-} (exit $rc)"
  say "step $name: $status after $((ms / 1000)) s"
  DETAIL=""
}
skip() { record "$1" skipped 0 "$2" "$3"; say "step $1: skipped ($3)"; }

export PY WORK OUT KEMU LOG CUPY_CACHE_DIR
GPU=1
"$PY" -c "from gpuchain.backend import cupy_unavailable_reason as r; import sys; m=r(); print(m or 'CuPy usable'); sys.exit(1 if m else 0)" >>"$LOG" 2>&1 || GPU=0
export GPU
say "root $ROOT, python $PY, GPU usable: $GPU, quick: $QUICK"

# 1. environment, versions, telemetry, counts
env_step() {
  nvidia-smi -L 2>&1 || echo "nvidia-smi: not available"
  "$PY" -m benchmarks.gpu_check env "$WORK/env.json" && "$PY" -m benchmarks.gpu_check counts "$WORK/counts.json"
}
export -f env_step
DETAIL="versions + NVML + counts" step env 30 20 env_step

# 2. NVRTC compile check for the device's own architecture
if [ "$QUICK" = 1 ] && [ "$(prev_status compile)" = ok ]; then
  skip compile 10 "passed in the previous run"
else
  ARCH=$("$PY" -m benchmarks.gpu_check arch 2>>"$LOG")
  DETAIL="arch $ARCH" step compile 30 10 "$PY" -m gpuchain.cuda compile --arch "$ARCH" --quiet
fi

# 3. pytest -m gpu with junit XML and durations
mapfile -t GPU_TESTS < <("$PY" -m benchmarks.gpu_check test-paths)
pytest_step() {  # output to pytest.log, not through a pipe: on SIGINT pytest still
  local targets=("$@") rc  # finishes its report and junit XML
  local PYTEST_ARGS=(-m gpu -p no:cacheprovider -o addopts="" -rfEs --durations=25
                     --junitxml="$OUT/pytest.xml")
  if [ "$GPU" = 0 ] && [ -n "$KEMU" ]; then
    HK_BUILD=${HK_BUILD:-/tmp/kemu-build} PYTHONPATH="$KEMU/fakecupy:$PYTHONPATH" \
      "$PY" -m pytest -q "${PYTEST_ARGS[@]}" tests/gpu/test_kernels.py >"$OUT/pytest.log" 2>&1
    rc=$?
    cat "$OUT/pytest.log"
    return "$rc"
  fi
  "$PY" -m pytest -q "${PYTEST_ARGS[@]}" "${targets[@]}" >"$OUT/pytest.log" 2>&1
  rc=$?
  cat "$OUT/pytest.log"
  # no device: the GPU modules skip at import (pytest exits 5, "no tests ran", or 4 when a
  # rerun names a case inside such a module: "not found")
  [ "$GPU" = 0 ] && { [ "$rc" = 0 ] || [ "$rc" = 4 ] || [ "$rc" = 5 ]; } && return 77
  return "$rc"
}
export -f pytest_step
if [ "$QUICK" = 1 ] && [ -f "$PREV/pytest.xml" ]; then
  mapfile -t FAILED < <("$PY" -m benchmarks.gpu_check rerun-tests "$PREV/pytest.xml")
  if [ "${#FAILED[@]}" = 0 ] && [ "$(prev_status pytest)" = ok ]; then
    cp "$PREV/pytest.xml" "$OUT/pytest.xml"; [ -f "$PREV/pytest.log" ] && cp "$PREV/pytest.log" "$OUT/"
    skip pytest 155 "no failures in the previous run (its junit XML kept)"
  elif [ "${#FAILED[@]}" = 0 ]; then
    DETAIL="previous run: $(prev_status pytest); all again" step pytest 210 155 pytest_step "${GPU_TESTS[@]}"
  else
    DETAIL="${#FAILED[@]} cases that failed or did not run before" step pytest 210 155 pytest_step "${FAILED[@]}"
  fi
else
  DETAIL="$(if [ "$GPU" = 1 ]; then echo "${GPU_TESTS[*]}"; elif [ -n "$KEMU" ]; then
             echo 'tests/gpu/test_kernels.py under kemu (CPU, no GPU)'; else
             echo "${GPU_TESTS[*]} (no GPU: skipped)"; fi)" \
    step pytest 210 155 pytest_step "${GPU_TESTS[@]}"
fi

# 4. benchmarks: fused-kernel bandwidth vs D2D copy; target train step TF32 off/on
SUITES=(bandwidth target)
if [ "$QUICK" = 1 ] && [ -f "$PREV/results.json" ] && [ "$(prev_status bench)" = ok ]; then
  read -r -a SUITES <<<"$("$PY" -m benchmarks.gpu_check failed-suites "$PREV/results.json")"
fi
if [ "${#SUITES[@]}" = 0 ]; then
  cp "$PREV/results.json" "$WORK/results.json" 2>/dev/null
  [ -f "$PREV/results.png" ] && cp "$PREV/results.png" "$WORK/"
  skip bench 175 "every cross-check agreed in the previous run (its results kept)"
else
  # PyTorch is the target's peer here (JAX's compile would cost ~40 s of the cap)
  BENCH=(--out "$WORK/bench" --no-progress --compile-limit 60 --peers torch)
  if [ "$GPU" = 1 ]; then BENCH+=(--backend cupy); else BENCH+=(--backend numpy --quick); fi
  DETAIL="${SUITES[*]}$([ "$GPU" = 0 ] && echo ' (no GPU: target at CPU scale, bandwidth skipped)')" \
    step bench 195 175 "$PY" -m gpuchain.bench "${SUITES[@]}" "${BENCH[@]}"
  for f in results.json results.md results.png; do
    [ -f "$WORK/bench/$f" ] && cp "$WORK/bench/$f" "$WORK/$f"
  done
fi
[ -f "$WORK/results.json" ] && cp "$WORK/results.json" "$OUT/results.json"
[ -f "$WORK/results.png" ] && cp "$WORK/results.png" "$OUT/results.png"

# 5. the kernel cache, for a second run (--cache)
pack() {
  tar czf "$OUT/cupy-kernel-cache.tar.gz" -C "$CUPY_CACHE_DIR" . || return 1
  local size; size=$(stat -c %s "$OUT/cupy-kernel-cache.tar.gz")
  echo "kernel cache: $(find "$CUPY_CACHE_DIR" -type f | wc -l) files, tarball $size bytes"
  if [ "$size" -gt 16000000 ]; then
    echo "kernel cache tarball over 16 MB: dropped (the device returns files up to 16 MiB)"
    rm -f "$OUT/cupy-kernel-cache.tar.gz"; return 1
  fi
}
export -f pack
DETAIL="CUPY_CACHE_DIR tarball" step pack 15 5 pack

"$PY" -m benchmarks.gpu_check summary "$WORK" "$OUT" >>"$LOG" 2>&1
rc=$?
say "done: $(ls "$OUT" | wc -l) files in $OUT; exit $rc"
tail -n +1 "$OUT/summary.md" 2>/dev/null | sed -n '1,40p'
exit $rc
