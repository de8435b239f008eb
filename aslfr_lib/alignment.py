"""When does CTC start to align? The blank plateau, measured, and a guard that says so.

A CTC head first learns what needs no input: emit blanks, and spread the rest over the
characters by their frequency. Its loss then sits on a plateau until the encoder learns where
the letters are; only after that does it read anything. How long the plateau lasts depends on
the data (signing rate, holds, drop-outs): on slow-to-align data a short run can end on it.

``plateau_loss`` is that plateau's level for the training data: the per-character CTC loss of
the best input-blind model (every frame: blank with probability p, else a character by its
training frequency; p chosen from a grid). ``AlignmentWatch`` reads the training CTC loss after
every epoch: alignment has begun at the first epoch whose loss is below ``ALIGNED_FRACTION`` of
the plateau. If that has not happened after ``check_fraction`` of the epochs, it returns a
warning that says what to do; the run records the epoch alignment began (or None).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from aslfr_lib.vocab import NUM_CLASSES, PAD

ALIGNED_FRACTION = 0.8  # below 80 % of the input-blind loss the model reads its input
PLATEAU_SAMPLE = 256  # training sequences the plateau is measured on
BLANK_PROBABILITIES = np.linspace(0.05, 0.95, 19)

ADVICE = (
    "train longer (--epochs), keep the peak learning rate until CTC aligns "
    "(--lr-hold-until-aligned N) or for longer (--lr-hold-epochs N), start "
    "augmentation only once aligned (--augment-after-alignment), or use a smaller --batch-size "
    "(more steps per epoch); with CTC, hand-shape features (--hand-shape-features) align faster"
)


def plateau_loss(targets: np.ndarray, frame_lengths: np.ndarray, frames: int) -> float:
    """Per-character CTC loss of the best input-blind model on (a sample of) ``targets``.

    ``targets`` (N, 32) ids (characters, EOS, PAD), ``frame_lengths`` (N,) frames with
    landmarks of each sequence (at most ``frames``). Sequences CTC cannot align are left out,
    as the training loss leaves them out.
    """
    from keras import ops

    from aslfr_lib.losses import ctc_loss_per_sequence

    targets = np.asarray(targets)[:PLATEAU_SAMPLE].astype(np.int32)
    lengths = np.minimum(np.asarray(frame_lengths)[:PLATEAU_SAMPLE], frames)
    characters = targets[targets < PAD]
    if characters.size == 0:
        raise ValueError("plateau_loss needs targets with characters")
    frequency = np.bincount(characters, minlength=NUM_CLASSES).astype(np.float64)
    frequency = np.maximum(frequency / frequency.sum(), 1e-6)
    mask = (np.arange(frames)[None, :] < lengths[:, None]).astype(np.float32)  # (B, T)
    best = math.inf
    for blank in BLANK_PROBABILITIES:
        probabilities = (1 - blank) * frequency
        probabilities[PAD] = blank
        logits = np.broadcast_to(np.log(probabilities), (len(targets), frames, NUM_CLASSES))
        output = np.concatenate([logits, mask[..., None]], axis=-1).astype(np.float32)
        losses, counts, _ = ctc_loss_per_sequence(targets, output)
        losses, counts = ops.convert_to_numpy(losses), ops.convert_to_numpy(counts)
        if counts.sum() > 0:
            best = min(best, float(losses.sum() / counts.sum()))
    return best


@dataclasses.dataclass
class AlignmentWatch:
    """Reads the training CTC loss once per epoch (1-based ``epoch``)."""

    plateau: float  # ``plateau_loss`` of the training data
    epochs: int
    check_fraction: float = 0.4
    alignment_epoch: int | None = None  # first epoch below ALIGNED_FRACTION * plateau
    warned: bool = False

    @property
    def threshold(self) -> float:
        return ALIGNED_FRACTION * self.plateau

    @property
    def check_epoch(self) -> int:
        """The epoch after which a run still on the plateau is reported."""
        return max(1, math.ceil(self.check_fraction * self.epochs))

    def update(self, epoch: int, ctc_loss: float) -> str | None:
        """Record epoch ``epoch``'s loss; a line to print when something changed, else None."""
        if self.alignment_epoch is None and math.isfinite(ctc_loss) and ctc_loss < self.threshold:
            self.alignment_epoch = epoch
            return (
                f"aslfr train: CTC alignment began at epoch {epoch} (CTC loss {ctc_loss:.3f} < "
                f"{self.threshold:.3f}, {ALIGNED_FRACTION:.0%} of the blank plateau "
                f"{self.plateau:.3f})"
            )
        stalled = self.alignment_epoch is None and epoch >= self.check_epoch
        if stalled and (not self.warned or epoch == self.epochs):
            self.warned = True
            where = "training ended after" if epoch == self.epochs else "after"
            return (
                f"aslfr train: WARNING: {where} epoch {epoch} of {self.epochs} the CTC loss "
                f"({ctc_loss:.3f}) "
                f"is still on the blank plateau ({self.plateau:.3f}; aligned below "
                f"{self.threshold:.3f}): the model has not started to read the input and the "
                f"run will score near 0. Try: {ADVICE}."
            )
        return None

    def state(self) -> dict:
        return {
            "ctc_plateau": self.plateau,
            "alignment_epoch": self.alignment_epoch,
            "stalled": self.alignment_epoch is None and self.warned,
        }
