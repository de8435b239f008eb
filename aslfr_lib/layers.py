"""Transformer building blocks of the V6 fingerspelling model, in ``keras.ops`` only.

Every layer runs on the TensorFlow and JAX backends, is registered for ``.keras`` saving and
keeps one attribute per constructor argument. ``model.py`` wires them into the ``encoder`` and
``decoder`` sub-models; ``decoding.py`` reuses the decoder layers one position at a time.

Mixed precision: layers compute in the policy's compute dtype except where precision matters.
The frame mask and the non-zero normalisation always run in float32 (a bfloat16 coordinate keeps
only ~3 significant digits), layer norms and the attention softmax are computed in float32 by
Keras itself, and the classifier (in ``model.py``) is a float32 layer.

Shapes: B batch, T query positions, S key positions (frames), F landmark features, D width,
H heads, K per-head width.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

register = keras.saving.register_keras_serializable(package="aslfr")


def has_landmarks(frames):
    """(B, S, F) -> (B, S) bool: True where a frame has any non-zero feature.

    Preprocessing writes missing landmarks as 0 and pads sequences with all-zero frames, so an
    all-zero frame carries no information.
    """
    return ops.any(ops.not_equal(frames, 0), axis=-1)


def key_padding_mask(frame_mask):
    """(B, S) -> (B, 1, S) attention mask that hides empty frames from every query.

    A sequence with no landmarks at all would leave a query nothing to attend to, which is NaN
    for some attention kernels; such a sequence attends to all of its (empty-embedding) frames
    instead. That is also what the reference did: its masked softmax added -1e9 to every key and
    so averaged them all.
    """
    any_frame = ops.any(frame_mask, axis=-1, keepdims=True)  # (B, 1)
    visible = ops.logical_or(frame_mask, ops.logical_not(any_frame))  # (B, S)
    return ops.expand_dims(visible, axis=1)  # (B, 1, S)


def causal_mask(query_length: int, key_length: int, offset=0):
    """(1, T, S) bool: query ``i`` (absolute position ``offset + i``) sees keys ``0..offset+i``."""
    query_positions = ops.expand_dims(ops.arange(query_length) + offset, axis=1)  # (T, 1)
    key_positions = ops.expand_dims(ops.arange(key_length), axis=0)  # (1, S)
    return ops.expand_dims(ops.less_equal(key_positions, query_positions), axis=0)


@register
class FrameMask(keras.layers.Layer):
    """(B, S, F) frames -> (B, S) bool, True where the frame has landmarks (see ``has_landmarks``).

    Runs in float32 so that no small coordinate rounds to zero under mixed precision.
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)

    def call(self, frames):
        return has_landmarks(frames)

    def compute_output_shape(self, frames_shape):
        return tuple(frames_shape[:-1])


