"""Benchmark the training loader: ragged storage resized per batch against pre-resized arrays.

On one synthetic set of ragged sequences (random lengths, memory-mapped from disk as
``aslfr preprocess`` writes them), the time per batch of ``data.ShuffledBatches`` reading

(a) pre-resized (N, T, 164) arrays (the storage before format 2; ``np.load(mmap_mode="r")``),
(b) ragged frames, each batch padded or resized to T with ``resize_frames`` (format 2),
(c) as (b) plus ``aslfr_lib.augmentation``: every probability 0.5, or ``--config``'s settings,

best of ``--repeats`` full epochs, in the same run; then the ratios (b)/(a) and (c)/(b) and, unless
``--train-steps 0``, each loader's time as a share of one CPU training step of the default model
(``model.fit`` on pre-resized batches, the compiling epoch not timed). The loader runs in the
training loop's thread here, so the shares are the worst case: ``PyDataset(workers=N)`` overlaps
it with the step. Never asserts: prints numbers to compare.

    .venv/bin/python benchmarks/loader.py                     # 2,000 sequences, batch 64, T=128
    .venv/bin/python benchmarks/loader.py --train-steps 0     # loader only (seconds)
    .venv/bin/python benchmarks/loader.py --config configs/demo.yaml --batch-size 32 --frames 64
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sequences", type=int, default=2000)
    parser.add_argument("--min-length", type=int, default=20, help="shortest sequence (frames)")
    parser.add_argument("--max-length", type=int, default=400, help="longest sequence (frames)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--frames", type=int, default=128, help="T: frames after resizing")
    parser.add_argument("--repeats", type=int, default=3, help="epochs per setup (best counts)")
    parser.add_argument(
        "--train-steps", type=int, default=4, help="timed CPU training steps (0: skip)"
    )
    parser.add_argument("--backend", default="tensorflow", choices=("tensorflow", "jax"))
    parser.add_argument(
        "--config",
        help="YAML whose train: section sets the model and the augmentation of (c) "
        "(e.g. configs/demo.yaml; default: the V6 model, every augmentation at p=0.5)",
    )
    return parser.parse_args(argv)


def train_config_of(args: argparse.Namespace):
    """The TrainConfig of ``--config``'s train section (V6 defaults without it)."""
    from aslfr_lib.config import load_yaml, make
    from aslfr_lib.training import TrainConfig

    settings = load_yaml(args.config).get("train", {}) if args.config else {}
    settings = {**settings, "batch_size": args.batch_size, "epochs": 2, "warmup_epochs": 1}
    return make(TrainConfig, settings)


AUGMENTED = "(c) ragged + resize + augmentation"


def synthetic_ragged(folder: Path, args: argparse.Namespace):
    """Random hand-like sequences written as ragged ``frames.npy`` + ``offsets.npy``, read back
    memory-mapped (a sequence shows one hand, lips always, values in (0, 1), zeros = missing)."""
    from aslfr_lib import landmarks
    from aslfr_lib.data import RaggedFrames

    rng = np.random.default_rng(0)
    lengths = rng.integers(args.min_length, args.max_length + 1, args.sequences)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    values = rng.uniform(0.05, 0.95, (offsets[-1], landmarks.NUM_FEATURES)).astype(np.float32)
    values[:, landmarks.LEFT_HAND] = 0
    np.save(folder / "frames.npy", values)
    np.save(folder / "offsets.npy", offsets)
    return RaggedFrames(
        np.load(folder / "frames.npy", mmap_mode="r"), np.load(folder / "offsets.npy")
    )


def all_probabilities(value: float):
    """An enabled AugmentationConfig with every ``*_probability`` field at ``value``."""
    import dataclasses

    from aslfr_lib.augmentation import AugmentationConfig

    names = [
        f.name for f in dataclasses.fields(AugmentationConfig) if f.name.endswith("probability")
    ]
    return AugmentationConfig(**dict.fromkeys(names, value))


def seconds_per_batch(batches, repeats: int) -> float:
    """Best over ``repeats`` epochs of the mean time to read one batch."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for index in range(len(batches)):
            batches[index]
        best = min(best, (time.perf_counter() - started) / len(batches))
        batches.on_epoch_end()
    return best


def train_step_seconds(keras, frames: np.ndarray, targets: np.ndarray, args) -> float:
    """Seconds per ``model.fit`` step of the default model on pre-resized batches, on the CPU."""
    from aslfr_lib.data import ShuffledBatches
    from aslfr_lib.model import ModelConfig, build_model
    from aslfr_lib.training import compile_model

    count = args.train_steps * args.batch_size
    batches = ShuffledBatches(frames[:count], targets[:count], args.batch_size, seed=0)
    train_config = train_config_of(args)
    model_config = ModelConfig.from_architecture(train_config, args.frames, frames.shape[2])
    model = build_model(model_config)
    compile_model(model, train_config, steps_per_epoch=args.train_steps)
    if isinstance(model.output, dict):  # a CTC head: the targets once per output
        from aslfr_lib.training import TargetsPerOutput

        batches = TargetsPerOutput(batches, list(model.output))
    model.fit(batches, epochs=1, verbose=0)  # compilation
    started = time.perf_counter()
    model.fit(batches, epochs=1, verbose=0)
    return (time.perf_counter() - started) / args.train_steps


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("KERAS_BACKEND", args.backend)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.train_steps:
        os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # a CPU step is the yardstick
    import keras

    from aslfr_lib.data import ShuffledBatches
    from aslfr_lib.vocab import encode

    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        ragged = synthetic_ragged(folder, args)
        np.save(folder / "X.npy", np.asarray(ragged.resized(args.frames)))
        resized = np.load(folder / "X.npy", mmap_mode="r")
        phrases = ["12 main street", "www.example.com", "+1-555-0100", "jane doe"]
        targets = np.stack([encode(phrases[i % len(phrases)]) for i in range(len(ragged))])
        common = {"batch_size": args.batch_size, "seed": 0}
        setups = {
            "(a) pre-resized arrays": ShuffledBatches(resized, targets, **common),
            "(b) ragged + resize": ShuffledBatches(ragged, targets, length=args.frames, **common),
        }
        config = train_config_of(args)
        augmentation = config.augmentation if args.config else all_probabilities(0.5)
        setups[AUGMENTED] = ShuffledBatches(
            ragged, targets, length=args.frames, augmentation=augmentation, **common
        )
        times = {name: seconds_per_batch(batches, args.repeats) for name, batches in setups.items()}
        step = None
        if args.train_steps:
            step = train_step_seconds(keras, np.asarray(resized), targets, args)

    lengths = ragged.lengths
    print(
        f"{len(ragged)} sequences of {lengths.min()}..{lengths.max()} frames "
        f"(mean {lengths.mean():.0f}), batch {args.batch_size}, T={args.frames}, "
        f"best of {args.repeats} epochs of {len(setups['(b) ragged + resize'])} batches"
    )
    for name, seconds in times.items():
        share = f", {100 * seconds / step:5.2f} % of a training step" if step else ""
        print(f"{name:44}: {1000 * seconds:8.2f} ms/batch{share}")
    a, b, c = times.values()
    print(f"{'ratio (b) / (a)':44}: {b / a:8.2f}x")
    print(f"{'ratio (c) / (b)':44}: {c / b:8.2f}x")
    if step:
        print(
            f"{'CPU training step, ' + (args.config or 'V6 model'):44}: {1000 * step:8.1f} ms/step "
            f"({keras.backend.backend()}, {args.train_steps} timed steps)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
