"""aslfr_lib.augmentation: each augmentation's effect on values, zeros kept, determinism, config."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from aslfr_lib import landmarks, preprocess
from aslfr_lib.augmentation import AugmentationConfig, augment_sequence, mask_time

COLUMN = {name: i for i, name in enumerate(landmarks.SELECTED_COLUMNS)}
X_COLUMNS = np.flatnonzero(landmarks.IS_X)
Y_COLUMNS = np.array([COLUMN["y" + landmarks.SELECTED_COLUMNS[i][1:]] for i in X_COLUMNS])

EVERYTHING = AugmentationConfig(
    affine_probability=1.0,
    hand_jitter_probability=1.0,
    finger_bend_probability=1.0,
    resample_probability=1.0,
    landmark_dropout_probability=1.0,
    flip_probability=1.0,
    time_mask_probability=1.0,
)
# Only one augmentation on, with its default ranges.
ONLY = {
    "flip": AugmentationConfig(flip_probability=1.0),
    "affine": AugmentationConfig(affine_probability=1.0),
    "hand_jitter": AugmentationConfig(hand_jitter_probability=1.0),
    "finger_bend": AugmentationConfig(finger_bend_probability=1.0),
    "landmark_dropout": AugmentationConfig(landmark_dropout_probability=1.0),
}


def make_sequence(length: int = 30, seed: int = 0) -> np.ndarray:
    """(length, 164): right hand and lips in every frame, left hand in every third frame,
    lip point face_0 never, right thumb tip missing in frame 1 (as MediaPipe leaves them)."""
    rng = np.random.default_rng(seed)
    frames = rng.uniform(0.2, 0.8, (length, landmarks.NUM_FEATURES)).astype(np.float32)
    frames[np.arange(length) % 3 != 0, landmarks.LEFT_HAND] = 0
    frames[:, [COLUMN["x_face_0"], COLUMN["y_face_0"]]] = 0
    frames[1:2, [COLUMN["x_right_hand_4"], COLUMN["y_right_hand_4"]]] = 0
    return frames


def points(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(L, 82, 2) coordinates and (L, 82) presence."""
    xy = np.stack([frames[:, X_COLUMNS], frames[:, Y_COLUMNS]], axis=-1)
    return xy, np.any(xy != 0, axis=-1)


def finger_columns(finger: int) -> list[int]:
    """x and y columns of finger ``finger`` (0 thumb ... 4 pinky) of both hands."""
    return [
        COLUMN[f"{axis}_{hand}_{1 + 4 * finger + k}"]
        for hand in ("left_hand", "right_hand")
        for axis in ("x", "y")
        for k in range(4)
    ]


# ----------------------------------------------------------------------------------------------
# General properties


def test_default_config_is_identity_and_disabled():
    frames = make_sequence()
    config = AugmentationConfig()
    assert not config.enabled
    assert EVERYTHING.enabled and AugmentationConfig(resample_probability=0.1).enabled
    out = augment_sequence(frames, np.random.default_rng(0), config)
    assert out is not frames and out.dtype == np.float32
    np.testing.assert_array_equal(out, frames)
    np.testing.assert_array_equal(mask_time(frames, np.random.default_rng(0), config), frames)


def test_same_seed_same_output_different_seed_differs_input_untouched():
    frames = make_sequence()
    before = frames.copy()
    first = augment_sequence(frames, np.random.default_rng(7), EVERYTHING)
    again = augment_sequence(frames, np.random.default_rng(7), EVERYTHING)
    other = augment_sequence(frames, np.random.default_rng(8), EVERYTHING)
    np.testing.assert_array_equal(first, again)
    assert first.shape != other.shape or not np.array_equal(first, other)
    np.testing.assert_array_equal(frames, before)
    masked = mask_time(frames, np.random.default_rng(3), EVERYTHING)
    np.testing.assert_array_equal(masked, mask_time(frames, np.random.default_rng(3), EVERYTHING))
    np.testing.assert_array_equal(frames, before)


@pytest.mark.parametrize("name", ["affine", "hand_jitter", "finger_bend"])
def test_moves_keep_exactly_the_missing_points_missing(name):
    frames = make_sequence()
    out = augment_sequence(frames, np.random.default_rng(1), ONLY[name])
    np.testing.assert_array_equal(out == 0, frames == 0)
    assert not np.allclose(out, frames)


@pytest.mark.parametrize("name", ["flip", "landmark_dropout"])
def test_zeros_stay_zeros(name):
    frames = make_sequence()
    out = augment_sequence(frames, np.random.default_rng(1), ONLY[name])
    zeros = preprocess.mirror_frames(frames) == 0 if name == "flip" else frames == 0
    assert np.all(out[zeros] == 0)


