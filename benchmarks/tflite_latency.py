"""Benchmark the exported model's latency against the reference notebook's way of exporting.

    .venv/bin/python benchmarks/tflite_latency.py [--model DIR|FILE.keras] [--sequences 30]

Both exports get the same weights (a trained model with ``--model``, else the V6-size model with
random weights) and run in LiteRT with 1 thread, as Kaggle's scorer does, on the same synthetic
sequences whose phrases have 15-21 characters (frame counts of typical phrases):

(b) reference-style: the seed's ``TFLiteModel`` - encoder once, then the whole decoder over all
    128 positions for every character, no cache (``export.reference``);
(a) ours: the submitted graph - encoder over the frames with landmarks, then KV-cached decoding
    (``export.inference``), float32;
(c) ours, CTC: the same encoder, then greedy CTC on the encoder's CTC head (``--decoder ctc``):
    no decoding loop at all, so it does not depend on the phrase length. The random model gets
    a CTC head (``ctc_weight`` 0.5) beside its decoder, so all variants share the same weights.

Decoding stops at EOS, and random weights rarely predict it, so the number of decoding steps is
fixed instead: 19 (a typical 18-character phrase, then EOS) and 32 (the most). Also measured, to
show where the time goes: (a) with the encoder over all 128 positions, (a) with dynamic-range
(int8) weights, and (a) stopped after 1 step (about preprocessing + encoder).

Timings of all variants are interleaved call by call, so a busy machine slows them alike. Wall
time is what Kaggle's clock sees; CPU time of the calling thread (LiteRT runs in it with 1
thread) is also given because it does not count time spent waiting for a core on a shared
machine. Ratios are (b) / (a) of the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from aslfr_lib import atomic, landmarks, vocab  # noqa: E402
from aslfr_lib.runner import read_sequences  # noqa: E402

TYPICAL_STEPS = 19  # 18 characters, then EOS
FULL_STEPS = vocab.TARGET_LENGTH
PHRASE_LENGTHS = range(15, 22)


def typical_sequences(root: Path, count: int, seed: int) -> list[np.ndarray]:
    """Raw [n, 164] frames of ``count`` synthetic sequences with 15-21 character phrases."""
    import pandas as pd

    from aslfr_lib.synthetic import SynthConfig, generate

    data = root / f"synthetic-{count}-{seed}"
    if not (data / "train.csv").is_file():
        config = SynthConfig(
            out=str(data), sequences=count * 3, participants=10, seed=seed, sequences_per_file=200
        )
        generate(config, progress=False)
    table = pd.read_csv(data / "train.csv", keep_default_na=False)
    wanted = table[table["phrase"].str.len().isin(PHRASE_LENGTHS)].head(count)
    frames = {}
    for path in wanted["path"].unique():
        frames.update(read_sequences(data / path, landmarks.SELECTED_COLUMNS))
    return [frames[s] for s in wanted["sequence_id"]]


def random_v6_model():
    """The V6-size model with random embeddings (zeros at init would make a degenerate graph
    no faster, but phrases would all be the same)."""
    from aslfr_lib.model import ModelConfig, build_model

    config = ModelConfig(ctc_weight=0.5)  # V6 plus a CTC head: (c) shares (a)'s weights
    model = build_model(config)
    rng = np.random.default_rng(0)
    for weight in model.weights:
        if "embedding" in weight.path:
            weight.assign(rng.normal(0, 1.0, weight.shape).astype("float32"))
    return model, config


def trained_model(path: str):
    """A training run's model and its ModelConfig (the run folder's config.json)."""
    import dataclasses

    from aslfr_lib.export.stage import load_trained_model
    from aslfr_lib.model import ArchitectureConfig, ModelConfig, model_frames

    model, file = load_trained_model(path)
    settings = json.loads((file.parent / "config.json").read_text())
    architecture = {f.name: settings[f.name] for f in dataclasses.fields(ArchitectureConfig)}
    config = ModelConfig(
        **architecture, frames=model_frames(model), features=landmarks.NUM_FEATURES
    )
    return model, config


def build_variants(model, config, mirror: bool = True) -> dict[str, bytes]:
    from aslfr_lib.export import reference, tflite
    from aslfr_lib.export.inference import InferenceModule
    from aslfr_lib.model import has_ctc_head

    twin = reference.reference_positions_twin(model, config)
    variants = {}
    for steps in (TYPICAL_STEPS, FULL_STEPS):
        modules = {
            "reference": (reference.ReferenceInferenceModule(twin, mirror, steps), "float32"),
            "ours": (InferenceModule(model, mirror, max_steps=steps), "float32"),
            "ours_all_frames": (
                InferenceModule(model, mirror, skip_empty_frames=False, max_steps=steps),
                "float32",
            ),
            "ours_dynamic_range": (
                InferenceModule(model, mirror, max_steps=steps),
                "dynamic_range",
            ),
        }
        for name, (module, quantization) in modules.items():
            started = time.perf_counter()
            variants[f"{name}@{steps}"] = tflite.convert(module, quantization)
            print(f"converted {name}@{steps} in {time.perf_counter() - started:.0f} s", flush=True)
    variants["ours@1"] = tflite.convert(InferenceModule(model, mirror, max_steps=1))
    if has_ctc_head(model):
        for quantization in ("float32", "dynamic_range"):
            name = "ours_ctc" + ("" if quantization == "float32" else "_dynamic_range")
            module = InferenceModule(model, mirror, decoder="ctc")
            variants[name] = tflite.convert(module, quantization)
    return variants


def measure(variants: dict[str, bytes], sequences: list[np.ndarray], repeats: int) -> dict:
    from ai_edge_litert.interpreter import Interpreter

    runners = {}
    for name, flatbuffer in variants.items():
        runner = Interpreter(model_content=flatbuffer, num_threads=1).get_signature_runner()
        runner(inputs=sequences[0])  # allocation and delegate set-up happen on the first call
        runners[name] = runner
    wall = {name: [] for name in runners}
    cpu = {name: [] for name in runners}
    outputs = {name: [] for name in runners}
    for repeat in range(repeats):
        for frames in sequences:
            for name, runner in runners.items():
                started_wall, started_cpu = time.perf_counter(), time.thread_time()
                result = runner(inputs=frames)["outputs"]
                cpu[name].append((time.thread_time() - started_cpu) * 1e3)
                wall[name].append((time.perf_counter() - started_wall) * 1e3)
                if repeat == 0:
                    outputs[name].append(vocab.decode_like_harness(np.argmax(result, axis=1)))
    return {
        name: {
            "wall_p50_ms": float(np.median(wall[name])),
            "wall_p95_ms": float(np.percentile(wall[name], 95)),
            "cpu_p50_ms": float(np.median(cpu[name])),
            "size_mb": len(variants[name]) / 1e6,
            "phrases": outputs[name],
        }
        for name in runners
    }


def report(results: dict, sequences: int, repeats: int) -> dict:
    summary = {"sequences": sequences, "calls_per_variant": sequences * repeats, "steps": {}}
    print(f"\n{sequences} sequences x {repeats} repeats, LiteRT, 1 thread; median ms per sequence")
    print(f"{'variant':<28}{'wall p50':>10}{'wall p95':>10}{'cpu p50':>10}{'MB':>8}")
    for name, result in results.items():
        print(
            f"{name:<28}{result['wall_p50_ms']:>10.2f}{result['wall_p95_ms']:>10.2f}"
            f"{result['cpu_p50_ms']:>10.2f}{result['size_mb']:>8.1f}"
        )
    for steps in (TYPICAL_STEPS, FULL_STEPS):
        ours, baseline = results[f"ours@{steps}"], results[f"reference@{steps}"]
        same = ours["phrases"] == baseline["phrases"]
        quantized = results[f"ours_dynamic_range@{steps}"]["phrases"]
        agreement = np.mean([a == b for a, b in zip(quantized, ours["phrases"], strict=True)])
        entry = {
            "ratio_wall": baseline["wall_p50_ms"] / ours["wall_p50_ms"],
            "ratio_cpu": baseline["cpu_p50_ms"] / ours["cpu_p50_ms"],
            "ratio_wall_dynamic_range": baseline["wall_p50_ms"]
            / results[f"ours_dynamic_range@{steps}"]["wall_p50_ms"],
            "reference_and_ours_same_phrases": bool(same),
            "dynamic_range_same_phrases_share": float(agreement),
        }
        summary["steps"][steps] = entry
        print(
            f"{steps} steps: (b)/(a) = {entry['ratio_wall']:.1f}x wall, {entry['ratio_cpu']:.1f}x "
            f"cpu ({entry['ratio_wall_dynamic_range']:.1f}x with dynamic-range weights); same "
            f"phrases: {same}; dynamic-range phrases = float32 phrases for "
            f"{agreement:.0%} of sequences"
        )
    if "ours_ctc" in results:
        ctc = results["ours_ctc"]["wall_p50_ms"]
        summary["ctc"] = {
            f"ratio_wall_vs_reference@{steps}": results[f"reference@{steps}"]["wall_p50_ms"] / ctc
            for steps in (TYPICAL_STEPS, FULL_STEPS)
        }
        summary["ctc"]["ratio_wall_vs_ours@19"] = (
            results[f"ours@{TYPICAL_STEPS}"]["wall_p50_ms"] / ctc
        )
        versus_reference = summary["ctc"][f"ratio_wall_vs_reference@{TYPICAL_STEPS}"]
        versus_ours = summary["ctc"]["ratio_wall_vs_ours@19"]
        print(
            f"CTC: (b)@{TYPICAL_STEPS}/(c) = {versus_reference:.1f}x wall, "
            f"(a)@{TYPICAL_STEPS}/(c) = {versus_ours:.1f}x"
        )
    summary["results"] = {
        name: {k: v for k, v in result.items() if k != "phrases"}
        for name, result in results.items()
    }
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="trained model folder or .keras (default: random V6)")
    parser.add_argument("--sequences", type=int, default=30, help="sequences to time")
    parser.add_argument("--repeats", type=int, default=3, help="calls per sequence and variant")
    parser.add_argument("--seed", type=int, default=0, help="synthetic data seed")
    parser.add_argument("--data-root", default=None, help="where the synthetic data is kept")
    parser.add_argument("--json", default=None, help="also write the numbers to this file")
    args = parser.parse_args(argv)

    root = Path(args.data_root or Path(tempfile.gettempdir()) / "aslfr-benchmarks")
    sequences = typical_sequences(root, args.sequences, args.seed)
    model, config = trained_model(args.model) if args.model else random_v6_model()
    variants = build_variants(model, config)
    results = measure(variants, sequences, args.repeats)
    summary = report(results, len(sequences), args.repeats)
    summary["model"] = args.model or "random V6"
    if args.json:
        atomic.write_json(args.json, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
