"""Competition parquet -> training arrays: clean, mirror, label, split, normalise.

The per-sequence steps (``clean_sequence`` here, ``resize_frames`` in the training loader) have a
TensorFlow twin in ``aslfr_lib.export.preprocessing`` that runs inside the exported TFLite model;
a test keeps the two equal, so the model sees at inference exactly what it saw in training.

Storage is ragged: each sequence's cleaned frames at their own length (``clean_sequence``: NaN
-> 0, frames without a hand dropped, mirrored when left-handed), all sequences of a split one
after another in ``frames_{split}.npy`` (rows, 164) with ``offsets_{split}.npy`` (N + 1,) int64
marking where each starts. Padding or resizing to the model's ``frames`` happens when batches are
read (``RaggedFrames`` / ``ResizedFrames`` below, ``aslfr_lib.data.ShuffledBatches``), so the
model length can change without preprocessing again, and disk and memory hold no padding.
``frames`` here is only the default length recorded in meta.json.

``run`` reads only the 164 selected columns of each parquet file (column projection), processes
files in parallel worker processes, and keeps each finished file in ``out/.parts/`` (frames
``.npy``, then a ``.json`` summary that marks it complete) so a killed run resumes where it
stopped. The final arrays are streamed to disk part by part, so peak memory follows the largest
file, not the dataset. ``.parts/`` is removed once the outputs are in place.

Choices that differ from the reference notebook (V6), on purpose:

- Mirroring: a sequence signed mostly with the left hand is flipped horizontally (hands swapped,
  symmetric lip points swapped, ``x -> 1 - x``) so the dominant hand always fills the right-hand
  slots. The reference keeps both hand slots as recorded.
- ``min_frames_per_char``: the reference V6 notebook loads pre-made arrays and shows no length
  filter. We drop sequences with fewer than 2 hand frames per character (real data averages about
  9 frames per character, about 5 of them with a hand): such a sequence cannot show every letter
  and mostly teaches the decoder to guess. ``0`` keeps every sequence with at least one hand frame.
- Sequences with no hand frame at all are always excluded (their input would be all padding).
- Normalisation statistics (``means.npy``, ``stds.npy``): per column, over the non-zero values of
  the training split's stored (ragged) hand frames. Until storage format 2 they were taken over
  the arrays already resized to ``frames``; the two differ only where a sequence longer than
  ``frames`` was interpolated (padding zeros never counted), and now do not depend on ``frames``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import multiprocessing
import operator
import shutil
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from aslfr_lib import atomic, landmarks, vocab
from aslfr_lib.config import param, stage_config, stage_parser, to_dict

if TYPE_CHECKING:
    import pandas as pd

TRAIN_CSV = "train.csv"
SUPPLEMENTAL_CSV = "supplemental_metadata.csv"
CSV_COLUMNS = ("path", "file_id", "sequence_id", "participant_id", "phrase")
PARTS_DIR = ".parts"
# Bump when the content of a part file changes, so stale parts are recomputed, never reused.
# 2: a part holds the cleaned frames of its sequences one after another (ragged, no padding).
PARTS_FORMAT_VERSION = 2
# Bump when the output files change; meta.json records it with the storage kind.
# 2: ragged frames_*.npy + offsets_*.npy instead of X_*.npy padded/resized to ``frames``.
OUTPUT_FORMAT_VERSION = 2
STORAGE = "ragged"
ARRAY_FILES = (
    "frames_train.npy",
    "offsets_train.npy",
    "y_train.npy",
    "frames_val.npy",
    "offsets_val.npy",
    "y_val.npy",
    "means.npy",
    "stds.npy",
)
# Written by format 1 (frames padded or resized to ``frames``); removed by a successful run.
OLD_ARRAY_FILES = ("X_train.npy", "X_val.npy")
META_FILE = "meta.json"
# Normalisation divides by the std; a near-constant column would blow values up instead.
MIN_STD = 1e-6
# Values per block when accumulating moments, to bound float64 temporaries (~40 MB).
MOMENT_BLOCK_VALUES = 5_000_000


class PreprocessError(ValueError):
    """Bad input data; the message names the file, the sequence id and what is wrong."""


@dataclass(frozen=True)
class PreprocessConfig:
    data: str = param("data/synthetic", "dataset folder with train.csv and train_landmarks/")
    out: str = param("data/processed", "output folder for frames/y arrays, means/stds, meta.json")
    frames: int = param(
        128, "default model frames (the loader pads or resizes each sequence to it; in meta.json)"
    )
    min_frames_per_char: float = param(
        2.0, "hand frames per character below which a sequence is excluded (0 = keep all)"
    )
    val_fraction: float = param(0.1, "fraction of sequences (whole participants) for validation")
    seed: int = param(42, "seed of the participant split")
    mirror: bool = param(True, "flip left-handed sequences so the dominant hand is the right one")
    dtype: str = param("float32", "stored frame dtype: float32 or float16")
    workers: int = param(2, "parallel processes over parquet files (1 = in this process)")
    skip_invalid: bool = param(
        False, "exclude (and report) sequences with unknown characters or zero rows, not fail"
    )
    supplemental: bool = param(False, "also read supplemental_metadata.csv")

    def __post_init__(self) -> None:
        if self.frames < 1:
            raise ValueError(f"frames must be >= 1, got {self.frames}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.min_frames_per_char < 0:
            raise ValueError(f"min_frames_per_char must be >= 0, got {self.min_frames_per_char}")
        if self.dtype not in ("float32", "float16"):
            raise ValueError(f"dtype must be float32 or float16, got {self.dtype!r}")


# ----------------------------------------------------------------------------------------------
# One sequence (the numpy twin of aslfr_lib.export.preprocessing.preprocess_tf)


def hand_presence(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per frame: is the left hand present, is the right hand present (any non-zero value)."""
    left = np.any(frames[:, landmarks.LEFT_HAND] != 0, axis=1)
    right = np.any(frames[:, landmarks.RIGHT_HAND] != 0, axis=1)
    return left, right


def mirror_frames(frames: np.ndarray) -> np.ndarray:
    """Horizontal flip: swap hands and symmetric lip points, ``x -> 1 - x`` where present."""
    permuted = frames[:, landmarks.MIRROR_PERMUTATION]
    flip = landmarks.IS_X[None, :] & (permuted != 0)  # zeros mean "missing" and must stay zero
    return np.where(flip, np.float32(1) - permuted, permuted).astype(np.float32, copy=False)


