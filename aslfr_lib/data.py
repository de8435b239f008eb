"""Training data: the preprocessed arrays, checked, and shuffled epochs of full batches.

The reference drew every batch with replacement from a Python generator, so an "epoch" saw about
63 % of the sequences. Here an epoch is a fresh permutation of all sequences (seeded by the run
seed and the epoch number, so a resumed run sees the same order as an uninterrupted one), read
by a ``keras.utils.PyDataset`` that works on both backends.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import keras
import numpy as np

from aslfr_lib.vocab import EOS, NUM_CLASSES, PAD, SOS, TARGET_LENGTH

CHECK_CHUNK = 4096  # sequences per chunk when scanning frames for NaN/inf (bounded memory)


class DataError(ValueError):
    """Training arrays that cannot be used as they are."""


@dataclasses.dataclass
class TrainingData:
    """Arrays of a preprocessed folder (``aslfr_lib.preprocess.load_processed``), checked."""

    X_train: np.ndarray  # (N, frames, features) float32 or float16, zeros = missing
    y_train: np.ndarray  # (N, 32) int: characters, EOS, PAD
    X_val: np.ndarray  # (M, frames, features); M may be 0
    y_val: np.ndarray
    means: np.ndarray  # (features,)
    stds: np.ndarray
    meta: dict[str, Any]
    folder: Path

    @property
    def has_validation(self) -> bool:
        return len(self.X_val) > 0

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(X, y) of ``"train"`` or ``"val"``."""
        if name not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', got {name!r}")
        return (self.X_train, self.y_train) if name == "train" else (self.X_val, self.y_val)

    def sequence_ids(self, name: str) -> np.ndarray | None:
        """Competition sequence ids of a split's rows, when the metadata lists them."""
        ids = self.meta.get(name, {}).get("sequence_ids") if isinstance(self.meta, dict) else None
        if ids is None or len(ids) != len(self.split(name)[0]):
            return None
        return np.asarray(ids, dtype=np.int64)


def _describe(where: str, row: int, sequence_ids: np.ndarray | None) -> str:
    sequence = f"sequence {int(sequence_ids[row])} " if sequence_ids is not None else ""
    return f"{where}: {sequence}(row {row})"


def check_targets(targets: np.ndarray, where: str, sequence_ids=None) -> None:
    """Each row: characters, one EOS, then PAD only (what ``vocab.encode`` writes)."""
    if targets.ndim != 2 or targets.shape[1] != TARGET_LENGTH:
        raise DataError(
            f"{where}: targets must be (sequences, {TARGET_LENGTH}), got {targets.shape}"
        )
    values = np.asarray(targets, dtype=np.int64)
    bad = np.flatnonzero(((values < 0) | (values >= NUM_CLASSES) | (values == SOS)).any(axis=1))
    if bad.size:
        row = int(bad[0])
        raise DataError(
            f"{_describe(where, row, sequence_ids)}: target ids {values[row].tolist()} contain "
            f"values outside 0..{NUM_CLASSES - 1} or SOS ({len(bad)} such rows)"
        )
    is_eos = values == EOS
    no_eos = np.flatnonzero(is_eos.sum(axis=1) != 1)
    if no_eos.size:
        row = int(no_eos[0])
        raise DataError(
            f"{_describe(where, row, sequence_ids)}: target must contain exactly one EOS "
            f"({EOS}); got {values[row].tolist()} ({len(no_eos)} such rows)"
        )
    eos_position = is_eos.argmax(axis=1)
    positions = np.arange(TARGET_LENGTH)
    after = positions[None, :] > eos_position[:, None]
    before = positions[None, :] < eos_position[:, None]
    wrong = np.flatnonzero(((after & (values != PAD)) | (before & (values >= PAD))).any(axis=1))
    if wrong.size:
        row = int(wrong[0])
        raise DataError(
            f"{_describe(where, row, sequence_ids)}: target must be characters, EOS, then PAD "
            f"only; got {values[row].tolist()} ({len(wrong)} such rows)"
        )


