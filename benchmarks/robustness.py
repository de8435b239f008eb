"""Recipes judged by their worst case: every recipe on every generator style, several seeds.

    .venv/bin/python benchmarks/robustness.py                                  # demo vs candidates
    .venv/bin/python benchmarks/robustness.py --styles default,fluent --seeds 42 --quick
    python -m benchmarks.robustness --backend jax --parallel 8 ...             # a GPU machine

A recipe is a pipeline config's ``train:`` section (``configs/demo.yaml``), optionally with
overrides: ``--recipe hold=configs/demo.yaml:lr_hold_epochs=3,augment_after_alignment=true``.
The first recipe is the baseline of the ``ratio`` column. Each style gets its own dataset
(``aslfr synth --style S``, the demo's size by default, then ``aslfr preprocess`` as the demo's),
written once into ``--data-dir`` and reused. Every (recipe, style, seed) trains through the
``aslfr`` command line at the same budget (the recipe's epochs unless ``--epochs``), ``--parallel``
runs at a time. The score is the run's last-epoch validation score: every sequence of the
held-out signers, the handless ones through the run's fallback phrase, as the exported model
reads them. ``--export`` also exports each run (int8) and scores it with ``aslfr
check-submission`` as Kaggle's harness would (needs TensorFlow; slower).

The table: per recipe and style the mean over seeds, then the mean and the *worst* over every
style and seed, the epoch CTC alignment began (the latest over the runs) and how many runs the
stall guard flagged. ``--out``/results.json keeps every run, updated as runs finish.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python benchmarks/robustness.py` from a checkout
    sys.path.insert(0, str(ROOT))

from aslfr_lib import atomic  # noqa: E402

VISIBILITY_SAMPLE = 300  # held-out sequences rendered again for the visible-characters row
DEFAULT_STYLES = "default,fluent,deliberate,dropout,mix"
DEFAULT_RECIPES = [
    "demo=configs/demo.yaml",
]
SYNTH = {"participants": 120, "seed": 0, "sequences_per_file": 500}  # the demo's dataset
# Preprocessed as the demo's: the same threshold for what trains (a recipe measured on other
# training data than the demo's would not be the demo's number).
DEMO_MIN_FRAMES_PER_CHAR = yaml.safe_load((ROOT / "configs" / "demo.yaml").read_text())[
    "preprocess"
]["min_frames_per_char"]


def aslfr(*arguments: Any) -> list[str]:
    return [sys.executable, "-m", "aslfr_lib.cli", *map(str, arguments)]


def run_logged(command: list[str], log: Path, env: dict | None = None) -> tuple[int, float]:
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with open(log, "w") as out:
        code = subprocess.call(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    return code, time.perf_counter() - started


def parse_recipe(text: str) -> tuple[str, dict[str, Any]]:
    """``name=config.yaml[:key=value,...]`` -> (name, train settings)."""
    name, _, rest = text.partition("=")
    path, _, overrides = rest.partition(":")
    config = yaml.safe_load((ROOT / path).read_text(encoding="utf-8"))
    train = dict(config.get("train", config))
    for item in filter(None, overrides.split(",")):
        key, _, value = item.partition("=")
        train[key.strip()] = yaml.safe_load(value)
    return name, train


def flags(settings: dict[str, Any]) -> list[str]:
    out = []
    for key, value in settings.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            out.append(flag if value else "--no-" + key.replace("_", "-"))
        elif value is not None:
            out += [flag, str(value)]
    return out


def synth_settings(style: str, args: argparse.Namespace) -> dict[str, Any]:
    """The ``aslfr synth`` settings of ``style``'s dataset (``SynthConfig`` fields but ``out``)."""
    return {**SYNTH, "participants": args.participants, "sequences": args.sequences, "style": style}


def ensure_dataset(style: str, args: argparse.Namespace) -> Path:
    """``data-dir/<style>-<sequences>-p<participants>/processed-mf<m>`` (written once)."""
    folder = Path(args.data_dir) / f"{style}-{args.sequences}-p{args.participants}"
    processed = folder / f"processed-mf{args.min_frames_per_char:g}"
    if (processed / "meta.json").is_file():
        return processed
    synth = ["synth", "--out", folder / "raw"]
    for key, value in synth_settings(style, args).items():
        synth += ["--" + key.replace("_", "-"), value]
    code = 0 if (folder / "raw" / "train.csv").is_file() else None
    if code is None:
        code, _ = run_logged(aslfr(*synth), folder / "synth.log")
    if code:
        raise RuntimeError(f"synth {style} failed: {folder / 'synth.log'}")
    preprocess = ["preprocess", "--data", folder / "raw", "--out", processed, "--quiet"]
    preprocess += ["--frames", 64, "--val-fraction", 0.15, "--workers", 1]
    preprocess += ["--min-frames-per-char", args.min_frames_per_char]
    code, _ = run_logged(aslfr(*preprocess), folder / "preprocess.log")
    if code:
        raise RuntimeError(f"preprocess {style} failed: {folder / 'preprocess.log'}")
    return processed