def clean_sequence(raw: np.ndarray, mirror: bool = True) -> np.ndarray:
    """[n, 164] raw selected columns -> [m, 164] float32 hand frames, dominant hand on the right.

    NaN becomes 0 (the model's "missing"), frames without either hand are dropped, and when
    ``mirror`` is set a sequence with more left-hand frames than right-hand frames is flipped.
    """
    return clean_sequence_and_mirrored(raw, mirror)[0]


def clean_sequence_and_mirrored(raw: np.ndarray, mirror: bool = True) -> tuple[np.ndarray, bool]:
    """``clean_sequence`` and whether it flipped the sequence (recorded in meta.json)."""
    frames = np.asarray(raw, dtype=np.float32)
    if frames.ndim != 2 or frames.shape[1] != landmarks.NUM_FEATURES:
        raise ValueError(f"expected [frames, {landmarks.NUM_FEATURES}], got {frames.shape}")
    frames = np.where(np.isnan(frames), np.float32(0), frames)
    left, right = hand_presence(frames)
    frames = frames[left | right]
    flipped = bool(mirror and left.sum() > right.sum())
    if flipped:
        frames = mirror_frames(frames)
    return frames, flipped


def resize_frames(frames: np.ndarray, length: int, out: np.ndarray | None = None) -> np.ndarray:
    """[n, F] -> [length, F] float32: zero-pad when shorter, bilinear along time when longer.

    Bit-for-bit the arithmetic of ``tf.image.resize(method=BILINEAR)`` (half-pixel centres, no
    antialias) on the padded sequence, in float32, so training data equals what the exported
    model computes. ``out`` ([length, F] float32, e.g. a row of a batch) receives the result
    instead of a new array (the training loader resizes every batch this way).
    """
    frames = np.asarray(frames, dtype=np.float32)
    count, features = frames.shape
    if out is None:
        out = np.empty((length, features), dtype=np.float32)
    elif out.shape != (length, features) or out.dtype != np.float32:
        raise ValueError(f"out must be ({length}, {features}) float32, got {out.dtype} {out.shape}")
    if count <= length:  # resizing length -> length is the identity in TF as well
        out[:count] = frames
        out[count:] = 0
        return out
    scale = np.float32(count) / np.float32(length)
    source = (np.arange(length, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5)
    floor = np.floor(source)
    lower = np.maximum(floor.astype(np.int64), 0)
    upper = np.minimum(np.ceil(source).astype(np.int64), count - 1)
    weight = (source - floor)[:, None]
    low = frames[lower]
    # low + (high - low) * weight, in place: the same float32 operations in the same order.
    np.take(frames, upper, axis=0, out=out)
    out -= low
    out *= weight
    out += low
    return out


def preprocess_sequence(raw: np.ndarray, frames: int = 128, mirror: bool = True) -> np.ndarray:
    """[n, 164] raw selected columns -> [frames, 164] float32 model input (before normalising)."""
    return resize_frames(clean_sequence(raw, mirror=mirror), frames)


# ----------------------------------------------------------------------------------------------
# Normalisation statistics


class RunningMoments:
    """Per-column mean and variance over non-zero values, merged chunk by chunk (Chan et al.).

    One pass, float64, bounded memory: the final arrays never need to be in memory at once.
    """

    def __init__(self, features: int = landmarks.NUM_FEATURES) -> None:
        self.count = np.zeros(features, dtype=np.float64)
        self.mean = np.zeros(features, dtype=np.float64)
        self.m2 = np.zeros(features, dtype=np.float64)

    def update(self, values: np.ndarray) -> None:
        values = np.asarray(values).reshape(-1, self.count.shape[0])
        step = max(1, MOMENT_BLOCK_VALUES // self.count.shape[0])
        for start in range(0, len(values), step):
            self._merge(values[start : start + step])

    def _merge(self, block: np.ndarray) -> None:
        # Zeros add nothing to the sums, so no masking is needed; float64 sums of coordinates
        # (|x| ~ 1) keep the block's variance exact to ~1e-12, and blocks merge without loss.
        count = np.count_nonzero(block, axis=0).astype(np.float64)
        safe_count = np.maximum(count, 1)
        mean = np.add.reduce(block, axis=0, dtype=np.float64) / safe_count
        squares = np.einsum("ij,ij->j", block, block, dtype=np.float64)
        m2 = np.maximum(squares - count * mean**2, 0.0)
        total = self.count + count
        delta = mean - self.mean
        safe_total = np.maximum(total, 1)
        self.mean = self.mean + delta * count / safe_total
        self.m2 = self.m2 + m2 + delta**2 * self.count * count / safe_total
        self.count = total

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """(means, stds) float32; a column without non-zero values gets mean 0, std 1."""
        present = self.count > 0
        means = np.where(present, self.mean, 0.0)
        stds = np.sqrt(self.m2 / np.maximum(self.count, 1))
        stds = np.where(present & (stds >= MIN_STD), stds, 1.0)
        return means.astype(np.float32), stds.astype(np.float32)


def compute_normalisation(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Means and stds per column (last axis) over the non-zero values of ``X`` ([..., 164]).

    Zeros are "missing" and are ignored (the model keeps them zero); works on memory maps in
    chunks.
    """
    X = np.asarray(X)  # a memory map stays one: blocks are read as they are reduced
    moments = RunningMoments(X.shape[-1])
    moments.update(X.reshape(-1, X.shape[-1]))
    return moments.result()


# ----------------------------------------------------------------------------------------------
# Metadata: train.csv (+ supplemental_metadata.csv)


def read_metadata(data_dir: str | Path, supplemental: bool = False) -> pd.DataFrame:
    """The listed sequences, validated: required columns, no rows missing, unique sequence ids."""
    # Imported here, not at the top: worker processes import this module and never need pandas
    # (it would add about a second to every worker's start).
    import pandas as pd

    data_dir = Path(data_dir)
    names = [TRAIN_CSV] + ([SUPPLEMENTAL_CSV] if supplemental else [])
    tables = []
    for name in names:
        path = data_dir / name
        if not path.is_file():
            raise PreprocessError(f"{path}: file not found")
        try:
            # keep_default_na=False: phrases such as "null" or "NA" are text, not missing values.
            table = pd.read_csv(path, keep_default_na=False, dtype={"phrase": str, "path": str})
        except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as error:
            raise PreprocessError(f"{path}: cannot read as CSV ({error})") from error
        missing = [column for column in CSV_COLUMNS if column not in table.columns]
        if missing:
            raise PreprocessError(f"{path}: missing column(s) {missing}; expected {CSV_COLUMNS}")
        if table.empty:
            raise PreprocessError(f"{path}: no sequences listed (the file has no rows)")
        for column in ("sequence_id", "participant_id", "file_id"):
            if pd.api.types.is_integer_dtype(table[column]):
                continue
            numbers = pd.to_numeric(table[column], errors="coerce")
            bad = table.loc[numbers.isna() | (numbers % 1 != 0), column]
            if len(bad):
                raise PreprocessError(
                    f"{path}: column {column!r} must hold integers; first bad value "
                    f"{bad.iloc[0]!r} (row {bad.index[0] + 2} of the file, {len(bad)} bad in all)"
                )
            table[column] = numbers.astype(np.int64)
        table = table[list(CSV_COLUMNS)].copy()
        table["csv"] = name
        tables.append(table)
    listed = pd.concat(tables, ignore_index=True)
    duplicated = listed[listed["sequence_id"].duplicated(keep=False)]
    if not duplicated.empty:
        first = int(duplicated["sequence_id"].iloc[0])
        rows = duplicated[duplicated["sequence_id"] == first]
        where = ", ".join(f"{r.csv} row for {r.path}" for r in rows.itertuples())
        raise PreprocessError(
            f"sequence id {first} is listed {len(rows)} times ({where}); "
            f"{duplicated['sequence_id'].nunique()} duplicated sequence id(s) in all"
        )
    return listed


def phrase_problem(phrase: str) -> tuple[str, str] | None:
    """(reason, detail) when a phrase cannot become a label, else None."""
    if not phrase:
        return "empty_phrase", "the phrase is empty"
    unknown = vocab.unknown_characters(phrase)
    if unknown:
        return "unknown_characters", f"characters {unknown} are not in the character map"
    if len(phrase) > vocab.MAX_PHRASE_LENGTH:
        return (
            "phrase_too_long",
            f"{len(phrase)} characters > {vocab.MAX_PHRASE_LENGTH} (no room for EOS)",
        )
    return None


# Reasons that stop the run unless ``skip_invalid`` (the others are always exclusions).
INVALID_REASONS = ("empty_phrase", "unknown_characters", "zero_rows")
# Reasons that keep a sequence out of training but not out of scoring: a held-out signer's
# sequence with too few hand frames is still in Kaggle's test set, so the validation split keeps
# it (``trainable`` False in meta.json) and every score counts it.
TOO_SHORT_REASONS = ("no_hand_frames", "too_few_hand_frames")


# ----------------------------------------------------------------------------------------------
# One parquet file -> one part (runs in a worker process)


@dataclass(frozen=True)
class FileTask:
    path: str  # as written in train.csv, relative to the data folder
    absolute: str
    part: str  # out/.parts/<name>: frames in <part>.npy, then <part>.json marks it complete
    key: str
    sequence_ids: tuple[int, ...]
    mirror: bool
    dtype: str


def file_key(config: PreprocessConfig, path: Path, relative: str, ids: list[int]) -> str:
    """Hash of everything a part depends on: settings, the file's identity, the ids requested."""
    stat = path.stat()
    identity = {
        "version": PARTS_FORMAT_VERSION,
        "mirror": config.mirror,
        "dtype": config.dtype,
        "path": relative,
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "sequence_ids": sorted(ids),
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def part_name(relative: str) -> str:
    stem = relative[: -len(".parquet")] if relative.endswith(".parquet") else relative
    return stem.replace("/", "__").replace("\\", "__")


def read_selected_columns(
    path: Path, relative: str, listed: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """(sequence ids per row, [rows, 164] float32) reading only the needed columns."""
    example = ", ".join(map(str, listed[:3])) + (", ..." if len(listed) > 3 else "")
    where = f"{relative} (listed for sequence ids {example})"
    try:
        parquet = pq.ParquetFile(path, pre_buffer=True)  # pre_buffer: coalesced column reads
    except (OSError, pa.ArrowException) as error:
        raise PreprocessError(f"{where}: not a readable parquet file ({error})") from error
    wanted = [landmarks.INDEX_COLUMN, *landmarks.SELECTED_COLUMNS]
    with parquet:
        try:
            # Columns absent from the file are skipped silently here; checked below. (Not
            # checked up front: building the 1,630-field Arrow schema costs as much as the read.)
            table = parquet.read(columns=wanted)
        except (OSError, pa.ArrowException) as error:
            raise PreprocessError(f"{where}: corrupt or truncated parquet ({error})") from error
    present = set(table.column_names)
    missing = [name for name in wanted if name not in present]
    if missing:
        shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        raise PreprocessError(f"{where}: missing {len(missing)} column(s): {shown}")
    for field in table.schema:
        if not (pa.types.is_floating(field.type) or pa.types.is_integer(field.type)):
            raise PreprocessError(
                f"{where}: column {field.name!r} has type {field.type}, expected numbers"
            )
    index = table.column(landmarks.INDEX_COLUMN)
    if index.null_count:
        raise PreprocessError(f"{where}: {landmarks.INDEX_COLUMN} has {index.null_count} nulls")
    row_ids = index.to_numpy()
    if row_ids.dtype.kind == "f" and not np.array_equal(row_ids, np.round(row_ids)):
        raise PreprocessError(f"{where}: {landmarks.INDEX_COLUMN} holds non-integer values")
    values = np.empty((table.num_rows, landmarks.NUM_FEATURES), dtype=np.float32)
    for column, name in enumerate(landmarks.SELECTED_COLUMNS):
        values[:, column] = table.column(name).to_numpy(zero_copy_only=False)
    return row_ids.astype(np.int64), values


def process_file(task: FileTask) -> dict[str, Any]:
    """Preprocess the listed sequences of one parquet file and write its part atomically."""
    row_ids, values = read_selected_columns(Path(task.absolute), task.path, task.sequence_ids)
    if len(row_ids) and np.any(np.diff(row_ids) < 0):
        order = np.argsort(row_ids, kind="stable")  # keeps frame order within a sequence
        row_ids, values = row_ids[order], values[order]
    file_ids, starts, counts = np.unique(row_ids, return_index=True, return_counts=True)
    where = {int(s): (int(b), int(c)) for s, b, c in zip(file_ids, starts, counts, strict=True)}

    # clean_sequence for the whole file at once (the per-sequence Python loop then only slices):
    # NaN -> 0, hand presence per row, hand counts per sequence, mirroring of whole sequences.
    values[np.isnan(values)] = 0
    present = (values[:, landmarks.HANDS] != 0).reshape(len(values), 2, -1).any(axis=2)
    keep = present[:, 0] | present[:, 1]  # (rows,) a hand is visible
    if len(values):
        left, right, hands = np.add.reduceat(
            np.column_stack([present, keep]).astype(np.int64), starts, axis=0
        ).T
    else:
        left = right = hands = np.zeros(0, dtype=np.int64)
    flip = (left > right) if task.mirror else np.zeros(len(starts), dtype=bool)
    flip_rows = np.repeat(flip, counts) & keep
    if flip_rows.any():
        values[flip_rows] = mirror_frames(values[flip_rows])

    found = [s for s in task.sequence_ids if s in where]
    position = {int(s): i for i, s in enumerate(file_ids)}
    listed_rows = np.array([position[s] for s in found], dtype=np.int64)
    raw_frames = counts[listed_rows].astype(np.int64)
    hand_frames = hands[listed_rows].astype(np.int64)
    mirrored = flip[listed_rows]
    # The cleaned frames of the listed sequences one after another, in listing order: each
    # sequence's length is its hand frame count, so the summary locates every sequence.
    rows = [np.flatnonzero(keep[b : b + c]) + b for b, c in (where[s] for s in found)]
    rows = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    frames = values[rows].astype(task.dtype, copy=False)
    assert len(frames) == hand_frames.sum(), (len(frames), hand_frames.sum())

    # Frames first, summary second (each atomic): a summary on disk means a complete part.
    atomic.save_npy(task.part + ".npy", frames)
    summary = {
        "key": task.key,
        "sequence_ids": found,
        "raw_frames": raw_frames.tolist(),
        "hand_frames": hand_frames.tolist(),
        "mirrored": mirrored.tolist(),
        "file_sequence_ids": file_ids.tolist(),
    }
    atomic.write_json(task.part + ".json", summary)
    return summary_arrays(summary)


def summary_arrays(summary: dict[str, Any]) -> dict[str, np.ndarray]:
    """A part's summary (everything but the frames: small, kept in memory) as arrays."""
    return {
        "sequence_ids": np.array(summary["sequence_ids"], dtype=np.int64),
        "raw_frames": np.array(summary["raw_frames"], dtype=np.int64),
        "hand_frames": np.array(summary["hand_frames"], dtype=np.int64),
        "mirrored": np.array(summary["mirrored"], dtype=bool),
        "file_sequence_ids": np.array(summary["file_sequence_ids"], dtype=np.int64),
    }


def finished_part(task: FileTask) -> dict[str, np.ndarray] | None:
    """The summary of a part written with this task's key, or None (then it is recomputed)."""
    try:
        summary = json.loads(Path(task.part + ".json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if summary.get("key") != task.key or not Path(task.part + ".npy").is_file():
        return None
    return summary_arrays(summary)


def worker_context() -> multiprocessing.context.BaseContext:
    """Start method for worker processes.

    Never plain fork: forking a process that already runs Arrow's thread pool can deadlock.
    forkserver forks workers from a clean server that imported this module once (later runs in
    the same session reuse it); spawn, where forkserver is missing, starts a fresh interpreter
    per worker. Both re-import the calling script, which therefore needs a ``__main__`` guard.
    """
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["aslfr_lib.preprocess"])
        return context
    return multiprocessing.get_context("spawn")


def process_files(tasks: list[FileTask], workers: int, progress: bool) -> tuple[dict, int]:
    """Part summaries by file path (reusing finished parts), and how many were reused."""
    summaries: dict[str, dict[str, Any]] = {}
    todo = []
    for task in tasks:
        summary = finished_part(task)
        if summary is None:
            todo.append(task)
        else:
            summaries[task.path] = summary
    reused = len(summaries)
    bar = tqdm(
        total=len(tasks), initial=reused, desc="preprocess", unit="file", disable=not progress
    )
    with bar:
        if workers <= 1 or len(todo) <= 1:
            for task in todo:
                summaries[task.path] = process_file(task)
                bar.update()
            return summaries, reused
        with ProcessPoolExecutor(min(workers, len(todo)), mp_context=worker_context()) as pool:
            futures = {pool.submit(process_file, task): task for task in todo}
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_EXCEPTION)
                for future in done:
                    error = future.exception()
                    if isinstance(error, BrokenProcessPool):
                        raise RuntimeError(
                            f"a preprocessing worker died while reading {futures[future].path}: "
                            "out of memory, or the calling script lacks the "
                            "`if __name__ == '__main__':` guard that spawned workers need "
                            "(workers=1 runs in this process)"
                        ) from error
                    if error is not None:
                        for other in pending:
                            other.cancel()
                        raise error
                    summaries[futures[future].path] = future.result()
                    bar.update()
    return summaries, reused


# ----------------------------------------------------------------------------------------------
# Split, assembly, outputs


def split_by_participant(participant_ids: np.ndarray, val_fraction: float, seed: int) -> np.ndarray:
    """Boolean "is validation" per sequence; whole participants, deterministic for a seed.

    Participants are shuffled and taken for validation until they hold ``val_fraction`` of the
    sequences; at least one participant always stays in training.
    """
    participant_ids = np.asarray(participant_ids)
    is_val = np.zeros(len(participant_ids), dtype=bool)
    if val_fraction <= 0 or len(participant_ids) == 0:
        return is_val
    participants, counts = np.unique(participant_ids, return_counts=True)
    if len(participants) < 2:
        raise PreprocessError(
            f"val_fraction={val_fraction} needs at least 2 participants to split by participant;"
            f" found {len(participants)} (use val_fraction 0 to train on all)"
        )
    order = np.random.default_rng(seed).permutation(len(participants))
    wanted = val_fraction * len(participant_ids)
    chosen, taken = [], 0
    for index in order[:-1]:  # the last participant is never taken: training keeps one
        if taken >= wanted:
            break
        chosen.append(participants[index])
        taken += counts[index]
    return np.isin(participant_ids, chosen)


class NpyStream:
    """Write a C-ordered ``.npy`` of known shape block by block (flat memory, no memmap pages)."""

    def __init__(self, file: BinaryIO, dtype: np.dtype, shape: tuple[int, ...]) -> None:
        self.file, self.dtype, self.shape, self.rows = file, np.dtype(dtype), shape, 0
        header = {
            "descr": np.lib.format.dtype_to_descr(self.dtype),
            "fortran_order": False,
            "shape": shape,
        }
        np.lib.format.write_array_header_1_0(file, header)

    def write(self, block: np.ndarray) -> None:
        block = np.ascontiguousarray(block, dtype=self.dtype)
        assert block.shape[1:] == self.shape[1:], (block.shape, self.shape)
        self.file.write(block.data)  # the array's own buffer: no extra copy
        self.rows += len(block)

    def close(self) -> None:
        assert self.rows == self.shape[0], f"wrote {self.rows} rows, expected {self.shape[0]}"


def check_sequence_locations(
    listed: pd.DataFrame, summaries: dict[str, dict]
) -> tuple[set[int], dict[str, int]]:
    """Listed sequence ids without rows in their file, and per file how many of its sequences
    no CSV lists (ignored, but reported); errors for ids found in more than one file.
    """
    files_of: dict[int, list[str]] = {}
    for path, summary in summaries.items():
        for sequence_id in summary["file_sequence_ids"].tolist():
            files_of.setdefault(sequence_id, []).append(path)
    for sequence_id, paths in files_of.items():
        if len(paths) > 1:
            raise PreprocessError(
                f"sequence id {sequence_id} has rows in {len(paths)} files: {', '.join(paths)}"
            )
    absent = set()
    for row in listed.itertuples():
        found = set(summaries[row.path]["sequence_ids"].tolist()) if row.path in summaries else ()
        if row.sequence_id in found:
            continue
        elsewhere = files_of.get(row.sequence_id)
        if elsewhere:
            raise PreprocessError(
                f"{row.path}: sequence id {row.sequence_id} is listed for this file in {row.csv}"
                f" but its rows are in {elsewhere[0]}"
            )
        absent.add(row.sequence_id)
    listed_ids = set(listed["sequence_id"].tolist())
    unlisted = {
        path: int(np.count_nonzero(~np.isin(summary["file_sequence_ids"], list(listed_ids))))
        for path, summary in summaries.items()
    }
    return absent, {path: count for path, count in unlisted.items() if count}


def remove_stale_temporaries(out_dir: Path) -> None:
    """Temporary outputs of a run that was killed mid-assembly (``atomic`` names them
    ``.<target>.<random>.tmp``); a finished or failed run leaves none behind."""
    if not out_dir.is_dir():
        return
    for name in (*ARRAY_FILES, *OLD_ARRAY_FILES, META_FILE):
        for stale in out_dir.glob(f".{name}.*.tmp"):
            stale.unlink(missing_ok=True)


def run(config: PreprocessConfig, progress: bool = True) -> dict[str, Any]:
    """Preprocess ``config.data`` into ``config.out``; returns a summary (also in meta.json)."""
    data_dir, out_dir = Path(config.data), Path(config.out)
    remove_stale_temporaries(out_dir)
    listed = read_metadata(data_dir, supplemental=config.supplemental)

    exclusions: list[dict[str, Any]] = []

    def exclude(row: Any, reason: str, detail: str) -> None:
        if reason in INVALID_REASONS and not config.skip_invalid:
            raise PreprocessError(
                f"{row.path}: sequence id {row.sequence_id} (phrase {row.phrase!r}): {detail}"
                " (pass skip_invalid to exclude such sequences instead)"
            )
        exclusions.append(
            {
                "sequence_id": int(row.sequence_id),
                "participant_id": int(row.participant_id),
                "file": row.path,
                "reason": reason,
                "detail": detail,
            }
        )

    for row in listed.itertuples():
        problem = phrase_problem(row.phrase)
        if problem:
            exclude(row, *problem)

    tasks = []
    for path, rows in listed.groupby("path", sort=False):
        absolute = data_dir / path
        ids = [int(s) for s in rows["sequence_id"]]
        if not absolute.is_file():
            example = ", ".join(map(str, ids[:3])) + (", ..." if len(ids) > 3 else "")
            raise PreprocessError(
                f"{path}: file not found under {data_dir} (listed in {rows['csv'].iloc[0]} for "
                f"{len(ids)} sequence(s): {example})"
            )
        tasks.append(
            FileTask(
                path=path,
                absolute=str(absolute),
                part=str(out_dir / PARTS_DIR / part_name(path)),
                key=file_key(config, absolute, path, ids),
                sequence_ids=tuple(ids),
                mirror=config.mirror,
                dtype=config.dtype,
            )
        )
    summaries, reused = process_files(tasks, config.workers, progress)

    absent, unlisted = check_sequence_locations(listed, summaries)
    excluded_ids = {e["sequence_id"] for e in exclusions}
    for row in listed.itertuples():
        if row.sequence_id in absent and row.sequence_id not in excluded_ids:
            exclude(row, "zero_rows", f"no rows in {row.path}")

    # Per-sequence facts from the parts, then length-based exclusions.
    facts: dict[int, tuple[int, int, bool]] = {}
    for summary in summaries.values():
        for sequence_id, raw, hands, flipped in zip(
            summary["sequence_ids"].tolist(),
            summary["raw_frames"].tolist(),
            summary["hand_frames"].tolist(),
            summary["mirrored"].tolist(),
            strict=True,
        ):
            facts[sequence_id] = (raw, hands, flipped)
    excluded_ids = {e["sequence_id"] for e in exclusions}
    for row in listed.itertuples():
        if row.sequence_id in excluded_ids:
            continue
        _, hands, _ = facts[row.sequence_id]
        needed = config.min_frames_per_char * len(row.phrase)
        if hands == 0:
            exclude(row, "no_hand_frames", "no frame shows a hand")
        elif hands < needed:
            exclude(
                row,
                "too_few_hand_frames",
                f"{hands} hand frames for {len(row.phrase)} characters "
                f"(< {config.min_frames_per_char:g} per character)",
            )

    excluded_ids = {e["sequence_id"] for e in exclusions}
    kept = listed[~listed["sequence_id"].isin(excluded_ids)].reset_index(drop=True)
    if kept.empty:
        reasons = dict(Counter(e["reason"] for e in exclusions))
        raise PreprocessError(f"{data_dir}: every sequence was excluded ({reasons})")
    # The held-out signers do not depend on which sequences are long enough to train on: the
    # split is drawn over every sequence that could be scored (the too short included), so
    # min_frames_per_char changes what trains, never who is held out.
    scoreable = {e["sequence_id"] for e in exclusions if e["reason"] not in TOO_SHORT_REASONS}
    candidates = listed[~listed["sequence_id"].isin(scoreable)]
    is_val = split_by_participant(
        candidates["participant_id"].to_numpy(), config.val_fraction, config.seed
    )
    held_out = set(candidates["participant_id"][is_val].tolist())
    kept["is_val"] = kept["participant_id"].isin(held_out)
    if not (~kept["is_val"]).any():
        raise PreprocessError(
            f"{data_dir}: no sequence of the training participants is long enough to train on"
        )
    kept["trainable"] = True
    scored_only = set()
    for exclusion in exclusions:
        if exclusion["reason"] in TOO_SHORT_REASONS and exclusion["participant_id"] in held_out:
            exclusion["scored"] = True  # excluded from training, still in the validation split
            scored_only.add(exclusion["sequence_id"])
    too_short = listed[listed["sequence_id"].isin(scored_only)].assign(is_val=True, trainable=False)
    if len(too_short):
        import pandas as pd

        kept = pd.concat([kept, too_short], ignore_index=True)
    summary = assemble(
        config, tasks, summaries, kept, facts, exclusions, unlisted, reused, progress
    )
    if summary["train"] == 0:  # pragma: no cover - split_by_participant keeps one participant
        raise PreprocessError("the training split is empty")
    for name in OLD_ARRAY_FILES:  # padded arrays of format 1: no reader left, often gigabytes
        (out_dir / name).unlink(missing_ok=True)
    shutil.rmtree(out_dir / PARTS_DIR, ignore_errors=True)
    return summary


def assemble(
    config: PreprocessConfig,
    tasks: list[FileTask],
    summaries: dict[str, dict[str, np.ndarray]],
    kept: pd.DataFrame,
    facts: dict[int, tuple[int, int, bool]],
    exclusions: list[dict[str, Any]],
    unlisted: dict[str, int],
    reused: int,
    progress: bool,
) -> dict[str, Any]:
    """Stream parts into the final arrays (temp files, renamed together at the end)."""
    out_dir = Path(config.out)
    dtype = np.dtype(config.dtype)
    splits = {name: kept[kept["is_val"] == (name == "val")] for name in ("train", "val")}
    by_file = {name: dict(tuple(rows.groupby("path", sort=False))) for name, rows in splits.items()}
    moments = RunningMoments()
    order: dict[str, list[int]] = {"train": [], "val": []}
    lengths: dict[str, list[int]] = {"train": [], "val": []}

    with contextlib.ExitStack() as stack:
        # Entered first, renamed last: meta.json appears only once every array is in place.
        meta_path = stack.enter_context(atomic.atomic_path(out_dir / META_FILE))
        temporary = {
            name: stack.enter_context(atomic.atomic_path(out_dir / name, suffix=".npy"))
            for name in ARRAY_FILES
        }
        streams = {}
        for name, rows in splits.items():
            file = stack.enter_context(open(temporary[f"frames_{name}.npy"], "wb"))
            total = sum(facts[s][1] for s in rows["sequence_id"])  # a sequence's hand frames
            streams[name] = NpyStream(file, dtype, (total, landmarks.NUM_FEATURES))
        for task in tqdm(tasks, desc="assemble", unit="file", disable=not progress):
            wanted = {name: by_file[name].get(task.path) for name in splits}
            if all(rows is None for rows in wanted.values()):
                continue
            # Memory-mapped: only the rows taken are read, and the pages go with the map.
            frames = np.load(task.part + ".npy", mmap_mode="r")
            part = summaries[task.path]
            starts = np.concatenate([[0], np.cumsum(part["hand_frames"])])
            if len(frames) != starts[-1]:
                raise PreprocessError(
                    f"{task.part}.npy: {len(frames)} frames, its summary lists {starts[-1]} "
                    f"for {task.path}; delete {out_dir / PARTS_DIR} and run again"
                )
            position = {s: i for i, s in enumerate(part["sequence_ids"].tolist())}
            for name, rows in wanted.items():
                if rows is None:
                    continue
                spans = [position[s] for s in rows["sequence_id"]]
                block = np.concatenate([frames[starts[i] : starts[i + 1]] for i in spans])
                streams[name].write(block)
                order[name].extend(int(s) for s in rows["sequence_id"])
                lengths[name].extend(int(part["hand_frames"][i]) for i in spans)
                if name == "train":
                    moments.update(block)
            del frames
        for stream in streams.values():
            stream.close()
        for name, counts in lengths.items():
            offsets = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)]).astype(np.int64)
            with open(temporary[f"offsets_{name}.npy"], "wb") as file:
                np.save(file, offsets)

        rows_of = {
            name: splits[name].set_index("sequence_id").loc[order[name]].reset_index()
            for name in splits
        }
        for name, rows in rows_of.items():
            labels = np.stack([vocab.encode(p) for p in rows["phrase"]]) if len(rows) else None
            if labels is None:
                labels = np.zeros((0, vocab.TARGET_LENGTH), dtype=np.int8)
            with open(temporary[f"y_{name}.npy"], "wb") as file:
                np.save(file, labels.astype(np.int8))
        means, stds = moments.result()
        for name, array in (("means.npy", means), ("stds.npy", stds)):
            with open(temporary[name], "wb") as file:
                np.save(file, array)

        reasons = Counter(e["reason"] for e in exclusions)
        summary = {
            "out": str(out_dir),
            "listed": int(kept["trainable"].sum()) + len(exclusions),
            "train": len(rows_of["train"]),
            "val": len(rows_of["val"]),
            "val_trainable": int(rows_of["val"]["trainable"].sum()),
            "val_too_short": int((~rows_of["val"]["trainable"]).sum()),
            "excluded": len(exclusions),
            "excluded_by_reason": dict(sorted(reasons.items())),
            "participants_train": int(rows_of["train"]["participant_id"].nunique()),
            "participants_val": int(rows_of["val"]["participant_id"].nunique()),
            "mirrored": int(sum(facts[s][2] for s in kept["sequence_id"])),
            "files": len(tasks),
            "files_reused": reused,
            "unlisted_sequences_in_files": sum(unlisted.values()),
            "paths": {name: str(out_dir / name) for name in (*ARRAY_FILES, META_FILE)},
        }
        meta = {
            "format_version": OUTPUT_FORMAT_VERSION,
            "storage": STORAGE,
            "columns": landmarks.SELECTED_COLUMNS,
            "config": to_dict(config),
            "summary": summary,
            "exclusions": exclusions,
            "unlisted_sequences_by_file": unlisted,
        }
        for name, rows in rows_of.items():
            ids = rows["sequence_id"].tolist()
            meta[name] = {
                "sequence_ids": [int(s) for s in ids],
                "participant_ids": [int(p) for p in rows["participant_id"]],
                "files": rows["path"].tolist(),
                "raw_frames": [facts[s][0] for s in ids],
                "hand_frames": [facts[s][1] for s in ids],
                "mirrored": [bool(facts[s][2]) for s in ids],
                "trainable": [bool(t) for t in rows["trainable"]],
            }
        meta_path.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    return summary


# ----------------------------------------------------------------------------------------------
# Reading the outputs


class RaggedFrames:
    """Sequences of different lengths: one ``values`` array (rows, features) holding them one after
    another, and ``offsets`` (N + 1,) where sequence ``i`` is ``values[offsets[i]:offsets[i + 1]]``.

    ``values`` may be a read-only memory map: a sequence is read when it is indexed. Indexing gives
    a float32 copy (float16 storage is widened), ``lengths`` the frames of each sequence.
    """

    def __init__(self, values: np.ndarray, offsets: np.ndarray) -> None:
        offsets = np.asarray(offsets)
        if values.ndim != 2:
            raise ValueError(f"values must be (rows, features), got shape {values.shape}")
        if offsets.ndim != 1 or len(offsets) == 0 or not np.issubdtype(offsets.dtype, np.integer):
            raise ValueError(f"offsets must be (sequences + 1,) integers, got {offsets.shape}")
        lengths = np.diff(offsets)
        if offsets[0] != 0 or offsets[-1] != len(values) or np.any(lengths < 0):
            raise ValueError(
                f"offsets must rise from 0 to the {len(values)} rows of the values; got "
                f"{offsets[0]} .. {offsets[-1]}" + (", decreasing" if np.any(lengths < 0) else "")
            )
        self.values = values
        self.offsets = offsets.astype(np.int64, copy=False)
        self.lengths = lengths.astype(np.int64, copy=False)  # (N,) frames per sequence

    @classmethod
    def from_sequences(
        cls, sequences: Sequence[np.ndarray], dtype: Any = np.float32
    ) -> RaggedFrames:
        """In memory, from a list of (L_i, features) arrays (tests, benchmarks)."""
        if not sequences:
            raise ValueError("from_sequences needs at least one sequence (for the feature count)")
        lengths = [len(sequence) for sequence in sequences]
        offsets = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]).astype(np.int64)
        return cls(np.concatenate(sequences).astype(dtype, copy=False), offsets)

    @property
    def features(self) -> int:
        return self.values.shape[1]

    @property
    def dtype(self) -> np.dtype:
        """The stored dtype (indexing always gives float32)."""
        return self.values.dtype

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, index: int) -> np.ndarray:
        """(L_i, features) float32 copy of one sequence."""
        return np.array(self.stored(index), dtype=np.float32)

    def stored(self, index: int) -> np.ndarray:
        """(L_i, features) of one sequence as stored: a read-only view of a memory map, no copy
        (for readers that copy anyway, such as ``resize_frames``)."""
        index = _sequence_index(index, len(self))
        return self.values[self.offsets[index] : self.offsets[index + 1]]

    def __iter__(self) -> Iterator[np.ndarray]:
        return (self[i] for i in range(len(self)))

    def resized(self, length: int) -> ResizedFrames:
        return ResizedFrames(self, length)

    def __repr__(self) -> str:
        return f"RaggedFrames({len(self)} sequences, {len(self.values)} frames, {self.dtype})"


