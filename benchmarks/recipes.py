"""Recipe ablation: train recipes side by side on one dataset, score them through the export.

    .venv/bin/python benchmarks/recipes.py                          # every row, seed 42
    .venv/bin/python benchmarks/recipes.py --rows v6_reference,v6_fixes --seeds 42 43
    .venv/bin/python benchmarks/recipes.py --quick --rows v6_fixes  # smoke test, minutes

Rows are the files ``configs/recipes/*.yaml`` in the order of the number their names start
with; the first selected row is the baseline of the ``ratio`` column. Each file has a comment
header (what the recipe is, and why it is a row), a ``name:`` (the row label), a ``train:``
mapping of ``aslfr train`` flags and an optional ``export:`` mapping of ``aslfr export`` flags.
A new row is a new file.

Every row gets the same data and the same budget: ``--epochs``, ``--batch-size`` and ``--seeds``,
``warmup_epochs = round(0.1 * epochs)`` and the architecture of ``configs/demo.yaml``'s
``train:`` section unless the row sets them itself. Optimizer, learning rate and weight decay
belong to the row. The dataset (synthetic, the generator's default difficulty) is written once
with ``aslfr synth`` and ``aslfr preprocess --val-fraction 0.2`` into ``--data-dir`` and reused
while its settings match; the validation split is whole participants that training never sees.

Per row and seed, each step is a subprocess through the installed ``aslfr`` with its output in a
log file: ``aslfr train`` (timed: the "training s" column), ``aslfr export`` of the *last*
checkpoint (the held-out participants never choose a checkpoint), then ``aslfr
check-submission --split val --json`` on the exported ``submission.zip``: the held-out score and
the p50 milliseconds per sequence (LiteRT, 1 thread, as Kaggle's scorer runs it).

Results are cached as ``<out>/<row>-s<seed>/result.json``, keyed by a fingerprint of the row's
settings, the common settings and the dataset, so an interrupted benchmark resumes where it
stopped (``--force`` reruns the selected rows). Training runs live in ``<out>/train/`` keyed by
the train flags alone: rows with identical ``train:`` mappings (one training, two decoders)
share one run. A failing step marks its row as failed, with its log, and the benchmark goes on.

The table is printed and written to ``docs/recipes.md`` (``--quick``: ``<out>/recipes.md``).
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
FULL = {"sequences": 2000, "participants": 40, "epochs": 30}
QUICK = {"sequences": 300, "participants": 10, "epochs": 2}
COLUMNS = (
    "row",
    "seed",
    "held-out score",
    "ratio",
    "training s",
    "parameters",
    "TFLite MB",
    "p50 ms",
)
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


# ----------------------------------------------------------------------------------------------
# Settings and flags


@dataclasses.dataclass(frozen=True)
class Common:
    """What the benchmark imposes on every row, and the dataset it makes."""

    epochs: int
    batch_size: int
    sequences: int
    participants: int
    difficulty: float  # the generator's default (not passed to aslfr synth)
    architecture: dict[str, Any]

    @property
    def warmup_epochs(self) -> int:
        return round(WARMUP_SHARE * self.epochs)

    def dataset(self) -> dict[str, Any]:
        return {
            "synth": {
                "sequences": self.sequences,
                "participants": self.participants,
                "seed": SYNTH_SEED,
                "sequences_per_file": SEQUENCES_PER_FILE,
                "difficulty": self.difficulty,
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


def train_key(recipe: Recipe, common: Common, seed: int) -> dict[str, Any]:
    """What a training run depends on: its flags and the dataset (not the export)."""
    return {"train": train_flags(recipe, common, seed), "dataset": common.dataset()}


def result_key(recipe: Recipe, common: Common, seed: int) -> dict[str, Any]:
    return {
        **train_key(recipe, common, seed),
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


def ensure_dataset(folder: Path, common: Common) -> dict[str, Any]:
    """Synthesize and preprocess the dataset into ``folder`` unless it is there with the same
    settings; returns ``{"raw", "processed", "settings", "summary", "fingerprint"}``."""
    settings = common.dataset()
    meta_path = folder / DATASET_META
    raw, processed = folder / "raw", folder / "processed"
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("settings") == settings and (processed / "meta.json").is_file():
            say(f"dataset {display(folder)} reused ({fingerprint(settings)})")
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
    say(f"dataset: aslfr synth {synth['sequences']} sequences -> {display(raw)}")
    command = [
        *aslfr_command(),
        "synth",
        "--out",
        str(raw),
        *command_line({k: v for k, v in synth.items() if k != "difficulty"}),
    ]
    run_step("aslfr synth", command, folder / "synth.log")
    say(f"dataset: aslfr preprocess -> {display(processed)}")
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
    recipe: Recipe, common: Common, seed: int, dataset: dict, out: Path, force: bool
) -> dict[str, Any]:
    """Train (or reuse) the run of a row's train flags; returns its ``train_result.json``."""
    key = train_key(recipe, common, seed)
    key_print = fingerprint(key)
    folder = out / "train" / f"s{seed}-{key_print}"
    done = read_json(folder / TRAIN_RESULT)
    if done and done.get("fingerprint") == key_print and not force:
        say(f"{recipe.name} s{seed}: training {display(folder)} reused")
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
    say(f"{recipe.name} s{seed}: training -> {display(folder)}")
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
    say(f"{recipe.name} s{seed}: trained in {seconds:.0f} s, {parameters} parameters")
    return result


