"""``aslfr predict --model submission.zip INPUT...``: the phrase a submission gives each sequence.

An INPUT is a video (landmarks extracted in-process with MediaPipe, so this needs the video
environment) or a competition parquet (every sequence in it, or only ``--sequence-id``). Both go
through ``HarnessRunner``, so the phrase printed is the one Kaggle's scorer would see.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from aslfr_lib import config
from aslfr_lib.runner import (
    HarnessRunner,
    SequenceError,
    Submission,
    SubmissionError,
    frames_of,
    read_sequence,
    read_sequences,
)
from aslfr_lib.video import VideoError, extract_landmarks  # mediapipe is imported only on use

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")
PARQUET_SUFFIXES = (".parquet",)


class InputError(ValueError):
    """An INPUT that is neither a video nor a parquet file, or does not exist."""


@dataclass(frozen=True)
class Prediction:
    source: str  # the input file
    sequence_id: int
    frames: int  # frames fed to the model
    phrase: str  # harness decoding of the model's outputs


@dataclass(frozen=True)
class PredictConfig:
    model: Path | None = config.param(None, "submission.zip (or folder) with model.tflite")
    sequence_id: int | None = config.param(
        None, "parquet: only this sequence (default: all); video: the id to label it with"
    )
    num_threads: int = config.param(1, "LiteRT interpreter threads")
    progress: bool = config.param(True, "show progress bars (on stderr)")


def _kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        kind = "video"
    elif suffix in PARQUET_SUFFIXES:
        kind = "parquet"
    else:
        raise InputError(
            f"{path}: not a video ({', '.join(VIDEO_SUFFIXES)}) or a parquet file "
            f"({', '.join(PARQUET_SUFFIXES)})"
        )
    if not path.is_file():
        raise InputError(f"{path}: no such {kind} file")
    return kind


def _sequences(path: Path, columns: list[str], sequence_id: int | None, progress: bool):
    """(sequence_id, frames) of one input, read as the harness reads parquet."""
    if _kind(path) == "video":
        video_id = 0 if sequence_id is None else sequence_id
        table = extract_landmarks(path, sequence_id=video_id, progress=progress)
        yield video_id, frames_of(table, video_id, columns, str(path))
    elif sequence_id is not None:
        yield sequence_id, read_sequence(path, sequence_id, columns)
    else:
        yield from read_sequences(path, columns)


def predict(
    model: str | Path | Submission | HarnessRunner,
    inputs: str | Path | Iterable[str | Path],
    sequence_id: int | None = None,
    num_threads: int = 1,
    progress: bool = False,
) -> list[Prediction]:
    """Phrases for every sequence of ``inputs`` (videos and/or competition parquet files)."""
    runner = model if isinstance(model, HarnessRunner) else HarnessRunner(model, num_threads)
    paths = [Path(inputs)] if isinstance(inputs, str | Path) else [Path(p) for p in inputs]
    for path in paths:  # fail on a bad name before spending minutes on a video
        _kind(path)
    predictions = []
    for path in paths:
        sequences = _sequences(path, runner.selected_columns, sequence_id, progress)
        for sid, frames in tqdm(
            sequences, desc=f"predict {path.name}", unit="sequence", disable=not progress
        ):
            predictions.append(
                Prediction(str(path), sid, len(frames), runner.predict_phrase(frames))
            )
    return predictions


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="aslfr predict",
        description="phrase of each video or parquet sequence, as Kaggle's harness decodes it",
    )
    parser.add_argument("inputs", nargs="+", type=Path, help="videos and/or competition parquets")
    config.add_arguments(parser, PredictConfig, required=("model",))
    args = parser.parse_args(argv)
    settings = config.from_args(PredictConfig, args)
    try:
        predictions = predict(
            settings.model,
            args.inputs,
            sequence_id=settings.sequence_id,
            num_threads=settings.num_threads,
            progress=settings.progress,
        )
    except (InputError, SubmissionError, SequenceError, VideoError, ImportError) as error:
        print(f"aslfr predict: error: {error}", file=sys.stderr)
        return 1
    for prediction in predictions:
        print(f"{prediction.source}\t{prediction.sequence_id}\t{prediction.phrase}")
    return 0
