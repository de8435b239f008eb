"""Training loss: cross-entropy with label smoothing over the non-PAD target positions."""

from __future__ import annotations

import keras
from keras import ops

from aslfr_lib.vocab import PAD

LABEL_SMOOTHING = 0.25  # the reference's value


def _per_token(targets, logits, label_smoothing: float, pad: int):
    """(per-token cross-entropy (B, L), non-PAD weights (B, L)), both float32."""
    targets = ops.cast(targets, "int32")
    logits = ops.cast(logits, "float32")
    num_classes = logits.shape[-1]
    log_probabilities = ops.log_softmax(logits, axis=-1)  # (B, L, C)
    smoothed = ops.one_hot(targets, num_classes) * (1.0 - label_smoothing)
    smoothed = smoothed + label_smoothing / num_classes
    per_token = -ops.sum(smoothed * log_probabilities, axis=-1)  # (B, L)
    weights = ops.cast(ops.not_equal(targets, pad), "float32")
    return per_token, weights


def masked_cross_entropy(targets, logits, label_smoothing: float = LABEL_SMOOTHING, pad=PAD):
    """Mean label-smoothed cross-entropy over the positions whose target is not ``pad``.

    targets (B, L) int, logits (B, L, C) -> scalar float32. Smoothing spreads ``label_smoothing``
    uniformly over all C classes, as ``keras.losses.categorical_crossentropy`` does. The mean is
    over non-PAD tokens of the whole batch (not per sequence), like the reference, which gathered
    the non-PAD positions before averaging. A batch of PAD only gives 0, not NaN.
    """
    per_token, weights = _per_token(targets, logits, label_smoothing, pad)
    return ops.sum(per_token * weights) / ops.maximum(ops.sum(weights), 1.0)


@keras.saving.register_keras_serializable(package="aslfr")
class MaskedCrossEntropy(keras.losses.Loss):
    """``masked_cross_entropy`` as a Keras loss.

    ``call`` returns per-token values weighted so that Keras's own mean over all B x L
    positions equals the masked mean: PAD positions get 0 and the others ``(B * L) / count``.
    Returning the scalar directly would skip Keras's per-replica loss scaling under
    ``tf.distribute`` (a scalar is passed through unreduced and unscaled), so data-parallel
    training would sum the replicas' gradients instead of averaging them.
    """

    def __init__(
        self,
        label_smoothing: float = LABEL_SMOOTHING,
        pad: int = PAD,
        name: str = "masked_cross_entropy",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = label_smoothing
        self.pad = pad

    def call(self, y_true, y_pred):
        per_token, weights = _per_token(y_true, y_pred, self.label_smoothing, self.pad)
        positions = ops.cast(ops.size(weights), "float32")
        return per_token * weights * (positions / ops.maximum(ops.sum(weights), 1.0))

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing, "pad": self.pad}
