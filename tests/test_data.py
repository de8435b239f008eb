"""aslfr_lib.data: ragged sequences and their resized view, loading and checking a processed
folder, and ShuffledBatches over ragged frames (resizing, order, augmentation)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from aslfr_lib import data as data_module
from aslfr_lib import landmarks
from aslfr_lib.data import (
    DataError,
    RaggedFrames,
    ResizedFrames,
    ShuffledBatches,
    load_training_data,
)
from aslfr_lib.preprocess import resize_frames
from aslfr_lib.vocab import encode

FEATURES = 6
PHRASES = ["abc", "hello", "1 main st", "zz"]


def ragged_of(lengths, seed=0, dtype=np.float32, features=FEATURES) -> RaggedFrames:
    """Sequence i is filled with values from i + 1 (never 0), so rows can be recognised."""
    rng = np.random.default_rng(seed)
    sequences = [
        i + 1 + rng.random((length, features), dtype=np.float32) / 2
        for i, length in enumerate(lengths)
    ]
    return RaggedFrames.from_sequences(sequences, dtype=dtype)


def targets_of(count: int) -> np.ndarray:
    return np.stack([encode(PHRASES[i % len(PHRASES)]) for i in range(count)]).astype(np.int8)


def write_processed(folder: Path, train=(3, 9, 5, 12, 1), val=(4, 7), frames=8) -> Path:
    """A tiny folder in the ragged layout of ``aslfr preprocess``."""
    folder.mkdir(parents=True, exist_ok=True)
    meta = {"format_version": 2, "storage": "ragged", "config": {"frames": frames}}
    for split, lengths, first_id in (("train", train, 1000), ("val", val, 2000)):
        ragged = ragged_of(lengths, seed=first_id)
        np.save(folder / f"frames_{split}.npy", ragged.values)
        np.save(folder / f"offsets_{split}.npy", ragged.offsets)
        np.save(folder / f"y_{split}.npy", targets_of(len(lengths)))
        meta[split] = {"sequence_ids": list(range(first_id, first_id + len(lengths)))}
    np.save(folder / "means.npy", np.full(FEATURES, 0.5, np.float32))
    np.save(folder / "stds.npy", np.full(FEATURES, 0.1, np.float32))
    (folder / "meta.json").write_text(json.dumps(meta))
    return folder


# ----------------------------------------------------------------------------------------------
# RaggedFrames and ResizedFrames


def test_ragged_frames_index_lengths_and_float16_widening():
    ragged = ragged_of([3, 0, 5], dtype=np.float16)
    assert len(ragged) == 3 and ragged.features == FEATURES and ragged.dtype == np.float16
    np.testing.assert_array_equal(ragged.lengths, [3, 0, 5])
    np.testing.assert_array_equal(ragged.offsets, [0, 3, 3, 8])
    assert ragged[1].shape == (0, FEATURES)
    assert ragged[2].dtype == np.float32 and ragged[2].shape == (5, FEATURES)
    np.testing.assert_array_equal(ragged[-1], ragged.values[3:8].astype(np.float32))
    assert [len(sequence) for sequence in ragged] == [3, 0, 5]
    with pytest.raises(IndexError):
        ragged[3]
    with pytest.raises(TypeError, match="integer"):
        ragged[0:2]


@pytest.mark.parametrize(
    ("offsets", "match"),
    [([0, 2, 1, 4], "decreasing"), ([1, 4], "from 0"), ([0, 5], "4 rows"), ([[0, 4]], "sequences")],
)
def test_ragged_frames_reject_bad_offsets(offsets, match):
    with pytest.raises(ValueError, match=match):
        RaggedFrames(np.ones((4, FEATURES), np.float32), np.array(offsets))


def test_resized_frames_indexing_matches_resize_frames():
    ragged = ragged_of([3, 12, 8, 1, 20])
    view = ResizedFrames(ragged, 8)
    expected = np.stack([resize_frames(sequence, 8) for sequence in ragged])
    assert view.shape == (5, 8, FEATURES) and len(view) == 5 and view.dtype == np.float32
    assert view.ndim == 3 and ragged.resized(8).shape == view.shape
    np.testing.assert_array_equal(view[1], expected[1])
    np.testing.assert_array_equal(view[np.int64(-1)], expected[4])
    np.testing.assert_array_equal(view[1:4], expected[1:4])
    np.testing.assert_array_equal(view[::-2], expected[::-2])
    np.testing.assert_array_equal(view[np.array([4, 0, 4])], expected[[4, 0, 4]])
    np.testing.assert_array_equal(view[[2]], expected[[2]])
    mask = np.array([True, False, True, False, False])
    np.testing.assert_array_equal(view[mask], expected[mask])
    np.testing.assert_array_equal(view[:2, 0], expected[:2, 0])
    np.testing.assert_array_equal(view[3, :2, 1], expected[3, :2, 1])
    assert view[[]].shape == (0, 8, FEATURES) and view[5:].shape == (0, 8, FEATURES)
    np.testing.assert_array_equal(np.asarray(view), expected)
    assert np.asarray(view, dtype=np.float16).dtype == np.float16
    np.testing.assert_array_equal(view[0][3:], 0)  # a short sequence is zero-padded
    with pytest.raises(IndexError):
        view[np.array([0, 5])]
    with pytest.raises(IndexError):
        view[np.array([True, False])]
    with pytest.raises(ValueError, match="length"):
        ResizedFrames(ragged, 0)


# ----------------------------------------------------------------------------------------------
# Loading a processed folder


def test_load_training_data_views_at_meta_frames_or_an_override(tmp_path):
    folder = write_processed(tmp_path / "p")
    data = load_training_data(folder)
    assert data.frames == 8 and data.has_validation
    assert data.X_train.shape == (5, 8, FEATURES) and data.X_val.shape == (2, 8, FEATURES)
    assert isinstance(data.ragged_train, RaggedFrames) and len(data.ragged_val) == 2
    X, y = data.split("val")
    assert X.shape[1] == 8 and len(y) == 2 and data.X_val[:5].shape == (2, 8, FEATURES)
    np.testing.assert_array_equal(np.asarray(data.X_val)[1], resize_frames(data.ragged_val[1], 8))
    np.testing.assert_array_equal(data.sequence_ids("train"), [1000, 1001, 1002, 1003, 1004])
    for lengths, X in ((data.train_lengths, data.X_train), (data.val_lengths, data.X_val)):
        present = np.any(np.asarray(X) != 0, axis=-1)  # the last frame with landmarks + 1
        np.testing.assert_array_equal(lengths, np.max(present * np.arange(1, 9), axis=1))
    np.testing.assert_array_equal(data.train_lengths, [3, 8, 5, 8, 1])
    longer = load_training_data(folder, frames=16)
    assert longer.frames == 16 and longer.X_train.shape == (5, 16, FEATURES)
    np.testing.assert_array_equal(longer.X_train[3], resize_frames(data.ragged_train[3], 16))
    with pytest.raises(ValueError, match="frames"):
        load_training_data(folder, frames=0)


def test_load_training_data_names_file_and_sequence_on_bad_input(tmp_path, monkeypatch):
    monkeypatch.setattr("aslfr_lib.data.CHECK_ROWS", 4)  # the bad frame is in a later chunk
    folder = write_processed(tmp_path / "q")
    values = np.load(folder / "frames_train.npy")
    values[3 + 9 + 2, 1] = np.nan  # frame 2 of row 2 (sequence 1002)
    np.save(folder / "frames_train.npy", values)
    with pytest.raises(
        DataError, match=r"frames_train\.npy: sequence 1002 \(row 2\).*NaN.*frame 2"
    ):
        load_training_data(folder)
    assert len(load_training_data(folder, check=False).ragged_train) == 5

    folder = write_processed(tmp_path / "r")
    targets = np.load(folder / "y_val.npy")
    targets[1] = targets[0] * 0 + 60  # PAD only, no EOS
    np.save(folder / "y_val.npy", targets)
    with pytest.raises(DataError, match=r"y_val\.npy: sequence 2001 \(row 1\)"):
        load_training_data(folder)

    folder = write_processed(tmp_path / "s")
    np.save(folder / "y_train.npy", targets_of(4))
    with pytest.raises(DataError, match=r"frames_train\.npy.*5 sequences.*y_train\.npy has 4"):
        load_training_data(folder)


def test_load_training_data_reports_the_old_layout(tmp_path):
    folder = tmp_path / "old"
    folder.mkdir()
    np.save(folder / "X_train.npy", np.zeros((2, 8, FEATURES), np.float32))
    (folder / "meta.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="older aslfr preprocess.*--out"):
        load_training_data(folder)


# ----------------------------------------------------------------------------------------------
# ShuffledBatches over ragged frames


def labelled(batch) -> tuple[np.ndarray, np.ndarray]:
    """(frames, the row each batch row came from, read from its values)."""
    inputs, targets = batch
    assert inputs["frames"].dtype == np.float32 and targets.dtype == np.int32
    assert np.array_equal(inputs["phrase"], targets)
    return inputs["frames"], np.floor(inputs["frames"][:, 0, 0]).astype(int) - 1


def test_ragged_batches_are_resized_and_stay_paired():
    lengths = [3, 40, 7, 16, 25, 1, 9, 30, 2, 12]
    ragged, targets = ragged_of(lengths), targets_of(len(lengths))
    batches = ShuffledBatches(ragged, targets, batch_size=4, seed=3, length=16)
    assert len(batches) == 3
    seen = []
    for index in range(len(batches)):
        frames, rows = labelled(batches[index])
        assert frames.shape == (4, 16, FEATURES)
        for frame, row in zip(frames, rows, strict=True):
            np.testing.assert_array_equal(frame, resize_frames(ragged[row], 16))
        np.testing.assert_array_equal(batches[index][1], targets[rows])  # rows stay paired
        seen.extend(rows.tolist())
    assert sorted(set(seen)) == list(range(10)) and len(seen) == 12
    # The same order as pre-resized arrays give, and the same frames.
    arrays = ShuffledBatches(np.asarray(ragged.resized(16)), targets, batch_size=4, seed=3)
    np.testing.assert_array_equal(arrays.order, batches.order)
    np.testing.assert_array_equal(arrays[1][0]["frames"], batches[1][0]["frames"])
    view = ShuffledBatches(ragged.resized(16), targets, batch_size=4, seed=3)
    np.testing.assert_array_equal(view[2][0]["frames"], batches[2][0]["frames"])


def test_ragged_batches_order_by_seed_and_epoch_and_resume():
    ragged, targets = ragged_of(range(1, 11)), targets_of(10)
    batches = ShuffledBatches(ragged, targets, batch_size=4, seed=3, length=8)
    again = ShuffledBatches(ragged, targets, batch_size=4, seed=3, length=8)
    other_seed = ShuffledBatches(ragged, targets, batch_size=4, seed=4, length=8)
    np.testing.assert_array_equal(batches.order, again.order)
    assert not np.array_equal(batches.order, other_seed.order)
    first = batches.order.copy()
    batches.on_epoch_end()
    assert not np.array_equal(first, batches.order)
    resumed = ShuffledBatches(ragged, targets, batch_size=4, seed=3, epoch=1, length=8)
    np.testing.assert_array_equal(resumed.order, batches.order)
    for index in range(3):
        np.testing.assert_array_equal(resumed[index][0]["frames"], batches[index][0]["frames"])
    validation = ShuffledBatches(ragged, targets, 4, shuffle=False, full_batches=False, length=8)
    assert [len(validation[i][1]) for i in range(3)] == [4, 4, 2]
    np.testing.assert_array_equal(labelled(validation[2])[1], [8, 9])


def test_ragged_batches_argument_errors():
    ragged, targets = ragged_of([2, 3]), targets_of(2)
    with pytest.raises(ValueError, match="length"):
        ShuffledBatches(ragged, targets, batch_size=2)
    with pytest.raises(ValueError, match="already resized to 8"):
        ShuffledBatches(np.zeros((2, 8, FEATURES), np.float32), targets, 2, length=4)
    with pytest.raises(ValueError, match="resized to 8"):
        ShuffledBatches(ragged.resized(8), targets, 2, length=4)
    with pytest.raises(ValueError, match="RaggedFrames"):
        ShuffledBatches(np.zeros((2, 8, FEATURES), np.float32), targets, 2, augmentation=ON)
    with pytest.raises(ValueError, match="targets"):
        ShuffledBatches(ragged, targets_of(3), 2, length=4)


# ----------------------------------------------------------------------------------------------
# Augmentation: the plumbing with a stand-in module, then the real module when it exists


class StandIn:
    """An AugmentationConfig-like object for the stand-in module."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled


