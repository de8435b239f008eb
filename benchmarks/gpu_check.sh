#!/usr/bin/env bash
# What a lent GPU machine is, for aslfr: `aslfr doctor`, the line `aslfr train` starts with (and
# records in history.json) on the JAX backend, and whether cuDNN's fused attention takes the
# model's masks. Needs JAX (with its CUDA plugin), Keras, numpy and pandas; never TensorFlow, never
# the internet. When Keras is missing, the wheels in .whl/ are installed offline into /tmp/site.
# Usage, from the repository root (device tool): bash benchmarks/gpu_check.sh
# (benchmarks/gpu_session.sh runs it too). PYTHON=python3.12 picks another interpreter.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
export KERAS_BACKEND=jax PYTHONUNBUFFERED=1
case ":${PYTHONPATH:-}:" in
    *":$PWD:"*) ;;
    *) export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD" ;;
esac
if ! "$PYTHON" -c "import keras" 2>/dev/null && compgen -G ".whl/*.whl" > /dev/null; then
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
    export PYTHONPATH="/tmp/site:$PYTHONPATH"
fi

echo "== nvidia-smi"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 || echo "(no nvidia-smi)"

echo "== aslfr doctor"
started=$(date +%s%N)
"$PYTHON" -m aslfr_lib.cli doctor
code=$?
echo "(doctor: exit $code, 0 = ready; $(( ($(date +%s%N) - started) / 1000000 )) ms)"

echo "== runtime: what aslfr train prints and records (KERAS_BACKEND=jax)"
"$PYTHON" - <<'PYTHON'
import json
import sys

from aslfr_lib import runtime
from aslfr_lib.backend import import_keras

keras = import_keras("jax")
for precision in ("none", "bfloat16"):
    where = runtime.describe("jax", precision, None)
    print(runtime.summary_line(where))
    if where["warning"]:
        print("WARNING:", where["warning"])
print(json.dumps(where, indent=2))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

print("jax", jax.__version__, "keras", keras.__version__, jax.devices())
# cuDNN's fused attention, with the masks the model can pass: (B, 1, 1, S) is what it passes now.
batch, frames, heads, head_dim = 2, 128, 4, 48
query = jnp.ones((batch, frames, heads, head_dim), jnp.bfloat16)
masks = {
    "no mask": None,
    "key padding (B, 1, 1, S)": jnp.ones((batch, 1, 1, frames), bool),
    "key padding broadcast (B, 1, T, S)": jnp.ones((batch, 1, frames, frames), bool),
}
for name, mask in masks.items():
    try:
        jax.block_until_ready(
            jax.nn.dot_product_attention(query, query, query, mask=mask, implementation="cudnn")
        )
        print(f"cuDNN fused attention, {name}: yes")
    except Exception as error:  # noqa: BLE001 - the answer is the error
        print(f"cuDNN fused attention, {name}: no ({str(error).splitlines()[0][:160]})")
print("tensorflow imported:", "tensorflow" in sys.modules)
PYTHON
