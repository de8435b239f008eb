"""More sequences or more epochs? One recipe, one training budget, datasets of different sizes,
on several signing styles and seeds, judged by the worst case.

Every row trains the same recipe (the ``train`` section of ``--config``, by default the demo's)
for about the same number of steps: ``epochs = round(budget / training sequences)``, with
``budget`` the smallest dataset's training sequences x ``--epochs`` (per style). The datasets of
a style differ only in ``sequences`` (same signers, same synth seed, the generator's default
difficulty), so a row's gain is what more *different* sequences buy at equal compute. Every model
is exported (int8, CTC) and scored by ``aslfr check-submission`` on its style's separate test set,
whose signers none of the rows saw (the same style, another synth seed), through
``model.tflite`` as Kaggle's harness runs it.

Why the worst case: a recipe tuned on one data source failed on another (README, "Every
held-out sequence, every style"), and a mean over data sources hides one that fails. So every
row runs on every style of ``--styles`` (``aslfr synth --style``) with every training seed of
``--seeds``; the table gives per style the mean over seeds, then the mean and the *worst* single
(style, seed) score, and the ratio of the worst to the smallest dataset's worst.

``--frames`` adds rows: the largest dataset at other model lengths (``aslfr train --frames``; the
stored frames are ragged, so no preprocessing again), same epochs. Longer inputs keep more
frames per letter but cost time per step.

    .venv/bin/python benchmarks/data_budget.py            # 1500, 3000, 6000 x 3 styles x 2 seeds
    .venv/bin/python benchmarks/data_budget.py --sizes 200 400 --epochs 8 --test-sequences 50 \
        --styles default,fluent --seeds 42                # a smoke test, minutes
    .venv/bin/python benchmarks/data_budget.py --frames 48 96  # + 6000 at 48 and 96 frames

Prints the table (ratios measured in the same run); results are cached per size, style and seed
in ``--out`` (``--force`` reruns). A failed run is shown as failed (with its log) and the row
has no worst; the others go on. A dataset's raw parquet is deleted once it is preprocessed:
1,000 synthetic sequences take 0.9 GB.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from aslfr_lib import atomic
from aslfr_lib.config import load_yaml
from aslfr_lib.preprocess import PreprocessConfig

ROOT = Path(__file__).resolve().parents[1]
_SPEC = importlib.util.spec_from_file_location("bench_recipes", ROOT / "benchmarks" / "recipes.py")
recipes = importlib.util.module_from_spec(_SPEC)
sys.modules[_SPEC.name] = recipes  # dataclasses look their module up there
_SPEC.loader.exec_module(recipes)

STYLES = "default,fluent,idiolect"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="configs/demo.yaml", help="pipeline config (recipe)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1500, 3000, 6000])
    parser.add_argument("--epochs", type=int, default=30, help="epochs of the smallest dataset")
    parser.add_argument("--participants", type=int, default=40)
    parser.add_argument("--test-sequences", type=int, default=600)
    parser.add_argument("--test-seed", type=int, default=7, help="synth seed of the test signers")
    parser.add_argument(
        "--styles",
        type=recipes.style_list,
        default=STYLES,
        help="comma-separated `aslfr synth --style` names: each its datasets and test set",
    )
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=recipes.SEEDS, help="training seeds, every row"
    )
    parser.add_argument(
        "--frames",
        type=int,
        nargs="*",
        default=[],
        help="other model lengths to train the largest dataset at (default: only the config's)",
    )
    parser.add_argument("--out", default="outputs/bench-data-budget")
    parser.add_argument("--force", action="store_true", help="rerun cached runs")
    return parser.parse_args(argv)


def synth(out: Path, sequences: int, participants: int, seed: int, style: str, log: Path) -> None:
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
        "--style",
        style,
        "--sequences-per-file",
        500,
    ]
    recipes.run_step("aslfr synth", command, log)
    partial.rename(out)


def prepare(args: argparse.Namespace, recipe: dict, size: int, style: str) -> tuple[Path, int]:
    """The processed dataset of ``size`` sequences of ``style`` (made once) and its training
    sequences."""
    folder = Path(args.out) / style / f"sequences-{size}"
    processed = folder / "processed"
    settings = {
        "size": size,
        "participants": args.participants,
        "style": style,
        "config": recipe["preprocess"],
    }
    stamp = folder / "dataset.json"
    if not (stamp.exists() and json.loads(stamp.read_text(encoding="utf-8")) == settings):
        shutil.rmtree(folder, ignore_errors=True)
        data = folder / "data"
        recipes.say(f"{style} {size} sequences: synth + preprocess")
        synth(data, size, args.participants, 0, style, folder / "synth.log")
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
    style: str,
    seed: int,
    size: int,
    processed: Path,
    epochs: int,
    test: Path,
    frames: int | None = None,
) -> dict[str, Any]:
    """Train ``epochs`` on ``processed`` with ``seed`` (at ``frames``, None: the config's),
    export, score on ``test``; cached by its settings. ``status`` is ok (with ``score``) or
    failed (with ``step`` and ``log``; not cached)."""
    name = f"sequences-{size}" + ("" if frames is None else f"-frames-{frames}") + f"-s{seed}"
    label = f"{style} {name}"
    folder = Path(args.out) / style / name
    settings = {
        "train": recipe["train"],
        "export": recipe["export"],
        "epochs": epochs,
        "seed": seed,
        "style": style,
        "test": [args.test_sequences, args.test_seed, args.participants],
    }
    if frames is not None:
        settings["frames"] = frames
    result_path = folder / "result.json"
    if result_path.exists() and not args.force:
        cached = json.loads(result_path.read_text(encoding="utf-8"))
        if cached["settings"] == settings:
            recipes.say(f"{label}: cached ({recipes.display(result_path)})")
            return cached
    result_path.unlink(missing_ok=True)
    recipes.say(f"{label}: train {epochs} epochs")
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
        "--seed",
        seed,
        "--verbose",
        0,
        *([] if frames is None else ["--frames", frames]),
    ]
    try:
        seconds = recipes.run_step("aslfr train", command, folder / "train.log")
        # The export section as flags, not --config: that would run the harness on its data.
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
    except recipes.StepFailed as error:
        recipes.say(f"{label}: FAILED: {error}")
        return {"status": "failed", "step": error.step, "log": recipes.display(error.log)}
    checked = json.loads(report.read_text(encoding="utf-8"))
    result = {
        "status": "ok",
        "settings": settings,
        "training_seconds": round(seconds, 1),
        "score": checked["score"],
        "test_sequences": checked["sequences"],
    }
    atomic.write_json(result_path, result)
    recipes.say(f"{label}: test score {result['score']:.4f}")
    return result


def _span(values: list[int]) -> str:
    """``1,200`` when every style has the same value, else ``1,150-1,210``."""
    low, high = min(values), max(values)
    return f"{low:,}" if low == high else f"{low:,}-{high:,}"


def table(rows: list[dict[str, Any]], styles: list[str]) -> list[str]:
    """The markdown table: per row (``sequences``, ``frames``, ``training_sequences`` and
    ``epochs`` per style, ``runs`` keyed by (style, seed)) the per-style means over seeds, the
    mean and worst over every run, the worst against the first row's worst and the mean
    training seconds."""
    cases = [recipes.worst_case(row["runs"], styles) for row in rows]
    baseline_worst = cases[0].worst
    header = ["sequences", "frames", "training sequences", "epochs", *styles]
    header += ["mean", "worst", "ratio (worst)", "training s"]
    lines = []
    for row, case in zip(rows, cases, strict=True):
        done = [r for r in row["runs"].values() if r["status"] == "ok"]
        seconds = recipes.mean_or_none([r["training_seconds"] for r in done])
        lines.append(
            [
                f"{row['sequences']:,}",
                str(row["frames"]),
                _span(list(row["training_sequences"].values())),
                _span(list(row["epochs"].values())),
                *recipes.worst_case_cells(case, styles, baseline_worst),
                recipes.cell(seconds, ".0f"),
            ]
        )
    return recipes.markdown_table(header, lines).splitlines()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    settings = load_yaml(args.config)
    recipe = {section: settings.get(section) or {} for section in ("preprocess", "train", "export")}
    out = Path(args.out)
    styles = args.styles
    default_frames = recipe["preprocess"].get("frames", PreprocessConfig().frames)
    sizes = sorted(set(args.sizes))
    tests, prepared = {}, {}
    try:
        for style in styles:
            tests[style] = out / style / f"test-{args.test_sequences}-seed{args.test_seed}"
            recipes.say(f"{style} test set: {args.test_sequences} sequences of other signers")
            synth(
                tests[style],
                args.test_sequences,
                args.participants,
                args.test_seed,
                style,
                out / style / "test-synth.log",
            )
            prepared[style] = {size: prepare(args, recipe, size, style) for size in sizes}
    except recipes.StepFailed as error:
        print(f"benchmarks/data_budget.py: error: {error}", file=sys.stderr)
        return 1
    # sequences seen in training, for every row of a style
    budget = {style: prepared[style][sizes[0]][1] * args.epochs for style in styles}
    specs = [(size, None) for size in sizes]
    specs += [(sizes[-1], f) for f in sorted(set(args.frames) - {default_frames})]
    rows = []
    for size, frames in specs:
        row = {"sequences": size, "frames": frames or default_frames, "runs": {}}
        row["training_sequences"] = {style: prepared[style][size][1] for style in styles}
        row["epochs"] = {
            style: max(1, round(budget[style] / row["training_sequences"][style]))
            for style in styles
        }
        for style in styles:
            processed = prepared[style][size][0]
            for seed in args.seeds:
                row["runs"][(style, seed)] = train_and_score(
                    args,
                    recipe,
                    style,
                    seed,
                    size,
                    processed,
                    row["epochs"][style],
                    tests[style],
                    frames,
                )
        rows.append(row)
    budgets = ", ".join(f"{style} {budget[style]:,}" for style in styles)
    print(f"\nrecipe: {args.config} (train section); budget: training sequences seen: {budgets}")
    print(
        f"test: per style {args.test_sequences} sequences of {args.participants} unseen signers "
        f"(synth seed {args.test_seed}), int8 model.tflite through check-submission; "
        f"seeds {', '.join(map(str, args.seeds))}"
    )
    print("\n".join(table(rows, styles)))
    print(
        f"{', '.join(styles)}: test score, mean over seeds; mean: over every (style, seed) run; "
        "worst: the lowest single run, the headline; ratio (worst): worst / worst of the first "
        "row; training s: mean wall time of `aslfr train`"
    )
    failed = [
        f"{row['sequences']} sequences, {row['frames']} frames, {style} s{seed}: "
        f"{result['step']} ({result['log']})"
        for row in rows
        for (style, seed), result in row["runs"].items()
        if result["status"] != "ok"
    ]
    if failed:
        print("failed runs: " + "; ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
