"""The learning-rate schedule: warmup, then half a cosine, one value per epoch.

This is the reference notebook's ``lrfn`` as a pure function (``learning_rate``), the list of
per-epoch values it plots (``schedule``), and the same numbers as a Keras
``LearningRateSchedule`` (``EpochWarmupCosine``) that the optimizer evaluates at every step.

Warmup multiplies ``lr_max`` by a fixed factor per remaining warmup epoch:
``"exp"``: ``2 ** -(warmup_epochs - epoch)`` (halves per epoch back from the peak);
``"log"``: ``0.1 ** (warmup_epochs - epoch)`` (a tenth per epoch, i.e. linear on a log axis).
After warmup: ``lr_max * max(0, 0.5 * (1 + cos(2 pi num_cycles progress)))`` with
``progress = (epoch - warmup_epochs) / max(1, epochs - warmup_epochs)``, so with
``num_cycles=0.5`` the last epoch ends just above zero.

``hold_epochs`` (0 in the reference) keeps ``lr_max`` for that many epochs between warmup and
the decay, whose progress then counts from the end of the hold: a CTC model that needs a few
epochs to leave the blank plateau is still at its peak rate when it starts to align.

How long that takes depends on the data, so the hold can also wait for it: ``aligned_hold``
extends ``hold_epochs`` by up to ``extra`` epochs while the CTC loss is still on the plateau
(``aslfr_lib.alignment``), and the decay then spans the epochs that are left. A run that aligns
early gets the fixed schedule; one that aligns late is not already decayed when it does.
"""

from __future__ import annotations

import math

import keras

WARMUP_FACTORS = {"exp": 0.5, "log": 0.1}  # lr shrinks by this factor per epoch before the peak


def _check(
    epochs: int, warmup_epochs: int, lr_max: float, warmup_method: str, hold_epochs: int = 0
) -> None:
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    if not 0 <= warmup_epochs <= epochs:
        raise ValueError(f"warmup_epochs must be in [0, epochs={epochs}], got {warmup_epochs}")
    if hold_epochs < 0 or warmup_epochs + hold_epochs > epochs:
        raise ValueError(
            f"hold_epochs must be >= 0 with warmup_epochs + hold_epochs <= epochs={epochs}, got "
            f"{hold_epochs} (warmup {warmup_epochs})"
        )
    if not lr_max > 0:
        raise ValueError(f"lr_max must be positive, got {lr_max}")
    if warmup_method not in WARMUP_FACTORS:
        raise ValueError(
            f"warmup_method must be one of {sorted(WARMUP_FACTORS)}, got {warmup_method!r}"
        )


def aligned_hold(
    hold_epochs: int, extra: int, warmup_epochs: int, alignment_epoch: int | None
) -> int:
    """Hold epochs in use when the hold waits up to ``extra`` epochs for CTC to align.

    ``alignment_epoch`` is the 1-based epoch after which the CTC loss left the blank plateau
    (None: not yet). Until then the hold is the longest allowed, so the peak lasts; once known,
    the decay starts right after that epoch (never before ``warmup + hold_epochs``). Past epochs
    keep their rates either way: every epoch before the alignment one was inside both holds.
    """
    if extra < 0:
        raise ValueError(f"extra hold epochs must be >= 0, got {extra}")
    if alignment_epoch is None:
        return hold_epochs + extra
    return min(max(alignment_epoch - warmup_epochs, hold_epochs), hold_epochs + extra)


def learning_rate(
    epoch: int,
    epochs: int,
    warmup_epochs: int,
    lr_max: float,
    warmup_method: str = "exp",
    num_cycles: float = 0.5,
    hold_epochs: int = 0,
) -> float:
    """Learning rate for ``epoch`` (0-based): the reference's ``lrfn``, same numbers (with
    ``hold_epochs`` 0)."""
    _check(epochs, warmup_epochs, lr_max, warmup_method, hold_epochs)
    if not 0 <= epoch < epochs:
        raise ValueError(f"epoch must be in [0, epochs={epochs}), got {epoch}")
    if epoch < warmup_epochs:
        return lr_max * WARMUP_FACTORS[warmup_method] ** (warmup_epochs - epoch)
    decay_start = warmup_epochs + hold_epochs
    if epoch < decay_start:
        return lr_max
    progress = (epoch - decay_start) / max(1, epochs - decay_start)
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * num_cycles * 2.0 * progress))) * lr_max


def schedule(
    epochs: int,
    warmup_epochs: int,
    lr_max: float,
    warmup_method: str = "exp",
    num_cycles: float = 0.5,
    hold_epochs: int = 0,
) -> list[float]:
    """One learning rate per epoch, ``[learning_rate(0), ..., learning_rate(epochs - 1)]``."""
    return [
        learning_rate(epoch, epochs, warmup_epochs, lr_max, warmup_method, num_cycles, hold_epochs)
        for epoch in range(epochs)
    ]


@keras.saving.register_keras_serializable(package="aslfr")
class EpochWarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """``schedule(...)`` indexed by ``step // steps_per_epoch``: constant within an epoch.

    The per-epoch values are computed once in Python by ``learning_rate`` and looked up in the
    graph, so the optimizer sees exactly the numbers that are plotted and tested (as float32).
    The step is the optimizer's own iteration counter, which is saved with the optimizer, so a
    run resumed from a ``.keras`` file continues at the right learning rate. Steps past the last
    epoch hold the last epoch's value rather than wrapping the cosine back up.
    """

    def __init__(
        self,
        steps_per_epoch: int,
        epochs: int,
        warmup_epochs: int,
        lr_max: float,
        warmup_method: str = "exp",
        num_cycles: float = 0.5,
        hold_epochs: int = 0,
    ):
        if steps_per_epoch < 1:
            raise ValueError(f"steps_per_epoch must be at least 1, got {steps_per_epoch}")
        _check(epochs, warmup_epochs, lr_max, warmup_method, hold_epochs)
        self.steps_per_epoch = int(steps_per_epoch)
        self.epochs = int(epochs)
        self.warmup_epochs = int(warmup_epochs)
        self.lr_max = float(lr_max)
        self.warmup_method = warmup_method
        self.num_cycles = float(num_cycles)
        self.hold_epochs = int(hold_epochs)
        self.values = schedule(
            epochs, warmup_epochs, lr_max, warmup_method, num_cycles, self.hold_epochs
        )

    def __call__(self, step):
        epoch = keras.ops.floor_divide(step, self.steps_per_epoch)
        epoch = keras.ops.clip(epoch, 0, self.epochs - 1)
        table = keras.ops.convert_to_tensor(self.values, dtype="float32")
        return keras.ops.take(table, epoch)

    def get_config(self) -> dict:
        return {
            "steps_per_epoch": self.steps_per_epoch,
            "epochs": self.epochs,
            "warmup_epochs": self.warmup_epochs,
            "lr_max": self.lr_max,
            "warmup_method": self.warmup_method,
            "num_cycles": self.num_cycles,
            "hold_epochs": self.hold_epochs,
        }
