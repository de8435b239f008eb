"""What each decoder and ensemble size costs in Kaggle's harness: ms per sequence and hours.

    .venv/bin/python benchmarks/decoder_latency.py --config configs/demo.yaml
    .venv/bin/python benchmarks/decoder_latency.py --config configs/best.yaml --members 1 3

Builds the config's ``train:`` architecture (with both heads: ``ctc_weight`` 0.5 unless the
config sets one in (0, 1)) and ``preprocess: frames``, with random weights (seeded per member),
exports every decoder with int8 weights (the export default) and runs them in LiteRT with 1
thread, as Kaggle's scorer does, on the same synthetic sequences with 15-21 character phrases,
calls interleaved so that a busy machine slows them alike. Random weights rarely emit EOS, so
the decoding loops stop at ``--steps`` (19: an 18-character phrase and EOS; the search decoders
too, through ``max_steps``); greedy CTC has no loop. Prints p50/p95 wall ms, MB, the projected
hours for 40,000 sequences (mean ms; the harness allows 5 h) and each p50 as a ratio of the
single model's greedy CTC export measured in the same run.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from tflite_latency import typical_sequences  # noqa: E402

from aslfr_lib import atomic, landmarks  # noqa: E402
from aslfr_lib.config import load_yaml  # noqa: E402

# (label, decoder, beam): the decoders a submission can use
DECODERS = (
    ("ctc", "ctc", None),
    ("ctc_beam k=5", "ctc_beam", 5),
    ("attention", "attention", None),
    ("joint k=1", "joint", 1),
    ("joint k=5", "joint", 5),
)
TEST_SEQUENCES = 40_000
HARNESS_HOURS = 5.0


def model_config(path: str):
    from aslfr_lib.model import ArchitectureConfig, ModelConfig

    config = load_yaml(path)
    train = config.get("train", {}) or {}
    names = {f.name for f in dataclasses.fields(ArchitectureConfig)}
    architecture = {k: v for k, v in train.items() if k in names}
    if not 0.0 < architecture.get("ctc_weight", 0.0) < 1.0:
        architecture["ctc_weight"] = 0.5  # both heads: every decoder can run
    frames = int((config.get("preprocess", {}) or {}).get("frames", 128))
    return ModelConfig(**architecture, frames=frames, features=landmarks.NUM_FEATURES)


def random_model(config, seed: int):
    """Random weights with random embeddings (zeros would make every frame alike)."""
    import keras

    from aslfr_lib.model import build_model

    keras.utils.set_random_seed(seed)
    model = build_model(config)
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        if "embedding" in weight.path:
            weight.assign(rng.normal(0, 1.0, weight.shape).astype("float32"))
    return model


def build_variants(config, members: list[int], steps: int) -> dict[str, bytes]:
    from aslfr_lib.export import tflite
    from aslfr_lib.export.inference import InferenceModule

    models = [random_model(config, seed) for seed in range(max(members))]
    variants = {}
    for count in members:
        for label, decoder, beam in DECODERS:
            name = f"{count} x {label}"
            module = InferenceModule(models[:count], decoder=decoder, beam=beam, max_steps=steps)
            started = time.perf_counter()
            variants[name] = tflite.convert(module, "dynamic_range")
            assert b"Flex" not in variants[name]
            print(f"converted {name} in {time.perf_counter() - started:.0f} s", flush=True)
    return variants


def measure(variants: dict[str, bytes], sequences: list[np.ndarray], repeats: int) -> dict:
    from ai_edge_litert.interpreter import Interpreter

    runners = {}
    for name, flatbuffer in variants.items():
        runner = Interpreter(model_content=flatbuffer, num_threads=1).get_signature_runner()
        runner(inputs=sequences[0])  # allocation happens on the first call
        runners[name] = runner
    wall = {name: [] for name in runners}
    for _ in range(repeats):
        for frames in sequences:
            for name, runner in runners.items():
                started = time.perf_counter()
                runner(inputs=frames)
                wall[name].append((time.perf_counter() - started) * 1e3)
    return {
        name: {
            "p50_ms": float(np.median(times)),
            "p95_ms": float(np.percentile(times, 95)),
            "mean_ms": float(np.mean(times)),
            "hours_40k": float(np.mean(times)) * TEST_SEQUENCES / 3_600_000,
            "size_mb": len(variants[name]) / 1e6,
        }
        for name, times in wall.items()
    }


def report(results: dict, title: str) -> str:
    baseline = results[f"1 x {DECODERS[0][0]}"]["p50_ms"]
    lines = [
        f"{title}; LiteRT, 1 thread, int8 weights",
        "| export | MB | p50 ms | p95 ms | hours / 40k | p50 / greedy CTC |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['size_mb']:.2f} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | "
            f"{r['hours_40k']:.2f} | {r['p50_ms'] / baseline:.1f}x |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="configs/demo.yaml", help="its train: architecture")
    parser.add_argument("--members", type=int, nargs="+", default=[1, 3], help="ensemble sizes")
    parser.add_argument("--steps", type=int, default=19, help="decoding steps (phrase + EOS)")
    parser.add_argument("--sequences", type=int, default=20, help="sequences to time")
    parser.add_argument("--repeats", type=int, default=2, help="calls per sequence and export")
    parser.add_argument("--data-root", default=None, help="where the synthetic data is kept")
    parser.add_argument("--json", default=None, help="also write the numbers to this file")
    args = parser.parse_args(argv)

    root = Path(args.data_root or Path(tempfile.gettempdir()) / "aslfr-benchmarks")
    sequences = typical_sequences(root, args.sequences, 0)
    config = model_config(args.config)
    members = sorted(set([1, *args.members]))
    variants = build_variants(config, members, args.steps)
    results = measure(variants, sequences, args.repeats)
    title = (
        f"{args.config} architecture, {config.frames} frames, random weights, "
        f"{len(sequences)} sequences x {args.repeats}, decoding loops stopped at {args.steps}"
    )
    print(report(results, title))
    if args.json:
        atomic.write_json(args.json, {"config": args.config, "title": title, "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
