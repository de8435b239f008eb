#!/usr/bin/env bash
# One lent GPU session (H100/H200 with JAX, no TensorFlow, no registry), as one short script:
#   1. what the machine is (nvidia-smi; aslfr doctor through benchmarks/gpu_check.sh when present)
#   2. training throughput, reference-style vs fast (benchmarks/train_throughput.py --backend jax)
#   3. configs/best.yaml at its size on the default style's data: seconds per epoch
#   4. the robustness sweep (benchmarks/robustness.py): recipes x generator styles x seeds at the
#      demo's budget, scored on every held-out sequence; some trained models come back as a
#      tarball for what needs TensorFlow (TFLite scoring, ensembles) on a CPU machine
# Wheels the image lacks (keras, optree, namex, rapidfuzz for Python 3.12) travel in .whl/.
# Usage (device tool): bash benchmarks/gpu_session.sh [robustness.py --recipe ... options]
# Environment: STYLES, SEEDS, SEQUENCES, PARALLEL, SWEEP_SECONDS, SKIP_CHECKS=1 (only the sweep),
# KEEP_MODELS (recipe names whose models come back), KEEP_STYLES.
set -uo pipefail
OUT=${OUT:-/tmp/gpu-session}
mkdir -p "$OUT"
started=$SECONDS
log="$OUT/session.log"
stamp() { echo "[$((SECONDS - started)) s] $*" | tee -a "$log"; }

if [ -z "${SKIP_WHEELS:-}" ]; then  # SKIP_WHEELS=1: a machine that has them (a dry run here)
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
fi
export PYTHONPATH=/tmp/site:$PWD KERAS_BACKEND=jax PYTHONUNBUFFERED=1
export XLA_PYTHON_CLIENT_PREALLOCATE=false  # several training processes share the GPU
STYLES=${STYLES:-default,fluent,deliberate,idiolect,dropout,two_hands,mix}
SEEDS=${SEEDS:-42,43}
PARALLEL=${PARALLEL:-14}
SWEEP_SECONDS=${SWEEP_SECONDS:-300}
MIN_FRAMES=${MIN_FRAMES:-2}
SEQUENCES=${SEQUENCES:-6000}
KEEP_MODELS=${KEEP_MODELS:-demo}
KEEP_STYLES=${KEEP_STYLES:-default mix}

stamp "datasets (CPU) in the background"
python3 benchmarks/robustness.py --styles "$STYLES" --recipe none=configs/demo.yaml \
    --datasets-only --parallel 8 --data-dir /tmp/data --min-frames-per-char "$MIN_FRAMES" \
    --sequences "$SEQUENCES" \
    >> "$log" 2>&1 &
datasets=$!
if [ -z "${SKIP_CHECKS:-}" ]; then
    stamp "machine"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/doctor.txt" 2>&1
    python3 -c "import sys, jax, keras; print(sys.version); print('jax', jax.__version__, \
jax.devices()); print('keras', keras.__version__, keras.backend.backend())" >> "$OUT/doctor.txt" 2>&1
    if [ -f benchmarks/gpu_check.sh ]; then bash benchmarks/gpu_check.sh >> "$OUT/doctor.txt" 2>&1; fi
    stamp "throughput"
    timeout 120 python3 benchmarks/train_throughput.py --backend jax --batch-size 256 \
        > "$OUT/throughput.txt" 2>&1
fi
wait $datasets
stamp "datasets done"
if [ -z "${SKIP_CHECKS:-}" ]; then
    stamp "best.yaml: 3 epochs on the default style, bfloat16, batch 256"
    timeout 120 python3 -m aslfr_lib.cli train --config configs/best.yaml \
        --processed "/tmp/data/default-$SEQUENCES/processed-mf$MIN_FRAMES" --out /tmp/best \
        --epochs 3 --warmup-epochs 0 --backend jax --mixed-precision bfloat16 --batch-size 256 \
        --verbose 2 --examples-every 0 > "$OUT/best_yaml.txt" 2>&1
    stamp "best.yaml done"
fi

stamp "robustness sweep"
timeout "$SWEEP_SECONDS" python3 benchmarks/robustness.py --backend jax --parallel "$PARALLEL" \
    --styles "$STYLES" --seeds "$SEEDS" --data-dir /tmp/data --out /tmp/robustness \
    --min-frames-per-char "$MIN_FRAMES" --deadline-s $((SWEEP_SECONDS / 2)) \
    --sequences "$SEQUENCES" "$@" \
    > "$OUT/robustness.txt" 2>&1
stamp "sweep done"
cp /tmp/robustness/results.json "$OUT/" 2>/dev/null
cd /tmp/robustness/runs 2>/dev/null && {
    kept=()
    for recipe in $KEEP_MODELS; do
        for style in $KEEP_STYLES; do kept+=("$recipe"/"$style"-s*); done
    done
    tar czf "$OUT/models.tgz" --exclude last.keras --exclude '*.png' "${kept[@]}" 2>>"$log"
    cd - > /dev/null
}
ls -la "$OUT" >> "$log"
stamp "end"
