"""``aslfr check-submission submission.zip --data DIR``: score a submission like Kaggle's harness.

Without TensorFlow (only numpy, pandas, pyarrow, rapidfuzz and LiteRT), like the scorer:

1. read ``inference_args.json`` and load ``model.tflite`` (``runner.load_submission``; a missing
   file, signature, input/output name or a wrong dtype fails here with the reason);
2. for every sequence of the dataset's ``train.csv`` (or of a processed split, or the first
   ``--limit``), read its frames with ``pandas.read_parquet(path, columns=selected_columns)``
   (each parquet file once, then split by sequence id);
3. run the ``serving_default`` signature with 1 thread and decode ``outputs`` with ``argmax`` and
   the character map, dropping ids outside it;
4. print the competition score ``(N - D) / N`` (N: characters of the true phrases, D: summed
   Levenshtein distances), p50/p95 milliseconds per sequence, the estimated hours for a hidden
   test set of ``--test-sequences`` sequences and the model size.

``check_submission(...)`` returns the same as a ``SubmissionReport`` with every sequence's
prediction and latency (for tables and histograms).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from aslfr_lib import config as configs
from aslfr_lib.runner import (
    HarnessRunner,
    SequenceError,
    Submission,
    SubmissionError,
    read_sequences,
)
from aslfr_lib.scoring import competition_score, levenshtein_distances

TRAIN_CSV = "train.csv"
PROCESSED_META = "meta.json"
SPLITS = ("train", "val")

# Kaggle did not publish the size of the hidden fingerspelling test set where we can check it;
# its previous landmark competition (Isolated Sign Language Recognition) announced "approximately
# 40,000" test videos, and our estimate uses the same order of magnitude. Pass the real count
# with --test-sequences when it is known.
DEFAULT_TEST_SEQUENCES = 40_000
MS_PER_HOUR = 3_600_000.0


class CheckError(ValueError):
    """A dataset or split that cannot be checked (names the file and what is wrong)."""


@dataclasses.dataclass(frozen=True)
class CheckConfig:
    data: str = configs.param("data/synthetic", "competition-layout dataset (train.csv + parquet)")
    processed: str | None = configs.param(
        None, "processed folder: check only the sequences of its `split` (meta.json)"
    )
    split: str = configs.param("val", "split of --processed to check: val or train")
    limit: int | None = configs.param(None, "check only the first N sequences")
    test_sequences: int = configs.param(
        DEFAULT_TEST_SEQUENCES, "hidden test set size for the run-time estimate"
    )
    num_threads: int = configs.param(1, "LiteRT threads (Kaggle's scorer: 1)")
    json: bool = configs.param(False, "print the report as JSON (with every sequence)")
    progress: bool = configs.param(True, "show a progress bar (on stderr)")


@dataclasses.dataclass(frozen=True)
class SequenceResult:
    sequence_id: int
    path: str  # parquet file, relative to the dataset folder
    frames: int  # raw frames fed to the model
    phrase: str  # the truth
    prediction: str  # harness decoding of the model's outputs
    distance: int  # Levenshtein distance phrase -> prediction
    milliseconds: float  # wall time of the signature call and decoding


@dataclasses.dataclass
class SubmissionReport:
    submission: str
    data: str
    selection: str  # which sequences: "train.csv", "val split of <processed>", "+ first N"
    sequences: int
    characters: int  # N
    distance: int  # D
    score: float  # (N - D) / N
    exact_matches: int
    p50_ms: float
    p95_ms: float
    mean_ms: float
    test_sequences: int
    estimated_hours: float  # mean_ms * test_sequences, model time only
    model_bytes: int
    zip_bytes: int
    num_threads: int
    results: list[SequenceResult]
    # Held-out sequences that preprocessing found too short to train on are scored above like
    # every other (Kaggle excludes nothing); the score without them, labelled, for comparison.
    too_short_to_train: int = 0
    score_trainable_subset: float | None = None

    def summary(self) -> dict[str, Any]:
        """Every field but the per-sequence results."""
        return {
            field.name: getattr(self, field.name)
            for field in dataclasses.fields(self)
            if field.name != "results"
        }

    def to_dict(self) -> dict[str, Any]:
        return {**self.summary(), "results": [dataclasses.asdict(r) for r in self.results]}

    def to_frame(self) -> pd.DataFrame:
        """One row per sequence: truth, prediction, distance, milliseconds."""
        columns = [field.name for field in dataclasses.fields(SequenceResult)]
        return pd.DataFrame([dataclasses.asdict(r) for r in self.results], columns=columns)

    @property
    def latencies_ms(self) -> np.ndarray:
        return np.array([r.milliseconds for r in self.results])

    def format(self) -> str:
        """The human-readable report the command prints."""
        return "\n".join(
            [
                f"submission      {self.submission}",
                f"data            {self.data} ({self.selection})",
                f"sequences       {self.sequences} ({self.exact_matches} exactly right)",
                f"score           {self.score:.4f}  (N - D) / N with N={self.characters}, "
                f"D={self.distance}, every selected sequence",
                *(
                    [
                        f"                {self.score_trainable_subset:.4f}  trainable subset "
                        f"only (without the {self.too_short_to_train} too short to train on)"
                    ]
                    if self.score_trainable_subset is not None
                    else []
                ),
                f"latency         p50 {self.p50_ms:.1f} ms, p95 {self.p95_ms:.1f} ms, "
                f"mean {self.mean_ms:.1f} ms per sequence ({self.num_threads} thread)",
                f"estimated time  {self.estimated_hours:.2f} h for {self.test_sequences:,} "
                "hidden test sequences (model time only)",
                f"model size      {self.model_bytes / 1e6:.2f} MB model.tflite, "
                f"{self.zip_bytes / 1e6:.2f} MB zip",
            ]
        )


def read_train_csv(data: str | Path) -> pd.DataFrame:
    """The dataset's ``train.csv`` (path, sequence_id, phrase, ...), checked."""
    path = Path(data) / TRAIN_CSV
    if not path.is_file():
        raise CheckError(f"{path}: no such file; --data must be a competition-layout dataset")
    table = pd.read_csv(path, keep_default_na=False)  # "null" and "nan" are real phrases
    missing = [c for c in ("path", "sequence_id", "phrase") if c not in table.columns]
    if missing:
        raise CheckError(f"{path}: lacks column(s) {missing}")
    repeated = table["sequence_id"][table["sequence_id"].duplicated()].unique()
    if len(repeated):
        raise CheckError(f"{path}: sequence_id(s) listed twice, e.g. {repeated[:5].tolist()}")
    return table