def test_resampling_keeps_missing_points_missing_and_never_half_a_hand():
    frames = make_sequence(length=31)
    config = AugmentationConfig(resample_probability=1.0)
    for seed in range(5):
        out = augment_sequence(frames, np.random.default_rng(seed), config)
        assert np.all(out[:, [COLUMN["x_face_0"], COLUMN["y_face_0"]]] == 0)
        left_present = out[:, landmarks.LEFT_HAND] != 0  # the left hand comes and goes
        assert np.all(left_present.all(axis=1) | ~left_present.any(axis=1))
        assert 0 < left_present.all(axis=1).sum() < len(out)


@pytest.mark.parametrize("length", [1, 2, 45])
def test_no_nan_or_inf_with_missing_hands_and_empty_frames(length):
    frames = make_sequence(length=length)
    frames[::2, landmarks.RIGHT_HAND] = 0
    frames[1::4] = 0
    for seed in range(10):
        out = augment_sequence(frames, np.random.default_rng(seed), EVERYTHING)
        assert len(out) >= 1 and np.isfinite(out).all()
        assert np.isfinite(mask_time(out, np.random.default_rng(seed), EVERYTHING)).all()
    empty = np.zeros((length, landmarks.NUM_FEATURES), np.float32)
    out = augment_sequence(empty, np.random.default_rng(0), EVERYTHING)
    assert len(out) >= 1 and not out.any()


# ----------------------------------------------------------------------------------------------
# One augmentation at a time


def test_flip_equals_mirror_frames():
    frames = make_sequence()
    out = augment_sequence(frames, np.random.default_rng(0), ONLY["flip"])
    np.testing.assert_array_equal(out, preprocess.mirror_frames(frames))


def test_affine_with_only_a_shift_moves_every_present_point_by_one_shift():
    frames = make_sequence()
    config = AugmentationConfig(
        affine_probability=1.0, affine_scale=0, affine_rotation=0, affine_shear=0, affine_shift=0.05
    )
    out = augment_sequence(frames, np.random.default_rng(2), config)
    before, present = points(frames)
    moved = points(out)[0][present] - before[present]  # (present points, 2)
    shift = moved[0]
    np.testing.assert_allclose(moved, np.broadcast_to(shift, moved.shape), atol=1e-6)
    assert np.all((np.abs(shift) > 0) & (np.abs(shift) <= 0.05))
    np.testing.assert_array_equal(out == 0, frames == 0)


def test_rotation_preserves_distances_between_present_points():
    frames = make_sequence()
    config = AugmentationConfig(
        affine_probability=1.0, affine_scale=0, affine_rotation=30, affine_shear=0, affine_shift=0
    )
    out = augment_sequence(frames, np.random.default_rng(4), config)
    (before, present), (after, _) = points(frames), points(out)

    def distances(xy):  # (L, 82, 82) between the points of each frame
        return np.linalg.norm(xy[:, :, None] - xy[:, None, :], axis=-1)

    pairs = present[:, :, None] & present[:, None, :]
    np.testing.assert_allclose(distances(after)[pairs], distances(before)[pairs], atol=1e-5)
    assert np.abs(after - before)[present].max() > 0.01  # it did rotate


def test_affine_scale_scales_distances_by_one_factor_in_range():
    frames = make_sequence()
    config = AugmentationConfig(
        affine_probability=1.0, affine_scale=0.2, affine_rotation=0, affine_shear=0, affine_shift=0
    )
    out = augment_sequence(frames, np.random.default_rng(5), config)
    (before, present), (after, _) = points(frames), points(out)
    ratio = np.linalg.norm(after[0, present[0]] - after[0, present[0]].mean(0), axis=-1) / (
        np.linalg.norm(before[0, present[0]] - before[0, present[0]].mean(0), axis=-1)
    )
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-4)
    assert 0.8 <= ratio[0] <= 1.2 and abs(ratio[0] - 1) > 1e-3


def test_hand_jitter_moves_hands_only_and_keeps_their_centres_close():
    frames = make_sequence()
    out = augment_sequence(frames, np.random.default_rng(6), ONLY["hand_jitter"])
    np.testing.assert_array_equal(out[:, landmarks.LIPS], frames[:, landmarks.LIPS])
    right = slice(21, 42)  # right hand among the 82 points
    (before, present), (after, _) = points(frames), points(out)
    assert not np.allclose(after[:, right], before[:, right])
    centre_before = before[:, right].sum(1) / present[:, right].sum(1, keepdims=True)
    centre_after = after[:, right].sum(1) / present[:, right].sum(1, keepdims=True)
    squares = ((before[:, right] - centre_before[:, None]) ** 2).sum(-1) * present[:, right]
    radius = np.sqrt(squares.sum(1) / present[:, right].sum(1))
    # The shift is at most 5% of the hand's radius in x and in y.
    assert np.all(np.abs(centre_after - centre_before) <= 0.05 * radius[:, None] + 1e-6)


