#!/usr/bin/env bash
# GPU readiness check of the reference EAR: one script, <= 8 minutes on one GPU; writes a results folder.
#
#   benchmarks/gpu_check.sh [--smoke] [--out DIR] [--python PY]
#
# Steps (each one's output in DIR; a summary in DIR/summary.md; the exit code is non-zero if any step failed):
#   1. facts          device, memory, torch / CUDA versions, bf16 support
#   2. tests          tests/ear/test_ear_device.py (CPU and CUDA) and the GPU-path defect tests
#   3. round trip     tiny preset: train 20 steps, --resume to 40, sample 20 images, all on the device
#   4. bench_ear      EAR-B (width 768, depth 24, 256 tokens) in bf16: images/s, MFU against a measured
#                     bf16 matmul peak, peak memory; implicit-vs-diffusion sampling latency at EAR-B size
#   5. scores         the energy score on the device against a float64 torch.cdist loss (fp32 and bf16)
#   6. train EAR-B    100 steps on synthetic latents: loss falls, no NaN
# --smoke runs everything on the CPU at tiny sizes (the CI test runs this).
set -uo pipefail
cd "$(dirname "$0")/.."
SMOKE=0
OUT=""
PY="${PYTHON:-}"
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) SMOKE=1 ;;
    --out) OUT="$2"; shift ;;
    --python) PY="$2"; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
if [ -z "$OUT" ]; then
  if [ "$SMOKE" = 1 ]; then OUT=$(mktemp -d); else OUT="benchmarks/results_gpu_check"; fi
fi
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
SUMMARY="$OUT/summary.md"
FAILED=0
T0=$(date +%s)
if [ "$SMOKE" = 1 ]; then DEV=cpu; SMK=--smoke; else DEV=cuda; SMK=""; fi
echo "# GPU check ($([ "$SMOKE" = 1 ] && echo smoke, CPU || echo "$DEV")), $(date -u +%Y-%m-%dT%H:%MZ)" > "$SUMMARY"
echo >> "$SUMMARY"

step() {  # step NAME TIMEOUT_S command...  (the limits fit the 8-minute GPU budget; --smoke on a shared
          # CPU machine may be far slower, so there every step gets 15 minutes)
  local name="$1" limit="$2"; shift 2
  if [ "$SMOKE" = 1 ]; then limit=900; fi
  local t=$(date +%s)
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  local dt=$(( $(date +%s) - t ))
  if [ $rc -eq 0 ]; then echo "- $name: ok (${dt} s)" >> "$SUMMARY"; else
    echo "- $name: FAILED rc=$rc (${dt} s; see $name.log)" >> "$SUMMARY"; FAILED=1; fi
  echo "[gpu_check] $name rc=$rc ${dt}s"
}

step facts 60 "$PY" benchmarks/gpu_check.py facts --out "$OUT" $SMK
if [ "$SMOKE" = 1 ]; then
  step tests 120 "$PY" -m pytest -q -p no:cacheprovider tests/ear/test_ear_device.py -k energy_score
else
  step tests 150 "$PY" -m pytest -q -p no:cacheprovider tests/ear/test_ear_device.py \
    tests/ear/test_ear_gpu_path.py -k "not rank_that_sees and not imagenet"
fi
RUN="$OUT/tiny_run"
rm -rf "$RUN"
COMMON=(--preset tiny --run-dir "$RUN" --no-progress --device "$DEV" --no-eval --threads 1
        --set train.log_every=5)
step round_trip 120 bash -c "
  '$PY' reference/ear/train.py ${COMMON[*]} --max-steps 20 &&
  '$PY' reference/ear/train.py ${COMMON[*]} --max-steps 40 --resume '$RUN' &&
  '$PY' reference/ear/sample.py --ckpt '$RUN' --num-images 20 --batch-size 10 --device '$DEV' &&
  '$PY' -c \"import sys; sys.path.insert(0, '.'); from reference.ear.checkpoint import load_checkpoint; \
p, _ = load_checkpoint('$RUN'); assert p['step'] == 40, p['step']; print('step', p['step'])\"
"
if [ "$SMOKE" = 1 ]; then
  step bench_ear 120 "$PY" benchmarks/bench_ear.py --size tiny --device cpu --variants default \
    --warmup 1 --steps 2 --matmul-n 256 --sample-images 2 --diffusion-steps 5 --json "$OUT/bench_ear.json"
else
  step bench_ear 240 "$PY" benchmarks/bench_ear.py --size ear_b --device cuda --variants default \
    --warmup 3 --steps 10 --sample-images 16 --json "$OUT/bench_ear.json"
fi
step scores 60 "$PY" benchmarks/gpu_check.py scores --out "$OUT" $SMK
step train_ear_b 150 "$PY" benchmarks/gpu_check.py train-ear-b --out "$OUT" $SMK
echo >> "$SUMMARY"
echo "total $(( $(date +%s) - T0 )) s; results in $OUT" >> "$SUMMARY"
cat "$SUMMARY"
exit $FAILED
