"""In-graph preprocessing of the exported model: the TensorFlow twin of ``aslfr_lib.preprocess``.

Kaggle's harness feeds the model the raw selected columns of one sequence ([frames, 164], NaN where
a landmark is missing). ``preprocess_tf`` does inside the TFLite graph what ``clean_sequence`` and
``resize_frames`` do in numpy for training: NaN -> 0, drop frames without a hand, mirror a
left-handed sequence, zero-pad and bilinear-resize along time to ``frames``. A test runs both (and
the converted ``.tflite`` in LiteRT) and requires them to agree.

Every op here converts to a TFLite builtin (no Flex / SELECT_TF_OPS): the data-dependent parts
use ``tf.where`` + ``tf.gather`` (WHERE, GATHER), ``tf.pad`` with computed paddings (PAD) and a
4-D ``tf.image.resize`` (RESIZE_BILINEAR, half-pixel centres). Python-style ``x[None]`` on a
dynamic-length tensor would become a StridedSlice that needs Flex, so shapes change only through
``tf.reshape`` and ``tf.slice``.
"""

from __future__ import annotations

import tensorflow as tf

from aslfr_lib import landmarks

NUM_FEATURES = landmarks.NUM_FEATURES
HAND_FEATURES = landmarks.LEFT_HAND.stop - landmarks.LEFT_HAND.start  # 42 values per hand


def hand_presence_tf(data: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(left, right) bool [n]: the hand has any non-zero value in the frame."""
    left = tf.slice(data, [0, landmarks.LEFT_HAND.start], [-1, HAND_FEATURES])
    right = tf.slice(data, [0, landmarks.RIGHT_HAND.start], [-1, HAND_FEATURES])
    return (
        tf.reduce_max(tf.abs(left), axis=1) > 0.0,
        tf.reduce_max(tf.abs(right), axis=1) > 0.0,
    )


def hand_frame_count_tf(raw: tf.Tensor) -> tf.Tensor:
    """int32 scalar: frames where either hand has a landmark (the stored length in numpy)."""
    raw = tf.reshape(tf.cast(raw, tf.float32), [-1, NUM_FEATURES])
    left, right = hand_presence_tf(tf.where(tf.math.is_nan(raw), tf.zeros_like(raw), raw))
    return tf.reduce_sum(tf.cast(tf.logical_or(left, right), tf.int32))


def mirror_frames_tf(data: tf.Tensor) -> tf.Tensor:
    """Horizontal flip: swap hands and symmetric lip points, ``x -> 1 - x`` where present."""
    permuted = tf.gather(data, tf.constant(landmarks.MIRROR_PERMUTATION, tf.int32), axis=1)
    is_x = tf.reshape(tf.constant(landmarks.IS_X), [1, NUM_FEATURES])
    flip = tf.logical_and(is_x, tf.not_equal(permuted, 0.0))  # zeros mean missing: keep them
    return tf.where(flip, 1.0 - permuted, permuted)


def preprocess_tf(raw: tf.Tensor, frames: int = 128, mirror: bool = True) -> tf.Tensor:
    """[n, 164] float32 raw selected columns -> [frames, 164] float32 model input.

    A sequence without any hand frame (or without rows) gives all zeros, as in numpy.
    """
    raw = tf.reshape(tf.cast(raw, tf.float32), [-1, NUM_FEATURES])
    data = tf.where(tf.math.is_nan(raw), tf.zeros_like(raw), raw)  # (n, 164)

    left, right = hand_presence_tf(data)
    kept = tf.reshape(tf.where(tf.logical_or(left, right)), [-1])
    data = tf.gather(data, kept)  # (m, 164): frames with at least one hand

    if mirror:
        left_frames = tf.reduce_sum(tf.cast(left, tf.int32))
        right_frames = tf.reduce_sum(tf.cast(right, tf.int32))
        data = tf.where(left_frames > right_frames, mirror_frames_tf(data), data)

    # Zero-pad to at least `frames`, then resize (the identity when exactly `frames`).
    missing = tf.maximum(frames - tf.shape(data)[0], 0)
    paddings = tf.reshape(tf.stack([0, missing, 0, 0]), [2, 2])
    data = tf.pad(data, paddings)
    image = tf.reshape(data, [1, 1, -1, NUM_FEATURES])  # (batch, height, time, features)
    image = tf.image.resize(image, [1, frames], method=tf.image.ResizeMethod.BILINEAR)
    return tf.reshape(image, [frames, NUM_FEATURES])


def preprocess_function(frames: int = 128, mirror: bool = True) -> tf.types.experimental.Function:
    """``preprocess_tf`` as a tf.function over a dynamic number of frames (for conversion)."""

    @tf.function(input_signature=[tf.TensorSpec([None, NUM_FEATURES], tf.float32, name="inputs")])
    def preprocess(inputs: tf.Tensor) -> tf.Tensor:
        return preprocess_tf(inputs, frames=frames, mirror=mirror)

    return preprocess


def convert_to_tflite(function: tf.types.experimental.Function) -> bytes:
    """TFLite flatbuffer of a tf.function, builtin ops only (what Kaggle's runtime supports)."""
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [function.get_concrete_function()], function
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter.convert()
