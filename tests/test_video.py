"""Landmark extraction from video.

The layout functions are tested here with stand-in Holistic results; MediaPipe itself only exists
in the video environment (``make video-env``), so the end-to-end tests run ``.venv-video``'s
python in a subprocess on ``fixtures/signing_test_video.mp4`` (58 real frames, MIT licence, from
sign-language-processing/pose; see ``signing_test_video.LICENSE.txt``).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from helpers import build_model, competition_table, write_submission

from aslfr_lib.landmarks import ALL_COLUMNS, INDEX_COLUMN, LANDMARK_COLUMNS, PARTS
from aslfr_lib.video import extract_landmarks, landmarks_row, landmarks_table
from aslfr_lib.video import main as video_main

REPO = Path(__file__).resolve().parents[1]
VIDEO_PYTHON = REPO / ".venv-video" / "bin" / "python"
VIDEO = REPO / "tests" / "fixtures" / "signing_test_video.mp4"
VIDEO_FRAMES = 58


@pytest.fixture(scope="module")
def video_python() -> Path:
    """The video environment's interpreter; skip without it unless ASLFR_REQUIRE_VIDEO=1 (CI)."""
    if not VIDEO_PYTHON.exists():
        reason = f"{VIDEO_PYTHON} is missing: run `make video-env` for the MediaPipe tests"
        if os.environ.get("ASLFR_REQUIRE_VIDEO") == "1":
            pytest.fail(reason + " (ASLFR_REQUIRE_VIDEO=1)")
        pytest.skip(reason)
    return VIDEO_PYTHON


def run_aslfr(python: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(python), "-m", "aslfr_lib.cli", *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )


def fake_results(**present: int) -> SimpleNamespace:
    """A Holistic result with ``part=count`` landmarks per present part; point i is (i, 2i, 3i)."""
    fields = {}
    for part in PARTS:
        count = present.get(part)
        points = None
        if count is not None:
            landmark = [SimpleNamespace(x=i, y=2 * i, z=3 * i) for i in range(count)]
            points = SimpleNamespace(landmark=landmark)
        fields[f"{part}_landmarks"] = points
    return SimpleNamespace(**fields)


def test_landmarks_row_puts_each_point_in_its_competition_column():
    row = landmarks_row(fake_results(face=468, pose=33, right_hand=21))
    assert row.dtype == np.float32 and row.shape == (len(LANDMARK_COLUMNS),)
    value = dict(zip(LANDMARK_COLUMNS, row, strict=True))
    assert value["x_face_0"] == 0 and value["x_face_467"] == 467
    assert value["y_face_467"] == 2 * 467 and value["z_face_10"] == 30
    assert value["x_pose_32"] == 32 and value["z_pose_1"] == 3
    assert value["x_right_hand_20"] == 20 and value["y_right_hand_5"] == 10
    left = [name for name in LANDMARK_COLUMNS if "_left_hand_" in name]
    assert np.isnan([value[name] for name in left]).all()
    assert np.isfinite(row).sum() == len(LANDMARK_COLUMNS) - len(left)


def test_landmarks_row_rejects_refined_face_mesh():
    with pytest.raises(ValueError, match="478 face landmarks; expected 468"):
        landmarks_row(fake_results(face=478))


def test_landmarks_table_has_the_competition_layout():
    rows = [landmarks_row(fake_results(pose=33)), landmarks_row(fake_results(left_hand=21))]
    table = landmarks_table(rows, sequence_id=42)
    assert list(table.columns) == ALL_COLUMNS
    assert table.index.name == INDEX_COLUMN and (table.index == 42).all()
    assert table["frame"].dtype == np.int16 and list(table["frame"]) == [0, 1]
    assert (table[LANDMARK_COLUMNS].dtypes == np.float32).all()
    assert table["x_pose_3"].tolist()[0] == 3 and np.isnan(table["x_pose_3"].tolist()[1])


def test_missing_video_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match=r"absent.mp4: no such video file"):
        extract_landmarks(tmp_path / "absent.mp4")


@pytest.fixture(scope="module")
def extracted(video_python, module_tmp_path) -> tuple[subprocess.CompletedProcess, pd.DataFrame]:
    out = module_tmp_path / "sequence.parquet"
    result = run_aslfr(video_python, "extract", VIDEO, "--out", out, "--sequence-id", 1234)
    assert result.returncode == 0, result.stderr[-3000:]
    return result, pd.read_parquet(out)


