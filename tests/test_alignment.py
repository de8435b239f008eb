"""The CTC blank plateau, the alignment watch and the stall guard of ``aslfr train``."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import TINY_ARCHITECTURE, write_unreadable
from keras import ops

from aslfr_lib import language_model
from aslfr_lib.alignment import ALIGNED_FRACTION, AlignmentWatch, plateau_loss
from aslfr_lib.losses import ctc_loss_per_sequence
from aslfr_lib.vocab import CHAR_TO_ID, NUM_CLASSES, PAD, encode

PHRASES = ["hello world", "12 main st", "www.abc.com", "zoe", "route 66"]


def per_character_ctc(targets: np.ndarray, logits: np.ndarray, lengths: np.ndarray) -> float:
    mask = (np.arange(logits.shape[1])[None] < lengths[:, None]).astype(np.float32)
    output = np.concatenate([logits, mask[..., None]], axis=-1).astype(np.float32)
    losses, counts, _ = ctc_loss_per_sequence(targets, output)
    return float(ops.convert_to_numpy(losses).sum() / ops.convert_to_numpy(counts).sum())


def test_plateau_is_the_best_input_blind_loss_and_a_reading_model_is_far_below_it():
    targets = np.stack([encode(PHRASES[i % len(PHRASES)]) for i in range(40)]).astype(np.int32)
    frames = 40
    lengths = np.full(40, 36)
    plateau = plateau_loss(targets, lengths, frames)
    uniform = per_character_ctc(targets, np.zeros((40, frames, NUM_CLASSES)), lengths)
    assert 0 < plateau < uniform  # knows the blank and the character frequencies
    # A model that reads its input: each character on its own frames, blanks between.
    reading = np.full((40, frames, NUM_CLASSES), -8.0)
    reading[..., PAD] = 0.0
    for row, target in enumerate(targets):
        characters = target[target < PAD]
        for position, character in enumerate(characters):
            reading[row, 2 * position + 1, character] = 8.0
            reading[row, 2 * position + 1, PAD] = -8.0
    assert per_character_ctc(targets, reading, lengths) < 0.1 * ALIGNED_FRACTION * plateau


def test_watch_records_alignment_and_warns_once_when_stalled():
    watch = AlignmentWatch(plateau=3.6, epochs=8, check_fraction=0.4)  # checks after epoch 4
    assert watch.update(1, 3.9) is None and watch.update(2, 3.5) is None
    message = watch.update(3, 2.5)
    assert "alignment began at epoch 3" in message
    assert watch.update(4, 3.6) is None  # a later bump changes nothing
    assert watch.state() == {"ctc_plateau": 3.6, "alignment_epoch": 3, "stalled": False}

    stalled = AlignmentWatch(plateau=3.6, epochs=8, check_fraction=0.4)
    said = [stalled.update(epoch, 3.55) for epoch in range(1, 9)]
    assert said[:3] == [None] * 3
    assert "after epoch 4 of 8" in said[3] and "--lr-hold-epochs" in said[3]
    assert said[4:7] == [None] * 3
    assert "training ended after epoch 8 of 8" in said[7]
    assert stalled.state()["stalled"] and stalled.state()["alignment_epoch"] is None


def test_watch_rejects_nan_as_alignment():
    watch = AlignmentWatch(plateau=3.6, epochs=2, check_fraction=1.0)
    assert watch.update(1, float("nan")) is None
    assert "WARNING" in watch.update(2, float("nan"))


@pytest.mark.slow
def test_aslfr_train_says_when_ctc_stays_on_the_plateau(tmp_path):
    processed = write_unreadable(tmp_path / "processed")
    out = tmp_path / "run"
    command = [Path(sys.executable).parent / "aslfr", "train", "--processed", processed]
    command += ["--out", out, "--epochs", "2", "--warmup-epochs", "0", "--ctc-weight", "0.5"]
    command += ["--lr-max", "1e-6", "--batch-size", "8", "--verbose", "0", "--encoder-dim", "16"]
    command += ["--decoder-dim", "16", "--num-heads", "2", "--encoder-blocks", "1"]
    command += ["--decoder-blocks", "1", "--stall-check-fraction", "0.5", "--examples-every", "0"]
    done = subprocess.run(
        list(map(str, command)),
        capture_output=True,
        text=True,
        env={**os.environ, "KERAS_BACKEND": "tensorflow"},
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "WARNING: after epoch 1 of 2" in done.stdout
    assert "WARNING: training ended after epoch 2 of 2" in done.stdout
    state = json.loads((out / "history.json").read_text())["state"]
    assert state["stalled"] is True and state["alignment_epoch"] is None
    assert state["ctc_plateau"] > 1.0
    # Where it ran is said first and recorded (aslfr_lib.runtime).
    assert "aslfr train: tensorflow on 1 CPU, float32, XLA off" in done.stdout
    assert state["runtime"]["device_kind"] == "cpu" and state["runtime"]["backend"] == "tensorflow"
    fallback = json.loads((out / "fallback.json").read_text())
    assert set(fallback["phrase"]) <= set(CHAR_TO_ID) and fallback["min_hand_frames"] >= 1
    assert language_model.load(out).order == language_model.DEFAULT_ORDER  # for the search


def test_blank_bias_starts_the_ctc_head_on_blanks(tmp_path):
    from aslfr_lib.model import CTC_BLANK, ctc_classifier_of
    from aslfr_lib.training import TrainConfig, new_model

    processed = write_unreadable(tmp_path / "processed")
    config = TrainConfig(
        processed=str(processed), ctc_weight=0.5, ctc_blank_bias=3.0, **TINY_ARCHITECTURE
    )
    bias = ops.convert_to_numpy(ctc_classifier_of(new_model(config)).bias)
    assert bias[CTC_BLANK] == 3.0 and np.count_nonzero(bias) == 1
