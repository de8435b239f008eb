"""Greedy decoding: batched, with a KV cache, in one compiled loop per batch.

``greedy_decode`` is what evaluation and training use. By default (``cached=True``) each batch
goes through ``GreedyDecoder``: the encoder runs once, the decoder's cross-attention keys/values
are projected once, then ``decode_step`` computes one position at a time inside an
``ops.while_loop`` that stops when every sequence has emitted EOS, all compiled by Keras's
predict function (XLA on TensorFlow, ``jit`` on JAX). ``cached=False`` is the plain algorithm:
the ``decoder`` sub-model recomputes all 32 positions for each new character (the reference did
that and re-ran the encoder too, one sequence at a time); the tests hold the two equal.

``init_decoder_cache``/``decode_step`` are in ``keras.ops`` with fixed-shape caches, so the
TFLite export can trace them into a loop of builtin ops; they reuse the ``decoder`` sub-model's
own layers and weights.

Ensembles: every decoding function takes a model or a list of models (members trained on the
same frames and vocabulary). Members are combined by the mean of their log-probabilities: per
frame for CTC, per decoding step for the attention decoder (one shared loop, one KV cache per
member). A single model's greedy decoders use its logits as they are (the same argmax).
``ctc_beam`` and ``joint`` (attention + CTC prefix scores) are ``beam_search``'s.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import keras
import numpy as np
from keras import ops
from tqdm.auto import tqdm

from aslfr_lib import vocab
from aslfr_lib.layers import has_landmarks
from aslfr_lib.model import ctc_classifier_of, decoder_of, encoder_of, has_ctc_head, has_decoder
from aslfr_lib.vocab import EOS, PAD, SOS, TARGET_LENGTH

DECODERS = ("auto", "attention", "ctc", "ctc_beam", "joint")
# The heads each decoder reads: CTC, attention decoder.
DECODER_HEADS = {
    "ctc": ("ctc",),
    "attention": ("attention",),
    "ctc_beam": ("ctc",),
    "joint": ("ctc", "attention"),
}
DEFAULT_BEAM = 5  # ctc_beam and joint, when --beam is not given (the 4th place's k)
DEFAULT_CTC_WEIGHT_DECODING = 0.3  # joint: weight of the CTC prefix score (ESPnet, 2nd place)
DEFAULT_BATCH_SIZE = 256
BATCH_MULTIPLE = 8  # a lone short batch is padded to a multiple of this: data-parallel replicas


def members_of(model_or_models: Any) -> list[Any]:
    """A model, or a list/tuple of models, as a non-empty list."""
    if isinstance(model_or_models, list | tuple):
        if not model_or_models:
            raise ValueError("an ensemble needs at least one model")
        return list(model_or_models)
    return [model_or_models]


def combine_logits(logits: list[Any]) -> Any:
    """One model's logits unchanged; several models' mean log-probabilities (same argmax rule:
    the members' geometric mean probability, renormalised or not)."""
    if len(logits) == 1:
        return logits[0]
    return ops.mean(ops.stack([ops.log_softmax(ops.cast(x, "float32")) for x in logits]), axis=0)


def mean_log_probs(logits: list[Any]) -> Any:
    """The members' mean log-probabilities (also for a single member): scores to add up."""
    return ops.mean(ops.stack([ops.log_softmax(ops.cast(x, "float32")) for x in logits]), axis=0)


def ids_to_phrases(ids: Iterable[Iterable[int]]) -> list[str]:
    """Rows of ids -> phrases (each stops at EOS, skips PAD/SOS)."""
    return [vocab.decode(row) for row in ids]


def _check_frames(frames) -> np.ndarray:
    frames = np.asarray(frames, dtype=np.float32)
    if frames.ndim != 3:
        raise ValueError(f"frames must be (sequences, frames, features); got shape {frames.shape}")
    return frames


def _finish(next_tokens: np.ndarray, finished: np.ndarray) -> np.ndarray:
    """PAD for sequences that already emitted EOS."""
    return np.where(finished, PAD, next_tokens).astype(np.int32)


def _greedy_batch(members: list[Any], frames: np.ndarray, real: int) -> np.ndarray:
    """Greedy ids of a batch whose first ``real`` rows matter (the rest is padding)."""
    encoded = [encoder_of(m).predict_on_batch(frames) for m in members]  # (B, S, D) each
    decoders = [decoder_of(m) for m in members]
    frame_mask = np.any(frames != 0, axis=-1)  # (B, S), same rule as layers.has_landmarks
    count = len(frames)
    tokens = np.full((count, TARGET_LENGTH), PAD, dtype=np.int32)  # decoder inputs
    tokens[:, 0] = SOS
    predicted = np.full((count, TARGET_LENGTH), PAD, dtype=np.int32)
    finished = np.arange(count) >= real  # padding rows never hold up the loop
    for position in range(TARGET_LENGTH):
        logits = [
            decoder.predict_on_batch({"encoded": x, "frame_mask": frame_mask, "tokens": tokens})
            for decoder, x in zip(decoders, encoded, strict=True)
        ]  # (B, 32, 62) each: causal, so later (PAD) inputs do not change this position
        here = ops.convert_to_numpy(combine_logits([x[:, position] for x in logits]))
        next_tokens = _finish(np.argmax(here, axis=-1), finished)
        predicted[:, position] = next_tokens
        finished |= next_tokens == EOS
        if finished.all() or position + 1 == TARGET_LENGTH:
            break
        tokens[:, position + 1] = next_tokens
    return predicted


def greedy_decode(
    model: Any,
    frames,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool = False,
    cached: bool = True,
) -> np.ndarray:
    """Greedy ids (N, 32) int32 of preprocessed ``frames`` (N, frames, features) by ``model``
    (or a list of models: their mean log-probabilities at each step).

    Each row holds the predicted characters, then EOS, then PAD (or 32 characters without EOS).
    The last batch is padded with empty sequences to ``batch_size`` so that every call has one
    shape (one compilation); a single batch only to a multiple of ``BATCH_MULTIPLE``, so that
    data-parallel replicas get equal shares. Padding rows count as finished from the start.
    ``cached=False`` decodes with the full ``decoder`` sub-model instead (same ids, slower).
    """
    frames = _check_frames(frames)
    members = members_of(model)
    count = len(frames)
    result = np.full((count, TARGET_LENGTH), PAD, dtype=np.int32)
    starts = range(0, count, batch_size)
    for start in tqdm(starts, desc="greedy decode", unit="batch", disable=not progress):
        batch = frames[start : start + batch_size]
        size = len(batch)
        padded = batch_size if count > batch_size else -(-size // BATCH_MULTIPLE) * BATCH_MULTIPLE
        if padded > size:
            filler = np.zeros((padded - size, *batch.shape[1:]), batch.dtype)
            batch = np.concatenate([batch, filler])
        if cached:
            active = np.arange(len(batch)) < size
            ids = greedy_decoder_of(members).predict_on_batch({"frames": batch, "active": active})
        else:
            ids = _greedy_batch(members, batch, size)
        result[start : start + size] = np.asarray(ids)[:size]
    return result


def _decoder_blocks(decoder: Any) -> list[Any]:
    blocks = []
    while True:
        try:
            blocks.append(decoder.get_layer(f"decoder_block_{len(blocks)}"))
        except ValueError:
            return blocks


def init_decoder_cache(model_or_decoder: Any, encoded, frame_mask) -> dict[str, Any]:
    """Decoder state before position 0, for ``decode_step``.

    encoded (B, S, D), frame_mask (B, S) bool -> dict of tensors:
    ``self_key``/``self_value`` (B, 32, H, K) zeros (the causal self-attention cache),
    ``cross_key_{i}``/``cross_value_{i}`` (B, S, H, K) per decoder block (projected once), and
    ``frame_mask``. Shapes never change during decoding.
    """
    decoder = decoder_of(model_or_decoder)
    attention = decoder.get_layer("self_attention").attention
    batch = ops.shape(encoded)[0]
    cache_shape = (batch, TARGET_LENGTH, attention.num_heads, attention.head_dim)
    cache = {
        "self_key": ops.zeros(cache_shape, dtype=attention.compute_dtype),
        "self_value": ops.zeros(cache_shape, dtype=attention.compute_dtype),
        "frame_mask": ops.cast(frame_mask, "bool"),
    }
    for index, block in enumerate(_decoder_blocks(decoder)):
        keys, values = block.attention.key_value_heads(encoded)
        cache[f"cross_key_{index}"] = keys
        cache[f"cross_value_{index}"] = values
    return cache


def decode_step(model_or_decoder: Any, cache: dict[str, Any], token, position):
    """Logits (B, 62) float32 of decoder position ``position`` given its input ``token`` (B,).

    ``token`` is the decoder input at ``position`` (SOS at 0, then the previous prediction);
    ``position`` is a scalar int (may be traced). Returns ``(logits, cache)`` with this position's
    self-attention key/value written into the cache. Inference only (no dropout).
    """
    decoder = decoder_of(model_or_decoder)
    tokens = ops.expand_dims(ops.cast(token, "int32"), axis=1)  # (B, 1)
    x = decoder.get_layer("token_embedding")(tokens, start_index=position)  # (B, 1, D)
    x, self_key, self_value = decoder.get_layer("self_attention").step(
        x, cache["self_key"], cache["self_value"], position
    )
    mask = decoder.get_layer("cross_attention_mask").at_position(cache["frame_mask"], position)
    for index, block in enumerate(_decoder_blocks(decoder)):
        x = block.attend_and_transform(
            x, cache[f"cross_key_{index}"], cache[f"cross_value_{index}"], mask
        )
    logits = decoder.get_layer("classifier")(x)[:, 0, :]  # (B, 62)
    return logits, {**cache, "self_key": self_key, "self_value": self_value}


class GreedyDecoder(keras.Model):
    """{frames (B, S, F), active (B,) bool} -> greedy ids (B, 32) int32, one compiled loop.

    Wraps a trained model, or several (``members``: their weights, not copies; each step's
    logits combined by ``combine_logits``). Rows with ``active`` False (batch padding) count as
    finished, so they never keep the loop running. Not meant to be saved.
    """

    def __init__(self, model: Any, **kwargs):
        super().__init__(**kwargs)
        self.members = members_of(model)
        self.transformer = self.members[0]

    def call(self, inputs):
        frames = inputs["frames"]
        frame_mask = has_landmarks(frames)
        caches = [
            init_decoder_cache(m, encoder_of(m)(frames, training=False), frame_mask)
            for m in self.members
        ]
        batch = ops.shape(frames)[0]
        slots = ops.expand_dims(ops.arange(TARGET_LENGTH), axis=0)  # (1, 32)

        def unfinished(position, token, ids, finished, caches):
            return ops.logical_and(position < TARGET_LENGTH, ops.logical_not(ops.all(finished)))

        def step(position, token, ids, finished, caches):
            stepped = [
                decode_step(m, cache, token, position)
                for m, cache in zip(self.members, caches, strict=True)
            ]
            logits = combine_logits([logits for logits, _ in stepped])
            token = ops.where(finished, PAD, ops.cast(ops.argmax(logits, axis=-1), "int32"))
            ids = ops.where(ops.equal(slots, position), ops.expand_dims(token, 1), ids)
            finished = ops.logical_or(finished, ops.equal(token, EOS))
            return position + 1, token, ids, finished, [cache for _, cache in stepped]

        start = (
            ops.convert_to_tensor(0, dtype="int32"),
            ops.full((batch,), SOS, dtype="int32"),
            ops.full((batch, TARGET_LENGTH), PAD, dtype="int32"),
            ops.logical_not(ops.cast(inputs["active"], "bool")),
            caches,
        )
        return ops.while_loop(unfinished, step, start)[2]


_last_greedy_decoder: list[GreedyDecoder] = []  # one slot: reused while the same model decodes


def same_members(a: list[Any], b: list[Any]) -> bool:
    return len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True))