@pytest.mark.video
@pytest.mark.slow
def test_extract_writes_the_competition_layout(extracted):
    result, table = extracted
    assert table.shape == (VIDEO_FRAMES, 1 + len(LANDMARK_COLUMNS))  # (58, 1630)
    assert list(table.columns) == ALL_COLUMNS
    assert table.index.name == INDEX_COLUMN and (table.index == 1234).all()
    assert table["frame"].dtype == np.int16
    np.testing.assert_array_equal(table["frame"], np.arange(VIDEO_FRAMES))
    assert (table[LANDMARK_COLUMNS].dtypes == np.float32).all()
    assert "58 frames" in result.stdout


@pytest.mark.video
@pytest.mark.slow
def test_extract_finds_face_pose_and_right_hand_only(extracted):
    _, table = extracted

    def found(part: str) -> np.ndarray:
        """Frames where the part was detected (then all of its x, y, z are numbers)."""
        columns = [c for c in LANDMARK_COLUMNS if f"_{part}_" in c]
        values = table[columns].to_numpy()
        assert (np.isnan(values).all(axis=1) | np.isfinite(values).all(axis=1)).all()
        return np.isfinite(values).all(axis=1)

    assert found("face").all() and found("pose").all()
    assert 0 < found("right_hand").sum() < VIDEO_FRAMES  # about a third of the frames
    assert not found("left_hand").any()
    xy = table[[c for c in LANDMARK_COLUMNS if c.startswith(("x_face", "y_face"))]].to_numpy()
    assert xy.min() > 0.0 and xy.max() < 1.0  # normalised image coordinates


@pytest.mark.video
def test_extract_rejects_corrupt_and_truncated_videos(video_python, tmp_path):
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(np.random.default_rng(0).bytes(5000))
    result = run_aslfr(video_python, "extract", garbage, "--out", tmp_path / "g.parquet")
    assert result.returncode != 0
    assert f"{garbage}: cannot open as a video" in result.stderr
    assert not (tmp_path / "g.parquet").exists()

    # Half the file: the container declares 58 frames but fewer decode; never a silent short read.
    truncated = tmp_path / "truncated.mp4"
    data = VIDEO.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    result = run_aslfr(video_python, "extract", truncated, "--out", tmp_path / "t.parquet")
    assert result.returncode != 0
    assert f"{truncated}: decoded" in result.stderr and "of the 58 frames" in result.stderr
    assert not (tmp_path / "t.parquet").exists()


@pytest.mark.video
@pytest.mark.slow
def test_predict_on_video_runs_end_to_end(video_python, tmp_path):
    submission = write_submission(tmp_path / "submission.zip", build_model())
    result = run_aslfr(video_python, "predict", "--model", submission, VIDEO, "--sequence-id", 9)
    assert result.returncode == 0, result.stderr[-3000:]
    source, sequence_id, phrase = result.stdout.strip().split("\t")
    assert (source, sequence_id) == (str(VIDEO), "9")
    # The test model reports 58 frames, all with a NaN (no left hand): "88ok".
    assert phrase == "88ok"


@pytest.mark.video
def test_runner_reads_parquet_in_the_video_env(video_python, tmp_path):
    """numpy 1.26, pandas 2.3 and pyarrow 19 there: the same harness path, the same phrases."""
    submission = write_submission(tmp_path / "submission.zip", build_model())
    parquet = tmp_path / "1.parquet"
    competition_table({5: 7, 3: 4}).to_parquet(parquet)
    everything = run_aslfr(video_python, "predict", "--model", submission, parquet)
    assert everything.returncode == 0, everything.stderr[-3000:]
    assert everything.stdout.splitlines() == [f"{parquet}\t5\t73ok", f"{parquet}\t3\t42ok"]
    one = run_aslfr(video_python, "predict", "--model", submission, parquet, "--sequence-id", 3)
    assert one.stdout.splitlines() == [f"{parquet}\t3\t42ok"]


def test_extract_without_mediapipe_says_how_to_get_it(capsys, tmp_path):
    if importlib.util.find_spec("mediapipe") is not None:
        pytest.skip("mediapipe is installed in this environment")
    assert video_main([str(VIDEO), "--out", str(tmp_path / "x.parquet")]) == 1
    assert "make video-env" in capsys.readouterr().err
    assert not (tmp_path / "x.parquet").exists()
