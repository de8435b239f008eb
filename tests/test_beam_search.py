"""Beam search with CTC prefix scores, and ensembles of the Keras decoders (TF backend).

The CTC parts are checked against brute force: with per-frame probabilities concentrated on
blank and two characters, every alignment of a few frames can be enumerated, so prefix
probabilities and the most probable phrase are known exactly.
"""

from __future__ import annotations

import dataclasses
import itertools

import keras
import numpy as np
import pytest
from helpers import tiny_config
from keras import ops
from test_export import randomize

from aslfr_lib import beam_search
from aslfr_lib.decoding import (
    decode,
    greedy_decode,
    ids_to_phrases,
    init_decoder_cache,
    mean_log_probs,
    members_of,
    resolve_decoder,
)
from aslfr_lib.layers import has_landmarks
from aslfr_lib.model import CTC_BLANK, build_model, ctc_classifier_of, decoder_of, encoder_of
from aslfr_lib.vocab import CHAR_TO_ID, EOS, NUM_CLASSES, SOS, TARGET_LENGTH, decode_like_harness

A, B = CHAR_TO_ID["a"], CHAR_TO_ID["b"]
SMALL = (CTC_BLANK, A, B)  # the classes brute force enumerates; the rest get ~e-30
JOINT = tiny_config(ctc_weight=0.5)


def concentrated_log_probs(frames: int, seed: int, batch: int = 1) -> np.ndarray:
    """(batch, frames, 62) log-probabilities with nearly all mass on blank, a and b."""
    rng = np.random.default_rng(seed)
    logits = np.full((batch, frames, NUM_CLASSES), -30.0)
    logits[:, :, SMALL] = rng.normal(0, 1.5, (batch, frames, 3))
    return np.log(np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)).astype(np.float32)


def labelling_probabilities(log_probs: np.ndarray) -> dict[tuple[int, ...], float]:
    """P(labelling) of every collapsed labelling over the SMALL classes (brute force)."""
    found: dict[tuple[int, ...], float] = {}
    for path in itertools.product(SMALL, repeat=len(log_probs)):
        probability = float(np.exp(sum(log_probs[t, c] for t, c in enumerate(path))))
        collapsed = tuple(
            c for i, c in enumerate(path) if c != CTC_BLANK and path[i - 1 : i] != (c,)
        )
        found[collapsed] = found.get(collapsed, 0.0) + probability
    return found


def state_of(prefix: tuple[int, ...], log_probs: np.ndarray, length: int):
    """(rn, rb, last) of ``prefix`` by ``beam_search.extend_state``, a character at a time."""
    lp = ops.convert_to_tensor(log_probs)
    lengths = ops.convert_to_tensor(np.array([length], np.int32))
    rn, rb = beam_search.empty_prefix_state(lp, 1)
    last = SOS
    for character in prefix:
        rn, rb = beam_search.extend_state(
            rn, rb, np.array([[last]], np.int32), np.array([[character]], np.int32), lp, lengths
        )
        last = character
    return rn, rb, last


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_prefix_scores_equal_brute_force(seed):
    frames, length = 7, 6  # the last frame is padding and must not count
    log_probs = concentrated_log_probs(frames, seed)
    truth = labelling_probabilities(log_probs[0, :length])
    lengths = np.array([length], np.int32)
    for prefix in [(), (A,), (B, A), (A, A), (A, B, A)]:
        rn, rb, last = state_of(prefix, log_probs, length)
        scores = ops.convert_to_numpy(
            beam_search.prefix_scores(rn, rb, np.array([[last]], np.int32), log_probs, lengths)
        )[0, 0]
        whole = truth.get(prefix, 0.0)
        np.testing.assert_allclose(np.exp(scores[EOS]), whole, rtol=1e-4, atol=1e-12)
        for character in (A, B):
            extended = prefix + (character,)
            starts = sum(p for labels, p in truth.items() if labels[: len(extended)] == extended)
            np.testing.assert_allclose(np.exp(scores[character]), starts, rtol=1e-4, atol=1e-12)