@register
class NonZeroNormalization(keras.layers.Layer):
    """Standardise non-zero features with the preprocessing statistics; zeros stay zero.

    Zeros mean "missing" downstream (empty-frame embedding, attention masks), so they must not be
    shifted by the mean. The statistics are non-trainable weights: a saved model carries them and
    needs no side files. Float32 always: the raw coordinates are what bfloat16 would damage.
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)

    def build(self, input_shape):
        features = input_shape[-1]
        self.mean = self.add_weight(
            name="mean", shape=(features,), initializer="zeros", trainable=False
        )
        self.std = self.add_weight(
            name="std", shape=(features,), initializer="ones", trainable=False
        )

    def set_statistics(self, means, stds) -> None:
        """Store per-feature means and standard deviations (array-likes of length F)."""
        means = np.asarray(means, dtype="float32").reshape(-1)
        stds = np.asarray(stds, dtype="float32").reshape(-1)
        expected = tuple(self.mean.shape)
        if means.shape != expected or stds.shape != expected:
            raise ValueError(
                f"normalisation statistics must have shape {expected}; got means {means.shape}, "
                f"stds {stds.shape}"
            )
        bad = np.flatnonzero(~np.isfinite(means) | ~np.isfinite(stds) | (stds <= 0))
        if bad.size:
            raise ValueError(
                "normalisation statistics must be finite with positive standard deviations; "
                f"bad at feature(s) {bad[:10].tolist()}"
            )
        self.mean.assign(means)
        self.std.assign(stds)

    def call(self, inputs):
        standardized = (inputs - self.mean) / self.std
        return ops.where(ops.equal(inputs, 0), ops.zeros_like(inputs), standardized)

    def compute_output_shape(self, input_shape):
        return input_shape


@register
class LandmarkEmbedding(keras.layers.Layer):
    """(B, S, F) features -> (B, S, D): two bias-free dense layers, or a learned empty embedding.

    Empty frames (``frame_mask`` False) all get the same learned vector (zeros at init) rather than
    the embedding of a zero vector, as in the reference.
    """

    def __init__(self, hidden_dim: int, **kwargs):
        super().__init__(**kwargs)
        self.hidden_dim = hidden_dim
        self.dense_1 = keras.layers.Dense(
            hidden_dim,
            activation="gelu",
            use_bias=False,
            kernel_initializer="glorot_uniform",
            dtype=self.dtype_policy,
            name="dense_1",
        )
        self.dense_2 = keras.layers.Dense(
            hidden_dim,
            use_bias=False,
            kernel_initializer="he_uniform",
            dtype=self.dtype_policy,
            name="dense_2",
        )

    def build(self, features_shape, frame_mask_shape=None):
        self.dense_1.build(features_shape)
        self.dense_2.build((*features_shape[:-1], self.hidden_dim))
        self.empty_embedding = self.add_weight(
            name="empty_embedding", shape=(self.hidden_dim,), initializer="zeros"
        )

    def call(self, features, frame_mask):
        embedded = self.dense_2(self.dense_1(features))  # (B, S, D)
        empty = ops.cast(self.empty_embedding, embedded.dtype)  # (D,)
        return ops.where(ops.expand_dims(frame_mask, -1), embedded, empty)

    def compute_output_shape(self, features_shape, frame_mask_shape=None):
        return (*features_shape[:-1], self.hidden_dim)

    def get_config(self):
        return {**super().get_config(), "hidden_dim": self.hidden_dim}


@register
class PositionEmbedding(keras.layers.Layer):
    """Adds a learned embedding per position (zeros at init) to (B, T, D) inputs.

    ``start_index`` (may be a traced scalar) offsets the positions, so one decoding step at
    position ``p`` adds row ``p``; the row is read with ``ops.slice`` (a plain Slice op, which
    converts to TFLite builtins).
    """

    def __init__(self, sequence_length: int, **kwargs):
        super().__init__(**kwargs)
        self.sequence_length = sequence_length

    def build(self, inputs_shape):
        self.embeddings = self.add_weight(
            name="embeddings",
            shape=(self.sequence_length, inputs_shape[-1]),
            initializer="zeros",
        )

    def call(self, inputs, start_index=0):
        length, width = inputs.shape[1], inputs.shape[-1]
        if length is not None and length > self.sequence_length:
            raise ValueError(
                f"{self.name}: {length} positions but only {self.sequence_length} embeddings"
            )
        table = ops.cast(self.embeddings, inputs.dtype)  # a tensor: JAX cannot slice a Variable
        return inputs + ops.slice(table, (start_index, 0), (length, width))  # + (T, D)

    def compute_output_shape(self, inputs_shape):
        return inputs_shape

    def get_config(self):
        return {**super().get_config(), "sequence_length": self.sequence_length}


@register
class TokenAndPositionEmbedding(keras.layers.Layer):
    """(B, T) token ids -> (B, T, D): character embedding (zeros at init) + position embedding."""

    def __init__(self, vocabulary_size: int, sequence_length: int, hidden_dim: int, **kwargs):
        super().__init__(**kwargs)
        self.vocabulary_size = vocabulary_size
        self.sequence_length = sequence_length
        self.hidden_dim = hidden_dim
        self.token_embedding = keras.layers.Embedding(
            vocabulary_size,
            hidden_dim,
            embeddings_initializer="zeros",
            dtype=self.dtype_policy,
            name="token_embedding",
        )
        self.position_embedding = PositionEmbedding(
            sequence_length, dtype=self.dtype_policy, name="position_embedding"
        )

    def build(self, tokens_shape):
        self.token_embedding.build(tokens_shape)
        self.position_embedding.build((*tokens_shape, self.hidden_dim))

    def call(self, tokens, start_index=0):
        embedded = self.token_embedding(ops.cast(tokens, "int32"))  # (B, T, D)
        return self.position_embedding(embedded, start_index=start_index)

    def compute_output_shape(self, tokens_shape):
        return (*tokens_shape, self.hidden_dim)

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary_size": self.vocabulary_size,
            "sequence_length": self.sequence_length,
            "hidden_dim": self.hidden_dim,
        }


@register
class MultiHeadAttention(keras.layers.Layer):
    """Multi-head attention with fused q/k/v projections and the backend's attention kernel.

    q, k and v are each one bias-free Dense to ``num_heads * head_dim``, reshaped to (B, T, H, K);
    ``ops.dot_product_attention`` scales by 1/sqrt(K) and takes the softmax in float32. Dropout
    acts on the projected output (the reference's "MHA dropout"), not on the attention weights.
    ``attention_mask`` is bool, broadcastable to (B, T, S); True = may attend.

    ``query_heads``/``key_value_heads``/``attend`` are the three stages of ``call``, public so
    that cached decoding can project keys and values once and attend to them many times.
    """

    def __init__(
        self, num_heads: int, head_dim: int, output_dim: int, dropout: float = 0.0, **kwargs
    ):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.head_dim = head_dim
        self.output_dim = output_dim
        self.dropout = dropout
        width = num_heads * head_dim
        self.query_dense = keras.layers.Dense(
            width, use_bias=False, dtype=self.dtype_policy, name="query"
        )
        self.key_dense = keras.layers.Dense(
            width, use_bias=False, dtype=self.dtype_policy, name="key"
        )
        self.value_dense = keras.layers.Dense(
            width, use_bias=False, dtype=self.dtype_policy, name="value"
        )
        self.output_dense = keras.layers.Dense(
            output_dim, use_bias=False, dtype=self.dtype_policy, name="attention_output"
        )
        self.output_dropout = keras.layers.Dropout(
            dropout, dtype=self.dtype_policy, name="output_dropout"
        )

    def build(self, query_shape, key_value_shape=None, attention_mask_shape=None):
        key_value_shape = query_shape if key_value_shape is None else key_value_shape
        self.query_dense.build(query_shape)
        self.key_dense.build(key_value_shape)
        self.value_dense.build(key_value_shape)
        self.output_dense.build((*query_shape[:-1], self.num_heads * self.head_dim))

    def _split_heads(self, x):  # (B, T, H*K) -> (B, T, H, K)
        return ops.reshape(x, (-1, x.shape[1], self.num_heads, self.head_dim))

    def query_heads(self, query):
        """(B, T, D) -> (B, T, H, K)."""
        return self._split_heads(self.query_dense(query))

    def key_value_heads(self, key_value):
        """(B, S, D) -> keys and values, each (B, S, H, K)."""
        return self._split_heads(self.key_dense(key_value)), self._split_heads(
            self.value_dense(key_value)
        )

    def attend(self, query_heads, key_heads, value_heads, attention_mask=None, training=None):
        """Attention of projected heads -> (B, T, output_dim)."""
        mask = None if attention_mask is None else ops.expand_dims(attention_mask, axis=1)
        value_heads = ops.cast(value_heads, query_heads.dtype)
        attended = ops.dot_product_attention(
            query_heads, ops.cast(key_heads, query_heads.dtype), value_heads, mask=mask
        )  # (B, T, H, K)
        attended = ops.reshape(attended, (-1, attended.shape[1], self.num_heads * self.head_dim))
        return self.output_dropout(self.output_dense(attended), training=training)

    def call(self, query, key_value=None, attention_mask=None, training=None):
        key_value = query if key_value is None else key_value
        keys, values = self.key_value_heads(key_value)
        return self.attend(self.query_heads(query), keys, values, attention_mask, training)

    def compute_output_shape(self, query_shape, key_value_shape=None, attention_mask_shape=None):
        return (*query_shape[:-1], self.output_dim)

    def get_config(self):
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "head_dim": self.head_dim,
            "output_dim": self.output_dim,
            "dropout": self.dropout,
        }


@register
class FeedForward(keras.layers.Layer):
    """Bias-free MLP: Dense(intermediate, GELU, glorot) -> dropout -> Dense(D, he-uniform)."""

    def __init__(self, intermediate_dim: int, dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout
        self.dense_1 = keras.layers.Dense(
            intermediate_dim,
            activation="gelu",
            use_bias=False,
            kernel_initializer="glorot_uniform",
            dtype=self.dtype_policy,
            name="dense_1",
        )
        self.intermediate_dropout = keras.layers.Dropout(
            dropout, dtype=self.dtype_policy, name="intermediate_dropout"
        )
        self.dense_2 = None  # output width is the input width, known in build

    def build(self, inputs_shape):
        self.dense_1.build(inputs_shape)
        self.dense_2 = keras.layers.Dense(
            inputs_shape[-1],
            use_bias=False,
            kernel_initializer="he_uniform",
            dtype=self.dtype_policy,
            name="dense_2",
        )
        self.dense_2.build((*inputs_shape[:-1], self.intermediate_dim))

    def call(self, inputs, training=None):
        hidden = self.intermediate_dropout(self.dense_1(inputs), training=training)
        return self.dense_2(hidden)

    def compute_output_shape(self, inputs_shape):
        return inputs_shape

    def get_config(self):
        return {
            **super().get_config(),
            "intermediate_dim": self.intermediate_dim,
            "dropout": self.dropout,
        }


@register
class TransformerBlock(keras.layers.Layer):
    """Post-LN block: x = LN(x + MHA(x, context)); x = LN(x + MLP(x)).

    Self-attention when ``context`` is None (encoder blocks), cross-attention to ``context``
    otherwise (decoder blocks); both are the reference's structure.
    """

    def __init__(
        self,
        num_heads: int,
        head_dim: int,
        intermediate_dim: int,
        attention_dropout: float = 0.0,
        mlp_dropout: float = 0.0,
        layer_norm_epsilon: float = 1e-6,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.head_dim = head_dim
        self.intermediate_dim = intermediate_dim
        self.attention_dropout = attention_dropout
        self.mlp_dropout = mlp_dropout
        self.layer_norm_epsilon = layer_norm_epsilon
        self.attention = None  # output width = input width, known in build
        self.attention_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, dtype=self.dtype_policy, name="attention_norm"
        )
        self.mlp = FeedForward(intermediate_dim, mlp_dropout, dtype=self.dtype_policy, name="mlp")
        self.mlp_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, dtype=self.dtype_policy, name="mlp_norm"
        )

    def build(self, inputs_shape, context_shape=None, attention_mask_shape=None):
        self.attention = MultiHeadAttention(
            self.num_heads,
            self.head_dim,
            inputs_shape[-1],
            self.attention_dropout,
            dtype=self.dtype_policy,
            name="attention",
        )
        self.attention.build(inputs_shape, inputs_shape if context_shape is None else context_shape)
        self.attention_norm.build(inputs_shape)
        self.mlp.build(inputs_shape)
        self.mlp_norm.build(inputs_shape)

    def attend_and_transform(self, inputs, key_heads, value_heads, attention_mask, training=None):
        """The block given already projected context keys/values (cached decoding)."""
        attended = self.attention.attend(
            self.attention.query_heads(inputs), key_heads, value_heads, attention_mask, training
        )
        x = self.attention_norm(inputs + attended)
        return self.mlp_norm(x + self.mlp(x, training=training))

    def call(self, inputs, context=None, attention_mask=None, training=None):
        context = inputs if context is None else context
        key_heads, value_heads = self.attention.key_value_heads(context)
        return self.attend_and_transform(inputs, key_heads, value_heads, attention_mask, training)

    def compute_output_shape(self, inputs_shape, context_shape=None, attention_mask_shape=None):
        return inputs_shape

    def get_config(self):
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "head_dim": self.head_dim,
            "intermediate_dim": self.intermediate_dim,
            "attention_dropout": self.attention_dropout,
            "mlp_dropout": self.mlp_dropout,
            "layer_norm_epsilon": self.layer_norm_epsilon,
        }


@register
class CausalSelfAttention(keras.layers.Layer):
    """The decoder's one causal self-attention: x = LN(x + MHA(x, x, causal mask)).

    ``step`` computes one position against fixed-shape key/value caches (B, L, H, K): the new
    key/value are written with ``ops.where`` on a position mask (no dynamic_update_slice, so the
    step converts to TFLite builtin ops) and the query sees cache positions <= ``position``.
    """

    def __init__(
        self,
        num_heads: int,
        head_dim: int,
        dropout: float = 0.0,
        layer_norm_epsilon: float = 1e-6,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.head_dim = head_dim
        self.dropout = dropout
        self.layer_norm_epsilon = layer_norm_epsilon
        self.attention = None  # output width = input width, known in build
        self.norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, dtype=self.dtype_policy, name="norm"
        )

    def build(self, inputs_shape):
        self.attention = MultiHeadAttention(
            self.num_heads,
            self.head_dim,
            inputs_shape[-1],
            self.dropout,
            dtype=self.dtype_policy,
            name="attention",
        )
        self.attention.build(inputs_shape)
        self.norm.build(inputs_shape)

    def call(self, inputs, training=None):
        length = inputs.shape[1]
        mask = causal_mask(length, length)  # (1, T, T)
        return self.norm(inputs + self.attention(inputs, attention_mask=mask, training=training))

    def step(self, inputs, key_cache, value_cache, position):
        """One position: (B, 1, D) inputs -> (outputs (B, 1, D), key_cache, value_cache)."""
        keys, values = self.attention.key_value_heads(inputs)  # (B, 1, H, K) each
        cache_length = key_cache.shape[1]
        slot = ops.reshape(ops.equal(ops.arange(cache_length), position), (1, -1, 1, 1))
        key_cache = ops.where(slot, ops.cast(keys, key_cache.dtype), key_cache)
        value_cache = ops.where(slot, ops.cast(values, value_cache.dtype), value_cache)
        mask = causal_mask(1, cache_length, offset=position)  # (1, 1, L)
        attended = self.attention.attend(
            self.attention.query_heads(inputs), key_cache, value_cache, mask
        )
        return self.norm(inputs + attended), key_cache, value_cache

    def compute_output_shape(self, inputs_shape):
        return inputs_shape

    def get_config(self):
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "head_dim": self.head_dim,
            "dropout": self.dropout,
            "layer_norm_epsilon": self.layer_norm_epsilon,
        }


@register
class KeyPaddingMask(keras.layers.Layer):
    """(B, S) frame mask -> (B, 1, S) attention mask hiding empty frames (``key_padding_mask``)."""

    def call(self, frame_mask):
        return key_padding_mask(frame_mask)

    def compute_output_shape(self, frame_mask_shape):
        return (frame_mask_shape[0], 1, frame_mask_shape[1])


@register
class CrossAttentionMask(keras.layers.Layer):
    """Which encoder frames each decoder position may attend to.

    Default: every position sees every frame with landmarks (``key_padding_mask``).
    ``reference_causal=True`` reproduces the reference, which reused the decoder's causal mask
    here: position ``i`` sees frames ``0..i`` whether empty or not.
    """

    def __init__(self, reference_causal: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.reference_causal = reference_causal

    def call(self, frame_mask, queries):
        if self.reference_causal:
            return causal_mask(queries.shape[1], frame_mask.shape[1])  # (1, T, S)
        return key_padding_mask(frame_mask)  # (B, 1, S)

    def at_position(self, frame_mask, position):
        """The mask for one decoding position: (B or 1, 1, S)."""
        if self.reference_causal:
            return causal_mask(1, frame_mask.shape[1], offset=position)
        return key_padding_mask(frame_mask)

    def compute_output_shape(self, frame_mask_shape, queries_shape):
        if self.reference_causal:
            return (1, queries_shape[1], frame_mask_shape[1])
        return (frame_mask_shape[0], 1, frame_mask_shape[1])

    def get_config(self):
        return {**super().get_config(), "reference_causal": self.reference_causal}


@register
class DecoderInputTokens(keras.layers.Layer):
    """Teacher forcing: (B, L) target ids -> (B, L) decoder inputs ``start, target[:, :-1]``."""

    def __init__(self, start_token: int, **kwargs):
        super().__init__(**kwargs)
        self.start_token = start_token

    def call(self, targets):
        targets = ops.cast(targets, "int32")
        start = ops.full_like(targets[:, :1], self.start_token)
        return ops.concatenate([start, targets[:, :-1]], axis=1)

    def compute_output_shape(self, targets_shape):
        return targets_shape

    def compute_output_spec(self, targets):
        return keras.KerasTensor(targets.shape, dtype="int32")

    def get_config(self):
        return {**super().get_config(), "start_token": self.start_token}


@register
class PadTokens(keras.layers.Layer):
    """(B, L) -> (B, length) ids, right-padded with ``pad_token`` (reference decoder length)."""

    def __init__(self, length: int, pad_token: int, **kwargs):
        super().__init__(**kwargs)
        self.length = length
        self.pad_token = pad_token

    def call(self, tokens):
        tokens = ops.cast(tokens, "int32")
        return ops.pad(
            tokens, ((0, 0), (0, self.length - tokens.shape[1])), constant_values=self.pad_token
        )

    def compute_output_spec(self, tokens):
        return keras.KerasTensor((tokens.shape[0], self.length), dtype="int32")

    def get_config(self):
        return {**super().get_config(), "length": self.length, "pad_token": self.pad_token}


@register
class KeepFirstPositions(keras.layers.Layer):
    """(B, T, D) -> (B, length, D): the first ``length`` positions."""

    def __init__(self, length: int, **kwargs):
        super().__init__(**kwargs)
        self.length = length

    def call(self, inputs):
        return inputs[:, : self.length]

    def compute_output_shape(self, inputs_shape):
        return (inputs_shape[0], self.length, *inputs_shape[2:])

    def get_config(self):
        return {**super().get_config(), "length": self.length}


@register
class TokenMasking(keras.layers.Layer):
    """Decoder-input masking (training only): each input token but the first becomes ``mask_token``
    with probability ``rate``, so the decoder cannot lean on its own previous characters alone
    and must read the frames (1st place of the Kaggle competition found this among the most
    useful augmentations). The identity at inference and when ``rate`` is 0."""

    def __init__(self, rate: float, mask_token: int, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"token mask rate must be in [0, 1), got {rate}")
        self.rate = rate
        self.mask_token = mask_token
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, tokens, training=None):
        if not training or self.rate == 0:
            return tokens
        draw = keras.random.uniform(ops.shape(tokens), seed=self.seed_generator)
        first = ops.expand_dims(ops.arange(ops.shape(tokens)[1]) == 0, axis=0)  # keep SOS
        masked = ops.logical_and(draw < self.rate, ops.logical_not(first))
        return ops.where(masked, ops.cast(self.mask_token, tokens.dtype), tokens)

    def compute_output_spec(self, tokens, training=None):
        return keras.KerasTensor(tokens.shape, dtype=tokens.dtype)

    def get_config(self):
        return {
            **super().get_config(),
            "rate": self.rate,
            "mask_token": self.mask_token,
            "seed": self.seed,
        }


@register
class CTCOutput(keras.layers.Layer):
    """(CTC logits (B, S, C), frame mask (B, S)) -> (B, S, C + 1) float32: the mask appended.

    A Keras loss sees only ``(y_true, y_pred)``, and the CTC loss needs each sequence's number
    of frames; carrying the mask as the last channel gives it to ``losses.CTCLoss`` (and to CTC
    decoding) without a custom training step.
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)

    def call(self, logits, frame_mask):
        mask = ops.expand_dims(ops.cast(frame_mask, "float32"), axis=-1)
        return ops.concatenate([ops.cast(logits, "float32"), mask], axis=-1)

    def compute_output_shape(self, logits_shape, frame_mask_shape):
        return (*logits_shape[:-1], logits_shape[-1] + 1)


