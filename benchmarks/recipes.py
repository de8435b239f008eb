"""Recipe ablation: every recipe on several signing styles and seeds, judged by its worst case.

    .venv/bin/python benchmarks/recipes.py     # every row x default,fluent,idiolect x seeds 42 43
    .venv/bin/python benchmarks/recipes.py --rows v6_reference,v6_fixes --styles default,dropout
    .venv/bin/python benchmarks/recipes.py --quick --rows ctc_only  # smoke test: 2 styles, tiny

Why the worst case: a recipe tuned on one data source failed on another (it stalled on
independent data; README, "Every held-out sequence, every style"), and a mean over data sources
hides one that fails. So every row runs on every style of ``--styles`` (``aslfr synth --style``,
``aslfr_lib/synthetic/styles.py``) with every seed of ``--seeds``; the headline of a row is its
mean and its *worst* single (style, seed) score, and the ``ratio`` column divides the worst by
the baseline row's worst.

Rows are the files ``configs/recipes/*.yaml`` in the order of the number their names start
with; the first selected row is the baseline of the ``ratio`` column. Each file has a comment
header (what the recipe is, and why it is a row), a ``name:`` (the row label), a ``train:``
mapping of ``aslfr train`` flags and an optional ``export:`` mapping of ``aslfr export`` flags.
A new row is a new file.

Every row gets the same data and the same budget: ``--epochs``, ``--batch-size`` and ``--seeds``,
``warmup_epochs = round(0.1 * epochs)`` and the architecture of ``configs/demo.yaml``'s
``train:`` section unless the row sets them itself. Optimizer, learning rate and weight decay
belong to the row. One dataset per style (synthetic, the generator's default difficulty) is
written once with ``aslfr synth --style S`` and ``aslfr preprocess --val-fraction 0.2`` into
``--data-dir/<style>`` and reused while its settings match; the validation split is whole
participants that training never sees.

Per row, style and seed, each step is a subprocess through the installed ``aslfr`` with its
output in a log file: ``aslfr train`` (timed: the "training s" column), ``aslfr export`` of the
*last* checkpoint (the held-out participants never choose a checkpoint), then ``aslfr
check-submission --split val --json`` on the exported ``submission.zip``: the held-out score and
the p50 milliseconds per sequence (LiteRT, 1 thread, as Kaggle's scorer runs it).

Results are cached as ``<out>/<row>-<style>-s<seed>/result.json``, keyed by a fingerprint of the
row's settings, the common settings and the dataset (its style included), so an interrupted
benchmark resumes where it stopped (``--force`` reruns the selected rows). Training runs live in
``<out>/train/`` keyed by the train flags and the dataset alone: rows with identical ``train:``
mappings (one training, two decoders) share one run. A failing step marks that run as failed,
with its log, and the benchmark goes on; a row with a failed run has no worst case (``failed``).

The table (one line per row: per style the mean over seeds, then mean, worst, the ratio on the
worst, and training s, parameters, TFLite MB, p50 ms as means; below it every seed's score) is
printed and written to ``docs/recipes.md`` (``--quick``: ``<out>/recipes.md``).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import hashlib
import json
import math
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from aslfr_lib import atomic

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "configs" / "recipes"
ARCHITECTURE_CONFIG = ROOT / "configs" / "demo.yaml"
DOC = ROOT / "docs" / "recipes.md"

# The demo-size architecture every row gets unless it sets its own (read from --architecture).
ARCHITECTURE_KEYS = (
    "encoder_dim",
    "encoder_blocks",
    "decoder_dim",
    "decoder_blocks",
    "mlp_dropout",
    "attention_dropout",
    "classifier_dropout",
)
# Flags the benchmark owns: equal for every row (budget, data, checkpoint) or per run (paths).
TRAIN_OWNED = ("processed", "out", "epochs", "batch_size", "seed", "resume", "backend", "devices")
EXPORT_OWNED = ("model", "out", "processed", "data", "limit", "checkpoint")
# Monitoring only: the held-out split is scored once, at the end (a row may change these).
TRAIN_MONITORING = {"examples_every": 0, "verbose": 2}
EXPORTED_CHECKPOINT = "last"
WARMUP_SHARE = 0.1
VAL_FRACTION = 0.2
FRAMES = 64  # configs/demo.yaml's preprocess frames
SYNTH_SEED = 0
SEQUENCES_PER_FILE = 500
CHECK_THREADS = 1  # Kaggle's scorer
DATASET_META = "bench_dataset.json"
TRAIN_RESULT = "train_result.json"
RESULT = "result.json"
FULL = {"sequences": 2000, "participants": 40, "epochs": 30, "styles": "default,fluent,idiolect"}
# Two styles even here, so a smoke test crosses styles and seeds as the full run does.
QUICK = {"sequences": 300, "participants": 10, "epochs": 2, "styles": "default,fluent"}
SEEDS = [42, 43]
# Means over a row's finished runs, with their format.
NUMBERS = {"training_seconds": ".0f", "parameters": ",.0f", "tflite_mb": ".2f", "p50_ms": ".1f"}
NUMBER_COLUMNS = ("training s", "parameters", "TFLite MB", "p50 ms")
PARAMETER_COUNT = """\
import sys
from aslfr_lib.checkpoints import load_checkpoint  # registers every class a checkpoint names
print(load_checkpoint(sys.argv[1]).count_params())
"""


class RecipeError(ValueError):
    """A recipe file that cannot be a row (names the file and what is wrong)."""


# ----------------------------------------------------------------------------------------------
# Rows


@dataclasses.dataclass(frozen=True)
class Recipe:
    name: str
    path: Path
    number: int | None  # leading number of the file name: the row order
    description: str  # the comment header
    train: dict[str, Any]
    export: dict[str, Any]


def comment_header(text: str) -> str:
    """The leading ``#`` lines of a YAML file, without the ``#``, joined into one paragraph."""
    lines = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    return " ".join(line for line in lines if line)