def _sequence_index(index: Any, count: int) -> int:
    try:
        index = operator.index(index)
    except TypeError:
        raise TypeError(
            f"a sequence index must be an integer, got {type(index).__name__}"
        ) from None
    if not -count <= index < count:
        raise IndexError(f"sequence {index} of {count}")
    return index % count


class ResizedFrames:
    """A ``RaggedFrames`` seen as an (N, length, features) float32 array, built on demand.

    Each sequence read is padded with zeros or resized along time to ``length`` by
    ``resize_frames`` (the numpy twin of the exported model's preprocessing). Indexing with an
    integer gives (length, features); with a slice, an integer array or a boolean mask,
    (k, length, features); further axes in a tuple index the result (``X[:2, 0]``).
    ``np.asarray`` builds the whole array: mind the memory (N x length x features x 4 bytes).
    """

    ndim = 3
    dtype = np.dtype(np.float32)

    def __init__(self, ragged: RaggedFrames, length: int) -> None:
        length = operator.index(length)
        if length < 1:
            raise ValueError(f"length must be >= 1, got {length}")
        self.ragged = ragged
        self.length = length

    @property
    def shape(self) -> tuple[int, int, int]:
        return (len(self.ragged), self.length, self.ragged.features)

    def __len__(self) -> int:
        return len(self.ragged)

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, tuple):
            if not key:
                return np.asarray(self)
            selected = self[key[0]]
            rest = key[1:] if selected.ndim == 2 else (slice(None), *key[1:])
            return selected[rest]
        if isinstance(key, slice):
            return self.take(np.arange(len(self))[key])
        if isinstance(key, (list, np.ndarray)):
            rows = np.asarray(key)
            if rows.ndim == 0:
                return self[rows.item()]
            if rows.dtype == bool:
                if rows.shape != (len(self),):
                    raise IndexError(f"boolean index of shape {rows.shape} for {len(self)} rows")
                rows = np.flatnonzero(rows)
            return self.take(rows)
        return resize_frames(self.ragged[key], self.length)

    def take(self, rows: Any) -> np.ndarray:
        """(len(rows), length, features) float32 of the given sequence indices."""
        rows = np.asarray(rows)
        if rows.size == 0:
            rows = rows.astype(np.int64)
        if rows.ndim != 1 or not np.issubdtype(rows.dtype, np.integer):
            raise IndexError(f"rows must be a 1-D integer array, got {rows.dtype} {rows.shape}")
        batch = np.empty((len(rows), self.length, self.ragged.features), dtype=np.float32)
        for out, row in zip(batch, rows.tolist(), strict=True):
            resize_frames(self.ragged.stored(row), self.length, out=out)
        return batch

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        if copy is False:
            raise ValueError("ResizedFrames builds its array: it cannot be viewed without a copy")
        array = self.take(np.arange(len(self)))
        return array if dtype is None else array.astype(dtype, copy=False)

    def __iter__(self) -> Iterator[np.ndarray]:
        return (self[i] for i in range(len(self)))

    def __repr__(self) -> str:
        return f"ResizedFrames(shape={self.shape}, of {self.ragged!r})"


