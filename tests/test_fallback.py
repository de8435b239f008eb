"""The fallback phrase for inputs with too few hand frames: choice, threshold, file, export."""

import numpy as np
import pytest

from aslfr_lib import fallback
from aslfr_lib.scoring import competition_score


def test_choose_phrase_beats_predicting_nothing_and_the_most_common_phrase():
    rng = np.random.default_rng(0)
    words = ["street", "avenue", "north", "east", "road", "lane"]
    phrases = [
        f"{rng.integers(10, 999)} {rng.choice(words)} {rng.choice(words)}" for _ in range(300)
    ]
    phrase, score = fallback.choose_phrase(phrases)
    assert score == pytest.approx(competition_score(phrases, [phrase] * len(phrases)), abs=0.02)
    assert score > competition_score(phrases, [""] * len(phrases)) == 0.0
    assert score > competition_score(phrases, [phrases[0]] * len(phrases))


def test_choose_phrase_of_one_repeated_phrase_is_that_phrase():
    assert fallback.choose_phrase(["abc d"] * 20) == ("abc d", 1.0)
    with pytest.raises(ValueError, match="at least one"):
        fallback.choose_phrase(["", ""])


def test_threshold_is_where_the_fallback_stops_beating_the_model():
    targets = ["the road"] * 8
    hand_frames = [0, 1, 2, 3, 5, 8, 13, 21]
    junk, good = "qqqqqqqqqqqq", "the road"
    predictions = [junk, junk, junk, good, good, good, good, good]
    assert fallback.choose_min_hand_frames("the rd", targets, predictions, hand_frames) == 3
    assert fallback.choose_min_hand_frames("zz", targets, [good] * 8, hand_frames) == 1


def test_apply_save_and_load(tmp_path):
    chosen = fallback.Fallback("ae re", min_hand_frames=3, train_score=0.15)
    assert chosen.apply(["x", "y", "z"], [0, 3, 2]) == ["ae re", "y", "ae re"]
    with pytest.raises(ValueError, match="2 predictions for 1"):
        chosen.apply(["x", "y"], [1])
    assert fallback.load(tmp_path) is None  # runs trained before fallbacks existed
    fallback.save(chosen, tmp_path)
    assert fallback.load(tmp_path) == chosen
    (tmp_path / fallback.FALLBACK_FILE).write_text('{"phrase": "a", "bad": 1}')
    with pytest.raises(ValueError, match="not a fallback file"):
        fallback.load(tmp_path)


@pytest.mark.slow
def test_exported_model_predicts_the_fallback_below_the_threshold(tmp_path):
    import keras

    from aslfr_lib import export, landmarks
    from aslfr_lib.model import ModelConfig, build_model
    from aslfr_lib.runner import HarnessRunner

    keras.utils.set_random_seed(0)
    model = build_model(
        ModelConfig(frames=16, encoder_dim=16, encoder_blocks=1, num_heads=2, ctc_weight=1.0)
    )
    chosen = fallback.Fallback("ae re", min_hand_frames=4)
    plain = HarnessRunner(export.export_model(model, tmp_path / "plain", decoder="ctc").paths.zip)
    with_fallback = export.export_model(model, tmp_path / "fb", decoder="ctc", fallback=chosen)
    runner = HarnessRunner(with_fallback.paths.zip)
    rng = np.random.default_rng(0)
    raw = rng.random((12, landmarks.NUM_FEATURES), dtype=np.float32)
    hands = np.zeros(landmarks.NUM_FEATURES, bool)
    hands[landmarks.LEFT_HAND] = hands[landmarks.RIGHT_HAND] = True
    for shown, expected_fallback in ((0, True), (3, True), (4, False), (12, False)):
        frames = raw.copy()
        frames[shown:, hands] = np.nan  # only the first `shown` frames show a hand
        got = runner.predict_phrase(frames)
        if expected_fallback:
            assert got == "ae re", shown
        else:
            assert got == plain.predict_phrase(frames), shown
