#!/usr/bin/env bash
# Every GPU check in one bounded run (the device is lent for minutes, not hours): measure the
# engine against the reference loop, torch.compile, the gRPC service under load (TRACER on the GPU
# through a model set's PyTorch weights), precision vs quality, in that order of priority; with
# TRAIN_SECONDS > 0, first train the demo model pair. Each part has its own time limit and failure
# does not stop the rest. Results: $OUT/gpu-results.md (+ suite.log, demo/).
#
#   OUT=/tmp/gpu bash benchmarks/gpu_suite.sh
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/out/gpu}
mkdir -p "$OUT"
export PYTHONPATH="$PWD/engine:$PWD/service:$PWD/clients:$PWD" PYTHONUNBUFFERED=1
PY=${PY:-python3}
BUDGET=${BUDGET:-570}
TRAIN_SECONDS=${TRAIN_SECONDS:-0}  # the demo set ships in the repo; 300 retrains it
# Knobs for a quick rehearsal on a CPU box (DEVICE=cpu WIDTH=small BATCHES=1 FACES=2 ...).
DEVICE=${DEVICE:-cuda}
WIDTH=${WIDTH:-full}
BATCHES=${BATCHES:-1,8,64,256}
FACES=${FACES:-64}
CALLERS=${CALLERS:-32}
LOAD_SECONDS=${LOAD_SECONDS:-24}
REF_IMAGES=${REF_IMAGES:-8}
START=$(date +%s)
RES=$OUT/gpu-results.md
LOG=$OUT/suite.log
left() { echo $((BUDGET - ($(date +%s) - START))); }
step() {  # step NAME SECONDS_NEEDED COMMAND...
  local name=$1 need=$2
  shift 2
  if [ "$(left)" -lt "$need" ]; then
    echo "- skipped $name: $(left) s left, needs $need" >>"$RES"
    return
  fi
  local limit=$((need * 2 < $(left) ? need * 2 : $(left)))
  echo "=== $name (limit ${limit}s, $(left)s left) $(date -u +%H:%M:%S)" >>"$LOG"
  timeout "$limit" "$@" >>"$LOG" 2>&1
  echo "=== rc=$? $name $(date -u +%H:%M:%S)" >>"$LOG"
}

{
  echo "# GPU results"
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); device: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null)"
  echo "- $($PY -c 'import torch, platform; print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, Python {platform.python_version()}")')"
  echo "- onnxruntime: $($PY -c 'import onnxruntime as o; print(o.__version__, o.get_available_providers())' 2>&1 | tail -1)"
  echo "- command: \`bash benchmarks/gpu_suite.sh\` (each part below names its own command)"
  echo
} >"$RES"

# 1. The demo model pair (issue 5), when asked for.
[ "$TRAIN_SECONDS" -gt 0 ] && step demo-models $((TRAIN_SECONDS + 40)) $PY scripts/build_demo_models.py --device "$DEVICE" --seconds "$TRAIN_SECONDS" \
  --reserve 70 --seed 0 --g-batch 64 --t-batch 64 --work "$OUT" --out "$OUT/demo" --log-every 250
if [ -f "$OUT/demo/manifest.json" ]; then
  rm -rf "$OUT/checkpoints"  # the set holds the same weights; keep the files that come back few
  DEMO=(--models "$OUT/demo")
else
  DEMO=(--models demo)  # the shipped set
fi

# 2. Engine vs reference, full-width StarGAN 128x128, TRACER per image (issues 2 and 7).
step engine-bench 70 $PY -m faceshield.cli bench --width "$WIDTH" --device "$DEVICE" --reference-images "$REF_IMAGES" \
  --methods union-saliency,pgd --batches "$BATCHES" --precisions bf16,tf32 --saliency tracer \
  --repeats 2 --budget 6 --out "$OUT/bench-fast.md"
[ -f "$OUT/bench-fast.md" ] && cat "$OUT/bench-fast.md" >>"$RES" && rm "$OUT/bench-fast.md"

