"""``aslfr check-submission``: Kaggle's scoring repeated on a small synthetic dataset.

The submission under test is a real export of a tiny random model; the broken ones are tiny
TensorFlow modules with the mistake the harness would reject.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aslfr_lib import landmarks, runner, submission
from aslfr_lib.scoring import competition_score
from aslfr_lib.submission import CheckError, check_submission, main, select_sequences

REPO = Path(__file__).resolve().parents[1]
NUM_FEATURES = landmarks.NUM_FEATURES


@pytest.fixture(scope="module")
def data(module_tmp_path) -> Path:
    from aslfr_lib.synthetic import SynthConfig, generate

    out = module_tmp_path / "data"
    config = SynthConfig(out=str(out), sequences=45, participants=5, sequences_per_file=20, seed=7)
    generate(config, progress=False)
    return out


@pytest.fixture(scope="module")
def exported(module_tmp_path):
    """An exported tiny model with random embeddings (so phrases differ between sequences)."""
    pytest.importorskip("tensorflow")
    import keras

    from aslfr_lib import export
    from aslfr_lib.model import ModelConfig, build_model

    keras.utils.set_random_seed(0)

    config = ModelConfig(
        encoder_dim=32, encoder_blocks=1, decoder_dim=32, decoder_blocks=1, num_heads=2, frames=32
    )
    model = build_model(config)
    rng = np.random.default_rng(0)
    for weight in model.weights:
        if "embedding" in weight.path:
            weight.assign(rng.normal(0, 1.0, weight.shape).astype("float32"))
    return export.export_model(model, module_tmp_path / "submission")


@pytest.fixture(scope="module")
def submission_zip(exported) -> Path:
    return exported.paths.zip


@pytest.fixture(scope="module")
def report(submission_zip, data):
    return check_submission(submission_zip, data, progress=False)


def tiny_tflite(
    tmp_path: Path,
    input_name: str = "inputs",
    output_name: str = "outputs",
    dtype: str = "float32",
    signature: str = "serving_default",
) -> bytes:
    """A model that answers "a" + EOS, broken in the asked way."""
    tf = pytest.importorskip("tensorflow")
    from aslfr_lib.vocab import CHAR_TO_ID, EOS, NUM_CLASSES, PAD, TARGET_LENGTH

    tokens = [CHAR_TO_ID["a"], EOS] + [PAD] * (TARGET_LENGTH - 2)

    class Answer(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, NUM_FEATURES], dtype, name=input_name)])
        def serve(self, inputs):
            shift = tf.reduce_sum(tf.cast(inputs, tf.float32)) * 0.0
            return {output_name: tf.one_hot(tokens, NUM_CLASSES) + shift}

    module = Answer()
    function = module.serve.get_concrete_function()
    if signature == "serving_default":
        converter = tf.lite.TFLiteConverter.from_concrete_functions([function], module)
    else:  # from_concrete_functions always names the signature serving_default
        saved = tmp_path / "saved"
        tf.saved_model.save(module, str(saved), signatures={signature: function})
        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved), [signature])
    return converter.convert()


def write_zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return path


def args_json() -> bytes:
    return json.dumps({"selected_columns": landmarks.SELECTED_COLUMNS}).encode()


# ----------------------------------------------------------------------------------------------
# The score


def test_competition_score_is_one_minus_total_distance_over_total_length():
    assert competition_score(["abc", "de"], ["abc", "de"]) == 1.0
    # distances 1 (substitution) + 2 (two deletions) over 3 + 4 characters
    assert competition_score(["abc", "defg"], ["abd", "de"]) == pytest.approx((7 - 3) / 7)
    assert competition_score(["ab"], ["xxxxxx"]) == pytest.approx((2 - 6) / 2)  # may go below 0
    with pytest.raises(ValueError, match="no characters"):
        competition_score([""], ["a"])


# ----------------------------------------------------------------------------------------------
# The check of a real export


def test_report_scores_every_sequence_like_the_harness(report, submission_zip, data):
    table = pd.read_csv(data / "train.csv")
    assert report.sequences == len(table) == len(report.results)
    assert {r.sequence_id for r in report.results} == set(table["sequence_id"])
    truth = dict(zip(table["sequence_id"], table["phrase"], strict=True))
    harness = runner.HarnessRunner(submission_zip)
    for result in report.results[:5]:
        assert result.phrase == truth[result.sequence_id]
        frames = runner.read_sequence(
            data / result.path, result.sequence_id, harness.selected_columns
        )
        assert result.frames == len(frames)
        assert result.prediction == harness.predict_phrase(frames)
    predictions = [r.prediction for r in report.results]
    assert len(set(predictions)) > 1
    phrases = [r.phrase for r in report.results]
    assert report.score == pytest.approx(competition_score(phrases, predictions))
    assert report.characters == sum(len(p) for p in phrases)
    assert report.exact_matches == sum(p == q for p, q in zip(phrases, predictions, strict=True))


def test_report_latencies_and_estimate(report, submission_zip):
    latencies = report.latencies_ms
    assert (latencies > 0).all()
    assert report.p50_ms == pytest.approx(np.percentile(latencies, 50))
    assert report.p50_ms <= report.p95_ms
    assert report.estimated_hours == pytest.approx(
        latencies.mean() * submission.DEFAULT_TEST_SEQUENCES / 3.6e6
    )
    assert report.model_bytes == len(zipfile.ZipFile(submission_zip).read("model.tflite"))
    assert report.zip_bytes == submission_zip.stat().st_size
    frame = report.to_frame()
    assert list(frame["milliseconds"]) == list(latencies)
    assert "results" not in report.summary()


def test_each_parquet_file_is_read_once(submission_zip, data, monkeypatch):
    reads = []

    def counting(path, columns):
        reads.append(Path(path).name)
        return runner.read_sequences(path, columns)

    monkeypatch.setattr(submission, "read_sequences", counting)
    report = check_submission(submission_zip, data, progress=False)
    assert sorted(reads) == sorted(p.name for p in (data / "train_landmarks").glob("*.parquet"))
    assert report.sequences == 45


def test_limit_and_processed_split_select_the_sequences(data, tmp_path):
    table = pd.read_csv(data / "train.csv")
    rows, selection = select_sequences(data, limit=7)
    assert list(rows["sequence_id"]) == list(table["sequence_id"][:7])
    assert selection == "train.csv, first 7"

    wanted = [int(s) for s in table["sequence_id"][[30, 3, 12]]]
    (tmp_path / "meta.json").write_text(json.dumps({"val": {"sequence_ids": wanted}}))
    rows, selection = select_sequences(data, processed=tmp_path, split="val")
    assert list(rows["sequence_id"]) == wanted
    assert selection == f"val split of {tmp_path}"

    (tmp_path / "meta.json").write_text(json.dumps({"val": {"sequence_ids": [123]}}))
    with pytest.raises(CheckError, match="lacks 1 sequence"):
        select_sequences(data, processed=tmp_path)
    with pytest.raises(CheckError, match="no such file"):
        select_sequences(tmp_path)


def test_command_prints_the_report(submission_zip, data, capsys):
    assert main([str(submission_zip), "--data", str(data), "--limit", "6", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "sequences       6" in printed
    assert "p50" in printed and "p95" in printed
    assert "h for 40,000 hidden test sequences" in printed
    assert "MB model.tflite" in printed


def test_command_json_report(submission_zip, data, capsys):
    argv = [str(submission_zip), "--data", str(data), "--limit", "4", "--json", "--no-progress"]
    assert main([*argv, "--test-sequences", "1000"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["sequences"] == 4
    assert report["test_sequences"] == 1000
    assert len(report["results"]) == 4
    assert {"sequence_id", "phrase", "prediction", "milliseconds"} <= set(report["results"][0])
    assert -10 < report["score"] <= 1


def test_inference_side_runs_without_tensorflow(submission_zip, data):
    code = (
        "import sys\n"
        "from aslfr_lib import submission\n"
        f"report = submission.check_submission({str(submission_zip)!r}, {str(data)!r}, "
        "limit=3, progress=False)\n"
        "assert report.sequences == 3\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, timeout=300)


# ----------------------------------------------------------------------------------------------
# Submissions the harness rejects, through the command


def run_main(path: Path, data: Path, capsys) -> str:
    assert main([str(path), "--data", str(data), "--limit", "2", "--no-progress"]) == 1
    return capsys.readouterr().err


def test_zip_missing_a_file_fails_with_the_reason(tmp_path, data, exported, capsys):
    model = exported.paths.model.read_bytes()
    broken = write_zip(tmp_path / "no_args.zip", {"model.tflite": model})
    assert "missing ['inference_args.json']" in run_main(broken, data, capsys)
    broken = write_zip(tmp_path / "no_model.zip", {"inference_args.json": args_json()})
    assert "missing ['model.tflite']" in run_main(broken, data, capsys)


@pytest.mark.parametrize(
    "mistake, message",
    [
        ({"signature": "serve"}, "no signature 'serving_default'"),
        ({"input_name": "frames"}, "exactly one input named 'inputs'"),
        ({"output_name": "logits"}, "no output named 'outputs'"),
        ({"dtype": "float16"}, "must be float32"),
    ],
)
def test_models_the_harness_cannot_call_fail_with_the_reason(
    tmp_path, data, capsys, mistake, message
):
    model = tiny_tflite(tmp_path, **mistake)
    path = write_zip(
        tmp_path / "broken.zip", {"model.tflite": model, "inference_args.json": args_json()}
    )
    error = run_main(path, data, capsys)
    assert error.startswith("aslfr check-submission: error:")
    assert message in error


def test_a_working_model_of_the_same_kind_passes(tmp_path, data, capsys):
    """The broken models above fail for their mistake only."""
    model = tiny_tflite(tmp_path)
    path = write_zip(
        tmp_path / "good.zip", {"model.tflite": model, "inference_args.json": args_json()}
    )
    report = check_submission(path, data, limit=3, progress=False)
    assert [r.prediction for r in report.results] == ["a", "a", "a"]


def test_missing_dataset_fails_clearly(submission_zip, tmp_path, capsys):
    assert main([str(submission_zip), "--data", str(tmp_path), "--no-progress"]) == 1
    assert "train.csv: no such file" in capsys.readouterr().err