def _split_meta(processed: str | Path, split: str) -> dict[str, Any]:
    if split not in SPLITS:
        raise CheckError(f"split must be one of {SPLITS}, got {split!r}")
    path = Path(processed) / PROCESSED_META
    if not path.is_file():
        raise CheckError(f"{path}: no such file; run `aslfr preprocess --out {processed}` first")
    meta = json.loads(path.read_text(encoding="utf-8"))
    if split not in meta or "sequence_ids" not in meta[split]:
        raise CheckError(f"{path}: has no {split!r} split with sequence_ids")
    return meta[split]


def split_sequence_ids(processed: str | Path, split: str) -> list[int]:
    """Sequence ids of a processed split (``meta.json`` written by ``aslfr preprocess``); the
    validation split also lists the held-out sequences too short to train on."""
    return [int(s) for s in _split_meta(processed, split)["sequence_ids"]]


def too_short_sequence_ids(processed: str | Path, split: str) -> set[int]:
    """Ids of the split's sequences that preprocessing keeps for scoring only."""
    listed = _split_meta(processed, split)
    trainable = listed.get("trainable") or [True] * len(listed["sequence_ids"])
    return {int(s) for s, t in zip(listed["sequence_ids"], trainable, strict=True) if not t}


def select_sequences(
    data: str | Path,
    processed: str | Path | None = None,
    split: str = "val",
    limit: int | None = None,
) -> tuple[pd.DataFrame, str]:
    """Rows of train.csv to check (all, or a processed split's, then the first ``limit``).

    Returns the rows and a description of the selection.
    """
    table = read_train_csv(data)
    selection = TRAIN_CSV
    if processed is not None:
        ids = split_sequence_ids(processed, split)
        if not ids:
            raise CheckError(f"{Path(processed) / PROCESSED_META}: the {split!r} split is empty")
        listed = set(table["sequence_id"].tolist())
        unknown = [s for s in ids if s not in listed]
        if unknown:
            raise CheckError(
                f"{Path(data) / TRAIN_CSV}: lacks {len(unknown)} sequence(s) of the {split!r} "
                f"split of {processed}, e.g. {unknown[:5]}; was it processed from another dataset?"
            )
        table = table.set_index("sequence_id").loc[ids].reset_index()
        selection = f"{split} split of {processed}"
    if limit is not None:
        if limit < 1:
            raise CheckError(f"limit must be >= 1, got {limit}")
        table = table.head(limit)
        selection += f", first {len(table)}"
    if table.empty:
        raise CheckError(f"{Path(data) / TRAIN_CSV}: lists no sequences")
    return table.reset_index(drop=True), selection