def greedy_decoder_of(model: Any) -> GreedyDecoder:
    """The ``GreedyDecoder`` of ``model`` (or of a list of models), kept while the same models
    decode (one compilation for all the epochs of a training run). One slot, not a cache per
    model: the decoder holds its models, so a per-model cache would keep every model alive."""
    members = members_of(model)
    if not _last_greedy_decoder or not same_members(_last_greedy_decoder[0].members, members):
        _last_greedy_decoder[:] = [GreedyDecoder(members, name="greedy_decoder")]
    return _last_greedy_decoder[0]


# ----------------------------------------------------------------------------------------------
# CTC: per-frame argmax, repeats merged, blanks dropped


def frame_lengths(frames: np.ndarray) -> np.ndarray:
    """(N, S, F) -> (N,) the last frame with landmarks + 1 (``layers.ctc_parts``'s rule)."""
    mask = np.any(np.asarray(frames) != 0, axis=-1)
    positions = np.arange(1, mask.shape[1] + 1)
    return np.max(np.where(mask, positions, 0), axis=1)


def ctc_collapse(best: np.ndarray, lengths: np.ndarray, blank: int = PAD) -> np.ndarray:
    """(N, S) per-frame best classes, (N,) lengths -> (N, 32) ids: characters, EOS, PAD.

    Greedy CTC: within each sequence's first ``length`` frames, a class equal to the previous
    frame's is merged, blanks are dropped. Non-character classes (SOS, EOS) are dropped too;
    more than 31 characters are cut at 31, so every row ends with EOS like the attention's.
    """
    best = np.asarray(best)
    count, frames = best.shape
    inside = np.arange(frames)[None, :] < np.asarray(lengths)[:, None]
    previous = np.concatenate([np.full((count, 1), -1), best[:, :-1]], axis=1)
    keep = inside & (best != previous) & (best < blank)
    result = np.full((count, TARGET_LENGTH), PAD, dtype=np.int32)
    for row in range(count):
        characters = best[row, keep[row]][: TARGET_LENGTH - 1]
        result[row, : len(characters)] = characters
        result[row, len(characters)] = EOS
    return result