def run_row(
    recipe: Recipe,
    common: Common,
    seed: int,
    dataset: dict,
    out: Path,
    force: bool,
    trained: dict[str, dict | StepFailed],
) -> dict[str, Any]:
    """The result of one row and seed (``status`` ok or failed), from the cache when its
    fingerprint matches. ``trained`` holds this invocation's training runs by fingerprint."""
    key_print = fingerprint(result_key(recipe, common, seed))
    folder = out / f"{recipe.name}-s{seed}"
    cached = read_json(folder / RESULT)
    if cached and cached.get("fingerprint") == key_print and not force:
        say(f"{recipe.name} s{seed}: result reused ({display(folder / RESULT)})")
        return {**cached, "reused": True}
    (folder / RESULT).unlink(missing_ok=True)
    train_print = fingerprint(train_key(recipe, common, seed))
    base = {
        "row": recipe.name,
        "seed": seed,
        "fingerprint": key_print,
        "train_fingerprint": train_print,
        "reused": False,
    }
    try:
        if train_print not in trained:
            try:
                # --force retrains once per invocation; a second row reuses that run
                trained[train_print] = train_run(recipe, common, seed, dataset, out, force)
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
        say(f"{recipe.name} s{seed}: export -> {display(submission)}")
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
        say(f"{recipe.name} s{seed}: check-submission on the held-out participants")
        status, _ = run_logged(command, folder / "check.log", folder / "check.json")
        report = read_json(folder / "check.json") if status == 0 else None
        if report is None:
            raise StepFailed("aslfr check-submission", folder / "check.log")
    except StepFailed as error:
        say(f"{recipe.name} s{seed}: FAILED: {error}")
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
        "key": result_key(recipe, common, seed),
        "finished": datetime.datetime.now().isoformat(timespec="seconds"),
    }
    atomic.write_json(folder / RESULT, result)
    say(f"{recipe.name} s{seed}: held-out score {result['score']:.4f}")
    return result


# ----------------------------------------------------------------------------------------------
# The table