def visible_share(style: str, processed: Path, args: argparse.Namespace) -> float:
    """Share of the held-out characters the camera caught (``synthetic.character_visibility``:
    not hidden for the whole of the letter's time), over up to ``VISIBILITY_SAMPLE`` held-out
    sequences: what a landmark model can read without guessing from context. Cached."""
    cached = processed / "visible.json"
    if cached.is_file():
        return json.loads(cached.read_text())["visible"]
    from aslfr_lib import synthetic

    config = synthetic.SynthConfig(out=str(processed.parent / "raw"), **synth_settings(style, args))
    held_out = json.loads((processed / "meta.json").read_text())["val"]["sequence_ids"]
    visibility = synthetic.dataset_visibility(config, held_out[:VISIBILITY_SAMPLE])
    characters = np.concatenate(list(visibility.values()))
    visible = float(np.mean(characters != synthetic.HIDDEN))
    atomic.write_json(cached, {"visible": visible, "sequences": len(visibility)})
    return visible


def train_one(job: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    run = Path(args.out) / "runs" / job["recipe"] / f"{job['style']}-s{job['seed']}"
    settings = {**job["train"], "seed": job["seed"], "backend": args.backend}
    settings.update({"examples_every": 0, "verbose": 2})
    if args.epochs:
        settings["epochs"] = args.epochs
    command = aslfr("train", "--processed", job["processed"], "--out", run, *flags(settings))
    env = {**os.environ, "KERAS_BACKEND": args.backend}
    code, seconds = run_logged(command, run / "train.log", env)
    result = {**{k: job[k] for k in ("recipe", "style", "seed")}, "seconds": round(seconds, 1)}
    if code:
        return {**result, "error": f"train exited {code}: {run / 'train.log'}"}
    saved = json.loads((run / "history.json").read_text())
    scores = [s for s in saved["history"].get("val_score", []) if s is not None]
    state = saved["state"]
    result.update(
        score=scores[-1] if scores else None,
        alignment_epoch=state.get("alignment_epoch"),
        stalled=bool(state.get("stalled")),
        plateau=state.get("ctc_plateau"),
        ctc_loss=saved["history"].get("ctc_loss"),
    )
    if args.export:
        exported = run / "submission"
        export = ["export", "--model", run, "--out", exported, "--checkpoint", "last"]
        export += ["--processed", job["processed"], "--data", Path(job["processed"]).parent / "raw"]
        code, _ = run_logged(aslfr(*export), run / "export.log", env)
        report = run / "check.json"
        check = ["check-submission", exported / "submission.zip", "--processed", job["processed"]]
        check += ["--data", Path(job["processed"]).parent / "raw", "--json"]
        with open(report, "w") as out:
            code = code or subprocess.call(aslfr(*check), stdout=out, cwd=ROOT, env=env)
        if code == 0:
            result["tflite_score"] = json.loads(report.read_text())["score"]
    return result


def summarise(
    results: list[dict],
    recipes: list[str],
    styles: list[str],
    visible: dict[str, float] | None = None,
) -> str:
    """The markdown table; ``visible`` (per style, ``visible_share``) adds a last row: the
    share of characters a landmark model can see at all, the ceiling a style's cell is read
    against (a style that hides a third of its letters cannot reach 0.8)."""
    key = "tflite_score" if any("tflite_score" in r for r in results) else "score"
    header = ["recipe", *styles, "mean", "worst", "ratio (worst)", "aligned by", "stalled"]
    lines, baseline = [header], None
    for recipe in recipes:
        mine = [r for r in results if r["recipe"] == recipe and r.get(key) is not None]
        if not mine:
            continue
        cells = []
        for style in styles:
            values = [r[key] for r in mine if r["style"] == style]
            cells.append(f"{statistics.mean(values):.3f}" if values else "-")
        every = [r[key] for r in mine]
        worst = min(every)
        baseline = worst if baseline is None else baseline
        aligned = [r["alignment_epoch"] for r in mine]
        latest = "never" if None in aligned else str(max(aligned))
        stalled = sum(r["stalled"] for r in mine)
        ratio = f"{worst / baseline:.3f}" if baseline else "-"
        mean = f"{statistics.mean(every):.3f}"
        lines.append(
            [recipe, *cells, mean, f"{worst:.3f}", ratio, latest, f"{stalled}/{len(mine)}"]
        )
    if visible:
        cells = [f"{visible[style]:.3f}" if style in visible else "-" for style in styles]
        lines.append(["*visible characters*", *cells, *["-"] * 5])
    table = ["| " + " | ".join(line) + " |" for line in lines]
    table.insert(1, "|" + " --- |" * len(header))
    return "\n".join(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipe", action="append", help="name=config.yaml[:key=value,...]")
    parser.add_argument("--styles", default=DEFAULT_STYLES)
    parser.add_argument("--seeds", default="42,43")
    parser.add_argument(
        "--recipe-seeds", action="append", default=[], help="name=42,43,44: that recipe's seeds"
    )
    parser.add_argument("--sequences", type=int, default=6000)
    parser.add_argument(
        "--participants",
        type=int,
        default=SYNTH["participants"],
        help="signers per dataset (more signers: more ways of shaping each letter to learn from)",
    )
    parser.add_argument("--epochs", type=int, default=None, help="default: each recipe's own")
    parser.add_argument("--backend", default="tensorflow")
    parser.add_argument("--parallel", type=int, default=1)
    parser.add_argument("--export", action="store_true", help="also score through the TFLite")
    parser.add_argument("--data-dir", default=str(ROOT / "data" / "robustness"))
    parser.add_argument("--out", default=str(ROOT / "outputs" / "robustness"))
    parser.add_argument("--deadline-s", type=float, default=None, help="start no run after this")
    parser.add_argument("--quick", action="store_true", help="300 sequences, 2 epochs")
    parser.add_argument(
        "--min-frames-per-char",
        type=float,
        default=DEMO_MIN_FRAMES_PER_CHAR,
        help="aslfr preprocess's threshold (default: configs/demo.yaml's)",
    )
    parser.add_argument("--datasets-only", action="store_true", help="write the datasets, stop")
    args = parser.parse_args(argv)
    if args.quick:
        args.sequences, args.epochs = 300, args.epochs or 2
    started = time.perf_counter()
    recipes = [parse_recipe(text) for text in (args.recipe or DEFAULT_RECIPES)]
    styles = args.styles.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    own_seeds = {}
    for text in args.recipe_seeds:
        name, _, listed = text.partition("=")
        own_seeds[name] = [int(s) for s in listed.split(",")]
    every_seed = sorted({s for name, _ in recipes for s in own_seeds.get(name, seeds)})
    with concurrent.futures.ThreadPoolExecutor(max(1, min(args.parallel, len(styles)))) as pool:
        processed = dict(
            zip(styles, pool.map(lambda s: ensure_dataset(s, args), styles), strict=True)
        )
    print(f"datasets ready in {time.perf_counter() - started:.0f} s", flush=True)
    if args.datasets_only:
        return 0
    jobs = [
        {
            "recipe": name,
            "train": train,
            "style": style,
            "seed": seed,
            "processed": processed[style],
        }
        for seed in every_seed
        for name, train in recipes
        for style in styles
        if seed in own_seeds.get(name, seeds)
    ]
    results: list[dict] = []
    out = Path(args.out)

    def one(job: dict) -> dict:
        if args.deadline_s and time.perf_counter() - started > args.deadline_s:
            return {**{k: job[k] for k in ("recipe", "style", "seed")}, "error": "deadline"}
        return train_one(job, args)

    with concurrent.futures.ThreadPoolExecutor(args.parallel) as pool:
        for result in pool.map(one, jobs):
            results.append(result)
            print(json.dumps({k: v for k, v in result.items() if k != "ctc_loss"}), flush=True)
            atomic.write_json(out / "results.json", results)
    visible = {style: visible_share(style, processed[style], args) for style in styles}
    table = summarise(results, [name for name, _ in recipes], styles, visible)
    atomic.write_text(out / "robustness.md", table + "\n")
    print(table)
    print(f"total {time.perf_counter() - started:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
