"""Training-time augmentation of one landmark sequence (numpy only, deterministic by seed).

Runs in the data loader, once per sequence of every batch, so it imports neither Keras nor
TensorFlow, loops over neither frames nor points, and takes well under a millisecond for ~150
frames. Input is a cleaned sequence, ``(L, 164)`` float32 in ``landmarks.SELECTED_COLUMNS``
order, before ``preprocess.resize_frames``. A value of exactly 0 means "missing" (a point is
missing when its x and y are both 0): every augmentation moves present points only, so zeros
stay zeros and the model's notion of a missing hand is never corrupted.

The augmentations, each applied with its own probability per sequence (all off by default, so
the default config changes nothing); the 1st-place Kaggle ASL fingerspelling solution found time
stretching, finger dropout and affine transforms the most useful:

- **flip**: ``preprocess.mirror_frames`` on the whole sequence (hands and symmetric lip points
  swapped, ``x -> 1 - x``). Preprocessing already moves the dominant hand into the right-hand
  slots, so a flip mostly teaches the left slots; it suits data preprocessed with ``mirror=False``.
- **affine**: one random scale, rotation, shear and shift for all points of all frames, about the
  centre of the sequence's present points: signers stand at different distances, angles and
  places in front of the camera. (Coordinates are normalised by the image's width and height, so
  a "rotation" here is a rotation of the normalised plane, not of the physical one.)
- **hand jitter**: per hand, a small extra scale, rotation and shift of that hand only, about the
  hand's own centre in each frame: hand size and pose vary between signers independently of the
  face, and MediaPipe's hand fits wobble.
- **finger bending**: each finger of a bent hand turns about each of its three joints by its
  own angle (the points beyond the joint rotate about it, in the image plane): a per-sequence
  habit plus a part that drifts every few frames. Signers make each letter with their own joint
  angles, and this variation, not the hand's place or size, is what sets unseen signers apart
  most (hand jitter and affine move a hand as a whole and cannot imitate it).
- **landmark dropout**: whole fingers (the same fingers of both hands in all frames) and random
  single points in single frames set to missing, so the model cannot lean on one finger and
  learns to read hands that MediaPipe tracked only in part.
- **resampling**: time stretch by a random speed; people fingerspell at very different rates.
  Interpolation runs only between present values, so a point that appears or vanishes between two
  frames is copied from the nearer frame instead of being blended with a zero.
- **time masking** (``mask_time``): blocks of frames set to all-zero. It runs on the *resized*
  ``(T, 164)`` sequence, after ``resize_frames``: masking before resizing would let the bilinear
  resize smear each emptied frame into its neighbours (half-zero garbage points) instead of
  removing it.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from aslfr_lib import landmarks, preprocess
from aslfr_lib.config import param

# ----------------------------------------------------------------------------------------------
# Point layout: the 164 columns reordered as [x of 82 points | y of the same 82 points]
# (21 left hand, 21 right hand, 40 lips), so a sequence reads as xs, ys = (L, 82) views.


def _point_key(name: str) -> str:
    """``x_left_hand_5`` -> ``left_hand_5`` (the point a column belongs to)."""
    return name.split("_", 1)[1]


_POSITION = {name: i for i, name in enumerate(landmarks.SELECTED_COLUMNS)}
_X_COLUMNS = np.flatnonzero(landmarks.IS_X)  # (82,) x column of each point
_Y_COLUMNS = np.array(
    [_POSITION["y_" + _point_key(landmarks.SELECTED_COLUMNS[i])] for i in _X_COLUMNS]
)
_POINT_KEYS = [_point_key(landmarks.SELECTED_COLUMNS[i]) for i in _X_COLUMNS]
NUM_POINTS = len(_X_COLUMNS)
TO_POINTS = np.concatenate([_X_COLUMNS, _Y_COLUMNS])  # frames[:, TO_POINTS] -> point layout
FROM_POINTS = np.argsort(TO_POINTS)  # points[:, FROM_POINTS] -> column layout
# MediaPipe hand landmarks 0 wrist, 1-4 thumb, 5-8 index, 9-12 middle, 13-16 ring, 17-20 pinky.
HAND_POINTS = np.array(
    [
        [_POINT_KEYS.index(f"{hand}_{i}") for i in range(landmarks.HAND_POINTS)]
        for hand in ("left_hand", "right_hand")
    ]
)  # (2, 21)
assert np.array_equal(HAND_POINTS.ravel(), np.arange(2 * landmarks.HAND_POINTS))  # hands first
FINGER_POINTS = HAND_POINTS[:, 1:].reshape(2, 5, 4).transpose(1, 0, 2).reshape(5, 8)  # both hands

PROBABILITY_FIELDS = (
    "affine_probability",
    "hand_jitter_probability",
    "finger_bend_probability",
    "resample_probability",
    "landmark_dropout_probability",
    "flip_probability",
    "time_mask_probability",
)


@dataclasses.dataclass(frozen=True)
class AugmentationConfig:
    affine_probability: float = param(0.0, "chance per sequence of one random affine of all frames")
    affine_scale: float = param(0.2, "affine scale factor uniform in [1 - s, 1 + s]")
    affine_rotation: float = param(15.0, "affine rotation in degrees, uniform in [-r, r]")
    affine_shear: float = param(0.1, "affine shear factors (x and y) uniform in [-s, s]")
    affine_shift: float = param(0.05, "affine shift added to x and y, uniform in [-s, s]")
    hand_jitter_probability: float = param(0.0, "chance per sequence and hand of a hand jitter")
    hand_jitter_scale: float = param(
        0.05, "hand jitter size j: scale 1 +- j, rotation +- j rad, shift +- j hand radii"
    )
    finger_bend_probability: float = param(
        0.0, "chance per sequence and hand of bending its fingers at their joints"
    )
    finger_bend_angle: float = param(
        10.0, "finger bending: most degrees per joint (half a per-sequence habit, half drift)"
    )
    finger_bend_period: int = param(6, "finger bending: frames between the drift's new angles")
    resample_probability: float = param(0.0, "chance per sequence of a random time stretch")
    resample_min_speed: float = param(0.7, "slowest resampling speed (length becomes L / speed)")
    resample_max_speed: float = param(1.4, "fastest resampling speed (length becomes L / speed)")
    landmark_dropout_probability: float = param(
        0.0, "chance per sequence of dropping whole fingers and single points"
    )
    landmark_dropout_rate: float = param(0.1, "fraction of fingers and of points dropped")
    flip_probability: float = param(0.0, "chance per sequence of a horizontal flip")
    time_mask_probability: float = param(0.0, "chance per resized sequence of time masking")
    time_mask_max_fraction: float = param(
        0.15, "most frames masked, as a fraction of the frames with landmarks"
    )
    time_mask_blocks: int = param(2, "most blocks of consecutive frames masked")

    def __post_init__(self) -> None:
        for name in PROBABILITY_FIELDS:
            _check_range(name, getattr(self, name), 0.0, 1.0)
        # A scale factor of 1 - s must stay positive, or the transform would flip or collapse.
        _check_range("affine_scale", self.affine_scale, 0.0, 1.0, high_open=True)
        _check_range("affine_rotation", self.affine_rotation, 0.0, 180.0)
        _check_range("affine_shear", self.affine_shear, 0.0, 1.0, high_open=True)
        _check_range("affine_shift", self.affine_shift, 0.0, 1.0)
        _check_range("hand_jitter_scale", self.hand_jitter_scale, 0.0, 1.0, high_open=True)
        _check_range("finger_bend_angle", self.finger_bend_angle, 0.0, 90.0)
        _check_count("finger_bend_period", self.finger_bend_period)
        _check_range("resample_min_speed", self.resample_min_speed, 0.0, math.inf, low_open=True)
        _check_range("resample_max_speed", self.resample_max_speed, 0.0, math.inf, low_open=True)
        if self.resample_min_speed > self.resample_max_speed:
            raise ValueError(
                f"resample_min_speed ({self.resample_min_speed}) must be <= "
                f"resample_max_speed ({self.resample_max_speed})"
            )
        _check_range("landmark_dropout_rate", self.landmark_dropout_rate, 0.0, 1.0)
        _check_range("time_mask_max_fraction", self.time_mask_max_fraction, 0.0, 1.0)
        _check_count("time_mask_blocks", self.time_mask_blocks)

    @property
    def enabled(self) -> bool:
        """Whether any augmentation can happen (the loader skips the call otherwise)."""
        return any(getattr(self, name) > 0 for name in PROBABILITY_FIELDS)


def _check_count(name: str, value: Any) -> None:
    """``value`` is an int >= 1 (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")


def _check_range(
    name: str,
    value: float,
    low: float,
    high: float,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    above = value > low if low_open else value >= low
    below = value < high if high_open else value <= high
    if not (above and below):  # also catches NaN
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ValueError(f"{name} must be in {interval}, got {value!r}")


def _happens(rng: np.random.Generator, probability: float) -> bool:
    # A disabled augmentation draws nothing, so the default config leaves the generator as it is.
    return probability > 0 and rng.random() < probability


# ----------------------------------------------------------------------------------------------
# Each step works in place on the point layout: xs, ys (L, 82) views, present (L, 82).


def _affine(
    xs: np.ndarray,
    ys: np.ndarray,
    present: np.ndarray,
    rng: np.random.Generator,
    config: AugmentationConfig,
) -> None:
    """One random affine for the whole sequence, about the centre of its present points."""
    scale = rng.uniform(1 - config.affine_scale, 1 + config.affine_scale)
    angle = math.radians(rng.uniform(-config.affine_rotation, config.affine_rotation))
    shear_x, shear_y = rng.uniform(-config.affine_shear, config.affine_shear, 2).tolist()
    shift_x, shift_y = rng.uniform(-config.affine_shift, config.affine_shift, 2).tolist()
    # M = scale * rotation @ [[1, shear_x], [shear_y, 1]], as Python floats (they keep float32).
    cos, sin = scale * math.cos(angle), scale * math.sin(angle)
    a, b = cos - sin * shear_y, cos * shear_x - sin
    c, d = sin + cos * shear_y, sin * shear_x + cos
    count = np.count_nonzero(present)
    if count == 0:
        return
    centre_x = float(xs.sum(dtype=np.float64)) / count  # missing points are 0 and add nothing
    centre_y = float(ys.sum(dtype=np.float64)) / count
    # new = M (p - centre) + centre + shift, with the constant part folded into one offset.
    offset_x = centre_x + shift_x - a * centre_x - b * centre_y
    offset_y = centre_y + shift_y - c * centre_x - d * centre_y
    new_x = xs * a
    new_x += ys * b
    new_x += offset_x
    new_y = xs * c
    new_y += ys * d
    new_y += offset_y
    np.copyto(xs, new_x, where=present)
    np.copyto(ys, new_y, where=present)


def _jitter_hands(
    xs: np.ndarray,
    ys: np.ndarray,
    present: np.ndarray,
    jittered: np.ndarray,
    rng: np.random.Generator,
    size: float,
) -> None:
    """Scale, rotate and shift each ``jittered`` hand about its own centre in each frame."""
    # Each (2, 1): one value per hand, broadcast over (L, 2, 21).
    scale, angle, shift_x, shift_y = rng.uniform(-size, size, (4, 2, 1)).astype(np.float32)
    cos, sin = (1 + scale) * np.cos(angle), (1 + scale) * np.sin(angle)
    hands = HAND_POINTS.shape  # (2, 21)
    hand_x = xs[:, : HAND_POINTS.size].reshape(-1, *hands)  # (L, 2, 21)
    hand_y = ys[:, : HAND_POINTS.size].reshape(-1, *hands)
    hand_present = present[:, : HAND_POINTS.size].reshape(-1, *hands)
    # float32: an integer divisor would turn everything below into float64.
    count = np.maximum(hand_present.sum(axis=2, keepdims=True, dtype=np.float32), 1)  # (L, 2, 1)
    centre_x = hand_x.sum(axis=2, keepdims=True) / count
    centre_y = hand_y.sum(axis=2, keepdims=True) / count
    dx = np.where(hand_present, hand_x - centre_x, np.float32(0))
    dy = np.where(hand_present, hand_y - centre_y, np.float32(0))
    # Shift in units of the hand's radius: the same jitter means the same to a near or far hand.
    radius = np.sqrt((dx * dx + dy * dy).sum(axis=2, keepdims=True) / count)  # (L, 2, 1)
    new_x = cos * dx - sin * dy + centre_x + shift_x * radius
    new_y = sin * dx + cos * dy + centre_y + shift_y * radius
    write = (hand_present & jittered[:, None]).reshape(len(xs), -1)
    np.copyto(xs[:, : HAND_POINTS.size], new_x.reshape(len(xs), -1), where=write)
    np.copyto(ys[:, : HAND_POINTS.size], new_y.reshape(len(xs), -1), where=write)


# A finger's four points among a hand's 21 start at 1 + 4 f (thumb 1, index 5, ... pinky 17); its
# first three are its joints (thumb: CMC, MCP, IP; the others: MCP, PIP, DIP), the last its tip.
_FINGER_BASE = 1 + 4 * np.arange(5)  # (5,)


def _bend_fingers(
    xs: np.ndarray,
    ys: np.ndarray,
    present: np.ndarray,
    bent: np.ndarray,
    rng: np.random.Generator,
    config: AugmentationConfig,
) -> None:
    """Rotate each finger of each ``bent`` hand about its joints, proximal joint first."""
    count = len(xs)
    limit = math.radians(config.finger_bend_angle) / 2
    habit = rng.uniform(-limit, limit, (1, 2, 5, 3))  # per hand, finger, joint
    knots = rng.uniform(-limit, limit, (count // config.finger_bend_period + 2, 2, 5, 3))
    where = np.arange(count) / config.finger_bend_period
    below = where.astype(np.int64)
    weight = (where - below)[:, None, None, None]
    drift = knots[below] * (1 - weight) + knots[below + 1] * weight  # (L, 2, 5, 3)
    angles = (habit + drift).astype(np.float32)
    hands = HAND_POINTS.shape  # (2, 21)
    hand_x = xs[:, : HAND_POINTS.size].reshape(-1, *hands).copy()  # (L, 2, 21)
    hand_y = ys[:, : HAND_POINTS.size].reshape(-1, *hands).copy()
    for joint in range(3):
        pivot = _FINGER_BASE + joint  # (5,)
        cos, sin = np.cos(angles[..., joint]), np.sin(angles[..., joint])  # (L, 2, 5)
        pivot_x, pivot_y = hand_x[:, :, pivot], hand_y[:, :, pivot]
        for beyond in range(joint + 1, 4):
            point = _FINGER_BASE + beyond
            dx, dy = hand_x[:, :, point] - pivot_x, hand_y[:, :, point] - pivot_y
            hand_x[:, :, point] = pivot_x + cos * dx - sin * dy
            hand_y[:, :, point] = pivot_y + sin * dx + cos * dy
    # Frames where a finger's chain is only partly present keep their points where they were.
    hand_present = present[:, : HAND_POINTS.size].reshape(-1, *hands)
    whole = hand_present[:, :, 1:].reshape(count, 2, 5, 4).all(axis=3)  # (L, 2, 5)
    write = np.zeros_like(hand_present)
    write[:, :, 1:] = np.repeat(whole & bent[None, :, None], 4, axis=2)
    write = write.reshape(count, -1)
    np.copyto(xs[:, : HAND_POINTS.size], hand_x.reshape(count, -1), where=write)
    np.copyto(ys[:, : HAND_POINTS.size], hand_y.reshape(count, -1), where=write)


# Random masks are applied by multiplying with 0/1 rather than with np.where or copyto: on a
# random pattern their per-element branches mispredict and run about ten times slower.


def _drop_landmarks(points: np.ndarray, rng: np.random.Generator, rate: float) -> None:
    """Whole fingers (both hands, all frames) and single points in single frames -> 0."""
    fingers = rng.random(len(FINGER_POINTS)) < rate
    keep = (rng.random((len(points), NUM_POINTS), dtype=np.float32) >= rate).astype(np.float32)
    keep[:, FINGER_POINTS[fingers].ravel()] = 0  # (L, 82)
    points.reshape(len(points), 2, NUM_POINTS)[...] *= keep[:, None]
    points += np.float32(0)  # -x * 0 is -0.0; adding +0.0 turns it into a plain 0


def _resample(
    points: np.ndarray, present: np.ndarray, rng: np.random.Generator, config: AugmentationConfig
) -> np.ndarray:
    """(L, 164) -> (round(L / speed), 164), linear in time between present values only."""
    count = len(points)
    speed = rng.uniform(config.resample_min_speed, config.resample_max_speed)
    length = max(1, round(count / speed))
    step = (count - 1) / (length - 1) if length > 1 else 0.0
    source = np.arange(length) * step  # first and last frames stay in place
    lower = np.minimum(source.astype(np.int64), count - 1)  # floor, as source >= 0
    upper = np.minimum(lower + 1, count - 1)
    weight = (source - lower).astype(np.float32)[:, None]  # (length, 1)
    # Where a point is missing in either frame, weight 0 or 1 copies the nearer frame instead of
    # blending with a zero; with one side 0, low + (high - low) * w is then exactly low or high.
    both = (present[lower] & present[upper]).astype(np.float32)  # (length, 82)
    nearest = np.round(weight)  # rounds 0.5 to 0: the earlier frame
    weight = (nearest + both * (weight - nearest))[:, None]  # (length, 1, 82)
    # low + (high - low) * weight, in place: few large temporaries, as each costs page faults.
    low, result = points[lower], points[upper]  # (length, 164)
    result -= low
    result.reshape(length, 2, NUM_POINTS)[...] *= weight
    result += low
    return result


def augment_sequence(
    frames: np.ndarray, rng: np.random.Generator, config: AugmentationConfig
) -> np.ndarray:
    """(L, 164) -> (L', 164) float32: flip, affine, hand jitter, finger bending, landmark
    dropout, resampling.

    Each step happens with its own probability, in that order. Returns a new array (the input is
    untouched) with at least one frame when ``L >= 1``; only resampling changes the length.
    """
    frames = np.asarray(frames, dtype=np.float32)
    if frames.ndim != 2 or frames.shape[1] != landmarks.NUM_FEATURES:
        raise ValueError(f"expected (frames, {landmarks.NUM_FEATURES}), got {frames.shape}")
    flip = _happens(rng, config.flip_probability)
    affine = _happens(rng, config.affine_probability)
    jittered = np.array([_happens(rng, config.hand_jitter_probability) for _ in HAND_POINTS])
    bent = np.array([_happens(rng, config.finger_bend_probability) for _ in HAND_POINTS])
    dropout = _happens(rng, config.landmark_dropout_probability)
    resample = _happens(rng, config.resample_probability)
    if len(frames) == 0 or not (
        flip or affine or jittered.any() or bent.any() or dropout or resample
    ):
        return frames.copy()

    if flip:
        frames = preprocess.mirror_frames(frames)
    points = frames[:, TO_POINTS]  # (L, 164) a new array: every step below writes in place
    xs, ys = points[:, :NUM_POINTS], points[:, NUM_POINTS:]  # (L, 82) views
    present = (xs != 0) | (ys != 0)
    if affine:
        _affine(xs, ys, present, rng, config)
    if jittered.any():
        _jitter_hands(xs, ys, present, jittered, rng, config.hand_jitter_scale)
    if bent.any():
        _bend_fingers(xs, ys, present, bent, rng, config)
    if dropout:
        _drop_landmarks(points, rng, config.landmark_dropout_rate)
        present = (xs != 0) | (ys != 0)
    if resample:
        points = _resample(points, present, rng, config)
    return points[:, FROM_POINTS]


def mask_time(
    frames: np.ndarray, rng: np.random.Generator, config: AugmentationConfig
) -> np.ndarray:
    """Resized (T, 164) -> (T, 164): blocks of frames with landmarks set to all-zero.

    Blocks are placed among the rows that have landmarks (padding rows are left alone), cover at
    most ``time_mask_max_fraction`` of those rows and never all of them: at least one stays.
    """
    frames = np.array(frames, dtype=np.float32)
    if not _happens(rng, config.time_mask_probability):
        return frames
    rows = np.flatnonzero(np.any(frames != 0, axis=1))
    count = len(rows)
    budget = min(int(config.time_mask_max_fraction * count), count - 1)
    if budget < 1:
        return frames
    longest = max(1, budget // config.time_mask_blocks)
    masked = np.zeros(count, dtype=bool)
    remaining = budget
    for _ in range(config.time_mask_blocks):  # a handful of blocks, not frames
        if remaining < 1:
            break
        length = int(rng.integers(1, min(longest, remaining) + 1))
        start = int(rng.integers(0, count - length + 1))
        masked[start : start + length] = True
        remaining -= length
    frames[rows[masked]] = 0
    return frames


__all__ = ["AugmentationConfig", "augment_sequence", "mask_time"]