@pytest.mark.parametrize(("speed", "expected"), [(0.7, 143), (1.4, 71)])
def test_resample_length_follows_the_speed(speed, expected):
    frames = make_sequence(length=100)
    config = AugmentationConfig(
        resample_probability=1.0, resample_min_speed=speed, resample_max_speed=speed
    )
    out = augment_sequence(frames, np.random.default_rng(0), config)
    assert out.shape == (expected, landmarks.NUM_FEATURES)
    np.testing.assert_array_equal(out[[0, -1]], frames[[0, -1]])  # the ends stay in place


def test_resample_random_lengths_stay_in_range():
    frames = make_sequence(length=100)
    config = AugmentationConfig(resample_probability=1.0)
    lengths = {
        len(augment_sequence(frames, np.random.default_rng(seed), config)) for seed in range(20)
    }
    assert min(lengths) >= 71 and max(lengths) <= 143 and len(lengths) > 5
    single = augment_sequence(frames[:1], np.random.default_rng(0), config)
    np.testing.assert_array_equal(single, frames[:1])


def test_resample_of_a_linear_ramp_stays_linear():
    time = np.arange(40, dtype=np.float32)[:, None]
    frames = np.broadcast_to(0.1 + 0.01 * time, (40, landmarks.NUM_FEATURES)).astype(np.float32)
    config = AugmentationConfig(resample_probability=1.0)
    for seed in range(3):
        out = augment_sequence(frames, np.random.default_rng(seed), config)
        assert len(out) != len(frames)
        expected = np.linspace(0.1, 0.1 + 0.01 * 39, len(out))[:, None]
        np.testing.assert_allclose(out, np.broadcast_to(expected, out.shape), atol=1e-6)


def test_landmark_dropout_zeroes_whole_fingers_of_both_hands_in_all_frames():
    frames = np.random.default_rng(0).uniform(0.2, 0.8, (20, 164)).astype(np.float32)
    config = AugmentationConfig(landmark_dropout_probability=1.0, landmark_dropout_rate=0.3)
    dropped_fingers = set()
    for seed in range(30):
        out = augment_sequence(frames, np.random.default_rng(seed), config)
        zero_columns = set(np.flatnonzero(np.all(out == 0, axis=0)).tolist())
        dropped = {f for f in range(5) if set(finger_columns(f)) <= zero_columns}
        # Columns zero in every frame are exactly whole fingers: no half finger, no wrist, no lips.
        assert zero_columns == {c for f in dropped for c in finger_columns(f)}
        dropped_fingers |= dropped
        xs, ys = out[:, X_COLUMNS], out[:, Y_COLUMNS]
        np.testing.assert_array_equal(xs == 0, ys == 0)  # single points lose x and y together
        assert 0 < np.count_nonzero(out == 0) < out.size
    assert dropped_fingers == set(range(5))


# ----------------------------------------------------------------------------------------------
# Time masking (on the resized sequence)


def test_mask_time_masks_only_rows_with_landmarks_within_the_budget():
    rng = np.random.default_rng(0)
    frames = np.zeros((32, 164), np.float32)
    frames[:20] = rng.uniform(0.2, 0.8, (20, 164))
    frames[7] = 0  # an empty row among the frames with landmarks
    config = AugmentationConfig(
        time_mask_probability=1.0, time_mask_max_fraction=0.5, time_mask_blocks=3
    )
    masked_counts = set()
    for seed in range(20):
        out = mask_time(frames, np.random.default_rng(seed), config)
        emptied = np.any(frames != 0, axis=1) & ~np.any(out != 0, axis=1)
        kept = np.any(out != 0, axis=1)
        np.testing.assert_array_equal(out[kept], frames[kept])  # masking is all or nothing
        assert not np.any(out[20:]) and not np.any(out[7])
        assert 1 <= emptied.sum() <= 9  # half of the 19 rows with landmarks
        masked_counts.add(int(emptied.sum()))
    assert len(masked_counts) > 2