class ResizedSplits:
    """``X_train`` and ``X_val`` of a class with ``ragged_train``, ``ragged_val`` and ``frames``:
    (N, frames, features) float32 views, each sequence padded or resized when read
    (``X_train[rows]``, ``np.asarray``)."""

    @property
    def X_train(self) -> ResizedFrames:
        return ResizedFrames(self.ragged_train, self.frames)

    @property
    def X_val(self) -> ResizedFrames:
        return ResizedFrames(self.ragged_val, self.frames)


@dataclass
class ProcessedData(ResizedSplits):
    ragged_train: RaggedFrames  # N sequences of (L_i, 164) hand frames, stored float32 or float16
    y_train: np.ndarray  # (N, 32) int8: phrase ids, EOS, PAD
    ragged_val: RaggedFrames  # M may be 0
    y_val: np.ndarray
    means: np.ndarray  # (164,) float32 over non-zero training values
    stds: np.ndarray  # (164,) float32
    meta: dict[str, Any]

    @property
    def val_trainable(self) -> np.ndarray:
        return trainable_mask(self.meta, "val", len(self.ragged_val))

    @property
    def frames(self) -> int:
        """The default model length recorded by the run (``PreprocessConfig.frames``)."""
        return int(self.meta["config"]["frames"])


def trainable_mask(meta: dict[str, Any], split: str, count: int) -> np.ndarray:
    """(count,) bool: which sequences of ``split`` preprocessing would train on. Validation also
    holds the held-out signers' sequences with too few hand frames (``TOO_SHORT_REASONS``),
    which are scored but not trained on; folders written before that list none."""
    listed = meta.get(split, {}).get("trainable") if isinstance(meta, dict) else None
    if listed is None or len(listed) != count:
        return np.ones(count, dtype=bool)
    return np.asarray(listed, dtype=bool)