def load_recipe(path: Path) -> Recipe:
    text = path.read_text(encoding="utf-8")
    data = yaml.safe_load(text) or {}
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: expected a mapping with name, train and export")
    unknown = sorted(set(data) - {"name", "train", "export"})
    if unknown:
        raise RecipeError(f"{path}: unknown key(s) {unknown}; a row has name, train, export")
    name = data.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise RecipeError(f"{path}: name must be a word of letters, digits, _ . - (got {name!r})")
    sections = {}
    for section, owned in (("train", TRAIN_OWNED), ("export", EXPORT_OWNED)):
        values = data.get(section) or {}
        if not isinstance(values, dict):
            raise RecipeError(f"{path}: {section} must be a mapping of `aslfr {section}` flags")
        taken = sorted(set(values) & set(owned))
        if taken:
            raise RecipeError(
                f"{path}: {section} sets {taken}, which the benchmark sets equally for every row"
            )
        sections[section] = values
    description = comment_header(text)
    if not description:
        raise RecipeError(f"{path}: starts with no comment (what the recipe is, and why)")
    number = re.match(r"\d+", path.name)
    return Recipe(
        name=name,
        path=path,
        number=int(number.group()) if number else None,
        description=description,
        train=sections["train"],
        export=sections["export"],
    )


def load_recipes(folder: Path) -> list[Recipe]:
    """Every ``*.yaml`` of ``folder``, ordered by the number its name starts with."""
    recipes = [load_recipe(path) for path in folder.glob("*.yaml")]
    if not recipes:
        raise RecipeError(f"{folder}: no recipe files (*.yaml)")
    recipes.sort(key=lambda r: (r.number is None, r.number or 0, r.path.name))
    seen: dict[str, Path] = {}
    for recipe in recipes:
        if recipe.name in seen:
            raise RecipeError(f"{recipe.path}: name {recipe.name!r} is also {seen[recipe.name]}")
        seen[recipe.name] = recipe.path
    return recipes


def select_rows(recipes: list[Recipe], names: list[str] | None) -> list[Recipe]:
    """The rows named in ``names`` (all when None), in file order."""
    if not names:
        return recipes
    known = [r.name for r in recipes]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise RecipeError(f"no row(s) named {unknown}; rows: {', '.join(known)}")
    return [r for r in recipes if r.name in names]


