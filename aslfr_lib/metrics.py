"""Character accuracy metrics that ignore PAD targets (``top1``, ``top5``)."""

from __future__ import annotations

import keras
from keras import ops

from aslfr_lib.vocab import PAD


@keras.saving.register_keras_serializable(package="aslfr")
class MaskedTopKAccuracy(keras.metrics.Metric):
    """Share of non-PAD target tokens whose id is among the ``k`` highest logits.

    Counts are summed over batches (a token-weighted mean, not a mean of batch means). EOS counts
    as a character: predicting where the phrase ends is part of the task.
    """

    def __init__(self, k: int = 1, pad: int = PAD, name: str | None = None, **kwargs):
        super().__init__(name=name or f"top{k}", **kwargs)
        self.k = k
        self.pad = pad
        self.correct = self.add_variable(shape=(), initializer="zeros", name="correct")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        targets = ops.reshape(ops.cast(y_true, "int32"), (-1,))  # (B*L,)
        logits = ops.reshape(ops.cast(y_pred, "float32"), (-1, y_pred.shape[-1]))  # (B*L, C)
        hits = ops.cast(ops.in_top_k(targets, logits, self.k), "float32")
        weights = ops.cast(ops.not_equal(targets, self.pad), "float32")
        self.correct.assign_add(ops.sum(hits * weights))
        self.count.assign_add(ops.sum(weights))

    def result(self):
        return self.correct / ops.maximum(self.count, 1.0)

    def reset_state(self):
        self.correct.assign(0.0)
        self.count.assign(0.0)

    def get_config(self):
        return {**super().get_config(), "k": self.k, "pad": self.pad}


def character_metrics() -> list[MaskedTopKAccuracy]:
    """The training metrics: ``top1`` and ``top5``."""
    return [MaskedTopKAccuracy(1), MaskedTopKAccuracy(5)]
