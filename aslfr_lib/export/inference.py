"""The graph inside ``model.tflite``: raw landmarks -> phrase, one sequence per call.

    inputs [n, 164] float32 (NaN = missing)
      -> preprocess_tf: NaN -> 0, hand frames only, mirroring, pad/resize   (frames, 164)
      -> encoder, once, over the frames that hold landmarks                 (1, k, D)
      -> cross-attention keys/values of every decoder block, once           (1, k, H, K)
      -> tf.while_loop: decode_step at one position, until EOS or 32 steps
      -> outputs [32, 62]: one-hot of the predicted ids, PAD after EOS

Kaggle's harness decodes ``outputs`` with ``argmax`` per row and drops ids outside its character
map; PAD, SOS and EOS are such ids, so the rows from EOS on decode to nothing.

Why the decoder is cheap: ``decoding.decode_step`` computes one position against caches of
fixed shape (the self-attention keys/values, written with ``where(position == i, new, cache)``),
and the cross-attention keys/values of the encoder output are projected once before the loop,
so a step costs the same at position 0 and 31 and never touches the 128 frame positions that the
reference's decoder recomputed for every character.

Why the encoder sees only frames with landmarks (``skip_empty_frames``): the encoder's
self-attention and the decoder's cross-attention both hide empty frames (all-zero rows,
``layers.key_padding_mask``), and every other encoder layer works row by row, so the encoder
outputs of empty frames are never read. Preprocessing puts hand frames first and pads with
zeros, so a typical sequence (~40 % of raw frames without a hand) fills ~95 of the 128 rows;
leaving out the rest saves about a quarter of the encoder, exactly. It does not hold for the
reference's causal cross-attention mask (``reference_cross_attention_mask``), where decoder
position ``i`` sees frames ``0..i`` empty or not; such models use the plain encoder.

Every op converts to a TFLite builtin: shapes change only through ``tf.reshape`` (``x[None]`` on
a dynamic length would be a StridedSlice that needs Flex), rows are picked with ``tf.gather``.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf
from keras import ops

from aslfr_lib import landmarks
from aslfr_lib.decoding import decode_step, init_decoder_cache, resolve_decoder
from aslfr_lib.export.preprocessing import hand_frame_count_tf, preprocess_tf
from aslfr_lib.layers import has_landmarks
from aslfr_lib.model import (
    EXTRA_FEATURE_LAYERS,
    ctc_classifier_of,
    decoder_of,
    encoder_of,
    has_decoder,
    model_frames,
)
from aslfr_lib.vocab import EOS, NUM_CLASSES, PAD, SOS, TARGET_LENGTH, encode

INPUT_NAME = "inputs"  # the harness calls serving_default(inputs=frames)
OUTPUT_NAME = "outputs"  # and reads ["outputs"]
OUTPUT_KINDS = ("one_hot", "logits")


def layers_named(model: Any, prefix: str) -> list[Any]:
    """``prefix0``, ``prefix1``, ... of a functional model, in order."""
    found = []
    while True:
        try:
            found.append(model.get_layer(f"{prefix}{len(found)}"))
        except ValueError:
            return found


def uses_causal_cross_attention(model: Any) -> bool:
    """True when the decoder's cross-attention sees empty frames (the reference's causal mask)."""
    return bool(decoder_of(model).get_layer("cross_attention_mask").reference_causal)


def _split_heads(x: tf.Tensor, attention: Any) -> tf.Tensor:
    """(1, k, H*K) -> (1, k, H, K) for a dynamic k (the layer's own helper needs a static k)."""
    return tf.reshape(x, [1, -1, attention.num_heads, attention.head_dim])


def _encoder_block(block: Any, x: tf.Tensor) -> tf.Tensor:
    """``layers.TransformerBlock`` self-attention block over (1, k, D) rows, all visible.

    The block's own sub-layers and weights; only the head reshapes differ, because the block's
    ``call`` reshapes with the static length that a dynamic ``k`` does not have.
    """
    attention = block.attention
    query = _split_heads(attention.query_dense(x), attention)  # (1, k, H, K)
    key = _split_heads(attention.key_dense(x), attention)
    value = _split_heads(attention.value_dense(x), attention)
    attended = ops.dot_product_attention(query, key, value)  # (1, k, H, K)
    attended = tf.reshape(attended, [1, -1, attention.num_heads * attention.head_dim])
    x = block.attention_norm(x + attention.output_dense(attended))
    return block.mlp_norm(x + block.mlp(x))


def encode_frames_with_landmarks(model: Any, frames: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """The encoder over the rows of ``frames`` (1, S, F) that hold landmarks.

    Returns ``encoded`` (1, k, D) and their frame mask (1, k). A sequence without any landmarks
    keeps all S rows (mask all False), which is what the full encoder attends to in that case.
    """
    encoder = encoder_of(model)
    positions = int(frames.shape[1])
    frame_mask = tf.reshape(has_landmarks(frames), [positions])  # (S,)
    keep = tf.logical_or(frame_mask, tf.logical_not(tf.reduce_any(frame_mask)))
    rows = tf.reshape(tf.where(keep), [-1])  # (k,) row indices, ascending
    kept = tf.reshape(
        tf.gather(tf.reshape(frames, [positions, -1]), rows), [1, -1, frames.shape[2]]
    )
    kept_mask = tf.reshape(tf.gather(frame_mask, rows), [1, -1])  # (1, k)

    x = encoder.get_layer("normalization")(kept)
    names = {layer.name for layer in encoder.layers}
    extra = [encoder.get_layer(name)(kept) for name in EXTRA_FEATURE_LAYERS if name in names]
    if extra:
        x = encoder.get_layer("features")([x, *extra])
    x = encoder.get_layer("landmark_embedding")(x, kept_mask)  # (1, k, De)
    table = tf.convert_to_tensor(encoder.get_layer("position_embedding").embeddings)
    x = x + tf.reshape(tf.gather(tf.cast(table, x.dtype), rows), [1, -1, x.shape[-1]])
    convs = {
        layer.name: layer for layer in encoder.layers if layer.name.startswith("encoder_conv_")
    }
    for index, block in enumerate(layers_named(encoder, "encoder_block_")):
        x = _encoder_block(block, x)
        if f"encoder_conv_{index}" in convs:  # conformer: the conv module after the block
            x = convs[f"encoder_conv_{index}"](x, kept_mask)
    if any(layer.name == "projection" for layer in encoder.layers):  # encoder_dim != decoder_dim
        x = encoder.get_layer("projection")(x)  # (1, k, Dd)
    return x, kept_mask


def decoder_cache(model: Any, encoded: tf.Tensor, frame_mask: tf.Tensor) -> dict[str, tf.Tensor]:
    """``decoding.init_decoder_cache`` for an ``encoded`` (1, k, D) of dynamic length k."""
    if encoded.shape[1] is not None:
        return init_decoder_cache(model, encoded, frame_mask)
    decoder = decoder_of(model)
    attention = decoder.get_layer("self_attention").attention
    cache_shape = [1, TARGET_LENGTH, attention.num_heads, attention.head_dim]
    cache = {
        "self_key": tf.zeros(cache_shape, attention.compute_dtype),
        "self_value": tf.zeros(cache_shape, attention.compute_dtype),
        "frame_mask": tf.cast(frame_mask, tf.bool),
    }
    for index, block in enumerate(layers_named(decoder, "decoder_block_")):
        cross = block.attention
        cache[f"cross_key_{index}"] = _split_heads(cross.key_dense(encoded), cross)
        cache[f"cross_value_{index}"] = _split_heads(cross.value_dense(encoded), cross)
    return cache


class InferenceModule(tf.Module):
    """``serving_default``: inputs [None, 164] float32 -> {"outputs": [32, 62] float32}.

    ``outputs="logits"`` returns each computed step's logits instead (zeros after the last
    step), for checking the cached steps against the full decoder. ``max_steps`` < 32 stops
    decoding early whatever the model predicts (the benchmark's fixed phrase length).
    """

    def __init__(
        self,
        model: Any,
        mirror: bool = True,
        skip_empty_frames: bool = True,
        max_steps: int = TARGET_LENGTH,
        outputs: str = "one_hot",
        decoder: str = "attention",
        fallback: Any = None,
    ):
        super().__init__(name="aslfr_inference")
        # aslfr_lib.fallback.Fallback: its phrase for inputs with too few hand frames.
        self.fallback = fallback if outputs == "one_hot" else None
        decoder = resolve_decoder(model, decoder)  # one the model has
        if decoder == "ctc" and outputs != "one_hot":
            raise ValueError("a CTC export returns one-hot rows only")
        self.decoder = decoder
        if outputs not in OUTPUT_KINDS:
            raise ValueError(f"outputs must be one of {OUTPUT_KINDS}, got {outputs!r}")
        if not 1 <= max_steps <= TARGET_LENGTH:
            raise ValueError(f"max_steps must be in 1..{TARGET_LENGTH}, got {max_steps}")
        self.model = model
        # Trap: tf.Module does not find the variables of a Keras 3 model held as an attribute;
        # the converter then writes a file without weights that fails at run time
        # (READ_VARIABLE ... variable != nullptr). Holding the tf.Variables themselves fixes it.
        self.model_variables = [weight.value for weight in model.weights]
        self.frames = model_frames(model)
        self.mirror = mirror
        self.skip_empty_frames = skip_empty_frames and not (
            has_decoder(model) and uses_causal_cross_attention(model)
        )
        self.max_steps = max_steps
        self.outputs = outputs
        self.serve = tf.function(
            self._serve,
            input_signature=[
                tf.TensorSpec([None, landmarks.NUM_FEATURES], tf.float32, name=INPUT_NAME)
            ],
        )

    def encode(self, inputs: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Raw [n, 164] -> (encoded (1, k, D), frame mask (1, k))."""
        frames = preprocess_tf(inputs, frames=self.frames, mirror=self.mirror)
        frames = tf.reshape(frames, [1, self.frames, landmarks.NUM_FEATURES])
        if self.skip_empty_frames:
            return encode_frames_with_landmarks(self.model, frames)
        return encoder_of(self.model)(frames, training=False), has_landmarks(frames)

    def _serve(self, inputs: tf.Tensor) -> dict[str, tf.Tensor]:
        if self.decoder == "ctc":
            decoded = self._serve_ctc(inputs)
        else:
            decoded = self._serve_attention(inputs)
        if self.fallback is None:
            return decoded
        # The one place the final rows are chosen: the fallback phrase where the input shows a
        # hand in fewer than min_hand_frames frames (a SELECT, no control flow).
        fixed = tf.one_hot(encode(self.fallback.phrase), NUM_CLASSES, dtype=tf.float32)
        too_few = hand_frame_count_tf(inputs) < self.fallback.min_hand_frames
        return {OUTPUT_NAME: tf.where(too_few, fixed, decoded[OUTPUT_NAME])}

    def _serve_ctc(self, inputs: tf.Tensor) -> dict[str, tf.Tensor]:
        """Greedy CTC: per-frame argmax, repeats merged, blanks (PAD) and SOS/EOS dropped;
        ``decoding.ctc_collapse`` in builtin ops. No loop: one encoder pass and a gather."""
        encoded, frame_mask = self.encode(inputs)  # (1, k, D), (1, k)
        logits = ctc_classifier_of(self.model)(encoded)  # (1, k, 62)
        best = tf.reshape(tf.argmax(logits, axis=-1, output_type=tf.int32), [-1])  # (k,)
        count = tf.size(best)
        previous = tf.gather(tf.concat([tf.constant([-1], tf.int32), best], 0), tf.range(count))
        keep = tf.logical_and(
            tf.logical_and(tf.not_equal(best, previous), tf.less(best, PAD)),
            tf.reshape(frame_mask, [-1]),
        )
        characters = tf.gather(best, tf.reshape(tf.where(keep), [-1]))  # (n,)
        characters = tf.gather(
            characters, tf.range(tf.minimum(tf.size(characters), TARGET_LENGTH - 1))
        )
        ids = tf.concat(
            [characters, tf.constant([EOS], tf.int32), tf.fill([TARGET_LENGTH], PAD)], axis=0
        )
        ids = tf.gather(ids, tf.range(TARGET_LENGTH))  # characters, EOS, PAD: (32,)
        return {OUTPUT_NAME: tf.one_hot(ids, NUM_CLASSES, dtype=tf.float32)}

    def _serve_attention(self, inputs: tf.Tensor) -> dict[str, tf.Tensor]:
        encoded, frame_mask = self.encode(inputs)
        cache = decoder_cache(self.model, encoded, frame_mask)
        rows = tf.range(TARGET_LENGTH)

        def keep_going(position, token, predicted, step_logits, finished, self_key, self_value):
            return tf.logical_and(position < self.max_steps, tf.logical_not(finished))

        def step(position, token, predicted, step_logits, finished, self_key, self_value):
            logits, updated = decode_step(
                self.model,
                {**cache, "self_key": self_key, "self_value": self_value},
                token,
                position,
            )  # (1, 62)
            next_token = tf.argmax(logits, axis=-1, output_type=tf.int32)  # (1,)
            here = tf.equal(rows, position)  # (32,)
            predicted = tf.where(here, next_token, predicted)
            step_logits = tf.where(
                tf.reshape(here, [TARGET_LENGTH, 1]), tf.cast(logits, tf.float32), step_logits
            )
            finished = tf.equal(tf.reshape(next_token, []), EOS)
            return (
                position + 1,
                next_token,
                predicted,
                step_logits,
                finished,
                updated["self_key"],
                updated["self_value"],
            )

        state = (
            tf.constant(0, tf.int32),
            tf.fill([1], tf.constant(SOS, tf.int32)),  # decoder input at position 0
            tf.fill([TARGET_LENGTH], tf.constant(PAD, tf.int32)),  # PAD where nothing decoded
            tf.zeros([TARGET_LENGTH, NUM_CLASSES], tf.float32),
            tf.constant(False),
            cache["self_key"],
            cache["self_value"],
        )
        _, _, predicted, step_logits, _, _, _ = tf.while_loop(keep_going, step, state)
        if self.outputs == "logits":
            return {OUTPUT_NAME: step_logits}
        return {OUTPUT_NAME: tf.one_hot(predicted, NUM_CLASSES, dtype=tf.float32)}

    def __call__(self, inputs) -> dict[str, tf.Tensor]:
        return self.serve(tf.convert_to_tensor(inputs, tf.float32))
