"""MediaPipe Holistic landmarks of a video, in the competition's parquet layout.

``aslfr extract VIDEO --out seq.parquet [--sequence-id N]`` writes index ``sequence_id``, column
``frame`` (int16), then the 1,629 float32 landmark columns in ``LANDMARK_COLUMNS`` order, NaN
where Holistic found no face, hand or pose in a frame: the table a competition parquet holds
for one sequence, so everything downstream (the harness runner, preprocessing) reads it as is.

MediaPipe 0.10.21 pins numpy<2 and protobuf<5 and cannot share an environment with TensorFlow,
so it lives in ``.venv-video`` (``make video-env``) and is imported only when a video is read.
Model complexity 1 is the only Holistic pose model the wheel ships; 0 and 2 download one at
run time, which fails offline.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from aslfr_lib import config
from aslfr_lib.atomic import atomic_path
from aslfr_lib.landmarks import (
    AXES,
    FRAME_COLUMN,
    INDEX_COLUMN,
    LANDMARK_COLUMNS,
    PARTS,
)

MODEL_COMPLEXITY = 1
MAX_FRAMES = int(np.iinfo(np.int16).max) + 1  # the frame column is int16
VIDEO_ENV_HINT = "run `make video-env` and use .venv-video/bin/aslfr (or its python)"

# Holistic result attribute of each landmark part.
RESULT_FIELDS = {
    "face": "face_landmarks",
    "left_hand": "left_hand_landmarks",
    "pose": "pose_landmarks",
    "right_hand": "right_hand_landmarks",
}
_COLUMN_POSITION = {name: i for i, name in enumerate(LANDMARK_COLUMNS)}
# Column of (axis, part, landmark 0); a part's landmarks follow it contiguously.
_FIRST_COLUMN = {
    (axis, part): _COLUMN_POSITION[f"{axis}_{part}_0"] for axis in AXES for part in PARTS
}


class VideoError(ValueError):
    """A video that cannot be read: names the file and what went wrong."""


@dataclass(frozen=True)
class ExtractConfig:
    out: Path | None = config.param(None, "parquet file to write (competition layout)")
    sequence_id: int = config.param(0, "sequence_id written as the index of every row")
    progress: bool = config.param(True, "show a progress bar over frames")


def landmarks_row(results: Any) -> np.ndarray:
    """One Holistic result -> float32 [1629] in LANDMARK_COLUMNS order, NaN for missing parts."""
    row = np.full(len(LANDMARK_COLUMNS), np.nan, dtype=np.float32)
    for part, count in PARTS.items():
        found = getattr(results, RESULT_FIELDS[part])
        if found is None:
            continue
        points = found.landmark
        if len(points) != count:
            # e.g. refine_face_landmarks=True gives 478 face points; the competition has 468.
            raise ValueError(f"Holistic gave {len(points)} {part} landmarks; expected {count}")
        xyz = np.array([(p.x, p.y, p.z) for p in points], dtype=np.float32)  # (count, 3)
        for axis_index, axis in enumerate(AXES):
            first = _FIRST_COLUMN[(axis, part)]
            row[first : first + count] = xyz[:, axis_index]
    return row


def landmarks_table(rows: list[np.ndarray] | np.ndarray, sequence_id: int = 0) -> pd.DataFrame:
    """Rows of ``landmarks_row`` -> the competition's table for one sequence."""
    values = np.asarray(rows, dtype=np.float32).reshape(-1, len(LANDMARK_COLUMNS))
    if len(values) > MAX_FRAMES:
        raise ValueError(f"{len(values)} frames do not fit the int16 frame column")
    index = pd.Index(np.full(len(values), sequence_id, dtype=np.int64), name=INDEX_COLUMN)
    table = pd.DataFrame(values, columns=LANDMARK_COLUMNS, index=index)
    table.insert(0, FRAME_COLUMN, np.arange(len(values), dtype=np.int16))
    return table


def _import_mediapipe():
    try:
        import mediapipe
    except ImportError as error:
        raise ImportError(
            f"reading video needs mediapipe==0.10.21, which is not installed here ({error}); "
            + VIDEO_ENV_HINT
        ) from None
    return mediapipe