# 2b. The same under torch.compile (the engine's --compile default), bf16.
step engine-compile 90 $PY -m faceshield.cli bench --width "$WIDTH" --device "$DEVICE" --reference-images 0 \
  --methods union-saliency,pgd --batches 64 --precisions bf16 --saliency tracer --repeats 2 --budget 6 --compile --out "$OUT/bench-compile.md"
[ -f "$OUT/bench-compile.md" ] && cat "$OUT/bench-compile.md" >>"$RES" && rm "$OUT/bench-compile.md"

# 3. Precision vs protection quality (bf16 vs fp32, same faces).
if [ ${#DEMO[@]} -gt 0 ]; then
  step quality-demo 40 $PY benchmarks/precision_quality.py --device "$DEVICE" "${DEMO[@]}" --faces "$FACES" --batch 32 --out "$RES"
fi
step quality-full 40 $PY benchmarks/precision_quality.py --device "$DEVICE" --faces "$FACES" --batch 32 --out "$RES"

# 4. The gRPC service on the same machine (needs the grpc extras carried as wheels in .whl/).
if ls .whl/*.whl >/dev/null 2>&1; then
  step wheels 30 $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  # A full-width set in the official layout (random weights): StarGAN + TRACER TE-0 at input 128,
  # imported with its PyTorch weights, so that TRACER runs on the GPU (no onnxruntime-gpu there).
  $PY -c 'import torch; from faceshield.engine.models.stargan import Generator; from faceshield.engine.models.tracer import build_tracer; torch.manual_seed(0); torch.save(Generator(64, 5, 6).state_dict(), "/tmp/full-G.ckpt"); torch.save({"module." + k: v for k, v in build_tracer("TE-0", seed=1, input_size=128).state_dict().items()}, "/tmp/TRACER-Efficient-0.pth")' >>"$LOG" 2>&1
  export PYTHONPATH="/tmp/site:$PYTHONPATH"
  step full-set 60 $PY -m faceshield.cli models import --generator /tmp/full-G.ckpt --tracer /tmp/TRACER-Efficient-0.pth \
    --tracer-size 128 --output /tmp/full-set --force
  step load-stream 110 $PY benchmarks/load_test.py --device "$DEVICE" --models /tmp/full-set --method union-saliency \
    --callers "$CALLERS" --seconds "$LOAD_SECONDS" --rounds 2 --steps 10 --targets Male --max-batch 64 --threads 4 --label "GPU machine" --out "$OUT/load-a.md"
  [ -f "$OUT/load-a.md" ] && cat "$OUT/load-a.md" >>"$RES" && rm "$OUT/load-a.md"
  step load-unary-1 60 $PY benchmarks/load_test.py --device "$DEVICE" --models /tmp/full-set --method union-saliency \
    --callers 1 --seconds "$LOAD_SECONDS" --rounds 1 --steps 10 --targets Male --max-batch 64 --threads 4 --label "GPU machine" --out "$OUT/load-b.md"
  [ -f "$OUT/load-b.md" ] && cat "$OUT/load-b.md" >>"$RES" && rm "$OUT/load-b.md"
fi

# 5. Strict fp32 points of the sweep (issue 2's record).
step engine-fp32 40 $PY -m faceshield.cli bench --width "$WIDTH" --device "$DEVICE" --reference-images 0 \
  --methods union-saliency,pgd --batches 1,64 --precisions fp32 --saliency tracer --repeats 2 --budget 6 --out "$OUT/bench-fp32.md"
[ -f "$OUT/bench-fp32.md" ] && cat "$OUT/bench-fp32.md" >>"$RES" && rm "$OUT/bench-fp32.md"

echo "- suite finished after $(($(date +%s) - START)) s" >>"$RES"
ls -la "$OUT" "$OUT"/demo >>"$LOG" 2>&1 || true  # no demo/ unless TRAIN_SECONDS > 0
