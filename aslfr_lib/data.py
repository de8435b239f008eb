"""Training data: the preprocessed sequences, checked, and shuffled epochs of full batches.

``aslfr preprocess`` stores each sequence's cleaned frames at its own length (``RaggedFrames``);
the model length ``frames`` is chosen here, when loading (meta.json's by default), and each
batch's sequences are padded or resized to it with ``resize_frames`` as they are read. So a
different ``frames`` needs no new preprocessing, and augmentations that change a sequence's
length (``aslfr_lib.augmentation``) run on the real frames, before resizing.

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

from aslfr_lib.augmentation import augment_sequence, mask_time

# Defined beside ``load_processed`` so that reading preprocessed data needs no keras import.
from aslfr_lib.preprocess import RaggedFrames, ResizedFrames, ResizedSplits, resize_frames
from aslfr_lib.vocab import EOS, NUM_CLASSES, PAD, SOS, TARGET_LENGTH

CHECK_ROWS = 65_536  # frames per chunk when scanning for NaN/inf (~43 MB of float32)


class DataError(ValueError):
    """Training arrays that cannot be used as they are."""


@dataclasses.dataclass
class TrainingData(ResizedSplits):
    """The outputs of a preprocessed folder (``aslfr_lib.preprocess.load_processed``), checked,
    seen at ``frames`` frames per sequence."""

    ragged_train: RaggedFrames  # N sequences of (L_i, features), zeros = missing
    y_train: np.ndarray  # (N, 32) int: characters, EOS, PAD
    ragged_val: RaggedFrames  # M sequences; M may be 0
    y_val: np.ndarray
    means: np.ndarray  # (features,)
    stds: np.ndarray
    meta: dict[str, Any]
    folder: Path
    frames: int  # T: every sequence is padded or resized to it when read (X_train, X_val)

    @property
    def train_lengths(self) -> np.ndarray:
        """(N,) frames with landmarks per sequence of ``X_train``: min(stored frames, ``frames``)
        (every stored frame shows a hand), without resizing anything."""
        return np.minimum(self.ragged_train.lengths, self.frames)

    @property
    def val_lengths(self) -> np.ndarray:
        return np.minimum(self.ragged_val.lengths, self.frames)

    @property
    def val_trainable(self) -> np.ndarray:
        """(M,) bool: False for held-out sequences too short to train on (scored only)."""
        from aslfr_lib.preprocess import trainable_mask

        return trainable_mask(self.meta, "val", len(self.ragged_val))

    @property
    def has_validation(self) -> bool:
        return len(self.ragged_val) > 0

    def split(self, name: str) -> tuple[ResizedFrames, np.ndarray]:
        """(X, y) of ``"train"`` or ``"val"``."""
        if name not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', got {name!r}")
        return (self.X_train, self.y_train) if name == "train" else (self.X_val, self.y_val)

    def ragged(self, name: str) -> RaggedFrames:
        """The unresized sequences of ``"train"`` or ``"val"``."""
        if name not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', got {name!r}")
        return self.ragged_train if name == "train" else self.ragged_val

    def sequence_ids(self, name: str) -> np.ndarray | None:
        """Competition sequence ids of a split's rows, when the metadata lists them."""
        ids = self.meta.get(name, {}).get("sequence_ids") if isinstance(self.meta, dict) else None
        if ids is None or len(ids) != len(self.ragged(name)):
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


def check_frames(frames: RaggedFrames, where: str, sequence_ids=None) -> None:
    """Floating point frames, all finite (missing landmarks are 0, never NaN); the stored
    values are scanned ``CHECK_ROWS`` frames at a time, so memory stays bounded."""
    values = frames.values
    if not np.issubdtype(values.dtype, np.floating):
        raise DataError(f"{where}: frames must be floating point, got {values.dtype}")
    for start in range(0, len(values), CHECK_ROWS):
        finite = np.isfinite(values[start : start + CHECK_ROWS]).all(axis=1)
        if not finite.all():
            frame = start + int(np.flatnonzero(~finite)[0])
            row = int(np.searchsorted(frames.offsets, frame, side="right")) - 1
            raise DataError(
                f"{_describe(where, row, sequence_ids)}: frames contain NaN or inf at frame "
                f"{frame - int(frames.offsets[row])} (preprocessing writes missing landmarks as 0)"
            )


def check_split(frames: RaggedFrames, targets, folder: Path, name: str, sequence_ids=None) -> None:
    if len(frames) != len(targets):
        raise DataError(
            f"{folder}: frames_{name}.npy (offsets_{name}.npy) has {len(frames)} sequences but "
            f"y_{name}.npy has {len(targets)}"
        )
    check_frames(frames, str(folder / f"frames_{name}.npy"), sequence_ids)
    check_targets(targets, str(folder / f"y_{name}.npy"), sequence_ids)


