"""Choosing the Keras backend, and importing TensorFlow without its start-up log lines.

``import_keras(backend)`` is how every command imports Keras: it sets ``KERAS_BACKEND`` before
the first import, refuses a second backend in the same process (``BackendError``), and imports
TensorFlow quietly first when the backend is TensorFlow.

TensorFlow 2.21 writes a dozen C++ log lines on import (oneDNN, cpu_feature_guard, absl's "All
log messages before absl::InitializeLog()"), before Python can filter anything, and some of them
even with ``TF_CPP_MIN_LOG_LEVEL=3``. Unless the user set ``TF_CPP_MIN_LOG_LEVEL`` (then we
change nothing), ``import_tensorflow`` sets it to 2 and filters file descriptor 2
(``install_stderr_filter``): known noise is dropped, every other line reaches stderr as it
comes, so a real warning or error is never lost.
"""

from __future__ import annotations

import atexit
import os
import re
import sys
import threading
from typing import Any

LOG_LEVEL_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"
QUIET_LEVEL = "2"
OURS_VARIABLE = "ASLFR_QUIET_SET"  # set when the level is our choice: child processes filter too
NOISE = re.compile(
    r"All log messages before absl::InitializeLog|oneDNN custom operations are on"
    r"|cpu_feature_guard|This TensorFlow binary is optimized|To enable the following instructions"
    r"|Unable to register cu(DNN|FFT|BLAS) factory|computation placer already registered"
    r"|TF-TRT Warning|Could not find cuda drivers|rebuild TensorFlow with the appropriate"
    r"|oneDNN supports DT_BOOL only"
)


def user_wants_logs() -> bool:
    """The user chose TensorFlow's log level themselves."""
    return LOG_LEVEL_VARIABLE in os.environ and not os.environ.get(OURS_VARIABLE)


_stderr_filter: list[tuple[int, threading.Thread]] = []  # (saved fd 2, pump) once installed


def install_stderr_filter(noise: re.Pattern = NOISE) -> None:
    """From now on, drop the lines of file descriptor 2 that ``noise`` matches.

    fd 2 becomes a pipe; a thread forwards every other line to the real stderr as it arrives,
    so warnings and errors (Python's and C++'s) still appear, in order. Some TensorFlow lines
    come later than the import (oneDNN's "supports DT_BOOL only..." on the first bool
    transpose), hence a filter for the process's life, not only around the import. At exit the
    real stderr is restored and the pump drained, so a final traceback is never lost.
    """
    if _stderr_filter:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def pump() -> None:
        with os.fdopen(read_end, "rb") as pipe:
            for line in pipe:  # ends when the last write end (fd 2) is closed
                if not noise.search(line.decode(errors="replace")):
                    os.write(saved, line)

    thread = threading.Thread(target=pump, name="aslfr-stderr-filter", daemon=True)
    thread.start()
    _stderr_filter.append((saved, thread))
    atexit.register(remove_stderr_filter)


def remove_stderr_filter() -> None:
    """Give fd 2 back to the real stderr and forward what is still in the pipe."""
    if not _stderr_filter:
        return
    saved, thread = _stderr_filter.pop()
    sys.stderr.flush()
    os.dup2(saved, 2)  # closes the pipe's last write end: the pump reads to the end and stops
    thread.join(timeout=5)
    os.close(saved)


def import_tensorflow() -> Any:
    """``import tensorflow``, quietly unless the user set ``TF_CPP_MIN_LOG_LEVEL``."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    if user_wants_logs():
        import tensorflow

        return tensorflow
    os.environ[LOG_LEVEL_VARIABLE] = QUIET_LEVEL
    os.environ[OURS_VARIABLE] = "1"
    install_stderr_filter()
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