ON = StandIn(enabled=True)


@pytest.fixture
def stand_in_augmentation(monkeypatch):
    """The loader's augmentation functions replaced by ones that record their calls:
    augment_sequence drops the first frame and adds a random offset; mask_time zeroes one
    random frame."""
    calls = []

    def augment_sequence(frames, rng, config):
        assert frames.ndim == 2 and config is ON
        calls.append(("augment", len(frames)))
        return frames[1:] + rng.uniform(0.01, 0.02)

    def mask_time(resized, rng, config):
        calls.append(("mask", len(resized)))
        masked = resized.copy()
        masked[rng.integers(len(resized))] = 0
        return masked

    monkeypatch.setattr(data_module, "augment_sequence", augment_sequence)
    monkeypatch.setattr(data_module, "mask_time", mask_time)
    return calls


def test_augmentation_before_and_after_resizing_reproducible(stand_in_augmentation):
    calls = stand_in_augmentation
    lengths = [5, 30, 9, 12, 20, 7, 3, 16]
    ragged, targets = ragged_of(lengths), targets_of(len(lengths))
    plain = ShuffledBatches(ragged, targets, batch_size=4, seed=1, length=10)
    augmented = ShuffledBatches(ragged, targets, batch_size=4, seed=1, length=10, augmentation=ON)
    frames = augmented[1][0]["frames"]
    rows = np.sort(augmented.order[4:8])
    # Per sequence in row order: augmented at its own length, resized, then masked, all drawing
    # from one generator seeded by (seed, epoch, batch index).
    assert calls == [c for r in rows for c in (("augment", lengths[r]), ("mask", 10))]
    rng = np.random.default_rng([1, 0, 1])
    for frame, row in zip(frames, rows, strict=True):
        expected = resize_frames(ragged[row][1:] + rng.uniform(0.01, 0.02), 10)
        expected[rng.integers(10)] = 0
        np.testing.assert_array_equal(frame, expected)
    assert not np.array_equal(frames, plain[1][0]["frames"])
    # Reproducible: read again, in another order, or after a resume; other seeds differ.
    again = ShuffledBatches(ragged, targets, batch_size=4, seed=1, length=10, augmentation=ON)
    np.testing.assert_array_equal(again[1][0]["frames"], frames)
    np.testing.assert_array_equal(augmented[1][0]["frames"], frames)
    first_epoch = augmented[0][0]["frames"]
    augmented.on_epoch_end()
    next_epoch = augmented[0][0]["frames"]
    assert not np.array_equal(next_epoch, first_epoch)
    resumed = ShuffledBatches(
        ragged, targets, batch_size=4, seed=1, epoch=1, length=10, augmentation=ON
    )
    np.testing.assert_array_equal(resumed[0][0]["frames"], next_epoch)
    other = ShuffledBatches(ragged, targets, batch_size=4, seed=2, length=10, augmentation=ON)
    assert not np.array_equal(other[1][0]["frames"], frames)