@pytest.mark.parametrize("rows", [1, 2, 3])
def test_mask_time_never_masks_every_row(rows):
    frames = np.zeros((8, 164), np.float32)
    frames[:rows] = 0.5
    config = AugmentationConfig(
        time_mask_probability=1.0, time_mask_max_fraction=1.0, time_mask_blocks=4
    )
    for seed in range(10):
        out = mask_time(frames, np.random.default_rng(seed), config)
        assert np.any(out[:rows] != 0, axis=1).sum() >= 1


# ----------------------------------------------------------------------------------------------
# Config


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"affine_probability": -0.1}, "affine_probability"),
        ({"flip_probability": 1.5}, "flip_probability"),
        ({"time_mask_probability": float("nan")}, "time_mask_probability"),
        ({"resample_min_speed": 1.5, "resample_max_speed": 1.2}, "resample_min_speed"),
        ({"resample_min_speed": 0.0}, "resample_min_speed"),
        ({"affine_scale": 1.0}, "affine_scale"),
        ({"landmark_dropout_rate": -1.0}, "landmark_dropout_rate"),
        ({"time_mask_blocks": 0}, "time_mask_blocks"),
    ],
)
def test_config_rejects_bad_values_naming_the_field(changes, field):
    with pytest.raises(ValueError, match=field):
        AugmentationConfig(**changes)


def test_config_fields_have_help_for_the_cli():
    for field in dataclasses.fields(AugmentationConfig):
        assert 0 < len(field.metadata["help"]) <= 80, field.name


def hand_geometry(frames: np.ndarray, hand: str) -> tuple[np.ndarray, np.ndarray]:
    """(L, 15) bone lengths (3 per finger, thumb first) and (L, 5) wrist-to-tip distances."""
    x = frames[:, [COLUMN[f"x_{hand}_{i}"] for i in range(21)]]
    y = frames[:, [COLUMN[f"y_{hand}_{i}"] for i in range(21)]]
    bones = [
        np.hypot(x[:, b + k + 1] - x[:, b + k], y[:, b + k + 1] - y[:, b + k])
        for b in range(1, 21, 4)
        for k in range(3)
    ]
    tips = [np.hypot(x[:, b + 3] - x[:, 0], y[:, b + 3] - y[:, 0]) for b in range(1, 21, 4)]
    return np.stack(bones, 1), np.stack(tips, 1)


def test_finger_bending_turns_fingers_at_their_joints_and_nothing_else():
    frames = make_sequence()
    config = AugmentationConfig(finger_bend_probability=1.0, finger_bend_angle=30.0)
    out = augment_sequence(frames, np.random.default_rng(2), config)
    np.testing.assert_array_equal(out[:, landmarks.LIPS], frames[:, landmarks.LIPS])
    wrist_and_bases = [f"{a}_right_hand_{i}" for a in "xy" for i in (0, 1, 5, 9, 13, 17)]
    columns = [COLUMN[name] for name in wrist_and_bases]
    np.testing.assert_array_equal(out[:, columns], frames[:, columns])  # pivots of the chains
    complete = np.ones(len(frames), dtype=bool)
    complete[1] = False  # frame 1 lacks the right thumb tip: that thumb stays as it was
    (bones, tips), (new_bones, new_tips) = (hand_geometry(f, "right_hand") for f in (frames, out))
    np.testing.assert_allclose(new_bones[complete], bones[complete], rtol=1e-4)  # rotations
    assert np.abs(new_tips - tips)[complete].mean() > 1e-3  # ... that do bend the fingers
    thumb = [COLUMN[f"{a}_right_hand_{i}"] for a in "xy" for i in range(1, 5)]
    np.testing.assert_array_equal(out[1, thumb], frames[1, thumb])


def test_finger_bending_angle_bounds_the_turn_of_each_joint():
    frames = make_sequence()
    small = AugmentationConfig(finger_bend_probability=1.0, finger_bend_angle=2.0)
    large = AugmentationConfig(finger_bend_probability=1.0, finger_bend_angle=40.0)
    moved = {
        name: np.abs(augment_sequence(frames, np.random.default_rng(4), config) - frames).max()
        for name, config in (("small", small), ("large", large))
    }
    assert 0 < moved["small"] < moved["large"]
    # A fingertip moves at most (sum of the three joints' turns) x (finger length) <= 3 x 2 deg x
    # the longest chain; in this random "hand" a chain is at most 3 x sqrt(2) x 0.6 long.
    assert moved["small"] <= 3 * np.radians(2.0) * 3 * np.sqrt(2) * 0.6


@pytest.mark.parametrize(
    ("field", "value"), [("finger_bend_angle", -1.0), ("finger_bend_period", 0)]
)
def test_finger_bending_config_is_checked(field, value):
    with pytest.raises(ValueError, match=field):
        AugmentationConfig(**{field: value})