def check_frames(frames: np.ndarray, where: str, sequence_ids=None) -> None:
    """(N, frames, features) floats, all finite (missing landmarks are 0, never NaN)."""
    if frames.ndim != 3:
        raise DataError(
            f"{where}: frames must be (sequences, frames, features), got {frames.shape}"
        )
    if not np.issubdtype(frames.dtype, np.floating):
        raise DataError(f"{where}: frames must be floating point, got {frames.dtype}")
    for start in range(0, len(frames), CHECK_CHUNK):
        finite = np.isfinite(frames[start : start + CHECK_CHUNK]).all(axis=(1, 2))
        if not finite.all():
            row = start + int(np.flatnonzero(~finite)[0])
            raise DataError(
                f"{_describe(where, row, sequence_ids)}: frames contain NaN or inf "
                "(preprocessing writes missing landmarks as 0)"
            )


def check_split(frames, targets, folder: Path, name: str, sequence_ids=None) -> None:
    if len(frames) != len(targets):
        raise DataError(
            f"{folder}: X_{name}.npy has {len(frames)} sequences but y_{name}.npy has "
            f"{len(targets)}"
        )
    check_frames(frames, str(folder / f"X_{name}.npy"), sequence_ids)
    check_targets(targets, str(folder / f"y_{name}.npy"), sequence_ids)


def load_training_data(folder: str | Path, check: bool = True) -> TrainingData:
    """The arrays written by ``aslfr preprocess --out folder``, memory-mapped and checked."""
    from aslfr_lib.preprocess import load_processed

    folder = Path(folder)
    processed = load_processed(folder)
    data = TrainingData(
        X_train=processed.X_train,
        y_train=processed.y_train,
        X_val=processed.X_val,
        y_val=processed.y_val,
        means=np.asarray(processed.means, dtype=np.float32).reshape(-1),
        stds=np.asarray(processed.stds, dtype=np.float32).reshape(-1),
        meta=processed.meta,
        folder=folder,
    )
    if not check:
        return data
    if len(data.X_train) == 0:
        raise DataError(f"{folder}: X_train.npy has no sequences")
    for name in ("train", "val"):
        frames, targets = data.split(name)
        if name == "val" and len(frames) == 0 and len(targets) == 0:
            continue
        check_split(frames, targets, folder, name, data.sequence_ids(name))
        if frames.shape[1:] != data.X_train.shape[1:]:
            raise DataError(
                f"{folder}: X_{name}.npy frames are {frames.shape[1:]}, X_train.npy "
                f"{data.X_train.shape[1:]}"
            )
    features = data.X_train.shape[2]
    if data.means.shape != (features,) or data.stds.shape != (features,):
        raise DataError(
            f"{folder}: means.npy/stds.npy must have {features} values (one per feature); got "
            f"{data.means.shape} and {data.stds.shape}"
        )
    return data


class ShuffledBatches(keras.utils.PyDataset):
    """``({"frames", "phrase"}, phrase)`` batches for ``model.fit``.

    With ``shuffle``, epoch ``e`` visits the sequences in ``permutation(seed, e)`` order. With
    ``full_batches``, the last batch is completed with the first sequences of the same order, so
    every batch has ``batch_size`` rows: one compiled step shape, divisible across devices; a few
    sequences are seen twice per epoch and none is skipped. Without it (validation), the last
    batch is short and nothing repeats. Frames are read as float32, targets as int32.
    """

    def __init__(
        self,
        frames: np.ndarray,
        targets: np.ndarray,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        epoch: int = 0,
        full_batches: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if len(frames) != len(targets) or len(frames) == 0:
            raise ValueError(
                f"need as many targets as frame sequences (>0); got {len(frames)}, {len(targets)}"
            )
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.frames = frames
        self.targets = targets
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.full_batches = full_batches
        self.steps = math.ceil(len(frames) / batch_size)
        self.epoch = epoch
        self.order = self.epoch_order(epoch)

    def epoch_order(self, epoch: int) -> np.ndarray:
        """Row indices of one epoch (length ``steps * batch_size`` with ``full_batches``)."""
        count = len(self.frames)
        if self.shuffle:
            order = np.random.default_rng([self.seed, epoch]).permutation(count)
        else:
            order = np.arange(count)
        if self.full_batches:
            order = np.concatenate([order, order[: self.steps * self.batch_size - count]])
        return order

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, index: int):
        if not 0 <= index < self.steps:
            raise IndexError(f"batch {index} of {self.steps}")
        rows = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        rows = np.sort(rows)  # ascending reads are faster on memory-mapped arrays
        frames = np.asarray(self.frames[rows], dtype=np.float32)
        targets = np.asarray(self.targets[rows], dtype=np.int32)
        return {"frames": frames, "phrase": targets}, targets

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self.order = self.epoch_order(self.epoch)