def load_processed(out_dir: str | Path, mmap: bool = True) -> ProcessedData:
    """The outputs of a finished ``run`` (frames memory-mapped read-only by default), checked
    for shape; a folder written by format 1 (padded ``X_*.npy``) is an error that says so."""
    out_dir = Path(out_dir)
    if not (out_dir / "frames_train.npy").is_file() and (out_dir / "X_train.npy").is_file():
        raise FileNotFoundError(
            f"{out_dir}: X_train.npy without frames_train.npy was written by an older aslfr "
            f"preprocess (frames padded to a fixed length; now stored ragged); run "
            f"`aslfr preprocess --out {out_dir}` again"
        )
    missing = [name for name in (*ARRAY_FILES, META_FILE) if not (out_dir / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{out_dir}: missing {', '.join(missing)}; run `aslfr preprocess --out {out_dir}` first"
        )
    mode = "r" if mmap else None
    arrays = {name[:-4]: np.load(out_dir / name, mmap_mode=mode) for name in ARRAY_FILES}
    meta = json.loads((out_dir / META_FILE).read_text(encoding="utf-8"))
    ragged = {}
    for split in ("train", "val"):
        try:
            ragged[split] = RaggedFrames(
                arrays[f"frames_{split}"], np.asarray(arrays[f"offsets_{split}"])
            )
        except ValueError as error:
            raise PreprocessError(
                f"{out_dir / f'frames_{split}.npy'} with offsets_{split}.npy: {error}; "
                f"run `aslfr preprocess --out {out_dir}` again"
            ) from error
    return ProcessedData(
        ragged_train=ragged["train"],
        y_train=arrays["y_train"],
        ragged_val=ragged["val"],
        y_val=arrays["y_val"],
        means=arrays["means"],
        stds=arrays["stds"],
        meta=meta,
    )


# ----------------------------------------------------------------------------------------------
# Command line


def main(argv: list[str]) -> int:
    parser = stage_parser(PreprocessConfig, "aslfr preprocess", __doc__.split("\n")[0])
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        config = stage_config(PreprocessConfig, args, "preprocess")
        summary = run(config, progress=not args.quiet)
    except (PreprocessError, ValueError, FileNotFoundError) as error:
        print(f"aslfr preprocess: error: {error}", file=sys.stderr)
        return 1
    shown = {k: v for k, v in summary.items() if k != "paths"}
    print(json.dumps(shown, indent=2))
    return 0


__all__ = [
    "PreprocessConfig",
    "PreprocessError",
    "ProcessedData",
    "RaggedFrames",
    "ResizedFrames",
    "clean_sequence",
    "compute_normalisation",
    "load_processed",
    "main",
    "preprocess_sequence",
    "resize_frames",
    "run",
    "trainable_mask",
    "split_by_participant",
]