def search(log_probs: np.ndarray, lengths, beam: int) -> list[tuple[int, ...]]:
    ids = ops.convert_to_numpy(
        beam_search.beam_search([], [], log_probs, np.asarray(lengths, np.int32), beam, 1.0)
    )
    return [tuple(int(i) for i in row[: list(row).index(EOS)]) for row in ids]


def test_ctc_beam_search_finds_the_most_probable_phrase():
    frames = 6
    log_probs = concentrated_log_probs(frames, seed=7, batch=6)
    lengths = [6, 6, 5, 6, 4, 0]
    found = search(log_probs, lengths, beam=8)
    for row, length in enumerate(lengths):
        truth = labelling_probabilities(log_probs[row, :length]) if length else {(): 1.0}
        assert found[row] == max(truth, key=truth.get), row
    # A narrow beam still returns a phrase the alignments can produce.
    for row, phrase in enumerate(search(log_probs, lengths, beam=1)):
        assert set(phrase) <= {A, B}
        assert len(phrase) <= lengths[row]


def test_ctc_beam_search_caps_phrases_at_31_characters():
    log_probs = np.full((1, 64, NUM_CLASSES), -30.0, np.float32)
    log_probs[0, ::2, A], log_probs[0, 1::2, CTC_BLANK] = 0.0, 0.0  # a_a_a_...: 32 "a"s
    (phrase,) = search(log_probs, [64], beam=2)
    assert phrase == (A,) * (TARGET_LENGTH - 1)


# ----------------------------------------------------------------------------------------------
# On models


def randomized(config=JOINT, seed: int = 0):
    """Random weights whose greedy phrases end at EOS for about half of ``sample_frames``."""
    keras.utils.set_random_seed(seed)
    model = build_model(config)
    if config.has_decoder:
        randomize(model, seed, calibration_frames=sample_frames(seed=seed))
    return model