def ctc_logits(members: list[Any], frames) -> list[Any]:
    """Each member's per-frame CTC logits (B, S, 62) of a batch of preprocessed frames."""
    return [ctc_classifier_of(m)(encoder_of(m).predict_on_batch(frames)) for m in members]


def ctc_greedy_decode(
    model: Any, frames, batch_size: int = DEFAULT_BATCH_SIZE, progress: bool = False
) -> np.ndarray:
    """Greedy CTC ids (N, 32) int32 of preprocessed ``frames``, in ``greedy_decode``'s format
    (a list of models: argmax of their mean per-frame log-probabilities)."""
    frames = _check_frames(frames)
    members = members_of(model)
    result = np.full((len(frames), TARGET_LENGTH), PAD, dtype=np.int32)
    starts = range(0, len(frames), batch_size)
    for start in tqdm(starts, desc="CTC decode", unit="batch", disable=not progress):
        batch = frames[start : start + batch_size]
        logits = ops.convert_to_numpy(combine_logits(ctc_logits(members, batch)))
        result[start : start + len(batch)] = ctc_collapse(
            np.argmax(logits, axis=-1), frame_lengths(batch)
        )
    return result


def model_heads(model: Any) -> list[str]:
    """The heads ``model`` can decode with, in ``auto``'s order of preference: ctc, attention."""
    return [name for name, ok in (("ctc", has_ctc_head), ("attention", has_decoder)) if ok(model)]


