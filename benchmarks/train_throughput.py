"""Training throughput: the reference-compatible setup vs the default fast one, same run.

(a) reference: float32, decoder over all frame positions (``reference_decoder_positions``),
    the reference's causal cross-attention mask;
(b) fast: decoder over 32 positions, empty frames masked, and mixed precision (bfloat16 where a
    GPU is present; on a CPU, bfloat16 matmuls are slower than float32, so float32 there).

Both train with the real optimizer (RAdam + Lookahead, warmup-cosine schedule) on random data of
the real shapes; the first epoch (compilation) is not timed. Prints samples/s of each, the ratio
and the projected wall time of 100 epochs over 62k sequences.

    .venv/bin/python benchmarks/train_throughput.py            # default model, batch 64
    .venv/bin/python benchmarks/train_throughput.py --quick    # tiny sizes for a CPU
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time

REAL_SEQUENCES = 62_000
REAL_EPOCHS = 100


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny model, few steps (CPU)")
    parser.add_argument("--backend", default="tensorflow", choices=("tensorflow", "jax"))
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, help="timed steps per setup")
    parser.add_argument(
        "--mixed-precision",
        choices=("auto", "none", "bfloat16", "float16"),
        default="auto",
        help="precision of the fast setup (auto: bfloat16 on a GPU, none on a CPU)",
    )
    return parser.parse_args(argv)


def samples_per_second(keras, model_config, train_config, steps: int, precision: str) -> float:
    import numpy as np

    from aslfr_lib.data import ShuffledBatches
    from aslfr_lib.model import build_model
    from aslfr_lib.training import compile_model, dtype_policy
    from aslfr_lib.vocab import encode

    rng = np.random.default_rng(0)
    count = steps * train_config.batch_size
    shape = (count, model_config.frames, model_config.features)
    frames = rng.normal(0.5, 0.1, size=shape).astype(np.float32)
    for row in range(count):
        frames[row, rng.integers(model_config.frames // 4, model_config.frames) :] = 0.0
    phrases = ["12 main street", "www.example.com", "+1-555-0100", "jane doe"]
    targets = np.stack([encode(phrases[i % len(phrases)]) for i in range(count)])
    batches = ShuffledBatches(frames, targets, train_config.batch_size, seed=0)
    with dtype_policy(keras, precision):
        model = build_model(model_config)
        compile_model(model, train_config, steps_per_epoch=steps)
    model.fit(batches, epochs=1, verbose=0)  # compilation
    started = time.perf_counter()
    model.fit(batches, epochs=1, verbose=0)
    return count / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    os.environ["KERAS_BACKEND"] = args.backend
    import keras

    from aslfr_lib.model import ModelConfig
    from aslfr_lib.training import TrainConfig

    if args.quick:
        model_config = ModelConfig(
            frames=64, encoder_dim=64, decoder_dim=32, encoder_blocks=1, decoder_blocks=1
        )
        steps = args.steps or 8
    else:
        model_config = ModelConfig()
        steps = args.steps or 30
    on_gpu = _has_gpu(keras)
    fast_precision = args.mixed_precision
    if fast_precision == "auto":
        fast_precision = "bfloat16" if on_gpu else "none"
    train_config = TrainConfig(batch_size=args.batch_size, epochs=2, warmup_epochs=1)
    reference = dataclasses.replace(
        model_config, reference_decoder_positions=True, reference_cross_attention_mask=True
    )
    setups = {
        "reference (fp32, 128-position decoder, causal cross mask)": (reference, "none"),
        f"fast (32-position decoder, padding mask, {fast_precision})": (
            model_config,
            fast_precision,
        ),
    }
    rates = {}
    for name, (config, precision) in setups.items():
        keras.utils.clear_session()
        rates[name] = samples_per_second(keras, config, train_config, steps, precision)
    print(
        f"backend {keras.backend.backend()}, {'GPU' if on_gpu else 'CPU'}, batch "
        f"{args.batch_size}, model {'quick' if args.quick else 'default'}, {steps} timed steps"
    )
    for name, rate in rates.items():
        hours = REAL_EPOCHS * REAL_SEQUENCES / rate / 3600
        step_ms = 1000 * args.batch_size / rate
        print(
            f"{name:60}: {rate:9.1f} samples/s, {step_ms:7.1f} ms/step, "
            f"{REAL_EPOCHS} epochs x {REAL_SEQUENCES} sequences ~ {hours:6.2f} h"
        )
    (reference_rate, fast_rate) = rates.values()
    print(f"{'speed-up (fast / reference)':60}: {fast_rate / reference_rate:9.2f}x")
    return 0


def _has_gpu(keras) -> bool:
    if keras.backend.backend() == "jax":
        import jax

        return any(device.platform == "gpu" for device in jax.devices())
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


if __name__ == "__main__":
    sys.exit(main())