def test_validation_and_disabled_augmentation_do_not_augment(stand_in_augmentation):
    calls = stand_in_augmentation
    ragged, targets = ragged_of([5, 30, 9, 12]), targets_of(4)
    plain = ShuffledBatches(ragged, targets, 2, shuffle=False, full_batches=False, length=10)
    validation = ShuffledBatches(
        ragged, targets, 2, shuffle=False, full_batches=False, length=10, augmentation=ON
    )
    off = ShuffledBatches(ragged, targets, 2, seed=0, length=10, augmentation=StandIn(False))
    reference = ShuffledBatches(ragged, targets, 2, seed=0, length=10)
    for index in range(2):
        np.testing.assert_array_equal(validation[index][0]["frames"], plain[index][0]["frames"])
        np.testing.assert_array_equal(off[index][0]["frames"], reference[index][0]["frames"])
    assert calls == [] and validation.augmentation is None and off.augmentation is None


def test_real_augmentation_module_keeps_shapes_and_is_reproducible():
    augmentation = pytest.importorskip(
        "aslfr_lib.augmentation", reason="aslfr_lib.augmentation is missing (written separately)"
    )
    half = {
        field.name: 0.5
        for field in dataclasses.fields(augmentation.AugmentationConfig)
        if field.name.endswith("_probability")
    }
    config = augmentation.AugmentationConfig(**half)
    assert half and config.enabled and not augmentation.AugmentationConfig().enabled
    ragged = ragged_of([5, 30, 9, 12, 40, 2], features=landmarks.NUM_FEATURES)
    targets = targets_of(6)
    batches = ShuffledBatches(ragged, targets, 3, seed=5, length=16, augmentation=config)
    again = ShuffledBatches(ragged, targets, 3, seed=5, length=16, augmentation=config)
    plain = ShuffledBatches(ragged, targets, 3, seed=5, length=16)
    for index in range(2):
        frames = batches[index][0]["frames"]
        assert frames.shape == (3, 16, landmarks.NUM_FEATURES) and frames.dtype == np.float32
        assert np.isfinite(frames).all()
        np.testing.assert_array_equal(frames, again[index][0]["frames"])
        assert not np.array_equal(frames, plain[index][0]["frames"])
    validation = ShuffledBatches(ragged, targets, 3, shuffle=False, length=16, augmentation=config)
    np.testing.assert_array_equal(validation[0][0]["frames"], ragged.resized(16)[:3])
