"""More sequences or more epochs? One recipe, one training budget, datasets of different sizes.

Every row trains the same recipe (the ``train`` section of ``--config``, by default the demo's)
for about the same number of steps: ``epochs = round(budget / training sequences)``, with
``budget`` the smallest dataset's training sequences x ``--epochs``. The datasets differ only in
``sequences`` (same 40 signers, same seed, the generator's default difficulty), so a row's gain
is what more *different* sequences buy at equal compute. Every model is exported (int8, CTC) and
scored by ``aslfr check-submission`` on one separate test set whose signers none of the rows
saw (another synth seed), through ``model.tflite`` as Kaggle's harness runs it.

``--frames`` adds rows: the largest dataset at other model lengths (``aslfr train --frames``; the
stored frames are ragged, so no preprocessing again), same epochs. Longer inputs keep more
frames per letter but cost time per step.

    .venv/bin/python benchmarks/data_budget.py                       # 1500, 3000, 6000 (~20 min)
    .venv/bin/python benchmarks/data_budget.py --sizes 200 400 --epochs 2 --test-sequences 50
    .venv/bin/python benchmarks/data_budget.py --frames 48 96       # + 6000 at 48 and 96 frames

Prints the table (score ratio against the smallest dataset, measured in the same run); results
are cached per size in ``--out`` (``--force`` reruns). A row's raw parquet is deleted once it
is preprocessed: 1,000 synthetic sequences take 0.9 GB.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import sys
from pathlib import Path

from aslfr_lib import atomic
from aslfr_lib.config import load_yaml
from aslfr_lib.preprocess import PreprocessConfig

ROOT = Path(__file__).resolve().parents[1]
_SPEC = importlib.util.spec_from_file_location("bench_recipes", ROOT / "benchmarks" / "recipes.py")
recipes = importlib.util.module_from_spec(_SPEC)
sys.modules[_SPEC.name] = recipes  # dataclasses look their module up there
_SPEC.loader.exec_module(recipes)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="configs/demo.yaml", help="pipeline config (recipe)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1500, 3000, 6000])
    parser.add_argument("--epochs", type=int, default=30, help="epochs of the smallest dataset")
    parser.add_argument("--participants", type=int, default=40)
    parser.add_argument("--test-sequences", type=int, default=600)
    parser.add_argument("--test-seed", type=int, default=7, help="synth seed of the test signers")
    parser.add_argument(
        "--frames",
        type=int,
        nargs="*",
        default=[],
        help="other model lengths to train the largest dataset at (default: only the config's)",
    )
    parser.add_argument("--out", default="outputs/bench-data-budget")
    parser.add_argument("--force", action="store_true", help="rerun cached sizes")
    return parser.parse_args(argv)


def synth(out: Path, sequences: int, participants: int, seed: int, log: Path) -> None:
    """``aslfr synth`` into ``out`` unless it is there (a killed run leaves only ``.partial``)."""
    if (out / "train.csv").exists():
        return
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    command = [
        *recipes.aslfr_command(),
        "synth",
        "--out",
        partial,
        "--sequences",
        sequences,
        "--participants",
        participants,
        "--seed",
        seed,
        "--sequences-per-file",
        500,
    ]
    recipes.run_step("aslfr synth", command, log)
    partial.rename(out)


def prepare(args: argparse.Namespace, recipe: dict, size: int) -> tuple[Path, int]:
    """The processed dataset of ``size`` sequences (made once) and its training sequences."""
    folder = Path(args.out) / f"sequences-{size}"
    processed = folder / "processed"
    settings = {"size": size, "participants": args.participants, "config": recipe["preprocess"]}
    stamp = folder / "dataset.json"
    if not (stamp.exists() and json.loads(stamp.read_text(encoding="utf-8")) == settings):
        shutil.rmtree(folder, ignore_errors=True)
        data = folder / "data"
        recipes.say(f"{size} sequences: synth + preprocess")
        synth(data, size, args.participants, 0, folder / "synth.log")
        command = [
            *recipes.aslfr_command(),
            "preprocess",
            "--config",
            args.config,
            "--data",
            data,
            "--out",
            processed,
            "--quiet",
        ]
        recipes.run_step("aslfr preprocess", command, folder / "preprocess.log")
        shutil.rmtree(data)  # the raw parquet is not needed any more (and large)
        atomic.write_json(stamp, settings)
    meta = json.loads((processed / "meta.json").read_text(encoding="utf-8"))
    return processed, len(meta["train"]["sequence_ids"])


def train_and_score(
    args: argparse.Namespace,
    recipe: dict,
    size: int,
    processed: Path,
    epochs: int,
    test: Path,
    frames: int | None = None,
) -> dict:
    """Train ``epochs`` on ``processed`` (at ``frames``, None: the config's), export, score on
    ``test``; cached by its settings."""
    name = f"sequences-{size}" + ("" if frames is None else f"-frames-{frames}")
    folder = Path(args.out) / name
    settings = {
        "train": recipe["train"],
        "export": recipe["export"],
        "epochs": epochs,
        "test": [args.test_sequences, args.test_seed, args.participants],
    }
    if frames is not None:
        settings["frames"] = frames
    result_path = folder / "result.json"
    if result_path.exists() and not args.force:
        cached = json.loads(result_path.read_text(encoding="utf-8"))
        if cached["settings"] == settings:
            recipes.say(f"{name}: cached ({recipes.display(result_path)})")
            return cached
    recipes.say(f"{name}: train {epochs} epochs")
    shutil.rmtree(folder / "model", ignore_errors=True)
    command = [
        *recipes.aslfr_command(),
        "train",
        "--config",
        args.config,
        "--processed",
        processed,
        "--out",
        folder / "model",
        "--epochs",
        epochs,
        "--verbose",
        0,
        *([] if frames is None else ["--frames", frames]),
    ]
    seconds = recipes.run_step("aslfr train", command, folder / "train.log")
    # The export section as flags, not --config: that would run the harness on the config's data.
    export = recipes.command_line({**recipe["export"], "checkpoint": "last"})
    command = [
        *recipes.aslfr_command(),
        "export",
        *export,
        "--model",
        folder / "model",
        "--out",
        folder / "submission",
        "--processed",
        processed,
        "--quiet",
    ]
    recipes.run_step("aslfr export", command, folder / "export.log")
    report = folder / "check.json"
    command = [
        *recipes.aslfr_command(),
        "check-submission",
        folder / "submission" / "submission.zip",
        "--data",
        test,
        "--json",
        "--no-progress",
    ]
    recipes.run_step("aslfr check-submission", command, folder / "check.log", report)
    checked = json.loads(report.read_text(encoding="utf-8"))
    result = {
        "settings": settings,
        "training_seconds": round(seconds, 1),
        "score": checked["score"],
        "test_sequences": checked["sequences"],
    }
    atomic.write_json(result_path, result)
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    settings = load_yaml(args.config)
    recipe = {section: settings.get(section) or {} for section in ("preprocess", "train", "export")}
    out = Path(args.out)
    test = out / f"test-{args.test_sequences}-seed{args.test_seed}"
    recipes.say(f"test set: {args.test_sequences} sequences of other signers ({test})")
    synth(test, args.test_sequences, args.participants, args.test_seed, out / "test-synth.log")
    prepared = {size: prepare(args, recipe, size) for size in sorted(args.sizes)}
    smallest = min(prepared)
    budget = prepared[smallest][1] * args.epochs  # sequences seen in training, for every row
    default_frames = recipe["preprocess"].get("frames", PreprocessConfig().frames)
    rows = []  # (sequences, frames, training sequences, epochs, result)
    for size, (processed, train_sequences) in prepared.items():
        epochs = max(1, round(budget / train_sequences))
        result = train_and_score(args, recipe, size, processed, epochs, test)
        rows.append((size, default_frames, train_sequences, epochs, result))
    largest = max(prepared)
    processed, train_sequences = prepared[largest]
    epochs = max(1, round(budget / train_sequences))
    for frames in sorted(set(args.frames) - {default_frames}):
        result = train_and_score(args, recipe, largest, processed, epochs, test, frames)
        rows.append((largest, frames, train_sequences, epochs, result))
    base = rows[0][4]["score"]
    print(f"\nrecipe: {args.config} (train section); budget: {budget:,} training sequences seen")
    print(
        f"test: {args.test_sequences} sequences of {args.participants} unseen signers "
        f"(synth seed {args.test_seed}), int8 model.tflite through check-submission"
    )
    print("| sequences | frames | training sequences | epochs | training s | test score | ratio |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for size, frames, train_sequences, epochs, result in rows:
        ratio = f"{result['score'] / base:.3f}" if base > 0 else "-"
        print(
            f"| {size:,} | {frames} | {train_sequences:,} | {epochs} | "
            f"{result['training_seconds']:.0f} | {result['score']:.4f} | {ratio} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