def resolve_decoder(model: Any, decoder: str = "auto") -> str:
    """A decoder of ``DECODERS`` that ``model`` (or every model of a list) can run; ``auto``:
    greedy CTC when every model has a CTC head, else the attention decoder."""
    if decoder not in DECODERS:
        raise ValueError(f"decoder must be one of {DECODERS}, got {decoder!r}")
    members = members_of(model)
    heads = [model_heads(m) for m in members]
    if decoder == "auto":
        decoder = "ctc" if all("ctc" in h for h in heads) else "attention"
    for index, available in enumerate(heads):
        missing = [head for head in DECODER_HEADS[decoder] if head not in available]
        if missing:
            which = "this model" if len(members) == 1 else f"member {index + 1}"
            raise ValueError(
                f"{which} has no {' or '.join(missing)} head, which the {decoder} decoder needs "
                f"(it has: {', '.join(available)})"
            )
    return decoder


def beam_width(decoder: str, beam: int | None) -> int:
    """The beam of ``decoder``: ``beam``, else 5 for ctc_beam/joint and 1 (greedy) otherwise."""
    if beam is None:
        return DEFAULT_BEAM if decoder in ("ctc_beam", "joint") else 1
    if not 1 <= beam <= 16:
        raise ValueError(f"beam must be in 1..16, got {beam}")
    if decoder == "ctc" and beam != 1:
        raise ValueError("the greedy ctc decoder has no beam; use --decoder ctc_beam")
    return beam


