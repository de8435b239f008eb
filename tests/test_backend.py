"""Quiet TensorFlow: its start-up noise is dropped, every real stderr line still arrives."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

MARKERS = ("oneDNN", "cpu_feature_guard", "absl::InitializeLog", "TensorFlow binary is optimized")
SCRIPT = """
import sys
from aslfr_lib.backend import import_keras
import_keras("tensorflow")
import tensorflow as tf
tf.transpose(tf.constant([[True, False]]))  # oneDNN's DT_BOOL line, after the import
sys.stderr.write("a real stderr line\\n")
raise RuntimeError("boom")
"""


def run(env_updates: dict[str, str | None]) -> subprocess.CompletedProcess:
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    for key, value in env_updates.items():
        env.pop(key, None) if value is None else env.__setitem__(key, value)
    return subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=300
    )


@pytest.mark.slow
def test_tensorflow_noise_is_dropped_and_real_lines_and_tracebacks_are_kept():
    done = run({"TF_CPP_MIN_LOG_LEVEL": None, "ASLFR_QUIET_SET": None})
    assert done.returncode == 1
    assert "a real stderr line" in done.stderr
    assert "RuntimeError: boom" in done.stderr  # printed after the filter, at exit: not lost
    assert not [marker for marker in MARKERS if marker in done.stderr], done.stderr


@pytest.mark.slow
def test_a_log_level_the_user_set_is_left_alone():
    done = run({"TF_CPP_MIN_LOG_LEVEL": "0", "ASLFR_QUIET_SET": None})
    assert "oneDNN" in done.stderr  # the user asked for TensorFlow's own logging
    assert "RuntimeError: boom" in done.stderr
