"""The convolution module of a conv-transformer ("conformer") encoder block.

    x (B, S, D), frame_mask (B, S)
      -> LN -> Dense(2 * D * expansion) -> GLU -> mask empty frames -> DepthwiseConv1D(kernel)
      -> LN -> swish -> Dense(D) -> dropout -> x + that

Conformer (Gulati et al. 2020) and Squeezeformer (the 1st-place encoder of the Kaggle ASL
fingerspelling competition) put such a module beside the self-attention and MLP of every block:
attention mixes the whole sequence, the depthwise convolution the neighbouring frames, which is
where a letter's hand shape and its transitions live.

Why empty frames are zeroed before the depthwise convolution: preprocessing puts the frames
with landmarks first and pads with zeros, and the exported model runs the encoder over the frames
with landmarks only. Zeroing the padded positions makes the convolution see what "same" zero
padding at the end of the shorter sequence sees, so training and the export compute the same
numbers. LayerNorm instead of Conformer's BatchNorm for the same reason (no batch statistics
over padded frames). ``keras.ops`` only: TensorFlow and JAX; builtin TFLite ops.
"""

from __future__ import annotations

import keras
from keras import ops

register = keras.saving.register_keras_serializable(package="aslfr")


@register
class ConvModule(keras.layers.Layer):
    """Pre-LN residual depthwise-convolution module; (B, S, D) -> (B, S, D)."""

    def __init__(
        self,
        kernel_size: int = 15,
        expansion: int = 1,
        dropout: float = 0.0,
        layer_norm_epsilon: float = 1e-6,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and positive, got {kernel_size}")
        self.kernel_size = kernel_size
        self.expansion = expansion
        self.dropout = dropout
        self.layer_norm_epsilon = layer_norm_epsilon
        policy = self.dtype_policy
        self.input_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, dtype=policy, name="input_norm"
        )
        self.depthwise = keras.layers.DepthwiseConv1D(
            kernel_size, padding="same", use_bias=False, dtype=policy, name="depthwise"
        )
        self.conv_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, dtype=policy, name="conv_norm"
        )
        self.output_dropout = keras.layers.Dropout(dropout, dtype=policy, name="output_dropout")
        self.expand = None  # widths follow the input, known in build
        self.project = None

    def build(self, inputs_shape, frame_mask_shape=None):
        width = inputs_shape[-1]
        self.input_norm.build(inputs_shape)
        hidden_width = width * self.expansion
        self.expand = keras.layers.Dense(
            2 * hidden_width, use_bias=False, dtype=self.dtype_policy, name="expand"
        )  # value and gate of the GLU
        self.expand.build(inputs_shape)
        hidden = (*inputs_shape[:-1], hidden_width)
        self.depthwise.build(hidden)
        self.conv_norm.build(hidden)
        self.project = keras.layers.Dense(
            width, use_bias=False, dtype=self.dtype_policy, name="project"
        )
        self.project.build(hidden)

    def call(self, inputs, frame_mask=None, training=None):
        x = self.expand(self.input_norm(inputs))  # (B, S, 2 * D * expansion)
        value, gate = ops.split(x, 2, axis=-1)
        x = value * ops.sigmoid(gate)  # GLU: (B, S, D * expansion)
        if frame_mask is not None:
            x = x * ops.expand_dims(ops.cast(frame_mask, x.dtype), -1)
        x = ops.silu(self.conv_norm(self.depthwise(x)))
        x = self.output_dropout(self.project(x), training=training)
        return inputs + x

    def compute_output_shape(self, inputs_shape, frame_mask_shape=None):
        return inputs_shape

    def get_config(self):
        return {
            **super().get_config(),
            "kernel_size": self.kernel_size,
            "expansion": self.expansion,
            "dropout": self.dropout,
            "layer_norm_epsilon": self.layer_norm_epsilon,
        }