def _import_cv2():
    try:
        import cv2
    except ImportError as error:
        raise ImportError(
            f"reading video needs opencv-python-headless ({error}); {VIDEO_ENV_HINT}"
        ) from None
    return cv2


def _rgb_frames(video_path: Path, cv2) -> Iterator[np.ndarray]:
    """Decoded frames in RGB (OpenCV decodes BGR; MediaPipe expects RGB)."""
    capture = cv2.VideoCapture(str(video_path))
    try:
        if not capture.isOpened():
            raise VideoError(
                f"{video_path}: cannot open as a video (corrupt file or unsupported format)"
            )
        while True:
            ok, frame = capture.read()
            if not ok:
                return
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    finally:
        capture.release()


def declared_frame_count(video_path: str | Path) -> int | None:
    """Frames the container says it holds (None when it does not say)."""
    cv2 = _import_cv2()
    capture = cv2.VideoCapture(str(video_path))
    try:
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if capture.isOpened() else 0
    finally:
        capture.release()
    return count if count > 0 else None


def _check_frame_count(video_path: Path, decoded: int, declared: int | None) -> None:
    if decoded == 0:
        raise VideoError(f"{video_path}: no frame could be decoded (corrupt or empty video)")
    if declared is None or decoded >= declared:
        return
    missing = declared - decoded
    message = f"{video_path}: decoded {decoded} of the {declared} frames the container declares"
    # Some containers (webm, mkv) only estimate the count from duration x fps, so a frame or two
    # short is normal there; more than that is a truncated or damaged file.
    if missing > max(2, declared // 50):
        raise VideoError(message + " (truncated or corrupt video)")
    warnings.warn(message + " (the count may be an estimate)", RuntimeWarning, stacklevel=3)


def extract_landmarks(
    video_path: str | Path, sequence_id: int = 0, progress: bool = True
) -> pd.DataFrame:
    """Run MediaPipe Holistic on every frame: the competition's table for one sequence."""
    video_path = Path(video_path)
    if not video_path.is_file():
        raise VideoError(f"{video_path}: no such video file")
    cv2 = _import_cv2()
    mediapipe = _import_mediapipe()
    declared = declared_frame_count(video_path)
    rows = []
    holistic = mediapipe.solutions.holistic.Holistic(
        static_image_mode=False, model_complexity=MODEL_COMPLEXITY, refine_face_landmarks=False
    )
    with (
        holistic,
        tqdm(
            total=declared,
            desc=f"landmarks {video_path.name}",
            unit="frame",
            disable=not progress,
        ) as bar,
    ):
        for frame in _rgb_frames(video_path, cv2):
            if len(rows) == MAX_FRAMES:
                raise VideoError(
                    f"{video_path}: more than {MAX_FRAMES} frames; the competition's frame "
                    "column is int16"
                )
            rows.append(landmarks_row(holistic.process(frame)))
            bar.update()
    _check_frame_count(video_path, len(rows), declared)
    return landmarks_table(rows, sequence_id)


def write_parquet(table: pd.DataFrame, out: str | Path) -> None:
    """Write atomically: a killed run leaves no half-written parquet behind."""
    with atomic_path(out, suffix=".parquet") as path:
        table.to_parquet(path)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="aslfr extract",
        description="MediaPipe Holistic landmarks of a video -> competition-layout parquet",
    )
    parser.add_argument("video", type=Path, help="video file (.mp4, .avi, .mov, .mkv, .webm)")
    config.add_arguments(parser, ExtractConfig, required=("out",))
    args = parser.parse_args(argv)
    settings = config.from_args(ExtractConfig, args)
    try:
        table = extract_landmarks(args.video, settings.sequence_id, settings.progress)
    except (VideoError, ImportError) as error:
        print(f"aslfr extract: error: {error}", file=sys.stderr)
        return 1
    write_parquet(table, settings.out)
    found = {part: int(table[f"x_{part}_0"].notna().sum()) for part in PARTS}
    print(
        f"{settings.out}: sequence_id {settings.sequence_id}, {len(table)} frames; "
        + ", ".join(f"{part} in {count}" for part, count in found.items())
    )
    return 0
