"""The reference notebook's way of exporting, kept as the benchmark's baseline.

The seed's ``TFLiteModel`` ran the encoder once and then, for every character, the whole decoder
over all 128 frame positions (its phrase padded to the frame count), took the row of the
current position and stopped at EOS. Nothing is cached, so each step costs ~128 positions of
decoder work. ``ReferenceInferenceModule`` does the same with our sub-models: a twin of the model
built with ``reference_decoder_positions=True`` (the same weights; its position table gets the
trained 32 rows followed by zeros, which only positions >= 32 read, and causal self-attention
keeps those from changing the first 32) runs in a ``tf.while_loop`` until EOS.

Not for submissions: ``export.inference.InferenceModule`` gives the same phrases much faster.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import tensorflow as tf

from aslfr_lib import landmarks
from aslfr_lib.export.inference import INPUT_NAME, OUTPUT_NAME
from aslfr_lib.export.preprocessing import preprocess_tf
from aslfr_lib.layers import has_landmarks
from aslfr_lib.model import ModelConfig, build_model, decoder_of, encoder_of, model_frames
from aslfr_lib.vocab import EOS, NUM_CLASSES, PAD, SOS, TARGET_LENGTH


def reference_positions_twin(model: Any, config: ModelConfig) -> Any:
    """``model`` (built from ``config``) as a model whose decoder runs over all frame positions."""
    if config.reference_decoder_positions:
        return model
    twin = build_model(dataclasses.replace(config, reference_decoder_positions=True))
    source = {weight.path: weight for weight in model.weights}
    for weight in twin.weights:
        value = np.asarray(source[weight.path].numpy())
        if value.shape != tuple(weight.shape):  # the decoder's position table: 32 -> frames rows
            padded = np.zeros(weight.shape, dtype=value.dtype)
            padded[: value.shape[0]] = value
            value = padded
        weight.assign(value)
    return twin


class ReferenceInferenceModule(tf.Module):
    """``serving_default`` like ``InferenceModule``, decoding the reference's uncached way.

    ``model`` must run its decoder over all frame positions (see ``reference_positions_twin``).
    """

    def __init__(self, model: Any, mirror: bool = True, max_steps: int = TARGET_LENGTH):
        super().__init__(name="aslfr_reference_inference")
        self.model = model
        self.model_variables = [weight.value for weight in model.weights]  # see InferenceModule
        self.frames = model_frames(model)
        self.mirror = mirror
        self.max_steps = max_steps
        self.serve = tf.function(
            self._serve,
            input_signature=[
                tf.TensorSpec([None, landmarks.NUM_FEATURES], tf.float32, name=INPUT_NAME)
            ],
        )

    def _serve(self, inputs: tf.Tensor) -> dict[str, tf.Tensor]:
        frames = preprocess_tf(inputs, frames=self.frames, mirror=self.mirror)
        frames = tf.reshape(frames, [1, self.frames, landmarks.NUM_FEATURES])
        encoded = encoder_of(self.model)(frames, training=False)
        frame_mask = has_landmarks(frames)
        decoder = decoder_of(self.model)
        rows = tf.range(TARGET_LENGTH)

        def keep_going(position, tokens, predicted, finished):
            return tf.logical_and(position < self.max_steps, tf.logical_not(finished))

        def step(position, tokens, predicted, finished):
            logits = decoder(
                {"encoded": encoded, "frame_mask": frame_mask, "tokens": tokens}, training=False
            )  # (1, 32, 62), every position recomputed
            row = tf.gather(tf.reshape(logits, [TARGET_LENGTH, NUM_CLASSES]), position)
            next_token = tf.argmax(tf.reshape(row, [1, NUM_CLASSES]), -1, output_type=tf.int32)
            predicted = tf.where(tf.equal(rows, position), next_token, predicted)
            following = tf.reshape(tf.equal(rows, position + 1), [1, TARGET_LENGTH])
            tokens = tf.where(following, next_token, tokens)  # the next position's input
            return position + 1, tokens, predicted, tf.equal(tf.reshape(next_token, []), EOS)

        first = tf.reshape(tf.one_hot(0, TARGET_LENGTH, on_value=SOS, off_value=PAD), [1, -1])
        state = (
            tf.constant(0, tf.int32),
            tf.cast(first, tf.int32),  # SOS, PAD, PAD, ...
            tf.fill([TARGET_LENGTH], tf.constant(PAD, tf.int32)),
            tf.constant(False),
        )
        _, _, predicted, _ = tf.while_loop(keep_going, step, state)
        return {OUTPUT_NAME: tf.one_hot(predicted, NUM_CLASSES, dtype=tf.float32)}
