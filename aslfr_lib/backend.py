"""Choosing the Keras backend, and importing TensorFlow without its start-up log lines.

``import_keras(backend)`` is how every command imports Keras: it sets ``KERAS_BACKEND`` before
the first import, refuses a second backend in the same process (``BackendError``), and imports
TensorFlow quietly first when the backend is TensorFlow.

TensorFlow 2.21 writes a dozen C++ log lines on import (oneDNN, cpu_feature_guard, absl's "All
log messages before absl::InitializeLog()"), before Python can filter anything, and some of them
even with ``TF_CPP_MIN_LOG_LEVEL=3``. Unless the user set ``TF_CPP_MIN_LOG_LEVEL`` (then we
change nothing), ``import_tensorflow`` sets it to 2 (warnings from ops still reach the user
through Python) and imports TensorFlow with file descriptor 2 captured; known start-up noise
is dropped and every other line is written back to stderr, so a real error is never lost.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

LOG_LEVEL_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"
QUIET_LEVEL = "2"
NOISE = re.compile(
    r"All log messages before absl::InitializeLog|oneDNN custom operations are on"
    r"|cpu_feature_guard|This TensorFlow binary is optimized|To enable the following instructions"
    r"|Unable to register cu(DNN|FFT|BLAS) factory|computation placer already registered"
    r"|TF-TRT Warning|Could not find cuda drivers|rebuild TensorFlow with the appropriate"
)


def user_wants_logs() -> bool:
    """The user chose TensorFlow's log level themselves."""
    return LOG_LEVEL_VARIABLE in os.environ and not os.environ.get("ASLFR_QUIET_SET")


@contextlib.contextmanager
def filtered_stderr(noise: re.Pattern = NOISE) -> Iterator[None]:
    """Capture file descriptor 2 (C++ writes too); replay the lines ``noise`` does not match."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [
                line
                for line in captured.read().decode(errors="replace").splitlines(keepends=True)
                if not noise.search(line)
            ]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


def import_tensorflow() -> Any:
    """``import tensorflow``, quietly unless the user set ``TF_CPP_MIN_LOG_LEVEL``."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    if user_wants_logs():
        import tensorflow

        return tensorflow
    os.environ[LOG_LEVEL_VARIABLE] = QUIET_LEVEL
    os.environ["ASLFR_QUIET_SET"] = "1"  # our choice, not the user's: child processes stay quiet
    with filtered_stderr():
        import tensorflow
    return tensorflow


class BackendError(RuntimeError):
    """Keras is already imported on another backend than the one asked for."""


def import_keras(backend: str | None = None) -> Any:
    """``import keras`` on ``backend`` (default: ``KERAS_BACKEND``, else TensorFlow).

    An error if Keras is already imported on another backend: Keras reads ``KERAS_BACKEND`` once.
    """
    if "keras" in sys.modules:
        keras = sys.modules["keras"]
        current = keras.backend.backend()
        if backend is not None and current != backend:
            raise BackendError(
                f"Keras is already imported with the {current!r} backend; {backend!r} was asked "
                f"for. Set KERAS_BACKEND={backend} before anything imports keras (for a notebook: "
                "restart the kernel)."
            )
        return keras
    if backend is not None:
        os.environ["KERAS_BACKEND"] = backend
    if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
        import_tensorflow()
    import keras

    return keras
