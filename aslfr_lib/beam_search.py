"""Label-synchronous beam search over the attention decoder and CTC prefix scores (``keras.ops``).

One search serves three decoders, by the weight ``ctc_weight`` (lambda) of the CTC prefix score:

    score(h + c) = (1 - lambda) * log P_att(h + c) + lambda * log psi_ctc(h + c)

- ``joint`` (0 < lambda < 1): the attention decoder's and the CTC head's scores of the same
  prefix, as ESPnet's joint CTC/attention decoding and the 2nd place of ASLFR 2023;
- ``ctc_beam`` (lambda = 1): CTC prefix beam search, no decoder needed;
- ``attention`` beam (lambda = 0): the decoder alone.

``psi_ctc(h)`` is the CTC prefix probability (every frame alignment whose labelling starts with
``h``); for ``h + EOS`` it is the probability of exactly ``h``. Both scores never grow when a
prefix is extended, so the search stops, exactly, as soon as the best finished phrase scores at
least the best running one. Each step extends every running hypothesis by every character (and
EOS), keeps the best ``beam`` that end with EOS among the overall best ``beam`` as finished
candidates (ESPnet's rule, so ``beam=1`` is greedy decoding) and the best ``beam`` without EOS as
running ones. Distinct parents always give distinct children, so no prefixes need merging and
every tensor has a fixed shape: the TFLite export runs this same code in a ``tf.while_loop`` of
builtin ops.

Shallow fusion (``language_model``, ``aslfr_lib.language_model``): every candidate also scores
``weight * log P_lm(c | the hypothesis's last characters) + bonus`` (no bonus for EOS); each
hypothesis carries its n-gram context as one integer and its summed language-model score. A
positive bonus lets a running score grow, so the stop rule then adds the most the bonus can
still add (``bonus`` per step left) before comparing: the search still stops exactly.

CTC state per hypothesis: the forward variables ``rn`` (paths ending in the prefix's last
character) and ``rb`` (ending in blank) at times -1 .. T-1, index ``t + 1`` (B, K, T + 1). The
candidate scores of all characters are one reduction over time (no loop); the forward variables
of the ``beam`` chosen children are the sequential recursion over the valid frames. Frames at or
after ``lengths`` never count. Ensembles: the callers pass the members' mean log-probabilities
(CTC per frame, attention per step).
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops
from tqdm.auto import tqdm

from aslfr_lib.decoding import (
    BATCH_MULTIPLE,
    DEFAULT_BATCH_SIZE,
    _check_frames,
    decode_step,
    init_decoder_cache,
    mean_log_probs,
    members_of,
    same_members,
)
from aslfr_lib.language_model import FIXED_POINT_SCALE, LanguageModel
from aslfr_lib.layers import has_landmarks
from aslfr_lib.model import CTC_BLANK, ctc_classifier_of, encoder_of
from aslfr_lib.vocab import EOS, NUM_CLASSES, PAD, SOS, TARGET_LENGTH

NEG = -1e9  # log of an impossible event: finite, so that sums and differences never give NaN
DEAD = NEG / 2  # scores at or below this belong to impossible hypotheses


def logaddexp(a, b):
    """log(exp(a) + exp(b)) with the same ops on every backend and in TFLite (no LOG1P op)."""
    high = ops.maximum(a, b)
    return high + ops.log(1.0 + ops.exp(-ops.abs(a - b)))


def _pick(values, index, depth: int):
    """``values[..., index]`` for an integer tensor ``index`` of ``values``'s leading shape
    (a one-hot product: builtin ops only, exact for finite values)."""
    return ops.sum(values * ops.one_hot(index, depth, dtype=values.dtype), axis=-1)


def empty_prefix_state(log_probs, beam: int):
    """(rn, rb) (B, K, T + 1) of the empty prefix in every beam slot: only blanks so far."""
    batch, frames = log_probs.shape[0], log_probs.shape[1]
    blank = log_probs[:, :, CTC_BLANK]  # (B, T)
    rb = ops.concatenate([ops.zeros((batch, 1), log_probs.dtype), ops.cumsum(blank, axis=1)], 1)
    rb = ops.repeat(ops.expand_dims(rb, 1), beam, axis=1)
    rn = ops.full((batch, beam, frames + 1), NEG, dtype=log_probs.dtype)
    return rn, rb


def prefix_scores(rn, rb, last, log_probs, lengths):
    """log psi(h + c) for every hypothesis h (B, K) and class c: (B, K, C).

    Characters: sum over the first frame t of c of P(h by t - 1) * P(c at t), where a repeated
    character (c = h's last) needs a blank in between; EOS: P(h) over all valid frames. PAD and
    SOS columns hold the character formula and must be masked by the caller.
    """
    frames = log_probs.shape[1]
    valid = ops.expand_dims(ops.arange(frames) < ops.expand_dims(lengths, 1), 1)  # (B, 1, T)
    before = logaddexp(rn, rb)  # (B, K, T + 1): P(h by time t - 1) at index t
    terms = ops.expand_dims(before[:, :, :frames], -1) + ops.expand_dims(log_probs, 1)
    terms = ops.where(ops.expand_dims(valid, -1), terms, NEG)  # (B, K, T, C)
    psi = ops.logsumexp(terms, axis=2)  # (B, K, C)
    repeated_at = _pick(ops.expand_dims(log_probs, 1), ops.expand_dims(last, -1), NUM_CLASSES)
    repeated = ops.where(valid, rb[:, :, :frames] + repeated_at, NEG)  # (B, K, T)
    psi_repeated = ops.logsumexp(repeated, axis=2)  # (B, K)
    is_last = ops.one_hot(last, NUM_CLASSES) > 0.5  # (B, K, C)
    psi = ops.where(is_last, ops.expand_dims(psi_repeated, -1), psi)
    at_end = ops.one_hot(lengths, frames + 1) > 0.5  # (B, T + 1)
    whole = ops.logsumexp(ops.where(ops.expand_dims(at_end, 1), before, NEG), axis=2)  # (B, K)
    is_eos = ops.reshape(ops.equal(ops.arange(NUM_CLASSES), EOS), (1, 1, NUM_CLASSES))
    return ops.where(is_eos, ops.expand_dims(whole, -1), psi)


def extend_state(rn, rb, last, character, log_probs, lengths):
    """Forward variables (B, K, T + 1) of h + ``character`` from those of h (``last``: h's last
    token), by the CTC recursion over the valid frames (one loop step per frame)."""
    frames = log_probs.shape[1]
    phi = logaddexp(rb, ops.where(ops.expand_dims(ops.equal(character, last), -1), NEG, rn))
    phi = phi[:, :, :frames]  # (B, K, T): paths that may emit `character` next, at index t
    emitted = _pick(ops.expand_dims(log_probs, 1), ops.expand_dims(character, -1), NUM_CLASSES)
    blank = ops.expand_dims(log_probs[:, :, CTC_BLANK], 1)  # (B, 1, T)
    slots = ops.arange(frames + 1)

    def more(t, new_n, new_b, previous_n, previous_b):
        return t < ops.max(lengths)

    def frame(t, new_n, new_b, previous_n, previous_b):
        n = logaddexp(previous_n, ops.take(phi, t, axis=2)) + ops.take(emitted, t, axis=2)
        b = logaddexp(previous_n, previous_b) + ops.take(blank, t, axis=2)
        slot = ops.reshape(ops.equal(slots, t + 1), (1, 1, frames + 1))
        new_n = ops.where(slot, ops.expand_dims(n, -1), new_n)
        new_b = ops.where(slot, ops.expand_dims(b, -1), new_b)
        return t + 1, new_n, new_b, n, b

    impossible = ops.full(ops.shape(rn), NEG, dtype=rn.dtype)
    start = (
        ops.convert_to_tensor(0, dtype="int32"),
        impossible,
        impossible,
        impossible[:, :, 0],
        impossible[:, :, 0],
    )
    _, new_n, new_b, _, _ = ops.while_loop(more, frame, start)
    return new_n, new_b


def _rows(values, flat_rows):
    """Rows ``flat_rows`` of ``values`` (B, K, ...) flattened to (B * K, ...) and back."""
    rest = tuple(values.shape[2:])
    flat = ops.reshape(values, (-1, *rest))
    return ops.reshape(ops.take(flat, flat_rows, axis=0), (-1, values.shape[1], *rest))


def beam_search(
    members: list[Any],
    caches: list[dict[str, Any]],
    ctc_log_probs: Any,
    lengths: Any,
    beam: int,
    ctc_weight: float,
    active: Any = None,
    with_scores: bool = False,
    max_length: int = TARGET_LENGTH,
    language_model: LanguageModel | None = None,
):
    """Ids (B, 32) int32 (characters, EOS, PAD) of the best finished hypothesis per sequence
    (``with_scores``: and its score (B,)).

    ``members``/``caches``: the models whose decoders are averaged and their
    ``decoding.init_decoder_cache`` over B * ``beam`` rows (row b * beam + k: each sequence's
    cache repeated ``beam`` times); unused (may be empty) when ``ctc_weight`` is 1.
    ``ctc_log_probs`` (B, T, C): per-frame CTC log-probabilities (the members' mean), and
    ``lengths`` (B,) the valid frames of each; unused (may be None) when ``ctc_weight`` is 0.
    ``active`` (B,) bool: rows that are batch padding (False) never hold up the loop.
    At most 31 characters: the last position only admits EOS, as every training target ends
    (``max_length`` < 32: at most ``max_length - 1``, the benchmark's fixed phrase length).
    ``language_model``: shallow fusion, its weighted log-probability and bonus added to every
    candidate (``language_model.LanguageModel``); None or weight 0 and bonus 0: none.
    """
    if not 0.0 <= ctc_weight <= 1.0:
        raise ValueError(f"ctc_weight must be in [0, 1], got {ctc_weight}")
    if beam < 1:
        raise ValueError(f"beam must be >= 1, got {beam}")
    use_ctc, use_attention = ctc_weight > 0.0, ctc_weight < 1.0
    if use_attention and not members:
        raise ValueError("attention scores need at least one model with a decoder")
    batch = lengths.shape[0] if lengths.shape[0] is not None else ops.shape(lengths)[0]
    lengths = ops.cast(lengths, "int32")
    classes = ops.arange(NUM_CLASSES)
    eos_column = ops.equal(classes, EOS)
    character_column = classes < PAD
    slots = ops.reshape(ops.arange(TARGET_LENGTH), (1, 1, TARGET_LENGTH))
    offsets = ops.expand_dims(ops.arange(batch) * beam, 1)  # (B, 1)
    first_only = ops.equal(ops.arange(beam), 0)
    fusing = language_model is not None and language_model.fusing
    if fusing:
        context_rows = ops.convert_to_tensor(language_model.context_rows, "int32")
        lm_log_probs = ops.convert_to_tensor(language_model.fixed_point_log_probs, "int16")
        # a bonus per character lets a running hypothesis gain: at most this per step left
        headroom = max(language_model.bonus, 0.0)

    if use_ctc:
        ctc_log_probs = ops.cast(ctc_log_probs, "float32")
        rn, rb = empty_prefix_state(ctc_log_probs, beam)
    else:  # never read: placeholders of fixed shape
        rn = rb = ops.zeros((batch, beam, 1), "float32")
    best = ops.full((batch,), NEG, "float32")
    if active is not None:  # padding rows count as finished with the highest possible score
        best = ops.where(ops.cast(active, "bool"), best, 0.0)

    def keep_going(
        position, tokens, ids, attention, score, rn, rb, best, best_ids, selves, context, lm_score
    ):
        running_best = ops.max(score, axis=1)
        if fusing and headroom > 0:
            steps_left = ops.cast(max_length - 1 - position, "float32")
            running_best = running_best + headroom * ops.maximum(steps_left, 0.0)
        undecided = ops.any(ops.logical_and(running_best > DEAD, best < running_best))
        return ops.logical_and(position < max_length, undecided)

    def step(
        position, tokens, ids, attention, score, rn, rb, best, best_ids, selves, context, lm_score
    ):
        candidates = attention_candidates = None
        new_selves = selves
        if use_attention:
            flat_tokens = ops.reshape(tokens, (-1,))
            log_probs, new_selves = [], []
            for member, cache, (self_key, self_value) in zip(members, caches, selves, strict=True):
                logits, updated = decode_step(
                    member, {**cache, "self_key": self_key, "self_value": self_value},
                    flat_tokens, position,
                )  # fmt: skip
                log_probs.append(ops.log_softmax(ops.cast(logits, "float32"), axis=-1))
                new_selves.append((updated["self_key"], updated["self_value"]))
            step_log_probs = ops.mean(ops.stack(log_probs), axis=0)  # (B * K, C)
            step_log_probs = ops.reshape(step_log_probs, (-1, beam, NUM_CLASSES))
            attention_candidates = ops.expand_dims(attention, -1) + step_log_probs
            candidates = (1.0 - ctc_weight) * attention_candidates
        if use_ctc:
            ctc = ctc_weight * prefix_scores(rn, rb, tokens, ctc_log_probs, lengths)
            candidates = ctc if candidates is None else candidates + ctc
        if fusing:
            lm = ops.take(
                lm_log_probs, ops.take(context_rows, context, axis=0), axis=0
            )  # (B, K, C)
            bonus = ops.where(character_column, language_model.bonus, 0.0)
            scale = language_model.weight / FIXED_POINT_SCALE
            # cumulative, like the attention scores (the CTC prefix scores are whole already)
            lm_candidates = ops.expand_dims(lm_score, -1) + scale * ops.cast(lm, "float32") + bonus
            candidates = candidates + lm_candidates
        last_position = position >= max_length - 1
        allowed = ops.where(
            last_position, eos_column, ops.logical_or(character_column, eos_column)
        )  # (C,)
        alive = ops.expand_dims(score > DEAD, -1)  # (B, K, 1)
        candidates = ops.where(ops.logical_and(allowed, alive), candidates, NEG)

        # Finished: the EOS candidates among the overall best `beam`.
        flat = ops.reshape(candidates, (-1, beam * NUM_CLASSES))
        top_scores, top_index = ops.top_k(flat, beam)  # (B, K)
        top_index = ops.cast(top_index, "int32")
        ends = ops.logical_and(ops.equal(top_index % NUM_CLASSES, EOS), top_scores > DEAD)
        ending = ops.where(ends, top_scores, NEG)
        # top_k sorts, so the first EOS is the best (an integer argmax: the float one is a
        # bitwise op in Keras's TensorFlow backend, which TFLite lacks)
        chosen = ops.cast(ops.argmax(ops.cast(ends, "int32"), axis=1), "int32")  # (B,)
        ended_score = ops.max(ending, axis=1)
        ended_parent = _pick(top_index // NUM_CLASSES, chosen, beam)  # (B,)
        ended_ids = ops.take(ops.reshape(ids, (-1, TARGET_LENGTH)),
                             ops.arange(batch) * beam + ended_parent, axis=0)  # fmt: skip
        ended_ids = ops.where(ops.equal(slots[0], position), EOS, ended_ids)  # (B, 32)
        better = ended_score > best
        best_ids = ops.where(ops.expand_dims(better, 1), ended_ids, best_ids)
        best = ops.where(better, ended_score, best)

        # Running: the best `beam` children without EOS.
        running = ops.where(eos_column, NEG, candidates)
        score, index = ops.top_k(ops.reshape(running, (-1, beam * NUM_CLASSES)), beam)
        index = ops.cast(index, "int32")
        parents, characters = index // NUM_CLASSES, index % NUM_CLASSES  # (B, K)
        rows = ops.reshape(offsets + parents, (-1,))
        ids = _rows(ids, rows)
        ids = ops.where(ops.equal(slots, position), ops.expand_dims(characters, -1), ids)
        if use_attention:
            flat_attention = ops.reshape(attention_candidates, (-1, beam * NUM_CLASSES))
            attention = _pick(ops.expand_dims(flat_attention, 1), index, beam * NUM_CLASSES)
        if use_ctc:
            parent_last = _rows(tokens, rows)
            rn, rb = extend_state(
                _rows(rn, rows), _rows(rb, rows), parent_last, characters, ctc_log_probs, lengths
            )
        new_selves = [
            (ops.take(key, rows, axis=0), ops.take(value, rows, axis=0))
            for key, value in new_selves
        ]
        if fusing:
            context = language_model.next_context(_rows(context, rows), characters)
            flat_lm = ops.reshape(lm_candidates, (-1, beam * NUM_CLASSES))
            lm_score = _pick(ops.expand_dims(flat_lm, 1), index, beam * NUM_CLASSES)
        return (
            position + 1, characters, ids, attention, score, rn, rb, best, best_ids, new_selves,
            context, lm_score,
        )  # fmt: skip

    start = (
        ops.convert_to_tensor(0, dtype="int32"),
        ops.full((batch, beam), SOS, dtype="int32"),
        ops.full((batch, beam, TARGET_LENGTH), PAD, dtype="int32"),
        ops.zeros((batch, beam), "float32"),
        ops.where(ops.expand_dims(first_only, 0), ops.zeros((batch, beam)), NEG),
        rn,
        rb,
        best,
        ops.where(
            ops.equal(ops.arange(TARGET_LENGTH), 0),
            ops.full((batch, TARGET_LENGTH), EOS, "int32"),
            ops.full((batch, TARGET_LENGTH), PAD, "int32"),
        ),
        [(cache["self_key"], cache["self_value"]) for cache in caches] if use_attention else [],
        ops.full((batch, beam), language_model.start_context if fusing else 0, dtype="int32"),
        ops.zeros((batch, beam), "float32"),
    )
    ended = ops.while_loop(keep_going, step, start)
    return (ended[8], ended[7]) if with_scores else ended[8]


def frame_lengths(frame_mask):
    """(B, S) -> (B,) int32: the last frame with landmarks + 1 (``layers.ctc_parts``'s rule)."""
    positions = ops.arange(1, frame_mask.shape[1] + 1, dtype="int32")
    return ops.max(ops.where(frame_mask, positions, 0), axis=1)


def repeat_rows(values, beam: int):
    """(B, ...) -> (B * beam, ...): each row ``beam`` times in a row (b * beam + k)."""
    return ops.repeat(values, beam, axis=0)


class SearchDecoder(keras.Model):
    """{frames (B, S, F), active (B,) bool} -> ``beam_search`` ids (B, 32) int32.

    Wraps one trained model or several (their weights, not copies): CTC log-probabilities and
    decoder steps are the members' means. Not meant to be saved.
    """

    def __init__(
        self,
        model: Any,
        beam: int,
        ctc_weight: float,
        language_model: LanguageModel | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.members = members_of(model)
        self.beam = beam
        self.ctc_weight = ctc_weight
        self.language_model = language_model

    def call(self, inputs):
        frames = inputs["frames"]
        frame_mask = has_landmarks(frames)
        encoded = [encoder_of(m)(frames, training=False) for m in self.members]
        ctc_log_probs = None
        if self.ctc_weight > 0:
            ctc_log_probs = mean_log_probs(
                [ctc_classifier_of(m)(x) for m, x in zip(self.members, encoded, strict=True)]
            )
        caches = []
        if self.ctc_weight < 1:
            mask = repeat_rows(frame_mask, self.beam)
            caches = [
                init_decoder_cache(m, repeat_rows(x, self.beam), mask)
                for m, x in zip(self.members, encoded, strict=True)
            ]
        return beam_search(
            self.members,
            caches,
            ctc_log_probs,
            frame_lengths(frame_mask),
            self.beam,
            self.ctc_weight,
            inputs["active"],
            language_model=self.language_model,
        )


_last_search_decoder: list[SearchDecoder] = []  # one slot, as decoding.greedy_decoder_of


def search_decoder_of(
    model: Any, beam: int, ctc_weight: float, language_model: LanguageModel | None = None
) -> SearchDecoder:
    members = members_of(model)
    kept = _last_search_decoder[0] if _last_search_decoder else None
    if (
        kept is None
        or not same_members(kept.members, members)
        or (kept.beam, kept.ctc_weight) != (beam, ctc_weight)
        or kept.language_model is not language_model
    ):
        _last_search_decoder[:] = [
            SearchDecoder(members, beam, ctc_weight, language_model, name="beam_search")
        ]
    return _last_search_decoder[0]


def search_decode(
    model: Any,
    frames,
    beam: int,
    ctc_weight: float,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool = False,
    language_model: LanguageModel | None = None,
) -> np.ndarray:
    """``beam_search`` ids (N, 32) int32 of preprocessed ``frames`` by ``model`` or a list of
    models, in batches padded like ``decoding.greedy_decode``'s (``language_model``: fused)."""
    frames = _check_frames(frames)
    count = len(frames)
    batch_size = max(1, min(batch_size, 4096 // beam))  # (B, K, S, 62) candidate scores
    decoder = search_decoder_of(model, beam, ctc_weight, language_model)
    result = np.full((count, TARGET_LENGTH), PAD, dtype=np.int32)
    starts = range(0, count, batch_size)
    for start in tqdm(starts, desc="beam search", unit="batch", disable=not progress):
        batch = frames[start : start + batch_size]
        size = len(batch)
        padded = batch_size if count > batch_size else -(-size // BATCH_MULTIPLE) * BATCH_MULTIPLE
        if padded > size:
            batch = np.concatenate(
                [batch, np.zeros((padded - size, *batch.shape[1:]), batch.dtype)]
            )
        active = np.arange(len(batch)) < size
        ids = decoder.predict_on_batch({"frames": batch, "active": active})
        result[start : start + size] = np.asarray(ids)[:size]
    return result
