"""The competition's landmark schema and the 164 columns the reference model reads.

Parquet layout: index ``sequence_id``, column ``frame``, then 1,629 float32 columns
``{x,y,z}_{face,left_hand,pose,right_hand}_{i}``: x block, then y, then z; each block face
(468), left_hand (21), pose (33), right_hand (21).
"""

from __future__ import annotations

import numpy as np

AXES = ("x", "y", "z")
PARTS = {"face": 468, "left_hand": 21, "pose": 33, "right_hand": 21}
HAND_POINTS = 21

LANDMARK_COLUMNS: list[str] = [
    f"{axis}_{part}_{index}"
    for axis in AXES
    for part, count in PARTS.items()
    for index in range(count)
]
FRAME_COLUMN = "frame"
INDEX_COLUMN = "sequence_id"
ALL_COLUMNS: list[str] = [FRAME_COLUMN, *LANDMARK_COLUMNS]  # 1,630 parquet columns after the index

# Face-mesh indices of 40 lip points, in the reference notebook's listing order.
LIPS_LANDMARKS: list[int] = [
    61, 185, 40, 39, 37, 0, 267, 269, 270, 409,
    291, 146, 91, 181, 84, 17, 314, 405, 321, 375,
    78, 191, 80, 81, 82, 13, 312, 311, 310, 415,
    95, 88, 178, 87, 14, 317, 402, 318, 324, 308,
]  # fmt: skip

# Left/right pairs of the lip points under a horizontal flip (MediaPipe face mesh symmetry);
# points on the midline (0, 17, 13, 14) map to themselves.
LIPS_MIRROR_PAIRS: list[tuple[int, int]] = [
    (61, 291), (185, 409), (40, 270), (39, 269), (37, 267), (146, 375), (91, 321),
    (181, 405), (84, 314), (78, 308), (191, 415), (80, 310), (81, 311), (82, 312),
    (95, 324), (88, 318), (178, 402), (87, 317),
]  # fmt: skip


def _select(part: str, indices: list[int] | None = None) -> list[str]:
    """x then y columns of ``part`` in parquet order (the reference's column scan, z excluded)."""
    wanted = set(range(PARTS[part])) if indices is None else set(indices)
    return [
        f"{axis}_{part}_{index}"
        for axis in ("x", "y")
        for index in range(PARTS[part])
        if index in wanted
    ]


LEFT_HAND_COLUMNS = _select("left_hand")  # 42
RIGHT_HAND_COLUMNS = _select("right_hand")  # 42
LIPS_COLUMNS = _select("face", LIPS_LANDMARKS)  # 80: lip points in ascending face index, x then y
SELECTED_COLUMNS: list[str] = LEFT_HAND_COLUMNS + RIGHT_HAND_COLUMNS + LIPS_COLUMNS  # 164
NUM_FEATURES = len(SELECTED_COLUMNS)

# Slices of the 164 selected features.
LEFT_HAND = slice(0, 42)
RIGHT_HAND = slice(42, 84)
HANDS = slice(0, 84)
LIPS = slice(84, 164)

# True where a selected column is an x coordinate (mirroring flips x -> 1 - x).
IS_X = np.array([name.startswith("x_") for name in SELECTED_COLUMNS])


def _mirror_permutation() -> np.ndarray:
    """Index map for a horizontal flip: ``mirrored = flipped_x(features[:, perm])``.

    Swaps the left and right hand blocks and swaps symmetric lip points, so that a mirrored
    left-handed sequence looks like a right-handed one in every feature slot.
    """
    position = {name: i for i, name in enumerate(SELECTED_COLUMNS)}
    partner = {a: b for a, b in LIPS_MIRROR_PAIRS} | {b: a for a, b in LIPS_MIRROR_PAIRS}
    perm = []
    for name in SELECTED_COLUMNS:
        axis, rest = name.split("_", 1)
        part, index = rest.rsplit("_", 1)
        if part == "left_hand":
            source = f"{axis}_right_hand_{index}"
        elif part == "right_hand":
            source = f"{axis}_left_hand_{index}"
        else:
            source = f"{axis}_face_{partner.get(int(index), int(index))}"
        perm.append(position[source])
    return np.array(perm, dtype=np.int64)


MIRROR_PERMUTATION = _mirror_permutation()