def load_training_data(
    folder: str | Path, check: bool = True, frames: int | None = None
) -> TrainingData:
    """The outputs of ``aslfr preprocess --out folder``, memory-mapped and checked, seen at
    ``frames`` frames per sequence (None: the ``frames`` the folder was preprocessed with)."""
    from aslfr_lib.preprocess import load_processed

    folder = Path(folder)
    processed = load_processed(folder)
    if frames is None:
        frames = processed.meta.get("config", {}).get("frames")
        if frames is None:
            raise DataError(f"{folder / 'meta.json'}: no config.frames; pass frames explicitly")
    if int(frames) < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    data = TrainingData(
        ragged_train=processed.ragged_train,
        y_train=processed.y_train,
        ragged_val=processed.ragged_val,
        y_val=processed.y_val,
        means=np.asarray(processed.means, dtype=np.float32).reshape(-1),
        stds=np.asarray(processed.stds, dtype=np.float32).reshape(-1),
        meta=processed.meta,
        folder=folder,
        frames=int(frames),
    )
    if not check:
        return data
    if len(data.ragged_train) == 0:
        raise DataError(f"{folder}: frames_train.npy has no sequences")
    for name in ("train", "val"):
        ragged, targets = data.ragged(name), data.split(name)[1]
        if name == "val" and len(ragged) == 0 and len(targets) == 0:
            continue
        check_split(ragged, targets, folder, name, data.sequence_ids(name))
        if ragged.features != data.ragged_train.features:
            raise DataError(
                f"{folder}: frames_{name}.npy has {ragged.features} features, frames_train.npy "
                f"{data.ragged_train.features}"
            )
    features = data.ragged_train.features
    if data.means.shape != (features,) or data.stds.shape != (features,):
        raise DataError(
            f"{folder}: means.npy/stds.npy must have {features} values (one per feature); got "
            f"{data.means.shape} and {data.stds.shape}"
        )
    return data


class ShuffledBatches(keras.utils.PyDataset):
    """``({"frames", "phrase"}, phrase)`` batches for ``model.fit``.

    ``frames`` is either a ``RaggedFrames`` (each batch's sequences are padded or resized to
    ``length`` frames with ``resize_frames`` as they are read; a ``ResizedFrames`` stands for its
    ragged sequences at its length) or an already resized (N, T, features) array.

    With ``shuffle``, epoch ``e`` visits the sequences in ``permutation(seed, e)`` order. With
    ``full_batches``, the last batch is completed with the first sequences of the same order, so
    every batch has ``batch_size`` rows: one compiled step shape, divisible across devices; a few
    sequences are seen twice per epoch and none is skipped. Without it (validation), the last
    batch is short and nothing repeats. Frames are read as float32, targets as int32.

    ``augmentation`` (an enabled ``aslfr_lib.augmentation.AugmentationConfig``, ragged frames
    only) changes each training sequence before resizing (``augment_sequence``) and masks time
    after (``mask_time``), drawing from a generator seeded by (seed, epoch, batch index): the
    same run, or a resumed one, sees the same augmentations. It applies only with ``shuffle``:
    validation (``shuffle=False``) batches are never augmented.
    """

    def __init__(
        self,
        frames: RaggedFrames | np.ndarray,
        targets: np.ndarray,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        epoch: int = 0,
        full_batches: bool = True,
        length: int | None = None,
        augmentation: Any = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if len(frames) != len(targets) or len(frames) == 0:
            raise ValueError(
                f"need as many targets as frame sequences (>0); got {len(frames)}, {len(targets)}"
            )
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if isinstance(frames, ResizedFrames):
            if length not in (None, frames.length):
                raise ValueError(f"length {length} but the frames are resized to {frames.length}")
            frames, length = frames.ragged, frames.length
        if isinstance(frames, RaggedFrames):
            if length is None or length < 1:
                raise ValueError(f"ragged frames need a length >= 1 to resize to, got {length}")
        else:
            if frames.ndim != 3:
                raise ValueError(f"frames must be RaggedFrames or (N, T, F), got {frames.shape}")
            if length not in (None, frames.shape[1]):
                raise ValueError(
                    f"frames are already resized to {frames.shape[1]}, not {length}; pass the "
                    "RaggedFrames to resize"
                )
            length = frames.shape[1]
            if augmentation is not None and augmentation.enabled:
                raise ValueError("augmentation needs the unresized frames (RaggedFrames)")
        self.frames = frames
        self.targets = targets
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.full_batches = full_batches
        self.length = length
        enabled = shuffle and augmentation is not None and augmentation.enabled
        self.augmentation = augmentation if enabled else None
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
        if isinstance(self.frames, RaggedFrames):
            frames = self.resized_batch(rows, index)
        else:
            frames = np.asarray(self.frames[rows], dtype=np.float32)
        targets = np.asarray(self.targets[rows], dtype=np.int32)
        return {"frames": frames, "phrase": targets}, targets

    def resized_batch(self, rows: np.ndarray, index: int) -> np.ndarray:
        """(B, length, features) float32: each sequence (augmented) then padded or resized."""
        if self.augmentation is None:
            return ResizedFrames(self.frames, self.length).take(rows)
        batch = np.empty((len(rows), self.length, self.frames.features), dtype=np.float32)
        rng = np.random.default_rng([self.seed, self.epoch, index])
        for out, row in zip(batch, rows.tolist(), strict=True):
            sequence = augment_sequence(self.frames[row], rng, self.augmentation)
            resized = resize_frames(sequence, self.length)
            out[...] = mask_time(resized, rng, self.augmentation)
        return batch

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self.order = self.epoch_order(self.epoch)


__all__ = [
    "DataError",
    "RaggedFrames",
    "ResizedFrames",
    "ShuffledBatches",
    "TrainingData",
    "check_frames",
    "check_targets",
    "load_training_data",
]