def search_ctc_weight(decoder: str, ctc_weight: float) -> float:
    """The CTC prefix score's weight in ``beam_search`` for ``decoder``."""
    if not 0.0 < ctc_weight < 1.0 and decoder == "joint":
        raise ValueError(f"joint decoding needs 0 < ctc_weight_decoding < 1, got {ctc_weight}")
    return {"ctc_beam": 1.0, "attention": 0.0}.get(decoder, ctc_weight)


def is_search(decoder: str, beam: int) -> bool:
    """Whether ``decoder`` with ``beam`` (``beam_width``'s) runs ``beam_search``."""
    return decoder in ("ctc_beam", "joint") or beam > 1


def check_fusion(decoder: str, beam: int, language_model: Any) -> None:
    """A language model needs a search decoder: the greedy ones have no place for its scores."""
    if language_model is not None and language_model.fusing and not is_search(decoder, beam):
        raise ValueError(
            f"a language model (lm_weight {language_model.weight}, lm_bonus "
            f"{language_model.bonus}) needs a search decoder (ctc_beam or joint), not "
            f"greedy {decoder}"
        )


def decode(
    model: Any,
    frames,
    decoder: str = "auto",
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool = False,
    cached: bool = True,
    beam: int | None = None,
    ctc_weight: float = DEFAULT_CTC_WEIGHT_DECODING,
    language_model: Any = None,
) -> np.ndarray:
    """Ids (N, 32) of ``frames`` by ``model`` or a list of models (an ensemble) with
    ``decoder``: greedy ``attention`` or ``ctc``, ``ctc_beam`` or ``joint`` (``beam_search``
    with ``beam`` hypotheses and CTC weight ``ctc_weight``; ``attention`` with ``beam`` > 1
    too). ``cached``: see ``greedy_decode``; CTC has no decoding loop to cache.
    ``language_model``: a ``language_model.LanguageModel`` the search fuses (searches only)."""
    decoder = resolve_decoder(model, decoder)
    beam = beam_width(decoder, beam)
    check_fusion(decoder, beam, language_model)
    if decoder == "ctc":
        return ctc_greedy_decode(model, frames, batch_size, progress)
    if decoder == "attention" and beam == 1:
        return greedy_decode(model, frames, batch_size, progress, cached)
    from aslfr_lib.beam_search import search_decode

    weight = search_ctc_weight(decoder, ctc_weight)
    return search_decode(model, frames, beam, weight, batch_size, progress, language_model)