def iter_sequences(
    data: str | Path, rows: pd.DataFrame, columns: Sequence[str], progress: bool = False
) -> Iterator[tuple[Any, np.ndarray]]:
    """(row of ``rows``, frames [n, len(columns)]) for every row, reading each parquet once.

    Rows come grouped by file, in order of each file's first row.
    """
    data = Path(data)
    bar = tqdm(total=len(rows), desc="sequences", unit="seq", disable=not progress)
    with bar:
        for relative, group in rows.groupby("path", sort=False):
            wanted = set(group["sequence_id"].tolist())
            frames = {
                sequence_id: sequence
                for sequence_id, sequence in read_sequences(data / relative, columns)
                if sequence_id in wanted
            }
            for row in group.itertuples(index=False):
                if row.sequence_id not in frames:
                    raise SequenceError(
                        f"{data / relative}: sequence_id {row.sequence_id} (listed in "
                        f"{TRAIN_CSV}) is not in the file"
                    )
                yield row, frames[row.sequence_id]
                bar.update(1)


def check_submission(
    submission: str | Path | Submission,
    data: str | Path,
    processed: str | Path | None = None,
    split: str = "val",
    limit: int | None = None,
    test_sequences: int = DEFAULT_TEST_SEQUENCES,
    num_threads: int = 1,
    progress: bool = True,
) -> SubmissionReport:
    """Run ``submission`` over the selected sequences of ``data`` as Kaggle's harness does."""
    runner = HarnessRunner(submission, num_threads=num_threads)
    rows, selection = select_sequences(data, processed, split, limit)
    results = []
    for row, frames in iter_sequences(data, rows, runner.selected_columns, progress):
        started = time.perf_counter()
        prediction = runner.predict_phrase(frames)
        milliseconds = (time.perf_counter() - started) * 1000.0
        phrase = str(row.phrase)
        results.append(
            SequenceResult(
                sequence_id=int(row.sequence_id),
                path=str(row.path),
                frames=len(frames),
                phrase=phrase,
                prediction=prediction,
                distance=int(levenshtein_distances([phrase], [prediction])[0]),
                milliseconds=milliseconds,
            )
        )
    characters = sum(len(r.phrase) for r in results)
    distance = sum(r.distance for r in results)
    latencies = np.array([r.milliseconds for r in results])
    too_short = too_short_sequence_ids(processed, split) if processed is not None else set()
    subset = [r for r in results if r.sequence_id not in too_short]
    subset_score = None
    if len(subset) < len(results) and subset:
        subset_score = competition_score([r.phrase for r in subset], [r.prediction for r in subset])
    return SubmissionReport(
        submission=str(runner.submission.source),
        data=str(data),
        selection=selection,
        sequences=len(results),
        characters=characters,
        distance=distance,
        score=competition_score([r.phrase for r in results], [r.prediction for r in results]),
        exact_matches=sum(r.distance == 0 for r in results),
        p50_ms=float(np.percentile(latencies, 50)),
        p95_ms=float(np.percentile(latencies, 95)),
        mean_ms=float(latencies.mean()),
        test_sequences=test_sequences,
        estimated_hours=float(latencies.mean()) * test_sequences / MS_PER_HOUR,
        model_bytes=runner.submission.model_size_bytes,
        zip_bytes=runner.submission.size_bytes,
        num_threads=num_threads,
        results=results,
        too_short_to_train=len(results) - len(subset),
        score_trainable_subset=subset_score,
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="aslfr check-submission", description=__doc__.split("\n")[0]
    )
    parser.add_argument("submission", help="submission.zip (or a folder with its two files)")
    configs.add_arguments(parser, CheckConfig)
    args = parser.parse_args(argv)
    try:
        config = configs.from_args(CheckConfig, args)
        report = check_submission(
            args.submission,
            config.data,
            processed=config.processed,
            split=config.split,
            limit=config.limit,
            test_sequences=config.test_sequences,
            num_threads=config.num_threads,
            progress=config.progress,
        )
    except (SubmissionError, SequenceError, CheckError, OSError, ValueError) as error:
        print(f"aslfr check-submission: error: {error}", file=sys.stderr)
        return 1
    print(json.dumps(report.to_dict(), indent=1) if config.json else report.format())
    return 0


__all__ = [
    "DEFAULT_TEST_SEQUENCES",
    "CheckConfig",
    "CheckError",
    "SequenceResult",
    "SubmissionReport",
    "check_submission",
    "competition_score",
    "main",
    "select_sequences",
]
