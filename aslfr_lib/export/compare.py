"""Keras vs TFLite on the same sequences: the exported file must say what the model says.

The Keras side is what evaluation does (numpy preprocessing, then ``decoding.greedy_decode``);
the TFLite side is what Kaggle does (raw frames into ``model.tflite`` through
``runner.HarnessRunner``). A mismatch means the export or the in-graph preprocessing differs
from training; with float32 weights there should be none.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aslfr_lib.decoding import (
    DEFAULT_CTC_WEIGHT_DECODING,
    decode,
    ids_to_phrases,
    members_of,
)
from aslfr_lib.model import model_frames
from aslfr_lib.preprocess import clean_sequence, resize_frames
from aslfr_lib.runner import HarnessRunner, Submission
from aslfr_lib.submission import iter_sequences, select_sequences

COLUMNS = ["sequence_id", "frames", "phrase", "keras", "tflite", "match"]


def compare_predictions(
    model: Any,
    submission: str | Path | Submission,
    data: str | Path,
    processed: str | Path | None = None,
    split: str = "val",
    limit: int | None = None,
    mirror: bool = True,
    progress: bool = False,
    cached: bool = True,
    decoder: str = "attention",
    fallback: Any = None,
    beam: int | None = None,
    ctc_weight: float = DEFAULT_CTC_WEIGHT_DECODING,
    language_model: Any = None,
) -> pd.DataFrame:
    """One row per sequence: the true phrase, Keras's and the .tflite's greedy phrases, match.

    ``mirror`` must be the setting the model's training data was preprocessed with (the export
    bakes the same one into the graph). ``cached=False`` decodes the Keras side with the full
    decoder instead of ``decoding.decode_step`` (which the export shares), for an independent
    check. ``decoder`` is the head the submission decodes with (``ExportResult.decoder``);
    ``fallback`` the run's ``aslfr_lib.fallback.Fallback`` that the export baked in;
    ``beam``/``ctc_weight``/``language_model`` the search's (``ExportResult.beam``,
    ``.ctc_weight_decoding``, ``.language_model``).
    ``model`` may be a list of models (an ensemble export).
    """
    runner = HarnessRunner(submission, num_threads=1)
    rows, _ = select_sequences(data, processed, split, limit)
    frames_per_sequence = model_frames(members_of(model)[0])
    records, inputs, hand_frames = [], [], []
    for row, frames in iter_sequences(data, rows, runner.selected_columns, progress):
        records.append(
            {
                "sequence_id": int(row.sequence_id),
                "frames": len(frames),
                "phrase": str(row.phrase),
                "tflite": runner.predict_phrase(frames),
            }
        )
        cleaned = clean_sequence(frames, mirror=mirror)  # preprocess_sequence, before resizing
        inputs.append(resize_frames(cleaned, frames_per_sequence))
        hand_frames.append(len(cleaned))
    ids = decode(
        model,
        np.stack(inputs),
        decoder,
        progress=progress,
        cached=cached,
        beam=beam,
        ctc_weight=ctc_weight,
        language_model=language_model,
    )
    keras_phrases = ids_to_phrases(ids)
    if fallback is not None:
        keras_phrases = fallback.apply(keras_phrases, hand_frames)
    table = pd.DataFrame(records)
    table["keras"] = keras_phrases
    table["match"] = table["keras"] == table["tflite"]
    return table[COLUMNS]


def match_rate(table: pd.DataFrame) -> float:
    """Share of sequences whose Keras and TFLite phrases are identical."""
    return float(table["match"].mean()) if len(table) else float("nan")
