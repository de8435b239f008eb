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


def ctc_targets(targets, pad: int = PAD):
    """(B, 32) targets (characters, EOS, PAD) -> (labels, label lengths, CTC-feasible (B,)).

    Characters are the ids below ``pad``; a CTC path needs one frame per character plus one
    blank between each pair of equal neighbours, so ``feasible`` is computed against that
    count by ``ctc_loss_per_sequence``.
    """
    targets = ops.cast(targets, "int32")
    is_character = ops.less(targets, pad)  # (B, L)
    lengths = ops.sum(ops.cast(is_character, "int32"), axis=1)
    repeats = ops.logical_and(
        ops.logical_and(is_character[:, 1:], is_character[:, :-1]),
        ops.equal(targets[:, 1:], targets[:, :-1]),
    )
    needed = lengths + ops.sum(ops.cast(repeats, "int32"), axis=1)
    labels = ops.where(is_character, targets, 0)
    return labels, lengths, needed


def ctc_loss_per_sequence(targets, ctc_output, blank: int = PAD):
    """(CTC loss per sequence (B,) float32, label lengths (B,) float32, usable (B,) float32).

    ``ctc_output`` is ``layers.CTCOutput``'s (B, S, C + 1). A sequence whose characters cannot
    be aligned (more characters + repeats than frames) or that has none gets loss 0 and
    ``usable`` 0: ``keras.ops.ctc_loss`` would give inf there, and inf times a zero weight is a
    NaN gradient, so such rows are given a feasible stand-in alignment before the loss and
    masked after it.
    """
    from aslfr_lib.layers import ctc_parts

    logits, frame_lengths = ctc_parts(ops.cast(ctc_output, "float32"))
    labels, lengths, needed = ctc_targets(targets, blank)
    usable = ops.logical_and(ops.greater(lengths, 0), ops.less_equal(needed, frame_lengths))
    safe_lengths = ops.where(usable, lengths, 1)
    safe_frames = ops.where(usable, frame_lengths, ops.maximum(frame_lengths, 1))
    losses = ops.ctc_loss(labels, logits, safe_lengths, safe_frames, mask_index=blank)
    usable = ops.cast(usable, "float32")
    return losses * usable, ops.cast(lengths, "float32") * usable, usable


@keras.saving.register_keras_serializable(package="aslfr")
class CTCLoss(keras.losses.Loss):
    """CTC per character: sum of the usable sequences' CTC losses / their characters.

    Per character, like the masked cross-entropy (per token), so that ``ctc_weight`` mixes two
    losses of the same scale. As in ``MaskedCrossEntropy``, ``call`` returns per-sequence
    values whose Keras mean over the batch equals that ratio, so data-parallel training scales
    it per replica like any other loss.
    """

    def __init__(self, blank: int = PAD, name: str = "ctc", **kwargs):
        super().__init__(name=name, **kwargs)
        self.blank = blank

    def call(self, y_true, y_pred):
        losses, characters, _ = ctc_loss_per_sequence(y_true, y_pred, self.blank)
        batch = ops.cast(ops.shape(losses)[0], "float32")
        return losses * (batch / ops.maximum(ops.sum(characters), 1.0))

    def get_config(self):
        return {**super().get_config(), "blank": self.blank}