def _mean(values: list[float | None]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.fmean(values) if values else None


def _cell(value: float | None, spec: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return format(value, spec)


def _ratio(score: float | None, baseline: float | None) -> str:
    """score / baseline; none for a baseline <= 0 (its sign would turn the order around)."""
    if score is None or baseline is None or baseline <= 0:
        return "–"
    return f"{score / baseline:.3f}"


def _numbers(result: dict[str, Any]) -> list[float | None]:
    keys = ("training_seconds", "parameters", "tflite_mb", "p50_ms")
    return [result.get(key) for key in keys]


def table_rows(
    rows: list[str], seeds: list[int], results: dict[tuple[str, int], dict]
) -> list[list[str]]:
    """Cells of the table: one line per row and seed, then a mean line for >1 seed; ratios
    against the first row (same seed; the mean against the baseline's mean)."""
    baseline = rows[0]
    specs = (".0f", ",.0f", ".2f", ".1f")
    lines = []
    for row in rows:
        scores = []
        row_seeds = [seed for seed in seeds if (row, seed) in results]  # --extra-seed-rows
        for seed in row_seeds:
            result = results[(row, seed)]
            if result["status"] != "ok":
                failed = f"failed ({result['step']}: `{result['log']}`)"
                lines.append([row, str(seed), failed, "–", "–", "–", "–", "–"])
                scores.append(None)
                continue
            scores.append(result["score"])
            reference = results.get((baseline, seed), {"status": "missing"})
            base = reference["score"] if reference["status"] == "ok" else None
            numbers = [_cell(v, s) for v, s in zip(_numbers(result), specs, strict=True)]
            lines.append(
                [row, str(seed), f"{result['score']:.4f}", _ratio(result["score"], base), *numbers]
            )
        if len(row_seeds) > 1:
            done = [results[(row, s)] for s in row_seeds if results[(row, s)]["status"] == "ok"]
            base_scores = [
                results[(baseline, s)].get("score")
                for s in row_seeds
                if results.get((baseline, s), {}).get("status") == "ok"
            ]
            label = "mean" if len(done) == len(row_seeds) else f"mean of {len(done)}"
            means = [_mean(list(column)) for column in zip(*map(_numbers, done), strict=True)]
            score = _mean(scores)
            lines.append(
                [
                    row,
                    label,
                    _cell(score, ".4f"),
                    _ratio(score, _mean(base_scores)),
                    *(_cell(v, s) for v, s in zip(means or [None] * 4, specs, strict=True)),
                ]
            )
    return lines


def markdown_table(lines: list[list[str]]) -> str:
    header = "| " + " | ".join(COLUMNS) + " |"
    rule = "| " + " | ".join("---" for _ in COLUMNS) + " |"
    return "\n".join([header, rule, *("| " + " | ".join(line) + " |" for line in lines)])


def shared_training(results: dict[tuple[str, int], dict]) -> list[list[str]]:
    """Groups of rows that share one training run (identical train flags)."""
    groups: dict[str, list[str]] = {}
    for (row, _seed), result in results.items():
        key = result.get("train_fingerprint")
        if key and row not in groups.setdefault(key, []):
            groups[key].append(row)
    unique = {tuple(rows) for rows in groups.values() if len(rows) > 1}
    return [list(rows) for rows in sorted(unique)]


def report(
    recipes: list[Recipe],
    seeds: list[int],
    results: dict[tuple[str, int], dict],
    common: Common,
    dataset: dict,
    command: str,
    architecture_path: Path,
) -> str:
    """The markdown of ``docs/recipes.md``."""
    rows = [r.name for r in recipes]
    summary = dataset["summary"]
    reused = sum(bool(r.get("reused")) for r in results.values())
    architecture = ", ".join(f"{k} {v}" for k, v in common.architecture.items())
    lines = [
        "# Recipes side by side",
        "",
        "Written by `benchmarks/recipes.py` (do not edit by hand). Every row trains on the same "
        "data with the same budget and is scored on participants it never saw, through its "
        "exported `model.tflite` and `aslfr check-submission`.",
        "",
        f"- command: `{command}`",
        f"- dataset: synthetic, {summary['sequences']:,} sequences, {summary['participants']} "
        f"participants, difficulty {summary['difficulty']} (the generator's default), "
        f"{summary['frames']} frames; held out (val split by participant, fraction "
        f"{summary['val_fraction']}): {summary['val_participants']} participants, "
        f"{summary['val_sequences']} sequences; training: {summary['train_participants']} "
        f"participants, {summary['train_sequences']} sequences",
        f"- every row: {common.epochs} epochs, batch {common.batch_size}, seed(s) "
        f"{', '.join(map(str, seeds))}; unless the row sets them: warmup "
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
        markdown_table(table_rows(rows, seeds, results)),
        "",
        f"held-out score: (N - D) / N of the exported submission on the held-out sequences; "
        f"ratio: score / score of `{rows[0]}` (same seed), measured in the same benchmark "
        "(none when that score is <= 0); "
        "training s: wall time of `aslfr train` (start-up and the final validation decode "
        f"included); p50 ms: median per sequence, LiteRT, {CHECK_THREADS} thread.",
    ]
    for group in shared_training(results):
        names = ", ".join(f"`{name}`" for name in group)
        lines += [
            "",
            f"Rows {names} share one training run per seed (identical `train:`): their training "
            "s and parameters are that run's.",
        ]
    lines += ["", "## Rows", ""]
    lines += [f"- `{r.name}` ({display(r.path)}): {r.description}" for r in recipes]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------------
# Main


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", help="comma-separated row names (default: every recipe)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42], help="training seeds")
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
    parser.add_argument("--data-dir", type=Path, help="dataset cache (default data/bench-recipes)")
    parser.add_argument("--out", type=Path, help="runs and results (default outputs/bench-recipes)")
    parser.add_argument("--doc", type=Path, help="markdown report (default docs/recipes.md)")
    parser.add_argument(
        "--force",
        action="store_true",
        help="rerun the selected rows (the dataset is remade only when its settings change)",
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
        dataset = ensure_dataset(data_dir, common)
    except (RecipeError, StepFailed, OSError) as error:
        print(f"benchmarks/recipes.py: error: {error}", file=sys.stderr)
        return 1
    results: dict[tuple[str, int], dict] = {}
    trained: dict[str, dict | StepFailed] = {}
    extra_rows = set(filter(None, args.extra_seed_rows.split(",")))
    unknown = extra_rows - {recipe.name for recipe in recipes}
    if unknown:
        print(f"benchmarks/recipes.py: error: unknown --extra-seed-rows {sorted(unknown)}")
        return 1
    for recipe in recipes:
        extra = args.extra_seeds if recipe.name in extra_rows else []
        for seed in [*args.seeds, *(s for s in extra if s not in args.seeds)]:
            results[(recipe.name, seed)] = run_row(
                recipe, common, seed, dataset, out, args.force, trained
            )
    seeds = sorted({seed for _, seed in results})
    text = report(recipes, seeds, results, common, dataset, this_command(argv), args.architecture)
    atomic.write_text(doc, text)
    print()
    print(text)
    print(f"written to {display(doc)}")
    return 1 if any(r["status"] != "ok" for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
