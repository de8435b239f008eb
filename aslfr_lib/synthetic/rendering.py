"""One sequence: a signer fingerspelling a phrase, as MediaPipe Holistic would record it, in the
competition's (T, 1629) column layout."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from aslfr_lib import landmarks, vocab
from aslfr_lib.synthetic.hand_model import (
    _MOUTH_OPENING,
    _POSE_TEMPLATE,
    _SMILE,
    MOVEMENTS,
    NUM_SHAPE_PARAMETERS,
    REST,
    ROTATION,
    hand_points,
)
from aslfr_lib.synthetic.signers import Signer, _factor, knobs

_AXIS_STRIDE = len(landmarks.LANDMARK_COLUMNS) // 3  # 543 columns per axis
_PART_OFFSET = {
    part: sum(list(landmarks.PARTS.values())[:i]) for i, part in enumerate(landmarks.PARTS)
}


def _put(block: np.ndarray, part: str, points: np.ndarray) -> None:
    """Write (T, n, 3) points of ``part`` into (T, 1629) competition columns."""
    for axis in range(3):
        block[:, _columns(part, axis)] = points[..., axis]


def _runs(rng: np.random.Generator, length: int, rate: float, mean_run: float) -> np.ndarray:
    """(length,) bool, True on about ``rate`` of the frames in stretches of ``mean_run`` frames."""
    mask = np.zeros(length, dtype=bool)
    rate = min(max(rate, 0.0), 0.98)
    # A style's rate of 0 reaches here as a signer's Beta draw of ~1e-300, whose gaps would be
    # too long for a geometric draw: below one frame in a billion there are no runs.
    if rate < 1e-9 or length == 0:
        return mask
    mean_gap = mean_run * (1 - rate) / rate
    state = rng.random() < rate
    position = 0
    while position < length:
        run = rng.geometric(1 / max(mean_run if state else mean_gap, 1.0))
        if state:
            mask[position : position + run] = True
        position += run
        state = not state
    return mask


def _wander(
    rng: np.random.Generator,
    frames: int,
    channels: int,
    scale: float,
    cycles_per_frame: tuple[float, float] = (0.004, 0.04),
) -> np.ndarray:
    """(frames, channels) smooth random motion: two sinusoids per channel, amplitude ~``scale``."""
    time = np.arange(frames)[:, None, None]
    frequency = rng.uniform(*cycles_per_frame, (1, channels, 2))
    phase = rng.uniform(0, 2 * np.pi, (1, channels, 2))
    return scale * np.sin(2 * np.pi * frequency * time + phase).sum(-1) / np.sqrt(2)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


@dataclass(frozen=True)
class RenderedSequence:
    landmarks: np.ndarray  # (T, 1629) float32 in competition column order, NaN = not detected
    letter: np.ndarray  # (T,) int: position in the phrase of the letter's time slot, -1 outside
    holding: np.ndarray  # (T,) int: position of the letter whose shape the hand holds, -1 moving


def render_sequence(
    phrase: str, signer: Signer, rng: np.random.Generator, difficulty: float
) -> RenderedSequence:
    """Landmarks of ``signer`` fingerspelling ``phrase`` as MediaPipe Holistic would record them."""
    unknown = vocab.unknown_characters(phrase)
    if unknown or not phrase:
        raise vocab.VocabularyError(f"cannot sign {phrase!r}: characters {unknown} not in the map")
    k = knobs(difficulty)
    ids = np.array([vocab.CHAR_TO_ID[c] for c in phrase])
    count = len(ids)

    # Timeline (frames, relative to the first letter's start).
    durations = np.maximum(
        signer.frames_per_character * _factor(rng, 0.35) * _factor(rng, 0.25, count), 1.0
    )
    ends = np.cumsum(durations)
    starts, centers, signing = ends - durations, ends - durations / 2, ends[-1]
    lead_in = signer.lead_in * _factor(rng, 0.9)  # frames
    lead_out = signer.lead_out * _factor(rng, 0.9)
    rise_in, rise_out = rng.uniform(3, 10, 2)
    frames = max(1, math.ceil(lead_in + signing + lead_out))
    time = np.arange(frames) + 0.5 - lead_in

    # Key shapes: REST, the letters (pulled toward their neighbours), REST.
    key_ids = np.concatenate([[REST], ids, [REST]])
    key_times = np.concatenate([[-rise_in], centers, [signing + rise_out]])
    keys = signer.shapes[key_ids]
    neighbours = (keys[:-2] + keys[2:]) / 2
    keys[1:-1] += signer.undershoot * (neighbours - keys[1:-1])
    # Key positions (hand units, right-hand frame): rest is lower; doubled letters may slide aside.
    key_offsets = np.zeros((len(key_ids), 2))
    key_offsets[[0, -1]] = [0.4, 2.2]
    doubled = np.flatnonzero(ids[1:] == ids[:-1]) + 1  # letter positions repeating the previous
    if signer.doubled_letters == "slide":
        slide = np.zeros(count)
        slide[doubled] = -0.45
        key_offsets[1:-1, 0] += np.cumsum(slide)

    interval = np.clip(np.searchsorted(key_times, time, side="right") - 1, 0, len(key_times) - 2)
    progress = (time - key_times[interval]) / (key_times[interval + 1] - key_times[interval])
    moving = (np.clip(progress, 0, 1) - signer.hold / 2) / (1 - signer.hold)
    blend = _smoothstep(moving)[:, None]
    parameters = (1 - blend) * keys[interval] + blend * keys[interval + 1]
    offsets = (1 - blend) * key_offsets[interval] + blend * key_offsets[interval + 1]
    if signer.doubled_letters == "bounce":  # dip between the two instances of a doubled letter
        bouncing = np.isin(interval, doubled) & (progress >= 0) & (progress <= 1)
        offsets[bouncing, 1] += 0.4 * np.sin(np.pi * progress[bouncing])

    # Letters with a movement follow their path during their own time slot.
    letter = np.searchsorted(ends, time, side="right")
    letter = np.where((time >= 0) & (letter < count), letter, -1)
    for character, (path, twist) in MOVEMENTS.items():
        now = (letter >= 0) & (ids[letter] == character)
        if now.any():
            phase = (time[now] - starts[letter[now]]) / durations[letter[now]]
            knots = np.linspace(0, 1, len(path))
            offsets[now, 0] += np.interp(phase, knots, path[:, 0])
            offsets[now, 1] += np.interp(phase, knots, path[:, 1])
            parameters[now, ROTATION.start] += twist * _smoothstep(phase)
    # Which letter's shape is held (keys are REST, letters..., REST; between keys it moves).
    holding = np.where(moving <= 0, interval - 1, np.where(moving >= 1, interval, -1))
    holding = np.where((holding >= 0) & (holding < count), holding, -1)

    # The dominant hand: jittered shape -> points -> image. Its slow path (drift and rising from
    # rest) is shared with the pose's wrist; the letters' own offsets are not.
    parameters[:, : ROTATION.start] += rng.normal(0, signer.frame_jitter, (frames, ROTATION.start))
    parameters[:, ROTATION] += rng.normal(0, signer.frame_jitter / 2, (frames, 3))
    drift = _wander(rng, frames, 2, 0.2, (0.002, 0.01))  # slower than the letters' movements
    drift[:, 0] -= 0.004 * np.clip(time, 0, signing)  # spelling drifts toward the signing side
    rest_keys = np.zeros_like(key_offsets)
    rest_keys[[0, -1]] = key_offsets[[0, -1]]
    slow_path = (1 - blend) * rest_keys[interval] + blend * rest_keys[interval + 1] + drift
    hand = hand_points(parameters, signer.bone_scale)
    hand += rng.normal(0, signer.point_noise, hand.shape) * [1, 1, 2]
    hand[..., :2] += (offsets + drift)[:, None, :]
    mirror = -1.0 if signer.left_handed else 1.0
    signing_hand = _hand_to_image(hand, signer, mirror, signer.hand_anchor)

    # What MediaPipe detects: the raised hand minus lost stretches; now and then the wrong slot.
    raised = (time >= -rise_in) & (time <= signing + rise_out)
    dropout = signer.dropout * _factor(rng, 0.4)
    detected = raised & ~_runs(rng, frames, dropout, signer.dropout_length)
    swapped = detected & _runs(rng, frames, signer.swap, 3.0)

    # The other hand shows up in some sequences (a few, by default), low and relaxed, mirrored.
    other_detected = np.zeros(frames, dtype=bool)
    other_hand = np.full_like(signing_hand, np.nan)
    if rng.random() < signer.other_hand_probability:
        start = rng.integers(frames)
        other_detected[start : start + rng.integers(*signer.other_hand_frames)] = True
        other_detected &= ~_runs(rng, frames, 0.2, 3.0)
        relaxed = signer.shapes[REST] + rng.normal(0, 0.2, NUM_SHAPE_PARAMETERS)
        other = hand_points(np.repeat(relaxed[None], frames, 0), signer.bone_scale)
        other += rng.normal(0, signer.point_noise, other.shape)
        other[..., :2] += [-0.3, 1.6]
        other_anchor = (1 - signer.hand_anchor[0], signer.hand_anchor[1])
        other_hand = _hand_to_image(other, signer, -mirror, other_anchor)

    # Column-major, as parquet stores it: writing a file then needs no transpose. Every column
    # is written below.
    block = np.empty((len(landmarks.LANDMARK_COLUMNS), frames), dtype=np.float32).T
    dominant_slot, other_slot = "right_hand", "left_hand"
    if signer.left_handed:
        dominant_slot, other_slot = other_slot, dominant_slot
    in_dominant_slot = np.where((detected & ~swapped)[:, None, None], signing_hand, np.nan)
    in_dominant_slot = np.where(
        (swapped & other_detected)[:, None, None], other_hand, in_dominant_slot
    )
    in_other_slot = np.where((other_detected & ~swapped)[:, None, None], other_hand, np.nan)
    in_other_slot = np.where(swapped[:, None, None], signing_hand, in_other_slot)
    _put(block, dominant_slot, in_dominant_slot)
    _put(block, other_slot, in_other_slot)

    # Face, lips and pose: their own random motion, independent of the letters.
    head = _head_transform(signer, _wander(rng, frames, 4, 1.0) * [0.008, 0.008, 0.04, 0.015])
    talking = _wander(rng, frames, 2, 1.0, (0.02, 0.15))  # mouthing, at syllable-like pace
    mouth_open = np.clip(signer.mouthing * (0.5 + 0.5 * talking[:, :1]), 0, None)  # (T, 1)
    smile = 0.5 + 0.5 * talking[:, 1:]
    face_x, face_y, face_z = (_columns("face", axis) for axis in range(3))
    columns = block.T  # (1629, T) view: a face axis is a contiguous run of rows
    columns[face_x], columns[face_y] = _transform(head, signer.face[:, :2])
    columns[face_z] = signer.face_size * signer.face[:, 2:]
    lips = landmarks.LIPS_LANDMARKS
    lips_u = mouth_open * _MOUTH_OPENING[lips, 0] + smile * _SMILE[lips, 0]  # (T, 40) face units
    lips_v = mouth_open * _MOUTH_OPENING[lips, 1] + smile * _SMILE[lips, 1]
    columns[face_x.start + np.array(lips)] += (head[:, 0:1] * lips_u + head[:, 1:2] * lips_v).T
    columns[face_y.start + np.array(lips)] += (head[:, 3:4] * lips_u + head[:, 4:5] * lips_v).T
    face_lost = _runs(rng, frames, 0.005, 4.0)  # rare face detection failures
    for axis in (face_x, face_y, face_z):
        columns[axis] += (rng.random((468, frames), np.float32) - 0.5) * 0.004
        columns[axis, face_lost] = np.nan

    # Pose: the head and torso follow the face loosely; the signing arm follows the hand's slow
    # path (not its letters); the other arm hangs.
    torso = _head_transform(signer, _wander(rng, frames, 4, 1.0) * [0.004, 0.004, 0.02, 0.008])
    pose = np.empty((frames, 33, 3))
    pose_x, pose_y = _transform(torso, _POSE_TEMPLATE[:, :2])
    pose[..., 0], pose[..., 1] = pose_x.T, pose_y.T
    pose[..., 2] = _POSE_TEMPLATE[:, 2]
    shoulder, elbow, wrist = (11, 13, 15) if signer.left_handed else (12, 14, 16)
    wrist_xy = _hand_to_image(
        np.pad(slow_path, ((0, 0), (0, 1)))[:, None], signer, mirror, signer.hand_anchor
    )[:, 0, :2]
    fingers = [wrist + 2, wrist + 4, wrist + 6]
    pose[:, fingers, :2] += (wrist_xy - pose[:, wrist, :2])[:, None]
    pose[:, wrist, :2] = wrist_xy
    pose[:, elbow, :2] = (pose[:, shoulder, :2] + wrist_xy) / 2 + [-0.06 * mirror, 0.12]
    pose += rng.normal(0, [0.003, 0.003, 0.05], pose.shape)  # pose z is notoriously unreliable
    _put(block, "pose", pose)

    if rng.random() < k.truncated:  # recordings cut short exist in the real data too
        kept = max(1, int(frames * rng.uniform(0.02, 0.5)))
        block, letter, holding = block[:kept], letter[:kept], holding[:kept]
    return RenderedSequence(block, letter, holding)


def _columns(part: str, axis: int) -> slice:
    """Columns of one axis of ``part`` in the (T, 1629) competition layout."""
    first = axis * _AXIS_STRIDE + _PART_OFFSET[part]
    return slice(first, first + landmarks.PARTS[part])


def hand_from_block(block: np.ndarray, part: str) -> np.ndarray:
    """(T, n, 3) points of ``part`` read back from (T, 1629) competition columns."""
    return np.stack([block[:, _columns(part, axis)] for axis in range(3)], -1)


def _hand_to_image(
    points: np.ndarray, signer: Signer, mirror: float, anchor: tuple[float, float]
) -> np.ndarray:
    """Hand units (right-hand frame) -> normalised image coordinates; z stays wrist-relative."""
    scale = signer.hand_length
    image = np.empty_like(points)
    image[..., 0] = anchor[0] + mirror * scale * signer.aspect * points[..., 0]
    image[..., 1] = anchor[1] + scale * points[..., 1]
    image[..., 2] = scale * points[..., 2]
    return image


def _head_transform(signer: Signer, motion: np.ndarray) -> np.ndarray:
    """(T, 4) shift x, shift y, tilt, zoom -> (T, 6) affine maps of face units to the image:
    ``x = m0 u + m1 v + m2``, ``y = m3 u + m4 v + m5`` (x is normalised by the video's width)."""
    scale = signer.face_size * (1 + motion[:, 3])
    cos, sin = np.cos(motion[:, 2]) * scale, np.sin(motion[:, 2]) * scale
    center_x, center_y = signer.face_center
    maps = [
        signer.aspect * cos,
        -signer.aspect * sin,
        center_x + motion[:, 0],
        sin,
        cos,
        center_y + motion[:, 1],
    ]
    return np.stack(maps, -1).astype(np.float32)


def _transform(maps: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(T, 6) affine maps of (n, 2) points -> image x and y, each (n, T)."""
    homogeneous = np.hstack([points, np.ones((len(points), 1))]).astype(np.float32)  # (n, 3)
    return homogeneous @ maps[:, :3].T, homogeneous @ maps[:, 3:].T