def ctc_parts(ctc_output):
    """Split a ``CTCOutput`` into (logits (B, S, C), frame lengths (B,) int32).

    The length is the last frame with landmarks + 1: frames with landmarks come first, and a
    frame emptied by time masking inside the sequence still has a CTC output.
    """
    logits = ctc_output[..., :-1]
    mask = ctc_output[..., -1] > 0.5
    positions = ops.arange(1, ops.shape(mask)[1] + 1, dtype="int32")
    lengths = ops.max(ops.where(mask, positions, 0), axis=1)
    return logits, ops.cast(lengths, "int32")


class PerHandFeatures(keras.layers.Layer):
    """Base of the features computed from each hand's raw points: (B, S, 164) -> (B, S, 2 x
    ``per_hand``), the left hand's then the right's, in float32 whatever the compute dtype.
    A subclass sets ``per_hand`` and computes ``_one_hand(x, y, present)`` from (B, S, 21) x,
    y and presence (1.0 where a point is there: MediaPipe's missing points are 0 here)."""

    per_hand = 0

    def __init__(self, epsilon: float = 1e-6, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def _one_hand(self, x, y, present):
        raise NotImplementedError

    def _centre_and_size(self, x, y, present):
        """Per frame: the centre of the present points, offsets from it (0 where missing) and
        the RMS distance from it (at least epsilon), each (B, S, 1) or (B, S, 21)."""
        count = ops.maximum(ops.sum(present, axis=-1, keepdims=True), 1.0)
        centre_x = ops.sum(x * present, axis=-1, keepdims=True) / count
        centre_y = ops.sum(y * present, axis=-1, keepdims=True) / count
        dx, dy = (x - centre_x) * present, (y - centre_y) * present
        size = ops.sqrt(ops.sum(dx * dx + dy * dy, axis=-1, keepdims=True) / count)
        return centre_x, centre_y, dx, dy, ops.maximum(size, self.epsilon)

    def call(self, frames):
        frames = ops.cast(frames, "float32")
        hands = []
        for hand in (frames[..., 0:42], frames[..., 42:84]):  # landmarks.LEFT_HAND, RIGHT_HAND
            x, y = hand[..., :21], hand[..., 21:]
            present = ops.cast(ops.logical_or(ops.not_equal(x, 0), ops.not_equal(y, 0)), "float32")
            hands.append(self._one_hand(x, y, present))
        return ops.concatenate(hands, axis=-1)

    def compute_output_shape(self, frames_shape):
        return (*frames_shape[:-1], 2 * self.per_hand)

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


@register
class HandShapeFeatures(PerHandFeatures):
    """(B, S, 164) raw landmarks -> (B, S, 84): each hand's points relative to its own centre,
    divided by its own size, in every frame (zeros where the hand or point is missing).

    The letters are hand shapes; where the hand is in the image and how large it appears differ
    from signer to signer and frame to frame and carry no letter. The global normalisation keeps
    both; these features remove them, so a model needs no signers of a given size or position to
    read a hand shape. Computed from the raw coordinates in float32; appended to the normalised
    features by the encoder (``hand_shape_features``).
    """

    per_hand = 42

    def _one_hand(self, x, y, present):
        _, _, dx, dy, size = self._centre_and_size(x, y, present)
        return ops.concatenate([dx / size, dy / size], axis=-1)


# MediaPipe's hand skeleton: four bones per finger (thumb, index, middle, ring, pinky), each from
# the wrist (point 0) or the previous joint outward: (parent, child) points.
HAND_BONES = tuple(
    (0 if joint == 0 else 4 * finger + joint, 4 * finger + joint + 1)
    for finger in range(5)
    for joint in range(4)
)


@register
class HandBoneFeatures(PerHandFeatures):
    """(B, S, 164) raw landmarks -> (B, S, 140): per hand, the direction of each of its 20 bones
    (unit x and y) and the turn between consecutive bones of a finger (cosine and sine, 15
    joints), zeros where a bone's end is missing.

    Directions do not change with the hand's place or size, and the joint turns not with its
    rotation in the image either: they describe the finger joints themselves, which are the
    letters. ``HandShapeFeatures`` keeps the hand's rotation and the fingers' lengths.
    """

    per_hand = 70

    def _one_hand(self, x, y, present):
        parents = [parent for parent, _ in HAND_BONES]
        children = [child for _, child in HAND_BONES]
        dx = ops.take(x, children, axis=-1) - ops.take(x, parents, axis=-1)  # (B, S, 20)
        dy = ops.take(y, children, axis=-1) - ops.take(y, parents, axis=-1)
        both = ops.take(present, children, axis=-1) * ops.take(present, parents, axis=-1)
        length = ops.maximum(ops.sqrt(dx * dx + dy * dy), self.epsilon)
        ux, uy = dx / length * both, dy / length * both
        inner = [4 * finger + joint for finger in range(5) for joint in range(3)]  # (15,)
        outer = [bone + 1 for bone in inner]
        ax, ay = ops.take(ux, inner, axis=-1), ops.take(uy, inner, axis=-1)
        bx, by = ops.take(ux, outer, axis=-1), ops.take(uy, outer, axis=-1)
        return ops.concatenate([ux, uy, ax * bx + ay * by, ax * by - ay * bx], axis=-1)


@register
class HandMotionFeatures(PerHandFeatures):
    """(B, S, 164) raw landmarks -> (B, S, 6): per hand, how far its centre moved since the
    previous frame (x and y, in units of the hand's size) and the log of its size change; zeros
    in the first frame and where the hand is missing now or before.

    A doubled letter ("ll", "www") is one hand shape held twice with a small slide or bounce
    between; the shape features remove exactly that movement, and in the globally normalised
    coordinates it is small beside how far signers' hands sit apart. Frames with landmarks are
    consecutive in training and in the export alike (preprocessing drops frames without a hand).
    """

    per_hand = 3

    def _one_hand(self, x, y, present):
        centre_x, centre_y, _, _, size = self._centre_and_size(x, y, present)
        shown = ops.cast(ops.sum(present, axis=-1, keepdims=True) > 0, "float32")  # (B, S, 1)
        state = ops.concatenate([centre_x, centre_y, ops.log(size)], axis=-1)  # (B, S, 3)
        change = state[:, 1:] - state[:, :-1]
        change = ops.concatenate([change[..., :2] / size[:, 1:], change[..., 2:]], axis=-1)
        both = shown[:, 1:] * shown[:, :-1]
        return ops.concatenate([ops.zeros_like(state[:, :1]), change * both], axis=1)
