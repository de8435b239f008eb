"""The character n-gram language model: its estimates, tables and files, and its fusion in the
beam search (brute force over every labelling of a, b)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import run_on_other_backend
from keras import ops
from test_beam_search import A, B, concentrated_log_probs, labelling_probabilities

from aslfr_lib import beam_search, language_model
from aslfr_lib.vocab import CHAR_TO_ID, EOS, NUM_CHARACTERS, NUM_CLASSES, PAD, SOS, encode

PHRASES = ["ab", "ab", "abb", "b"]


def targets(phrases) -> np.ndarray:
    return np.stack([encode(p) for p in phrases])


def test_every_row_is_a_distribution_over_characters_and_eos():
    model = language_model.fit(targets(["main street", "6920 oak road", "www.shop.com"]), 4)
    probs = np.exp(model.log_probs.astype(np.float64))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)
    assert (probs[:, :NUM_CHARACTERS] > 0).all() and (probs[:, EOS] > 0).all()
    assert (model.log_probs[:, [PAD, SOS]] == language_model.NEG).all()
    assert model.context_rows.shape == (NUM_CLASSES**3,)


def test_witten_bell_estimates_by_hand():
    """Bigram of "ab", "ab", "abb", "b" (each + EOS), worked out by hand."""
    model = language_model.fit(targets(PHRASES), order=2)
    uniform = 1 / (NUM_CHARACTERS + 1)
    # Unigram: 12 events (a 3, b 5, EOS 4), 3 types, interpolated with the uniform.
    counts = {A: 3, B: 5, EOS: 4}
    total, types = sum(counts.values()), len(counts)
    unigram = {t: (counts.get(t, 0) + types * uniform) / (total + types) for t in (A, B, EOS)}
    other = CHAR_TO_ID["z"]

    def p(context: int, token: int) -> float:
        return math.exp(model.log_probs[model.context_rows[context], token])

    # After "a": b 3 times (1 type); after "b": b 1, EOS 4 (2 types); after SOS: a 3, b 1.
    assert p(A, B) == pytest.approx((3 + 1 * unigram[B]) / (3 + 1))
    assert p(A, EOS) == pytest.approx((0 + 1 * unigram[EOS]) / (3 + 1))
    assert p(B, EOS) == pytest.approx((4 + 2 * unigram[EOS]) / (5 + 2))
    assert p(SOS, A) == pytest.approx((3 + 2 * unigram[A]) / (4 + 2))
    unseen = (types * uniform) / (total + types)  # z never occurs: all from the uniform
    assert p(A, other) == pytest.approx(1 * unseen / (3 + 1))
    # A context never seen ("z") backs off to the unigram row.
    assert model.context_rows[other] == 0
    assert p(other, B) == pytest.approx(unigram[B])


def test_unseen_contexts_use_their_longest_seen_suffix():
    model = language_model.fit(targets(["abc", "xbd"]), order=3)
    c, d, z = CHAR_TO_ID["c"], CHAR_TO_ID["d"], CHAR_TO_ID["z"]
    seen = A * NUM_CLASSES + B  # "ab": followed by c only
    unseen = z * NUM_CLASSES + B  # "zb": never seen, its suffix "b" was (c once, d once)
    assert model.context_rows[unseen] == model.context_rows[B]  # order-2 row of "b"
    assert model.context_rows[seen] != model.context_rows[B]
    row_seen = model.log_probs[model.context_rows[seen]]
    row_suffix = model.log_probs[model.context_rows[B]]
    assert row_seen[c] > row_suffix[c] > row_suffix[z]
    assert row_suffix[c] == pytest.approx(row_suffix[d])


def test_phrase_log_prob_follows_the_contexts():
    model = language_model.fit(targets(PHRASES), order=3)
    start = model.start_context
    assert start == SOS * NUM_CLASSES + SOS
    after_a = model.next_context(start, A)
    expected = (
        model.log_probs[model.context_rows[start], A]
        + model.log_probs[model.context_rows[after_a], B]
        + model.log_probs[model.context_rows[model.next_context(after_a, B)], EOS]
    )
    assert model.phrase_log_prob([A, B]) == pytest.approx(float(expected))
    # A likely phrase scores above an unlikely one.
    assert model.phrase_log_prob([A, B]) > model.phrase_log_prob([B, A, A])


def test_files_round_trip_and_name_what_is_wrong(tmp_path):
    model = language_model.fit(targets(PHRASES), order=3)
    path = language_model.save(model, tmp_path)
    loaded = language_model.load(tmp_path)
    assert path.name == language_model.LANGUAGE_MODEL_FILE
    assert loaded.order == 3
    np.testing.assert_array_equal(loaded.context_rows, model.context_rows)
    np.testing.assert_array_equal(loaded.log_probs, model.log_probs)
    assert language_model.for_decoding(tmp_path / "absent", 0.0, 0.0) is None
    fused = language_model.for_decoding(tmp_path, 0.5, 1.0)
    assert (fused.weight, fused.bonus) == (0.5, 1.0)
    with pytest.raises(FileNotFoundError, match=r"absent/language_model\.npz.*lm_weight 0"):
        language_model.for_decoding(tmp_path / "absent", 1.0, 0.0)
    with pytest.raises(ValueError, match="lm_weight must be >= 0"):
        language_model.for_decoding(tmp_path, -1.0, 0.0)
    path.write_bytes(b"not an npz")
    with pytest.raises(ValueError, match=r"language_model\.npz: not a language model file"):
        language_model.load(tmp_path)


def test_bad_targets_are_named(tmp_path):
    rows = targets(["ab", "b"])
    rows[1, 1] = PAD  # "b" then PAD: no EOS
    with pytest.raises(ValueError, match=r"target 1 is not characters followed by EOS"):
        language_model.fit(rows)
    np.save(tmp_path / "y_train.npy", rows)
    with pytest.raises(ValueError, match=r"y_train\.npy: target 1"):
        language_model.fit_processed(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"absent/y_train\.npy"):
        language_model.fit_processed(tmp_path / "absent")
    with pytest.raises(ValueError, match=r"order must be in 1\.\.4"):
        language_model.fit(targets(PHRASES), order=5)


def test_fixed_point_table_is_within_half_a_step():
    model = language_model.fit(targets(PHRASES), order=2)
    fixed = model.fixed_point_log_probs.astype(np.float64) / language_model.FIXED_POINT_SCALE
    predicted = model.log_probs > language_model.FIXED_POINT_FLOOR
    step = 0.5 / language_model.FIXED_POINT_SCALE
    np.testing.assert_allclose(fixed[predicted], model.log_probs[predicted], atol=step + 1e-6)
    assert fixed[~predicted].max() == language_model.FIXED_POINT_FLOOR


# ----------------------------------------------------------------------------------------------
# Fusion in the beam search


def fused_search(log_probs, lengths, beam, model=None, with_scores=False):
    ids, scores = beam_search.beam_search(
        [], [], log_probs, np.asarray(lengths, np.int32), beam, 1.0,
        with_scores=True, language_model=model,
    )  # fmt: skip
    ids = ops.convert_to_numpy(ids)
    phrases = [tuple(int(i) for i in row[: list(row).index(EOS)]) for row in ids]
    return (phrases, ops.convert_to_numpy(scores)) if with_scores else phrases


def fixed_point_lm_score(model, phrase) -> float:
    table = model.fixed_point_log_probs.astype(np.float64) / language_model.FIXED_POINT_SCALE
    context, total = model.start_context, 0.0
    for token in [*phrase, EOS]:
        total += table[model.context_rows[context], token]
        context = model.next_context(context, token)
    return model.weight * total + model.bonus * len(phrase)


@pytest.mark.parametrize(("weight", "bonus"), [(1.0, 0.0), (1.0, 1.5), (3.0, 2.0)])
def test_fused_search_finds_the_best_fused_score(weight, bonus):
    model = language_model.fit(targets(["ab", "abab", "ba", "bb", "aab"]), 3).fused(weight, bonus)
    log_probs = concentrated_log_probs(6, seed=3, batch=4)
    lengths = [6, 6, 5, 4]
    found, scores = fused_search(log_probs, lengths, beam=8, model=model, with_scores=True)
    for row, length in enumerate(lengths):
        truth = labelling_probabilities(log_probs[row, :length])
        fused = {
            phrase: math.log(p) + fixed_point_lm_score(model, phrase)
            for phrase, p in truth.items()
            if p > 1e-20
        }
        best = max(fused, key=fused.get)
        assert found[row] == best, row
        assert scores[row] == pytest.approx(fused[best], abs=1e-3)


def test_the_language_model_settles_what_the_frames_leave_open():
    """One frame as likely "a" as "b": the phrases the model learned from decide."""
    log_probs = np.full((1, 3, NUM_CLASSES), -30.0, np.float32)
    log_probs[0, :, beam_search.CTC_BLANK] = np.log(0.5)
    log_probs[0, 1, [A, B]] = np.log(0.25)
    log_probs[0, [0, 2], beam_search.CTC_BLANK] = 0.0
    likes_a = language_model.fit(targets(["a", "a", "ab"]), 2).fused(1.0, 0.0)
    likes_b = language_model.fit(targets(["b", "b", "ba"]), 2).fused(1.0, 0.0)
    assert fused_search(log_probs, [3], 4, likes_a) == [(A,)]
    assert fused_search(log_probs, [3], 4, likes_b) == [(B,)]
    # Weight and bonus 0: exactly the search without a language model.
    plain = fused_search(concentrated_log_probs(6, 5, 3), [6, 5, 6], 4)
    off = fused_search(concentrated_log_probs(6, 5, 3), [6, 5, 6], 4, likes_a.fused(0.0, 0.0))
    assert plain == off


def test_the_fused_search_runs_on_the_other_backend():
    """The search is ``keras.ops``: a GPU machine's JAX finds the same phrases."""
    run_on_other_backend(__file__)