def sample_frames(count: int = 16, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    frames = rng.normal(size=(count, JOINT.frames, JOINT.features)).astype(np.float32)
    for index in range(count):
        frames[index, 8 + 3 * index :] = 0.0
    frames[-1] = 0.0
    return frames


def test_beam_of_one_without_ctc_is_greedy_attention():
    model, frames = randomized(seed=1), sample_frames(seed=1)
    greedy = greedy_decode(model, frames)
    searched = beam_search.search_decode(model, frames, beam=1, ctc_weight=0.0)
    short = [EOS in row[: TARGET_LENGTH - 1] for row in greedy]  # the search stops at 31
    assert sum(short) >= 5
    np.testing.assert_array_equal(searched[short], greedy[short])


@pytest.mark.parametrize(("beam", "ctc_weight"), [(1, 0.3), (4, 0.3), (3, 1.0), (3, 0.0)])
def test_search_scores_are_the_joint_scores_of_the_phrases_found(beam, ctc_weight):
    """The score the search ranks by is (1 - w) log P_att(phrase + EOS) + w log P_ctc(phrase),
    recomputed here from the full decoder and ``tf.nn.ctc_loss``."""
    import tensorflow as tf

    model, frames = randomized(seed=2), sample_frames(seed=2)
    inputs = tf.constant(frames)
    mask = has_landmarks(inputs)
    encoded = encoder_of(model)(inputs)
    ctc = mean_log_probs([ctc_classifier_of(model)(encoded)])
    repeated = beam_search.repeat_rows
    caches = [init_decoder_cache(model, repeated(encoded, beam), repeated(mask, beam))]
    lengths = beam_search.frame_lengths(mask)
    ids, scores = beam_search.beam_search(
        [model], caches, ctc, lengths, beam, ctc_weight, with_scores=True
    )
    ids = ops.convert_to_numpy(ids)
    expected = joint_scores(model, frames, ids, ctc_weight)
    np.testing.assert_allclose(ops.convert_to_numpy(scores), expected, rtol=1e-5, atol=1e-4)
    lengths = [list(row).index(EOS) for row in ids]
    assert len(set(lengths)) > 1  # phrases end at different steps


def joint_scores(model, frames, ids, ctc_weight) -> np.ndarray:
    """(1 - w) log P_att(phrase + EOS) + w log P_ctc(phrase), computed from the full models."""
    import tensorflow as tf

    encoded = encoder_of(model)(frames)
    frame_mask = np.any(frames != 0, -1)
    tokens = np.concatenate([np.full((len(ids), 1), SOS), ids[:, :-1]], axis=1).astype(np.int32)
    inputs = {"encoded": encoded, "frame_mask": frame_mask, "tokens": tokens}
    logits = decoder_of(model)({k: ops.convert_to_tensor(v) for k, v in inputs.items()})
    log_probs = ops.convert_to_numpy(ops.log_softmax(logits))
    ctc = ops.convert_to_numpy(ops.log_softmax(ctc_classifier_of(model)(encoded)))
    lengths = ops.convert_to_numpy(beam_search.frame_lengths(frame_mask))
    scores = []
    for row in range(len(ids)):
        end = list(ids[row]).index(EOS)
        attention = sum(log_probs[row, i, ids[row, i]] for i in range(end + 1))
        labels = ids[row, :end]
        ctc_loss = tf.nn.ctc_loss(
            labels[None].astype(np.int32),
            ctc[row : row + 1],
            [len(labels)],
            [max(int(lengths[row]), 1)],
            logits_time_major=False,
            blank_index=CTC_BLANK,
        )
        ctc_score = -float(ctc_loss[0]) if ctc_weight and lengths[row] else 0.0  # no frames:
        # only the empty phrase, with probability 1
        scores.append((1 - ctc_weight) * attention + ctc_weight * ctc_score)
    return np.array(scores)


def test_every_decoder_runs_on_ensembles_and_two_copies_equal_one():
    model, frames = randomized(seed=3), sample_frames(seed=3)
    for decoder in ("ctc", "attention", "ctc_beam", "joint"):
        single = decode(model, frames, decoder, beam=3 if "_" in decoder else None)
        doubled = decode([model, model], frames, decoder, beam=3 if "_" in decoder else None)
        np.testing.assert_array_equal(single, doubled, err_msg=decoder)
    other = randomized(seed=4)
    pair = decode([model, other], frames, "joint", beam=3)
    assert pair.shape == (len(frames), TARGET_LENGTH)
    assert not (pair == decode(model, frames, "joint", beam=3)).all()


def test_ctc_ensemble_is_argmax_of_mean_log_probabilities():
    first, second = randomized(seed=5), randomized(seed=6)
    frames = sample_frames(seed=5)
    ids = decode([first, second], frames, "ctc")

    def log_probs(model):
        logits = ctc_classifier_of(model)(encoder_of(model)(frames))
        return ops.convert_to_numpy(ops.log_softmax(logits))

    mean = (log_probs(first) + log_probs(second)) / 2
    lengths = ops.convert_to_numpy(beam_search.frame_lengths(np.any(frames != 0, -1)))
    for row in range(len(frames)):
        best = np.argmax(mean[row, : lengths[row]], axis=-1)
        expected = [c for i, c in enumerate(best) if c < CTC_BLANK and (i == 0 or best[i - 1] != c)]
        assert decode_like_harness(ids[row]) == decode_like_harness(expected[:31])
    assert ids_to_phrases(ids) != ids_to_phrases(decode(first, frames, "ctc"))


def test_decoders_name_the_member_without_the_head_they_need():
    ctc_only = randomized(dataclasses.replace(JOINT, ctc_weight=1.0), seed=1)
    attention_only = randomized(dataclasses.replace(JOINT, ctc_weight=0.0), seed=1)
    assert resolve_decoder([ctc_only, ctc_only], "auto") == "ctc"
    assert resolve_decoder([ctc_only, randomized(seed=1)], "ctc_beam") == "ctc_beam"
    with pytest.raises(ValueError, match="member 2 has no attention head.*joint"):
        resolve_decoder([randomized(seed=1), ctc_only], "joint")
    with pytest.raises(ValueError, match="this model has no ctc head.*ctc_beam"):
        resolve_decoder(attention_only, "ctc_beam")
    assert members_of([ctc_only]) == [ctc_only]
