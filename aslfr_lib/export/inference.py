"""The graph inside ``model.tflite``: raw landmarks -> phrase, one sequence per call.

    inputs [n, 164] float32 (NaN = missing)
      -> preprocess_tf: NaN -> 0, hand frames only, mirroring, pad/resize   (frames, 164)
      -> encoder, once, over the frames that hold landmarks                 (1, k, D)
      -> cross-attention keys/values of every decoder block, once           (1, k, H, K)
      -> tf.while_loop: decode_step at one position, until EOS or 32 steps
      -> outputs [32, 62]: one-hot of the predicted ids, PAD after EOS

Other decoders (``decoder``): ``ctc``, greedy CTC on the encoder's CTC head (no loop);
``ctc_beam`` and ``joint``, ``beam_search.beam_search`` (CTC prefix scores, with the attention
decoder's for ``joint``) traced into nested ``tf.while_loop``s; ``attention`` with ``beam`` > 1
the same search without CTC. Ensembles (a list of models): every member's encoder runs on the
same preprocessed frames, each with its own normalisation and feature layers, and the members'
log-probabilities are averaged per frame (CTC) or per step (attention, one loop with a KV cache
per member). ``InferenceModule.decode`` produces the rows, ``_serve`` applies the fallback.

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
from aslfr_lib.beam_search import beam_search
from aslfr_lib.decoding import (
    DEFAULT_CTC_WEIGHT_DECODING,
    beam_width,
    check_fusion,
    combine_logits,
    decode_step,
    init_decoder_cache,
    is_search,
    mean_log_probs,
    members_of,
    resolve_decoder,
    search_ctc_weight,
)
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


def _tile_rows(value: tf.Tensor, beam: int) -> tf.Tensor:
    """(1, ...) -> (beam, ...): a sequence's decoder cache for each beam hypothesis."""
    return tf.tile(value, tf.concat([[beam], tf.ones([tf.rank(value) - 1], tf.int32)], 0))