def style_list(text: str) -> list[str]:
    """``"default,fluent"`` -> ``["default", "fluent"]``, each a name ``aslfr synth --style``
    accepts (an ``argparse`` type: a bad name is a usage error that lists the valid ones)."""
    from aslfr_lib.synthetic.styles import style_names

    valid = ", ".join(style_names())
    styles = list(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
    if not styles:
        raise argparse.ArgumentTypeError(f"no style named in {text!r}; valid styles: {valid}")
    unknown = [name for name in styles if name not in style_names()]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown style(s) {unknown}; valid styles: {valid}")
    return styles


# ----------------------------------------------------------------------------------------------
# Settings and flags


@dataclasses.dataclass(frozen=True)
class Common:
    """What the benchmark imposes on every row, and the datasets it makes (one per style)."""

    epochs: int
    batch_size: int
    sequences: int
    participants: int
    difficulty: float  # the generator's default (not passed to aslfr synth)
    architecture: dict[str, Any]

    @property
    def warmup_epochs(self) -> int:
        return round(WARMUP_SHARE * self.epochs)

    def dataset(self, style: str) -> dict[str, Any]:
        return {
            "synth": {
                "sequences": self.sequences,
                "participants": self.participants,
                "seed": SYNTH_SEED,
                "sequences_per_file": SEQUENCES_PER_FILE,
                "difficulty": self.difficulty,
                "style": style,
            },
            "preprocess": {"frames": FRAMES, "val_fraction": VAL_FRACTION},
        }


def read_architecture(path: Path) -> dict[str, Any]:
    """The architecture fields of a config's ``train:`` section."""
    train = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("train") or {}
    return {key: train[key] for key in ARCHITECTURE_KEYS if key in train}


def train_flags(recipe: Recipe, common: Common, seed: int) -> dict[str, Any]:
    """The ``aslfr train`` flags of a row (without --processed and --out)."""
    flags = {
        **common.architecture,
        "warmup_epochs": common.warmup_epochs,
        "score_every": common.epochs,
        **TRAIN_MONITORING,
        **recipe.train,
        "epochs": common.epochs,
        "batch_size": common.batch_size,
        "seed": seed,
    }
    return dict(sorted(flags.items()))


def export_flags(recipe: Recipe) -> dict[str, Any]:
    """The ``aslfr export`` flags of a row (without --model, --out and --processed)."""
    return dict(sorted({**recipe.export, "checkpoint": EXPORTED_CHECKPOINT}.items()))


def command_line(flags: dict[str, Any]) -> list[str]:
    """``{"lr_max": 0.002, "fp16": False}`` -> ``["--lr-max", "0.002", "--no-fp16"]``."""
    args: list[str] = []
    for key, value in flags.items():
        flag = "--" + key.replace("_", "-")
        if value is None:
            continue
        if isinstance(value, bool):
            args.append(flag if value else "--no-" + key.replace("_", "-"))
        elif isinstance(value, list | tuple):
            args += [flag, *(str(item) for item in value)]
        else:
            args += [flag, str(value)]
    return args


def fingerprint(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def train_key(recipe: Recipe, common: Common, style: str, seed: int) -> dict[str, Any]:
    """What a training run depends on: its flags and the dataset (not the export)."""
    return {"train": train_flags(recipe, common, seed), "dataset": common.dataset(style)}


def result_key(recipe: Recipe, common: Common, style: str, seed: int) -> dict[str, Any]:
    return {
        **train_key(recipe, common, style, seed),
        "export": export_flags(recipe),
        "check": {"split": "val", "num_threads": CHECK_THREADS},
    }


# ----------------------------------------------------------------------------------------------
# Subprocesses


def aslfr_command() -> list[str]:
    """The installed ``aslfr`` beside this Python (else on PATH, else ``python -m``)."""
    beside = Path(sys.executable).parent / "aslfr"
    if beside.is_file():
        return [str(beside)]
    found = shutil.which("aslfr")
    return [found] if found else [sys.executable, "-m", "aslfr_lib.cli"]


def environment() -> dict[str, str]:
    return {
        **os.environ,
        "KERAS_BACKEND": "tensorflow",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONUNBUFFERED": "1",
    }


def run_logged(command: list[str], log: Path, stdout: Path | None = None) -> tuple[int, float]:
    """Run ``command`` with its output in ``log`` (stdout in ``stdout`` if given); returns the
    exit status and the wall seconds."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w", encoding="utf-8") as log_file:
        log_file.write("$ " + shlex.join(command) + "\n")
        log_file.flush()
        started = time.perf_counter()
        if stdout is None:
            process = subprocess.run(
                command, stdout=log_file, stderr=subprocess.STDOUT, env=environment(), cwd=ROOT
            )
        else:
            with open(stdout, "w", encoding="utf-8") as out_file:
                process = subprocess.run(
                    command, stdout=out_file, stderr=log_file, env=environment(), cwd=ROOT
                )
        seconds = time.perf_counter() - started
        log_file.write(f"\n# exit status {process.returncode} after {seconds:.1f} s\n")
    return process.returncode, seconds


class StepFailed(RuntimeError):
    def __init__(self, step: str, log: Path):
        super().__init__(f"{step} failed, see {display(log)}")
        self.step = step
        self.log = log


def run_step(step: str, command: list[Any], log: Path, stdout: Path | None = None) -> float:
    """``run_logged``, raising ``StepFailed`` when the command fails; returns the wall seconds."""
    status, seconds = run_logged([str(part) for part in command], log, stdout)
    if status:
        raise StepFailed(step, log)
    return seconds


def display(path: Path) -> str:
    """``path`` relative to the repository when it is inside it."""
    path = Path(os.path.abspath(path))  # not resolve(): a venv's python is a symlink
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def say(message: str) -> None:
    print(f"[recipes {time.strftime('%H:%M:%S')}] {message}", flush=True)


# ----------------------------------------------------------------------------------------------
# The dataset


def dataset_summary(processed: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """Held-out participants and sequences from the processed ``meta.json``."""
    meta = json.loads((processed / "meta.json").read_text(encoding="utf-8"))
    summary = {**settings["synth"], **settings["preprocess"]}
    for split in ("train", "val"):
        summary[f"{split}_sequences"] = len(meta[split]["sequence_ids"])
        summary[f"{split}_participants"] = len(set(meta[split]["participant_ids"]))
    return summary


def ensure_dataset(folder: Path, common: Common, style: str) -> dict[str, Any]:
    """Synthesize and preprocess the dataset of ``style`` into ``folder`` unless it is there with
    the same settings; returns ``{"raw", "processed", "settings", "summary", "fingerprint"}``."""
    settings = common.dataset(style)
    meta_path = folder / DATASET_META
    raw, processed = folder / "raw", folder / "processed"
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("settings") == settings and (processed / "meta.json").is_file():
            say(f"dataset {style}: {display(folder)} reused ({fingerprint(settings)})")
            return {**meta, "raw": raw, "processed": processed}
    ours = {"raw", "processed", DATASET_META, "synth.log", "preprocess.log"}
    if folder.exists():
        strangers = sorted(p.name for p in folder.iterdir() if p.name not in ours)
        if strangers:
            raise RecipeError(
                f"{folder}: holds {strangers[:5]}, not a benchmark dataset; choose --data-dir"
            )
    meta_path.unlink(missing_ok=True)  # first: a crash below leaves no stale match
    for stale in (raw, processed):
        shutil.rmtree(stale, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    synth = settings["synth"]
    say(f"dataset {style}: aslfr synth {synth['sequences']} sequences -> {display(raw)}")
    command = [
        *aslfr_command(),
        "synth",
        "--out",
        str(raw),
        *command_line({k: v for k, v in synth.items() if k != "difficulty"}),
    ]
    run_step("aslfr synth", command, folder / "synth.log")
    say(f"dataset {style}: aslfr preprocess -> {display(processed)}")
    command = [
        *aslfr_command(),
        "preprocess",
        "--quiet",
        "--data",
        str(raw),
        "--out",
        str(processed),
        *command_line(settings["preprocess"]),
    ]
    run_step("aslfr preprocess", command, folder / "preprocess.log")
    meta = {
        "settings": settings,
        "fingerprint": fingerprint(settings),
        "summary": dataset_summary(processed, settings),
        "made": datetime.datetime.now().isoformat(timespec="seconds"),
    }
    atomic.write_json(meta_path, meta)
    return {**meta, "raw": raw, "processed": processed}


# ----------------------------------------------------------------------------------------------
# One row and seed


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def train_run(
    recipe: Recipe, common: Common, style: str, seed: int, dataset: dict, out: Path, force: bool
) -> dict[str, Any]:
    """Train (or reuse) the run of a row's train flags on the dataset of ``style``; returns its
    ``train_result.json``."""
    key = train_key(recipe, common, style, seed)
    key_print = fingerprint(key)
    label = f"{recipe.name} {style} s{seed}"
    folder = out / "train" / f"{style}-s{seed}-{key_print}"
    done = read_json(folder / TRAIN_RESULT)
    if done and done.get("fingerprint") == key_print and not force:
        say(f"{label}: training {display(folder)} reused")
        return done
    (folder / TRAIN_RESULT).unlink(missing_ok=True)
    flags = key["train"]
    command = [
        *aslfr_command(),
        "train",
        "--processed",
        str(dataset["processed"]),
        "--out",
        str(folder),
        *command_line(flags),
    ]
    say(f"{label}: training -> {display(folder)}")
    seconds = run_step("aslfr train", command, folder / "train.log")
    checkpoint = folder / f"{EXPORTED_CHECKPOINT}.keras"
    count_log = folder / "parameters.log"
    status, _ = run_logged(
        [sys.executable, "-c", PARAMETER_COUNT, str(checkpoint)], count_log, folder / "parameters"
    )
    parameters = None
    if status == 0:
        parameters = int((folder / "parameters").read_text().split()[-1])
    history = read_json(folder / "history.json") or {}
    result = {
        "fingerprint": key_print,
        "key": key,
        "folder": display(folder),
        "log": display(folder / "train.log"),
        "training_seconds": seconds,
        "parameters": parameters,
        "keras_val_score": (history.get("state") or {}).get("best_score"),
        "first_row": recipe.name,
        "finished": datetime.datetime.now().isoformat(timespec="seconds"),
    }
    atomic.write_json(folder / TRAIN_RESULT, result)
    say(f"{label}: trained in {seconds:.0f} s, {parameters} parameters")
    return result


def run_row(
    recipe: Recipe,
    common: Common,
    style: str,
    seed: int,
    dataset: dict,
    out: Path,
    force: bool,
    trained: dict[str, dict | StepFailed],
) -> dict[str, Any]:
    """The result of one row on the dataset of ``style`` with ``seed`` (``status`` ok or
    failed), from the cache when its fingerprint matches. ``trained`` holds this invocation's
    training runs by fingerprint."""
    key_print = fingerprint(result_key(recipe, common, style, seed))
    label = f"{recipe.name} {style} s{seed}"
    folder = out / f"{recipe.name}-{style}-s{seed}"
    cached = read_json(folder / RESULT)
    if cached and cached.get("fingerprint") == key_print and not force:
        say(f"{label}: result reused ({display(folder / RESULT)})")
        return {**cached, "reused": True}
    (folder / RESULT).unlink(missing_ok=True)
    train_print = fingerprint(train_key(recipe, common, style, seed))
    base = {
        "row": recipe.name,
        "style": style,
        "seed": seed,
        "fingerprint": key_print,
        "train_fingerprint": train_print,
        "reused": False,
    }
    try:
        if train_print not in trained:
            try:
                # --force retrains once per invocation; a second row reuses that run
                trained[train_print] = train_run(recipe, common, style, seed, dataset, out, force)
            except StepFailed as error:
                trained[train_print] = error
        training = trained[train_print]
        if isinstance(training, StepFailed):
            raise training
        submission = folder / "submission"
        command = [
            *aslfr_command(),
            "export",
            "--quiet",
            "--model",
            str(ROOT / training["folder"]),
            "--out",
            str(submission),
            "--processed",
            str(dataset["processed"]),
            *command_line(export_flags(recipe)),
        ]
        say(f"{label}: export -> {display(submission)}")
        run_step("aslfr export", command, folder / "export.log")
        command = [
            *aslfr_command(),
            "check-submission",
            str(submission / "submission.zip"),
            "--data",
            str(dataset["raw"]),
            "--processed",
            str(dataset["processed"]),
            "--split",
            "val",
            "--num-threads",
            str(CHECK_THREADS),
            "--json",
            "--no-progress",
        ]
        say(f"{label}: check-submission on the held-out participants")
        status, _ = run_logged(command, folder / "check.log", folder / "check.json")
        report = read_json(folder / "check.json") if status == 0 else None
        if report is None:
            raise StepFailed("aslfr check-submission", folder / "check.log")
    except StepFailed as error:
        say(f"{label}: FAILED: {error}")
        return {**base, "status": "failed", "step": error.step, "log": display(error.log)}
    result = {
        **base,
        "status": "ok",
        "score": report["score"],
        "p50_ms": report["p50_ms"],
        "p95_ms": report["p95_ms"],
        "heldout_sequences": report["sequences"],
        "exact_matches": report["exact_matches"],
        "tflite_mb": (submission / "model.tflite").stat().st_size / 1e6,
        "training_seconds": training["training_seconds"],
        "parameters": training["parameters"],
        "keras_val_score": training["keras_val_score"],
        "train_folder": training["folder"],
        "submission": display(submission / "submission.zip"),
        "key": result_key(recipe, common, style, seed),
        "finished": datetime.datetime.now().isoformat(timespec="seconds"),
    }
    atomic.write_json(folder / RESULT, result)
    say(f"{label}: held-out score {result['score']:.4f}")
    return result


# ----------------------------------------------------------------------------------------------
# The table: per row, the mean and the worst over every style and seed


def mean_or_none(values: list[float | None]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.fmean(values) if values else None


def cell(value: float | None, spec: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return format(value, spec)


def _ratio(score: float | None, baseline: float | None) -> str:
    """score / baseline; none for a baseline <= 0 (its sign would turn the order around)."""
    if score is None or baseline is None or baseline <= 0:
        return "–"
    return f"{score / baseline:.3f}"


@dataclasses.dataclass(frozen=True)
class WorstCase:
    """One row's runs (keyed by style and seed) in a few numbers; its headline is ``worst``."""

    style_means: dict[str, float | None]  # per style, the mean over its seeds (None: no score)
    failed_styles: list[str]  # styles with a failed run: their cells say so, not a number
    mean: float | None  # over every finished run
    worst: float | None  # the lowest single run; None when a run failed (the worst is unknown)
    finished: int
    runs: int


def worst_case(runs: dict[tuple[str, int], dict], styles: list[str]) -> WorstCase:
    """Mean and worst of one row's ``{(style, seed): result}``; a result's ``status`` is ok
    (with a ``score``) or failed."""
    scores = [r["score"] for r in runs.values() if r["status"] == "ok"]
    style_means, failed_styles = {}, []
    for style in styles:
        mine = [r for (s, _seed), r in runs.items() if s == style]
        style_means[style] = mean_or_none([r["score"] for r in mine if r["status"] == "ok"])
        if any(r["status"] != "ok" for r in mine):
            failed_styles.append(style)
    return WorstCase(
        style_means=style_means,
        failed_styles=failed_styles,
        mean=mean_or_none(scores),
        worst=min(scores) if scores and len(scores) == len(runs) else None,
        finished=len(scores),
        runs=len(runs),
    )


def worst_case_cells(case: WorstCase, styles: list[str], baseline_worst: float | None) -> list[str]:
    """The cells ``*styles, mean, worst, ratio (worst)`` of one row."""
    cells = [
        "failed" if style in case.failed_styles else cell(case.style_means[style], ".4f")
        for style in styles
    ]
    mean = cell(case.mean, ".4f")
    if case.mean is not None and case.finished < case.runs:
        mean += f" ({case.finished} of {case.runs} runs)"
    worst = "failed" if case.failed_styles else cell(case.worst, ".4f")
    return [*cells, mean, worst, _ratio(case.worst, baseline_worst)]


def row_runs(results: dict[tuple[str, str, int], dict], row: str) -> dict[tuple[str, int], dict]:
    """The results of ``row`` keyed by (style, seed)."""
    return {(style, seed): r for (name, style, seed), r in results.items() if name == row}


def table_header(styles: list[str]) -> list[str]:
    return ["row", "seeds", *styles, "mean", "worst", "ratio (worst)", *NUMBER_COLUMNS]


def table_rows(
    rows: list[str], styles: list[str], results: dict[tuple[str, str, int], dict]
) -> list[list[str]]:
    """One line per row: per style the mean over seeds, then mean and worst over every (style,
    seed), the worst against the first row's worst, and the means of ``NUMBERS``."""
    cases = {row: worst_case(row_runs(results, row), styles) for row in rows}
    baseline_worst = cases[rows[0]].worst
    lines = []
    for row in rows:
        runs = row_runs(results, row)
        done = [r for r in runs.values() if r["status"] == "ok"]
        numbers = [
            cell(mean_or_none([r.get(key) for r in done]), spec) for key, spec in NUMBERS.items()
        ]
        seeds = ", ".join(map(str, sorted({seed for _style, seed in runs})))
        lines.append([row, seeds, *worst_case_cells(cases[row], styles, baseline_worst), *numbers])
    return lines


def run_cell(result: dict | None) -> str:
    if result is None:
        return "–"
    return f"{result['score']:.4f}" if result["status"] == "ok" else "failed"


def seed_rows(
    rows: list[str], styles: list[str], results: dict[tuple[str, str, int], dict]
) -> list[list[str]]:
    """Every run's score: one line per row, per style its seeds' scores in seed order."""
    lines = []
    for row in rows:
        runs = row_runs(results, row)
        seeds = sorted({seed for _style, seed in runs})
        cells = [
            " / ".join(run_cell(runs.get((style, seed))) for seed in seeds) for style in styles
        ]
        lines.append([row, " / ".join(map(str, seeds)), *cells])
    return lines


def failed_runs(results: dict[tuple[str, str, int], dict]) -> list[str]:
    """``row style sSEED: step (log)`` for each failed run."""
    return [
        f"`{row}` {style} s{seed}: {result['step']} (`{result['log']}`)"
        for (row, style, seed), result in results.items()
        if result["status"] != "ok"
    ]


def markdown_table(header: list[str], lines: list[list[str]]) -> str:
    assert all(len(line) == len(header) for line in lines), "a line has the wrong cell count"
    head = "| " + " | ".join(header) + " |"
    rule = "| " + " | ".join("---" for _ in header) + " |"
    return "\n".join([head, rule, *("| " + " | ".join(line) + " |" for line in lines)])


def shared_training(results: dict[tuple[str, str, int], dict]) -> list[list[str]]:
    """Groups of rows that share one training run (identical train flags and dataset)."""
    groups: dict[str, list[str]] = {}
    for (row, _style, _seed), result in results.items():
        key = result.get("train_fingerprint")
        if key and row not in groups.setdefault(key, []):
            groups[key].append(row)
    unique = {tuple(rows) for rows in groups.values() if len(rows) > 1}
    return [list(rows) for rows in sorted(unique)]


def report(
    recipes: list[Recipe],
    styles: list[str],
    results: dict[tuple[str, str, int], dict],
    common: Common,
    datasets: dict[str, dict],
    command: str,
    architecture_path: Path,
) -> str:
    """The markdown of ``docs/recipes.md``."""
    rows = [r.name for r in recipes]
    seeds = sorted({seed for _row, _style, seed in results})
    summaries = {style: datasets[style]["summary"] for style in styles}
    first = summaries[styles[0]]
    reused = sum(bool(r.get("reused")) for r in results.values())
    architecture = ", ".join(f"{k} {v}" for k, v in common.architecture.items())

    def split(name: str) -> str:
        return "; ".join(
            f"{style} {s[f'{name}_participants']} participants, {s[f'{name}_sequences']} sequences"
            for style, s in summaries.items()
        )

    lines = [
        "# Recipes side by side",
        "",
        "Written by `benchmarks/recipes.py` (do not edit by hand). Every row trains on the same "
        "data with the same budget, once per signing style and seed, and is scored on "
        "participants it never saw, through its exported `model.tflite` and `aslfr "
        "check-submission`. Rows are judged by their worst run: a recipe tuned on one data "
        "source can fail on another, and a mean hides that.",
        "",
        f"- command: `{command}`",
        f"- datasets: synthetic, one per style (`aslfr synth --style`: {', '.join(styles)}), "
        f"each {first['sequences']:,} sequences by {first['participants']} participants, "
        f"difficulty {first['difficulty']} (the generator's default), synth seed "
        f"{first['seed']}, {first['frames']} frames; held out (val split by participant, "
        f"fraction {first['val_fraction']}): {split('val')}; training: {split('train')}",
        f"- every row: {common.epochs} epochs, batch {common.batch_size}, seed(s) "
        f"{', '.join(map(str, seeds))} on every style; unless the row sets them: warmup "
        f"{common.warmup_epochs} epochs, the architecture of `{display(architecture_path)}` "
        f"({architecture}); the last checkpoint is exported (the held-out split chooses "
        "nothing)",
        f"- machine: {os.cpu_count()} CPUs (`os.cpu_count()`), {platform.platform()}, "
        f"Python {platform.python_version()}",
        f"- date: {datetime.datetime.now().isoformat(timespec='minutes')}"
        + (
            f"; {reused} of {len(results)} results reused from an earlier run with the same "
            "settings (same fingerprint)"
            if reused
            else ""
        ),
        "",
        markdown_table(table_header(styles), table_rows(rows, styles, results)),
        "",
        f"{', '.join(styles)}: held-out score ((N - D) / N of the exported submission on that "
        "style's held-out sequences), mean over the row's seeds; mean: over every (style, seed) "
        "run; worst: the lowest single run, the headline; ratio (worst): worst / worst of "
        f"`{rows[0]}`, measured in the same benchmark (none when that is <= 0 or unknown); "
        "failed: a run of that style failed (listed below), so the row has no worst; a row "
        "with more seeds takes its worst over more runs. Means over the row's finished runs: "
        "training s (wall time of `aslfr train`, start-up and the final validation decode "
        f"included), parameters, TFLite MB, p50 ms (median per sequence, LiteRT, "
        f"{CHECK_THREADS} thread).",
    ]
    failed = failed_runs(results)
    if failed:
        lines += ["", "Failed runs: " + "; ".join(failed) + "."]
    for group in shared_training(results):
        names = ", ".join(f"`{name}`" for name in group)
        lines += [
            "",
            f"Rows {names} share one training run per style and seed (identical `train:`): "
            "their training s and parameters are that run's.",
        ]
    lines += [
        "",
        "## Every run",
        "",
        "Held-out score of each run, per style in the order of the row's seeds.",
        "",
        markdown_table(["row", "seeds", *styles], seed_rows(rows, styles, results)),
        "",
        "## Rows",
        "",
    ]
    lines += [f"- `{r.name}` ({display(r.path)}): {r.description}" for r in recipes]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------------
# Main


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", help="comma-separated row names (default: every recipe)")
    parser.add_argument(
        "--styles",
        type=style_list,
        help=f"comma-separated `aslfr synth --style` names, one dataset each (default "
        f"{FULL['styles']}; --quick: {QUICK['styles']})",
    )
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=SEEDS, help="training seeds, on every style"
    )
    parser.add_argument(
        "--extra-seeds", type=int, nargs="+", default=[], help="more seeds for --extra-seed-rows"
    )
    parser.add_argument(
        "--extra-seed-rows", default="", help="comma-separated rows that also run --extra-seeds"
    )
    parser.add_argument(
        "--epochs", type=int, help=f"epochs of every row (default {FULL['epochs']})"
    )
    parser.add_argument("--batch-size", type=int, default=32, help="batch size of every row")
    parser.add_argument(
        "--sequences", type=int, help=f"synthetic sequences (default {FULL['sequences']})"
    )
    parser.add_argument(
        "--participants", type=int, help=f"synthetic signers (default {FULL['participants']})"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke test: {QUICK['sequences']} sequences, {QUICK['participants']} signers, "
        f"{QUICK['epochs']} epochs, its own data/output folders",
    )
    parser.add_argument("--recipes", type=Path, default=RECIPES, help="folder of row configs")
    parser.add_argument(
        "--architecture",
        type=Path,
        default=ARCHITECTURE_CONFIG,
        help="config whose train: architecture every row gets unless it sets its own",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="dataset cache, a folder per style (default data/bench-recipes)",
    )
    parser.add_argument("--out", type=Path, help="runs and results (default outputs/bench-recipes)")
    parser.add_argument("--doc", type=Path, help="markdown report (default docs/recipes.md)")
    parser.add_argument(
        "--force",
        action="store_true",
        help="rerun the selected rows (a dataset is remade only when its settings change)",
    )
    return parser.parse_args(argv)


def this_command(argv: list[str]) -> str:
    python = Path(os.path.abspath(sys.executable))
    shown = display(python) if python.is_relative_to(ROOT) else "python"
    return shlex.join([shown, "benchmarks/recipes.py", *argv])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    sizes = QUICK if args.quick else FULL
    suffix = "-quick" if args.quick else ""
    out = args.out or ROOT / "outputs" / f"bench-recipes{suffix}"
    data_dir = args.data_dir or ROOT / "data" / f"bench-recipes{suffix}"
    doc = args.doc or (out / "recipes.md" if args.quick else DOC)
    try:
        recipes = select_rows(load_recipes(args.recipes), args.rows and args.rows.split(","))
        from aslfr_lib.synthetic import SynthConfig  # its default difficulty, recorded

        common = Common(
            epochs=args.epochs or sizes["epochs"],
            batch_size=args.batch_size,
            sequences=args.sequences or sizes["sequences"],
            participants=args.participants or sizes["participants"],
            difficulty=SynthConfig().difficulty,
            architecture=read_architecture(args.architecture),
        )
        styles = args.styles or style_list(sizes["styles"])
        datasets = {style: ensure_dataset(data_dir / style, common, style) for style in styles}
    except (RecipeError, StepFailed, OSError) as error:
        print(f"benchmarks/recipes.py: error: {error}", file=sys.stderr)
        return 1
    results: dict[tuple[str, str, int], dict] = {}
    trained: dict[str, dict | StepFailed] = {}
    extra_rows = set(filter(None, args.extra_seed_rows.split(",")))
    unknown = extra_rows - {recipe.name for recipe in recipes}
    if unknown:
        print(f"benchmarks/recipes.py: error: unknown --extra-seed-rows {sorted(unknown)}")
        return 1
    for recipe in recipes:
        extra = args.extra_seeds if recipe.name in extra_rows else []
        for style in styles:
            for seed in [*args.seeds, *(s for s in extra if s not in args.seeds)]:
                results[(recipe.name, style, seed)] = run_row(
                    recipe, common, style, seed, datasets[style], out, args.force, trained
                )
    text = report(recipes, styles, results, common, datasets, this_command(argv), args.architecture)
    atomic.write_text(doc, text)
    print()
    print(text)
    print(f"written to {display(doc)}")
    return 1 if any(r["status"] != "ok" for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
