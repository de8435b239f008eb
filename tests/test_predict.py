"""``aslfr predict`` on competition parquet files, with the tiny reporting model of helpers.

Its phrase is "<frames % 10><frames with a NaN % 10>ok"; ``competition_table`` leaves the left
hand out of every third frame, so a 7-frame sequence reads "73ok" and a 4-frame one "42ok".
"""

from __future__ import annotations

import re

import pytest
from helpers import build_model, competition_table, write_submission

from aslfr_lib.predict import Prediction, main, predict
from aslfr_lib.runner import HarnessRunner, SequenceError


@pytest.fixture(scope="module")
def submission(module_tmp_path):
    return write_submission(module_tmp_path / "submission.zip", build_model())


@pytest.fixture
def parquets(tmp_path):
    first, second = tmp_path / "100.parquet", tmp_path / "200.parquet"
    competition_table({5: 7, 3: 4}).to_parquet(first)
    competition_table({8: 11}, seed=1).to_parquet(second)
    return first, second


def test_predict_every_sequence_of_every_parquet(submission, parquets):
    first, second = parquets
    predictions = predict(submission, [first, second])
    assert predictions == [
        Prediction(str(first), 5, 7, "73ok"),
        Prediction(str(first), 3, 4, "42ok"),
        Prediction(str(second), 8, 11, "14ok"),
    ]


def test_predict_one_sequence_with_a_ready_runner(submission, parquets):
    runner = HarnessRunner(submission)
    assert predict(runner, parquets[0], sequence_id=3) == [
        Prediction(str(parquets[0]), 3, 4, "42ok")
    ]
    with pytest.raises(SequenceError, match=r"100.parquet: sequence_id 4 not found"):
        predict(runner, parquets[0], sequence_id=4)


def test_cli_prints_one_tab_separated_line_per_sequence(submission, parquets, capsys):
    first, second = parquets
    assert main(["--model", str(submission), str(first), str(second), "--no-progress"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"{first}\t5\t73ok", f"{first}\t3\t42ok", f"{second}\t8\t14ok"]


@pytest.mark.parametrize(
    ("name", "message"),
    [("notes.txt", r"notes.txt: not a video \(.mp4"), ("absent.parquet", r"no such parquet file")],
)
def test_cli_rejects_unusable_inputs_before_running(submission, tmp_path, capsys, name, message):
    path = tmp_path / name
    if path.suffix == ".txt":
        path.write_text("hello")
    assert main(["--model", str(submission), str(path)]) == 1
    error = capsys.readouterr().err
    assert str(path) in error
    assert re.search(message, error)


def test_cli_reports_a_broken_submission(tmp_path, parquets, capsys):
    broken = write_submission(tmp_path / "broken.zip", b"", leave_out=("inference_args.json",))
    assert main(["--model", str(broken), str(parquets[0])]) == 1
    assert "broken.zip: must hold exactly" in capsys.readouterr().err
