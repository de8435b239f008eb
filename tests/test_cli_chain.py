"""The README's commands, each run as its own fresh ``aslfr`` process, as a user runs them.

In-process tests share one interpreter, so a class registered by one module is visible to the
next; these tests start a new process per command to catch what only a fresh process sees
(a checkpoint that loads only if its classes were imported earlier, a log line printed at
import, a traceback instead of an error message). Assertions are on stable names: exit codes,
stdout/stderr, ``meta.json``, ``best.keras``/``last.keras``, ``history.json``,
``model.tflite``, ``inference_args.json``, ``submission.zip``.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from aslfr_lib.checkpoints import read_run_state  # also aslfr_lib.training.read_run_state
from aslfr_lib.vocab import CHAR_TO_ID

REPO = Path(__file__).resolve().parents[1]
COMMAND_TIMEOUT_S = 300  # one command; a 2-core machine shared with other jobs is slow
TENSORFLOW_LOG_MARKERS = ("oneDNN", "cpu_feature_guard", "absl", "TensorFlow binary is optimized")
TINY_MODEL = [
    "--batch-size", "8",
    "--encoder-dim", "32", "--encoder-blocks", "1",
    "--decoder-dim", "32", "--decoder-blocks", "1",
    "--optimizer", "adamw",
    "--verbose", "2",
]  # fmt: skip


def aslfr_executable() -> Path:
    """The installed entry point beside this interpreter (``.venv/bin/aslfr``)."""
    path = Path(sys.executable).with_name("aslfr")
    if not path.is_file():
        pytest.fail(
            f"{path} is missing: install the package into this interpreter's environment "
            "(pip install -e .) so the `aslfr` entry point exists"
        )
    return path


def command_env(tf_log_level: str | None = "2") -> dict[str, str]:
    env = dict(os.environ, KERAS_BACKEND="tensorflow", PYTHONUNBUFFERED="1")
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    if tf_log_level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = tf_log_level
    return env


def describe(args: list[str], result: subprocess.CompletedProcess) -> str:
    return (
        f"`aslfr {' '.join(args)}` exited {result.returncode}\n"
        f"--- stdout (end) ---\n{result.stdout[-6000:]}\n"
        f"--- stderr (end) ---\n{result.stderr[-6000:]}"
    )


def aslfr(
    cwd: Path, *args: str, expect: int | None = 0, env: dict | None = None
) -> subprocess.CompletedProcess:
    """Run ``aslfr ARGS`` in a fresh process; assert its exit code (unless ``expect`` is None)."""
    arguments = [str(a) for a in args]
    result = subprocess.run(
        [str(aslfr_executable()), *arguments],
        cwd=cwd,
        env=command_env() if env is None else env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
    )
    if expect is not None:
        assert result.returncode == expect, describe(arguments, result)
    return result


def assert_nonempty_file(path: Path) -> None:
    assert path.is_file(), f"{path} was not written"
    assert path.stat().st_size > 0, f"{path} is empty"


def assert_valid_zip(path: Path) -> None:
    assert_nonempty_file(path)
    assert zipfile.is_zipfile(path), f"{path} is not a zip file"
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None, f"{path}: a member fails its CRC"


def make_dataset(tmp_path: Path) -> tuple[Path, Path]:
    """``aslfr synth`` + ``aslfr preprocess`` (with a validation split) in ``tmp_path``."""
    data, processed = tmp_path / "data", tmp_path / "processed"
    aslfr(
        tmp_path, "synth", "--out", data, "--sequences", 48, "--participants", 6, "--seed", 0,
        "--difficulty", 0.3, "--sequences-per-file", 24,
    )  # fmt: skip
    assert_nonempty_file(data / "train.csv")
    assert sorted(p.suffix for p in (data / "train_landmarks").iterdir()) == [".parquet"] * 2
    aslfr(
        tmp_path, "preprocess", "--data", data, "--out", processed, "--val-fraction", 0.34,
        "--frames", 32, "--workers", 1, "--quiet",
    )  # fmt: skip
    assert_nonempty_file(processed / "meta.json")
    return data, processed


# ----------------------------------------------------------------------------------------------
# The README's chain: synth -> preprocess -> train -> evaluate -> export -> check -> predict


@pytest.mark.slow
def test_readme_chain_as_subprocesses(tmp_path):
    data, processed = make_dataset(tmp_path)
    run, submission = tmp_path / "run", tmp_path / "submission"

    # The recipe with every part (CTC head + decoder, conformer, augmentation), so the chain
    # exercises both heads' evaluation and export from fresh processes. The demo's recipe comes
    # from the train section of its pipeline config; the flags shrink it.
    aslfr(
        tmp_path, "train", "--config", REPO / "configs" / "demo.yaml",
        "--processed", processed, "--out", run, "--epochs", 2, *TINY_MODEL,
        "--ctc-weight", "0.5", "--encoder-type", "conformer", "--conv-kernel-size", "3",
        "--decoder-token-mask", "0.1", "--affine-probability", "0.5",
        "--resample-probability", "0.5", "--time-mask-probability", "0.5",
    )  # fmt: skip
    for name in ("best.keras", "last.keras"):
        assert_valid_zip(run / name)
    history = json.loads((run / "history.json").read_text(encoding="utf-8"))
    assert history["state"]["epochs_completed"] == 2

    # A fresh process loads what `aslfr train` saved (today: "Could not locate class
    # 'NonZeroNormalization'", because nothing imported aslfr_lib.layers before loading).
    result = aslfr(tmp_path, "evaluate", "--model", run, "--processed", processed, "--quiet")
    assert re.search(r"^score: -?\d", result.stdout, re.MULTILINE), result.stdout
    written = re.search(r"^written: (.+)$", result.stdout, re.MULTILINE)
    for path in written.group(1).split(", ") if written else []:
        assert_nonempty_file(tmp_path / path)

    assert json.loads((run / "evaluation_val.json").read_text())["decoder"] == "ctc"  # auto
    result = aslfr(
        tmp_path, "evaluate", "--model", run, "--processed", processed, "--quiet",
        "--decoder", "attention", "--out", tmp_path / "attention",
    )  # fmt: skip
    assert (
        json.loads((tmp_path / "attention" / "evaluation_val.json").read_text())["decoder"]
        == "attention"
    )

    attention = tmp_path / "submission-attention"
    aslfr(tmp_path, "export", "--model", run, "--out", attention, "--decoder", "attention")
    assert_nonempty_file(attention / "submission.zip")
    aslfr(tmp_path, "export", "--model", run, "--out", submission, "--quiet")
    for name in ("model.tflite", "inference_args.json", "submission.zip"):
        assert_nonempty_file(submission / name)
    with zipfile.ZipFile(submission / "submission.zip") as archive:
        assert {"model.tflite", "inference_args.json"} <= set(archive.namelist())

    result = aslfr(
        tmp_path, "check-submission", submission / "submission.zip", "--data", data,
        "--processed", processed, "--limit", 5, "--json", "--no-progress",
    )  # fmt: skip
    report = json.loads(result.stdout)
    assert report["sequences"] == 5
    # (N - D) / N: at most 1, and below 0 when a barely trained model writes more wrong
    # characters than there are (2 epochs here), so [0, 1] would be the wrong range.
    assert math.isfinite(report["score"]) and report["score"] <= 1
    assert report["score"] == pytest.approx(
        (report["characters"] - report["distance"]) / report["characters"]
    )
    assert 0 < report["p50_ms"] <= report["p95_ms"]

    with open(data / "train.csv", newline="", encoding="utf-8") as file:
        first = next(csv.DictReader(file))
    parquet, sequence_id = data / first["path"], first["sequence_id"]
    result = aslfr(
        tmp_path, "predict", "--model", submission / "submission.zip", parquet,
        "--sequence-id", sequence_id, "--no-progress",
    )  # fmt: skip
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    source, printed_id, phrase = lines[0].split("\t")  # the phrase may be empty: untrained
    assert Path(source).name == parquet.name
    assert printed_id == sequence_id
    assert set(phrase) <= set(CHAR_TO_ID), phrase


# ----------------------------------------------------------------------------------------------
# aslfr train killed (SIGKILL) and resumed


class Training:
    """One ``aslfr train`` process with stdout/stderr in files (no pipe to fill up)."""

    def __init__(self, cwd: Path, args: list[str], name: str):
        self.args = [str(a) for a in args]
        self.stdout_path, self.stderr_path = cwd / f"{name}.out", cwd / f"{name}.err"
        with open(self.stdout_path, "w") as stdout, open(self.stderr_path, "w") as stderr:
            self.process = subprocess.Popen(
                [str(aslfr_executable()), "train", *self.args],
                cwd=cwd,
                env=command_env(),
                stdout=stdout,
                stderr=stderr,
            )
        self.deadline = time.monotonic() + COMMAND_TIMEOUT_S

    def stdout(self) -> str:
        return self.stdout_path.read_text(encoding="utf-8", errors="replace")

    def describe(self) -> str:
        stderr = self.stderr_path.read_text(encoding="utf-8", errors="replace")
        return (
            f"`aslfr train {' '.join(self.args)}` (exit {self.process.returncode})\n"
            f"--- stdout (end) ---\n{self.stdout()[-6000:]}\n--- stderr (end) ---\n{stderr[-6000:]}"
        )

    def running(self) -> bool:
        if time.monotonic() > self.deadline:
            self.kill()
            pytest.fail(f"timed out after {COMMAND_TIMEOUT_S} s: {self.describe()}")
        return self.process.poll() is None

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()  # SIGKILL: no handler, no cleanup, as a lost machine
        self.process.wait(timeout=60)

    def finish(self) -> None:
        self.process.wait(timeout=max(1.0, self.deadline - time.monotonic()))
        assert self.process.returncode == 0, self.describe()


def epochs_in_history_json(run: Path) -> int:
    try:  # written atomically: either absent or whole
        return json.loads((run / "history.json").read_text(encoding="utf-8"))["state"][
            "epochs_completed"
        ]
    except FileNotFoundError:
        return 0


def checkpoint_temporaries(run: Path) -> set[str]:
    """Temporary folders of an unfinished ``last.keras`` save (``checkpoints.save_checkpoint``)."""
    with os.scandir(run) as entries:
        return {e.name for e in entries if e.name.startswith(".last.") and e.is_dir()}


def kill_during_epoch(training: Training, run: Path) -> None:
    """SIGKILL once ``last.keras`` holds an epoch and the next epoch has started."""
    done = 0
    while training.running():
        done = epochs_in_history_json(run)
        if done >= 1 and f"Epoch {done + 1}/" in training.stdout():
            time.sleep(0.2)  # a few steps into the epoch
            training.kill()
            return
        time.sleep(0.02)
    pytest.fail(f"training ended before the kill in epoch {done + 1}: {training.describe()}")


def kill_while_saving(training: Training, run: Path) -> bool:
    """SIGKILL as soon as a new ``.last.*`` folder appears; False if the run ended first."""
    stale = checkpoint_temporaries(run)  # left by an earlier kill
    while training.running():
        if checkpoint_temporaries(run) - stale:
            training.kill()
            return True
        time.sleep(0.001)
    return False


def checkpoint_epochs(run: Path) -> int:
    """Epochs in ``last.keras`` after a kill: a whole zip whose run state knows them."""
    last = run / "last.keras"
    assert_valid_zip(last)
    run_state = read_run_state(last)
    epochs = run_state["state"]["epochs_completed"]
    assert epochs >= 1
    assert run_state["history"]["epoch"] == list(range(1, epochs + 1))
    return epochs


def assert_resumed_at(training: Training, run: Path, epoch: int) -> None:
    """The resumed process says it continues at ``epoch`` (1-based), after the saved ones."""
    while "aslfr train: resuming " not in training.stdout() and training.running():
        time.sleep(0.05)
    match = re.search(r"resuming .* at epoch (\d+)", training.stdout())
    assert match is not None, f"no 'resuming ... at epoch' line: {training.describe()}"
    assert int(match.group(1)) == epoch, training.describe()


@pytest.mark.slow
def test_train_killed_and_resumed(tmp_path, request):
    epochs = 6
    _, processed = make_dataset(tmp_path)
    run = tmp_path / "run"
    args = ["--processed", processed, "--out", run, "--epochs", epochs, *TINY_MODEL]
    resume = [*args, "--resume"]
    processes: list[Training] = []
    try:
        # (a) killed a few steps into an epoch
        processes.append(Training(tmp_path, args, "train-0"))
        kill_during_epoch(processes[-1], run)
        done = checkpoint_epochs(run)
        print(f"(a) killed during epoch {done + 1}; last.keras holds {done} epochs")

        # (b) killed while last.keras is being written (its temporary folder exists); up to
        # the run's remaining epochs to catch one, then it must simply finish
        processes.append(Training(tmp_path, resume, "train-1"))
        assert_resumed_at(processes[-1], run, done + 1)
        caught = kill_while_saving(processes[-1], run)
        # recorded, not asserted: a save is a short window on a fast machine
        request.node.user_properties.append(("killed_while_saving_checkpoint", caught))
        if caught:
            done = checkpoint_epochs(run)
            print(f"(b) killed while saving a checkpoint; last.keras holds {done} epochs")
            processes.append(Training(tmp_path, resume, "train-2"))
            assert_resumed_at(processes[-1], run, done + 1)
        else:
            print("the run finished before a checkpoint save could be caught (b not tested)")
        processes[-1].finish()
    finally:
        for training in processes:
            training.kill()

    assert f"aslfr train: {epochs} epochs" in processes[-1].stdout(), processes[-1].describe()
    history = json.loads((run / "history.json").read_text(encoding="utf-8"))
    assert history["state"]["epochs_completed"] == epochs
    assert history["history"]["epoch"] == list(range(1, epochs + 1))
    assert {len(values) for values in history["history"].values()} == {epochs}
    assert read_run_state(run / "last.keras")["state"]["epochs_completed"] == epochs
    assert_valid_zip(run / "best.keras")


# ----------------------------------------------------------------------------------------------
# Errors and help, fast


@pytest.mark.parametrize(
    "arguments",
    [
        ["--config", "missing.yaml"],
        ["--config", str(REPO / "configs" / "demo.yaml"), "--data", "/nonexistent"],
    ],
    ids=["missing-config", "missing-data"],
)
def test_pipeline_bad_input_is_one_error_line(tmp_path, arguments):
    result = aslfr(tmp_path, "pipeline", *arguments, "--out", tmp_path / "out", expect=None)
    assert result.returncode == 1, describe(["pipeline", *arguments], result)
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("aslfr pipeline: error:"), result.stderr


@pytest.mark.parametrize("command", ["export", "train", "evaluate"])
def test_help_prints_no_tensorflow_logs(tmp_path, command):
    result = aslfr(tmp_path, command, "--help", env=command_env(tf_log_level=None))
    assert result.stdout.startswith(f"usage: aslfr {command}"), result.stdout
    logs = [m for m in TENSORFLOW_LOG_MARKERS if m in result.stderr]
    assert not logs, f"TensorFlow log lines ({logs}) in stderr:\n{result.stderr}"