class InferenceModule(tf.Module):
    """``serving_default``: inputs [None, 164] float32 -> {"outputs": [32, 62] float32}.

    ``model``: one Keras model, or a list of them (an ensemble: same frames and vocabulary,
    ``aslfr_lib.ensemble.check_members``). ``outputs="logits"`` returns each computed step's
    logits instead (zeros after the last step), for checking the cached steps against the full
    decoder (greedy attention only). ``max_steps`` < 32 stops decoding early whatever the model
    predicts (the benchmark's fixed phrase length). ``beam``/``ctc_weight``/``language_model``:
    see ``decoding.decode``.
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
        beam: int | None = None,
        ctc_weight: float = DEFAULT_CTC_WEIGHT_DECODING,
        language_model: Any = None,
    ):
        super().__init__(name="aslfr_inference")
        # aslfr_lib.fallback.Fallback: its phrase for inputs with too few hand frames.
        self.fallback = fallback if outputs == "one_hot" else None
        self.members = members_of(model)
        decoder = resolve_decoder(self.members, decoder)  # one every member has
        self.beam = beam_width(decoder, beam)
        self.searching = is_search(decoder, self.beam)
        self.ctc_weight = search_ctc_weight(decoder, ctc_weight)
        check_fusion(decoder, self.beam, language_model)
        # aslfr_lib.language_model.LanguageModel: its tables become constants of the search
        self.language_model = language_model if self.searching else None
        if (decoder == "ctc" or self.searching) and outputs != "one_hot":
            raise ValueError(f"a {decoder} export returns one-hot rows only")
        self.decoder = decoder
        if outputs not in OUTPUT_KINDS:
            raise ValueError(f"outputs must be one of {OUTPUT_KINDS}, got {outputs!r}")
        if not 1 <= max_steps <= TARGET_LENGTH:
            raise ValueError(f"max_steps must be in 1..{TARGET_LENGTH}, got {max_steps}")
        self.model = self.members[0]
        # Trap: tf.Module does not find the variables of a Keras 3 model held as an attribute;
        # the converter then writes a file without weights that fails at run time
        # (READ_VARIABLE ... variable != nullptr). Holding the tf.Variables themselves fixes it.
        self.model_variables = [weight.value for m in self.members for weight in m.weights]
        frames = {model_frames(m) for m in self.members}
        if len(frames) > 1:
            raise ValueError(f"ensemble members have different frame counts {sorted(frames)}")
        self.frames = frames.pop()
        self.mirror = mirror
        # One set of rows for every member: the plain encoder if any member needs it.
        self.skip_empty_frames = skip_empty_frames and not any(
            has_decoder(m) and uses_causal_cross_attention(m) for m in self.members
        )
        self.max_steps = max_steps
        self.outputs = outputs
        self.serve = tf.function(
            self._serve,
            input_signature=[
                tf.TensorSpec([None, landmarks.NUM_FEATURES], tf.float32, name=INPUT_NAME)
            ],
        )

    def encode(self, inputs: tf.Tensor) -> tuple[list[tf.Tensor], tf.Tensor]:
        """Raw [n, 164] -> (each member's encoded (1, k, D), frame mask (1, k)); preprocessed
        once: members share frames and mirroring, each normalises inside its encoder."""
        frames = preprocess_tf(inputs, frames=self.frames, mirror=self.mirror)
        frames = tf.reshape(frames, [1, self.frames, landmarks.NUM_FEATURES])
        if self.skip_empty_frames:
            encoded = [encode_frames_with_landmarks(m, frames) for m in self.members]
            return [x for x, _ in encoded], encoded[0][1]
        encoded = [encoder_of(m)(frames, training=False) for m in self.members]
        return encoded, has_landmarks(frames)

    def _serve(self, inputs: tf.Tensor) -> dict[str, tf.Tensor]:
        decoded = self.decode(inputs)
        if self.fallback is None:
            return {OUTPUT_NAME: decoded}
        # The one place the final rows are chosen: the fallback phrase where the input shows a
        # hand in fewer than min_hand_frames frames (a SELECT, no control flow).
        fixed = tf.one_hot(encode(self.fallback.phrase), NUM_CLASSES, dtype=tf.float32)
        too_few = hand_frame_count_tf(inputs) < self.fallback.min_hand_frames
        return {OUTPUT_NAME: tf.where(too_few, fixed, decoded)}

    def decode(self, inputs: tf.Tensor) -> tf.Tensor:
        """Raw [n, 164] -> the decoder's rows [32, 62] float32 (before the fallback)."""
        if self.decoder == "ctc":
            return self._decode_ctc(inputs)
        if self.searching:
            return self._decode_search(inputs)
        return self._decode_attention(inputs)

    def _ctc_logits(self, encoded: list[tf.Tensor]) -> list[tf.Tensor]:
        return [ctc_classifier_of(m)(x) for m, x in zip(self.members, encoded, strict=True)]

    def _decode_search(self, inputs: tf.Tensor) -> tf.Tensor:
        """``beam_search`` over the members' mean log-probabilities, for one sequence."""
        encoded, frame_mask = self.encode(inputs)  # [(1, k, D)], (1, k)
        count = tf.shape(frame_mask)[1]
        positions = tf.reshape(tf.range(1, count + 1), [1, -1])
        lengths = tf.reshape(tf.reduce_max(tf.where(frame_mask, positions, 0), axis=1), [1])
        ctc_log_probs, caches = None, []
        if self.ctc_weight > 0:
            log_probs = mean_log_probs(self._ctc_logits(encoded))  # (1, k, 62)
            missing = tf.maximum(self.frames - count, 0)  # the search wants a fixed shape: pad
            log_probs = tf.pad(log_probs, tf.reshape(tf.stack([0, 0, 0, missing, 0, 0]), [3, 2]))
            ctc_log_probs = tf.reshape(log_probs, [1, self.frames, NUM_CLASSES])
        if self.ctc_weight < 1:
            for member, x in zip(self.members, encoded, strict=True):
                cache = decoder_cache(member, x, frame_mask)
                caches.append({name: _tile_rows(value, self.beam) for name, value in cache.items()})
        ids = beam_search(
            self.members,
            caches,
            ctc_log_probs,
            lengths,
            self.beam,
            self.ctc_weight,
            max_length=self.max_steps,
            language_model=self.language_model,
        )
        return tf.one_hot(tf.reshape(ids, [TARGET_LENGTH]), NUM_CLASSES, dtype=tf.float32)

    def _decode_ctc(self, inputs: tf.Tensor) -> tf.Tensor:
        """Greedy CTC: per-frame argmax, repeats merged, blanks (PAD) and SOS/EOS dropped;
        ``decoding.ctc_collapse`` in builtin ops. No loop: one encoder pass and a gather."""
        encoded, frame_mask = self.encode(inputs)  # [(1, k, D)], (1, k)
        logits = combine_logits(self._ctc_logits(encoded))  # (1, k, 62)
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
        return tf.one_hot(ids, NUM_CLASSES, dtype=tf.float32)

    def _decode_attention(self, inputs: tf.Tensor) -> tf.Tensor:
        """Greedy attention decoding, one KV-cached loop for every member."""
        encoded, frame_mask = self.encode(inputs)
        caches = [
            decoder_cache(m, x, frame_mask) for m, x in zip(self.members, encoded, strict=True)
        ]
        rows = tf.range(TARGET_LENGTH)

        def keep_going(position, token, predicted, step_logits, finished, selves):
            return tf.logical_and(position < self.max_steps, tf.logical_not(finished))

        def step(position, token, predicted, step_logits, finished, selves):
            stepped = [
                decode_step(m, {**cache, "self_key": key, "self_value": value}, token, position)
                for m, cache, (key, value) in zip(self.members, caches, selves, strict=True)
            ]
            logits = combine_logits([logits for logits, _ in stepped])  # (1, 62)
            next_token = tf.argmax(logits, axis=-1, output_type=tf.int32)  # (1,)
            here = tf.equal(rows, position)  # (32,)
            predicted = tf.where(here, next_token, predicted)
            step_logits = tf.where(
                tf.reshape(here, [TARGET_LENGTH, 1]), tf.cast(logits, tf.float32), step_logits
            )
            finished = tf.equal(tf.reshape(next_token, []), EOS)
            selves = [(cache["self_key"], cache["self_value"]) for _, cache in stepped]
            return position + 1, next_token, predicted, step_logits, finished, selves

        state = (
            tf.constant(0, tf.int32),
            tf.fill([1], tf.constant(SOS, tf.int32)),  # decoder input at position 0
            tf.fill([TARGET_LENGTH], tf.constant(PAD, tf.int32)),  # PAD where nothing decoded
            tf.zeros([TARGET_LENGTH, NUM_CLASSES], tf.float32),
            tf.constant(False),
            [(cache["self_key"], cache["self_value"]) for cache in caches],
        )
        _, _, predicted, step_logits, _, _ = tf.while_loop(keep_going, step, state)
        if self.outputs == "logits":
            return step_logits
        return tf.one_hot(predicted, NUM_CLASSES, dtype=tf.float32)

    def __call__(self, inputs) -> dict[str, tf.Tensor]:
        return self.serve(tf.convert_to_tensor(inputs, tf.float32))
