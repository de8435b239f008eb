"""HarnessRunner and submission loading, on tiny .tflite models built here with TensorFlow.

The test model's phrase encodes what it was fed, so a test can tell that the frames, their
count and their NaNs reached the model untouched: position 0 is the last digit of the number of
frames, position 1 the last digit of the number of frames holding a NaN, then "ok", then EOS
and PAD (which the harness decoding must drop).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from helpers import build_model, competition_table, write_submission

from aslfr_lib.landmarks import ALL_COLUMNS, SELECTED_COLUMNS
from aslfr_lib.runner import (
    HarnessRunner,
    SequenceError,
    SubmissionError,
    load_submission,
    read_sequence,
    read_sequences,
)
from aslfr_lib.vocab import EOS, NUM_CLASSES, TARGET_LENGTH

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model_bytes() -> bytes:
    return build_model()


@pytest.fixture
def submission_zip(tmp_path, model_bytes) -> Path:
    return write_submission(tmp_path / "submission.zip", model_bytes)


def test_load_submission_reads_zip(submission_zip, model_bytes):
    submission = load_submission(submission_zip)
    assert submission.selected_columns == SELECTED_COLUMNS
    assert submission.model_bytes == model_bytes
    assert submission.size_bytes == submission_zip.stat().st_size
    assert submission.model_size_bytes == len(model_bytes)


def test_load_submission_reads_folder(tmp_path, model_bytes):
    (tmp_path / "model.tflite").write_bytes(model_bytes)
    (tmp_path / "inference_args.json").write_text(json.dumps({"selected_columns": ["x_pose_0"]}))
    submission = load_submission(tmp_path)
    assert submission.selected_columns == ["x_pose_0"]
    assert submission.model_bytes == model_bytes


def test_zip_with_folder_prefixes_like_the_reference_notebook(tmp_path, model_bytes):
    path = tmp_path / "submission.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("kaggle/working/model.tflite", model_bytes)
        archive.writestr(
            "kaggle/working/inference_args.json", json.dumps({"selected_columns": ["x_pose_0"]})
        )
    assert load_submission(path).selected_columns == ["x_pose_0"]


def test_runner_feeds_frames_with_nans_and_decodes_like_the_harness(submission_zip):
    runner = HarnessRunner(submission_zip)
    frames = np.random.default_rng(0).random((12, 164), dtype=np.float32)
    frames[[0, 5, 6, 11], 3] = np.nan  # 4 frames with a NaN
    outputs = runner.outputs(frames)
    assert outputs.shape == (TARGET_LENGTH, NUM_CLASSES)
    assert outputs.dtype == np.float32
    assert np.argmax(outputs, axis=1)[4] == EOS  # EOS and PAD are there, and dropped below
    assert runner.predict_phrase(frames) == "24ok"
    assert runner.predict_phrase(frames[:7]) == "73ok"  # dynamic frame count
    assert runner.predict_phrase(frames.astype(np.float64)) == "24ok"


def test_runner_rejects_frames_of_the_wrong_width(submission_zip):
    runner = HarnessRunner(submission_zip, num_threads=2)
    with pytest.raises(ValueError, match=r"\[frames >= 1, 164\].*\[5, 163\]"):
        runner.outputs(np.zeros((5, 163), np.float32))
    with pytest.raises(ValueError, match="frames >= 1"):
        runner.outputs(np.zeros((0, 164), np.float32))


@pytest.mark.parametrize(
    ("model_kwargs", "message"),
    [
        ({"input_name": "frames"}, r"exactly one input named 'inputs'; it takes \['frames'\]"),
        ({"dtype": "int32"}, r"input 'inputs' must be float32 .* it is dtype int32"),
        ({"width": 10}, r"must be float32 \[frames, 164\] .* shape \[-1, 10\]"),
        ({"signature": "predict"}, r"no signature 'serving_default'.* has \['predict'\]"),
        ({"output_name": "logits"}, r"no output named 'outputs'.* \['logits'\]"),
    ],
    ids=["input-name", "input-dtype", "input-width", "signature", "output-name"],
)
def test_runner_rejects_models_the_harness_cannot_call(tmp_path, model_kwargs, message):
    model = build_model(workdir=tmp_path, **model_kwargs)
    path = write_submission(tmp_path / "submission.zip", model)
    with pytest.raises(SubmissionError, match=message) as error:
        HarnessRunner(path)
    assert "submission.zip:model.tflite" in str(error.value)


def test_runner_rejects_bytes_that_are_no_model(tmp_path):
    path = write_submission(tmp_path / "submission.zip", b"not a flatbuffer")
    with pytest.raises(SubmissionError, match="submission.zip:model.tflite: LiteRT cannot load"):
        HarnessRunner(path)


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        ({"leave_out": ("model.tflite",)}, r"exactly .*: missing \['model.tflite'\]"),
        ({"leave_out": ("inference_args.json",)}, r"missing \['inference_args.json'\]"),
        ({"extra": {"notes.txt": b"hi"}}, r"unexpected \['notes.txt'\]"),
        (
            {"inference_args": {"columns": ["x_pose_0"]}},
            r'"selected_columns" list.*\[\'columns\'\]',
        ),
        ({"inference_args": {"selected_columns": []}}, "non-empty list"),
        ({"inference_args": {"selected_columns": ["x_pose_0", "x_pose_0"]}}, "repeats"),
        ({"inference_args": {"selected_columns": ["x_pose_0", "x_hand_0"]}}, r"x_hand_0"),
    ],
    ids=["no-model", "no-args", "extra-file", "no-selected-columns", "empty", "repeat", "unknown"],
)
def test_load_submission_rejects_broken_zips(tmp_path, model_bytes, broken, message):
    path = write_submission(tmp_path / "submission.zip", model_bytes, **broken)
    with pytest.raises(SubmissionError, match=message) as error:
        load_submission(path)
    assert str(path) in str(error.value)


def test_load_submission_rejects_bad_json_non_zip_and_missing(tmp_path, model_bytes):
    path = tmp_path / "submission.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("model.tflite", model_bytes)
        archive.writestr("inference_args.json", "{selected_columns: ")
    with pytest.raises(SubmissionError, match=r"inference_args.json: not valid JSON"):
        load_submission(path)
    (tmp_path / "plain.zip").write_bytes(b"plain text")
    with pytest.raises(SubmissionError, match=r"plain.zip: not a readable zip"):
        load_submission(tmp_path / "plain.zip")
    with pytest.raises(SubmissionError, match=r"absent.zip: no such submission"):
        load_submission(tmp_path / "absent.zip")


def test_load_submission_rejects_folder_with_extra_file(tmp_path, model_bytes):
    (tmp_path / "model.tflite").write_bytes(model_bytes)
    (tmp_path / "inference_args.json").write_text(json.dumps({"selected_columns": ["x_pose_0"]}))
    (tmp_path / "submission.zip").write_bytes(b"")
    with pytest.raises(SubmissionError, match=r"unexpected \['submission.zip'\]"):
        load_submission(tmp_path)


def test_read_sequence_returns_the_harness_frames(tmp_path):
    table = competition_table({5: 7, 3: 4})
    path = tmp_path / "1.parquet"
    table.to_parquet(path)
    frames = read_sequence(path, 3, SELECTED_COLUMNS)
    assert frames.dtype == np.float32
    expected = table.loc[3, SELECTED_COLUMNS].to_numpy(np.float32)
    np.testing.assert_array_equal(frames, expected)  # NaNs in the same places, rows in order
    assert np.isnan(frames[0, :42]).all() and not np.isnan(frames[1]).any()
    reordered = read_sequence(path, 5, ["x_pose_3", "frame"])
    np.testing.assert_array_equal(reordered[:, 1], np.arange(7))


def test_read_sequences_yields_every_sequence_in_file_order(tmp_path):
    table = competition_table({5: 7, 3: 4, 9: 1})
    path = tmp_path / "1.parquet"
    table.to_parquet(path)
    sequences = list(read_sequences(path, SELECTED_COLUMNS))
    assert [sequence_id for sequence_id, _ in sequences] == [5, 3, 9]
    assert [len(frames) for _, frames in sequences] == [7, 4, 1]
    np.testing.assert_array_equal(sequences[1][1], read_sequence(path, 3, SELECTED_COLUMNS))


def test_read_sequence_errors_name_the_file_and_sequence(tmp_path):
    path = tmp_path / "1.parquet"
    competition_table({5: 2}).to_parquet(path)
    with pytest.raises(
        SequenceError, match=r"1.parquet: sequence_id 4 not found.*1 sequence.*\[5\]"
    ):
        read_sequence(path, 4, SELECTED_COLUMNS)
    partial = tmp_path / "partial.parquet"
    competition_table({5: 2})[["frame", "x_pose_0"]].to_parquet(partial)
    with pytest.raises(SequenceError, match=r"partial.parquet: lacks 164 of the 164 selected"):
        read_sequence(partial, 5, SELECTED_COLUMNS)
    with pytest.raises(SequenceError, match=r"absent.parquet: no such parquet file"):
        read_sequence(tmp_path / "absent.parquet", 5, SELECTED_COLUMNS)
    (tmp_path / "text.parquet").write_text("not parquet")
    with pytest.raises(SequenceError, match=r"text.parquet: not a readable parquet"):
        list(read_sequences(tmp_path / "text.parquet", SELECTED_COLUMNS))


def test_corrupt_data_pages_name_the_file(tmp_path):
    """The footer reads, a column chunk does not: one SequenceError, not a pyarrow traceback."""
    path = tmp_path / "1.parquet"
    competition_table({5: 7, 3: 4}).to_parquet(path)
    metadata = pq.ParquetFile(path).metadata
    chunk = metadata.row_group(0).column(metadata.schema.names.index("x_right_hand_0"))
    data = bytearray(path.read_bytes())
    start = chunk.data_page_offset
    data[start : start + chunk.total_compressed_size] = b"\xff" * chunk.total_compressed_size
    path.write_bytes(bytes(data))
    for read in (
        lambda: read_sequence(path, 3, SELECTED_COLUMNS),
        lambda: list(read_sequences(path, SELECTED_COLUMNS)),
    ):
        with pytest.raises(SequenceError, match=r"1.parquet: corrupt parquet data"):
            read()


def test_read_sequence_accepts_sequence_id_as_a_column(tmp_path):
    path = tmp_path / "flat.parquet"
    competition_table({5: 3, 6: 2}).reset_index().to_parquet(path)
    assert read_sequence(path, 6, SELECTED_COLUMNS).shape == (2, 164)
    assert [s for s, _ in read_sequences(path, ALL_COLUMNS[:3])] == [5, 6]


def test_read_sequence_reads_only_the_row_groups_that_hold_it(tmp_path):
    table = competition_table({5: 3, 6: 4, 7: 2})
    path = tmp_path / "groups.parquet"
    table.to_parquet(path, row_group_size=4)  # sequence 6 spans the first two row groups
    assert pq.ParquetFile(path).metadata.num_row_groups == 3
    for sequence_id in (5, 6, 7):
        expected = table.loc[[sequence_id], SELECTED_COLUMNS].to_numpy(np.float32)
        np.testing.assert_array_equal(read_sequence(path, sequence_id, SELECTED_COLUMNS), expected)
    with pytest.raises(SequenceError, match=r"sequence_id 8 not found.*3 sequence"):
        read_sequence(path, 8, SELECTED_COLUMNS)


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads in /proc")
def test_reading_parquet_starts_no_thread_pool(tmp_path):
    """Arrow's dataset scanner (``pandas.read_parquet`` with filters) starts a CPU thread pool
    whose leftover work can abort the process at exit ("terminate called without an active
    exception", apache/arrow#39862); the harness path reads without it. Recent pyarrow starts one
    I/O thread for any file read, so one plain read comes first."""
    path = tmp_path / "1.parquet"
    competition_table({5: 7, 3: 4}).to_parquet(path)
    code = (
        "import os, pyarrow.parquet as pq\n"
        "from aslfr_lib.runner import read_sequence, read_sequences\n"
        "threads = lambda: len(os.listdir('/proc/self/task'))\n"
        f"pq.ParquetFile({str(path)!r}).read(columns=['frame'], use_threads=False)\n"
        "before = threads()\n"
        f"read_sequence({str(path)!r}, 3, ['x_pose_0'])\n"
        f"list(read_sequences({str(path)!r}, ['frame']))\n"
        "assert threads() == before, (before, threads())\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, timeout=120)


def test_the_library_reads_parquet_without_the_dataset_scanner():
    """``pandas.read_parquet`` and ``pyarrow.parquet.read_table`` go through Arrow's dataset
    scanner (see test_reading_parquet_starts_no_thread_pool); aslfr_lib reads with ParquetFile."""
    scanner_calls = {"read_parquet", "read_table"}
    offenders = []
    for module in sorted((REPO / "aslfr_lib").rglob("*.py")):
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            called = node.func if isinstance(node, ast.Call) else None
            if isinstance(called, ast.Attribute) and called.attr in scanner_calls:
                offenders.append(f"{module.relative_to(REPO)}:{node.lineno}")
    assert not offenders, offenders


def test_inference_path_imports_without_tensorflow():
    code = (
        "import aslfr_lib.runner, aslfr_lib.predict, aslfr_lib.video, sys; "
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, timeout=120)
