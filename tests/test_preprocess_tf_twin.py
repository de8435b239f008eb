"""The in-graph preprocessing (TF eager and the converted .tflite run in LiteRT) equals numpy:
``preprocess_sequence`` and the path training takes (``clean_sequence`` stored ragged by
``aslfr preprocess``, ``resize_frames`` per batch in ``ShuffledBatches``)."""

from __future__ import annotations

import numpy as np
import pytest

from aslfr_lib import landmarks
from aslfr_lib.preprocess import RaggedFrames, clean_sequence, preprocess_sequence
from aslfr_lib.vocab import encode

tf = pytest.importorskip("tensorflow")
from ai_edge_litert.interpreter import Interpreter  # noqa: E402

from aslfr_lib.export import preprocessing  # noqa: E402

FRAMES = 128
HAND_FRAME_COUNTS = (0, 1, 5, 127, 128, 129, 400, 900)
TOLERANCE = 1e-5


def twin_case(hand_frames: int, left_handed: bool, seed: int) -> np.ndarray:
    """Raw [n, 164] with NaN where missing: ``hand_frames`` frames showing a hand, interleaved
    with handless frames, NaN bursts over a whole hand, and the other hand now and then."""
    rng = np.random.default_rng(seed)
    handless = hand_frames // 3 + 4
    total = hand_frames + handless
    raw = np.full((total, landmarks.NUM_FEATURES), np.nan, dtype=np.float32)
    raw[:, landmarks.LIPS] = rng.uniform(0.3, 0.7, (total, 80))
    raw[rng.random(total) < 0.05, landmarks.LIPS] = np.nan  # lips lost now and then
    with_hand = np.sort(rng.permutation(total)[:hand_frames])
    dominant, other = (
        (landmarks.LEFT_HAND, landmarks.RIGHT_HAND)
        if left_handed
        else (landmarks.RIGHT_HAND, landmarks.LEFT_HAND)
    )
    raw[with_hand, dominant] = rng.uniform(0.05, 0.95, (hand_frames, 42))
    both = with_hand[rng.random(hand_frames) < 0.2]  # the other hand in some hand frames
    raw[both, other] = rng.uniform(0.05, 0.95, (len(both), 42))
    burst = rng.integers(0, max(hand_frames - 3, 1))  # a few hand frames lose single points
    raw[with_hand[burst : burst + 3], dominant.start + 2 : dominant.start + 9] = np.nan
    return raw


CASES = [
    pytest.param(n, left, id=f"{n}-{'left' if left else 'right'}")
    for n in HAND_FRAME_COUNTS
    for left in (False, True)
]


@pytest.fixture(scope="module")
def eager():
    return preprocessing.preprocess_function(frames=FRAMES, mirror=True)


@pytest.fixture(scope="module")
def litert(eager):
    """The converted flatbuffer in LiteRT; conversion fails if any op needs Flex."""
    flatbuffer = preprocessing.convert_to_tflite(eager)
    interpreter = Interpreter(model_content=flatbuffer)
    (inputs,) = interpreter.get_input_details()
    (outputs,) = interpreter.get_output_details()
    assert list(inputs["shape_signature"]) == [-1, landmarks.NUM_FEATURES]

    def run(raw: np.ndarray) -> np.ndarray:
        interpreter.resize_tensor_input(inputs["index"], list(raw.shape))
        interpreter.allocate_tensors()
        interpreter.set_tensor(inputs["index"], raw)
        interpreter.invoke()
        return interpreter.get_tensor(outputs["index"]).copy()

    return run


def test_cases_have_the_intended_hand_frames_and_handedness():
    for n in (5, 400):
        for left in (False, True):
            raw = twin_case(n, left, seed=n)
            assert len(clean_sequence(raw)) == n
            assert len(raw) > n and np.isnan(raw).any()
            nonzero = np.nan_to_num(clean_sequence(raw, mirror=False)) != 0
            left_frames = nonzero[:, landmarks.LEFT_HAND].any(axis=1).sum()
            right_frames = nonzero[:, landmarks.RIGHT_HAND].any(axis=1).sum()
            assert (left_frames > right_frames) == left


@pytest.mark.parametrize(("hand_frames", "left_handed"), CASES)
def test_numpy_eager_and_litert_agree(hand_frames, left_handed, eager, litert):
    raw = twin_case(hand_frames, left_handed, seed=hand_frames + 7 * left_handed)
    expected = preprocess_sequence(raw, frames=FRAMES, mirror=True)
    from_eager = eager(tf.constant(raw)).numpy()
    from_litert = litert(raw)
    assert from_eager.shape == from_litert.shape == (FRAMES, landmarks.NUM_FEATURES)
    assert np.abs(from_eager - expected).max() <= TOLERANCE
    assert np.abs(from_litert - expected).max() <= TOLERANCE
    if hand_frames == 0:
        np.testing.assert_array_equal(from_litert, 0)
    elif left_handed:  # mirrored: the dominant hand fills the right-hand slots
        assert np.any(from_litert[:, landmarks.RIGHT_HAND] != 0)


@pytest.mark.parametrize("rows", [0, 1, 6])
def test_sequences_without_hands_give_zeros(rows, eager, litert):
    raw = np.full((rows, landmarks.NUM_FEATURES), np.nan, np.float32)
    raw[:, landmarks.LIPS] = 0.5
    for output in (eager(tf.constant(raw)).numpy(), litert(raw)):
        np.testing.assert_array_equal(output, np.zeros((FRAMES, landmarks.NUM_FEATURES)))


@pytest.mark.parametrize("mirror", [False, True])
def test_other_settings_agree_in_eager(mirror):
    function = preprocessing.preprocess_function(frames=20, mirror=mirror)
    for hand_frames in (3, 20, 57):
        raw = twin_case(hand_frames, left_handed=True, seed=hand_frames)
        expected = preprocess_sequence(raw, frames=20, mirror=mirror)
        assert np.abs(function(tf.constant(raw)).numpy() - expected).max() <= TOLERANCE


def test_training_loader_agrees_with_eager(eager):
    """What the model trains on: stored cleaned frames, resized per batch by the loader."""
    from aslfr_lib.data import ShuffledBatches

    raws = [
        twin_case(n, left, seed=n + 7 * left) for n in HAND_FRAME_COUNTS for left in (False, True)
    ]
    ragged = RaggedFrames.from_sequences([clean_sequence(raw, mirror=True) for raw in raws])
    targets = np.stack([encode("a")] * len(raws))
    batches = ShuffledBatches(
        ragged, targets, len(raws), shuffle=False, full_batches=False, length=FRAMES
    )
    (inputs, _) = batches[0]
    for raw, loaded in zip(raws, inputs["frames"], strict=True):
        assert np.abs(eager(tf.constant(raw)).numpy() - loaded).max() <= TOLERANCE
