"""Helpers shared by several test modules; import them with ``from helpers import ...``.

pytest's default (prepend) import mode puts ``tests/`` on ``sys.path``, so this module is found
from every test module. It must stay importable without Keras and TensorFlow (the video
environment, ``.venv-video``, has neither): heavy modules are imported inside functions only,
and ``BACKEND`` is looked up on first use (see ``__getattr__`` below).

- ``FIXTURES``: the folder of checked-in test data.
- ``tiny_config``: a tiny ``ModelConfig`` for fast model tests.
- ``TINY_ARCHITECTURE``: the smallest sizes the training loop runs (TrainConfig keywords).
- ``build_model``, ``write_submission``, ``competition_table``: the harness test kit (a tiny
  ``.tflite`` model whose phrase reports its input, a submission.zip around it, and parquet
  rows in the competition's layout).
- ``BACKEND``, ``run_on_other_backend``: rerun a test file under the other Keras backend.
- ``write_unreadable``: a processed folder of noise, on which CTC stays on the blank plateau.
- ``load_benchmark``: a script of ``benchmarks/`` as a module.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pytest

from aslfr_lib.landmarks import INDEX_COLUMN, LANDMARK_COLUMNS, SELECTED_COLUMNS
from aslfr_lib.vocab import CHAR_TO_ID, EOS, NUM_CLASSES, PAD, TARGET_LENGTH, encode

if TYPE_CHECKING:
    from aslfr_lib.model import ModelConfig

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"


# ----------------------------------------------------------------------------- tiny model config
# The smallest architecture the training loop runs: keyword arguments of TrainConfig and
# ModelConfig alike (training tests; ``tiny_config`` is the model tests' own).
TINY_ARCHITECTURE: dict[str, int] = dict(
    encoder_dim=16, decoder_dim=16, encoder_blocks=1, decoder_blocks=1, num_heads=2
)

TINY_DEFAULTS: dict[str, int] = dict(
    encoder_dim=32,
    encoder_blocks=1,
    decoder_dim=16,
    decoder_blocks=2,
    num_heads=2,
    frames=40,
    features=6,
)


def tiny_config(**overrides: Any) -> ModelConfig:
    """A tiny ``ModelConfig`` (``TINY_DEFAULTS``: builds in about a second on a CPU).

    The default is 40 frames of 6 features, encoder width 32 in one block, decoder width 16 in
    two blocks, two heads; ``overrides`` replace any of these or set any other field.
    """
    from aslfr_lib.model import ModelConfig

    return ModelConfig(**{**TINY_DEFAULTS, **overrides})


# -------------------------------------------------------------------------- harness test kit
def build_model(
    input_name: str = "inputs",
    dtype: str = "float32",
    width: int = len(SELECTED_COLUMNS),
    signature: str = "serving_default",
    output_name: str = "outputs",
    workdir: Path | None = None,
) -> bytes:
    """A tiny TFLite model whose phrase reports its input: "<frames % 10><nan frames % 10>ok"."""
    import tensorflow as tf

    digits = tf.constant([CHAR_TO_ID[str(d)] for d in range(10)], tf.int32)
    tail = [CHAR_TO_ID["o"], CHAR_TO_ID["k"], EOS] + [PAD] * (TARGET_LENGTH - 5)

    class Reporter(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, width], dtype, name=input_name)])
        def __call__(self, inputs):
            x = tf.cast(inputs, tf.float32)
            frames = tf.shape(x)[0]
            nan_frames = tf.reduce_sum(tf.cast(tf.reduce_any(tf.math.is_nan(x), axis=1), tf.int32))
            head = tf.gather(digits, tf.stack([frames % 10, nan_frames % 10]))
            tokens = tf.concat([head, tf.constant(tail, tf.int32)], axis=0)  # (TARGET_LENGTH,)
            return {output_name: tf.one_hot(tokens, NUM_CLASSES)}  # (TARGET_LENGTH, NUM_CLASSES)

    module = Reporter()
    function = module.__call__.get_concrete_function()
    if signature == "serving_default":
        converter = tf.lite.TFLiteConverter.from_concrete_functions([function], module)
    else:
        # from_concrete_functions always names the signature serving_default.
        saved = Path(workdir) / f"saved_{signature}"
        tf.saved_model.save(module, str(saved), signatures={signature: function})
        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved), [signature])
    return converter.convert()


def write_submission(
    path: Path,
    model_bytes: bytes,
    columns: list[str] | None = None,
    inference_args: dict | None = None,
    extra: dict[str, bytes] | None = None,
    leave_out: tuple[str, ...] = (),
) -> Path:
    """A submission.zip as the export writes it (or broken in the asked way)."""
    args = {"selected_columns": list(columns or SELECTED_COLUMNS)}
    files = {
        "model.tflite": model_bytes,
        "inference_args.json": json.dumps(inference_args or args).encode(),
        **(extra or {}),
    }
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            if name not in leave_out:
                archive.writestr(name, data)
    return path


def competition_table(sequences: dict[int, int], seed: int = 0) -> pd.DataFrame:
    """Competition-layout rows: {sequence_id: frames}; every third frame lacks the left hand."""
    rng = np.random.default_rng(seed)
    tables = []
    for sequence_id, frames in sequences.items():
        values = rng.random((frames, len(LANDMARK_COLUMNS)), dtype=np.float32)
        left_hand = [i for i, c in enumerate(LANDMARK_COLUMNS) if "_left_hand_" in c]
        values[::3, left_hand] = np.nan
        table = pd.DataFrame(values, columns=LANDMARK_COLUMNS)
        table.insert(0, "frame", np.arange(frames, dtype=np.int16))
        table.index = pd.Index(np.full(frames, sequence_id, dtype=np.int64), name=INDEX_COLUMN)
        tables.append(table)
    return pd.concat(tables)


# ------------------------------------------------------------------------ processed folders
UNREADABLE_PHRASES = ["hello world", "12 main st", "www.abc.com", "zoe", "route 66"]


def write_unreadable(folder: Path, count=24, frames=16, features=6) -> Path:
    """A processed folder of noise frames: nothing to read, so CTC cannot leave the blank
    plateau (tests of the stall guard and of the schedule that waits for alignment)."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    meta = {"format_version": 2, "storage": "ragged", "config": {"frames": frames}}
    for split, n in (("train", count), ("val", 6)):
        np.save(folder / f"frames_{split}.npy", rng.normal(size=(n * frames, features)))
        np.save(folder / f"offsets_{split}.npy", np.arange(n + 1, dtype=np.int64) * frames)
        targets = [encode(UNREADABLE_PHRASES[i % len(UNREADABLE_PHRASES)][:6]) for i in range(n)]
        np.save(folder / f"y_{split}.npy", np.array(targets, np.int8))
        meta[split] = {"sequence_ids": list(range(n))}
    np.save(folder / "means.npy", np.zeros(features, np.float32))
    np.save(folder / "stds.npy", np.ones(features, np.float32))
    (folder / "meta.json").write_text(json.dumps(meta))
    return folder


# --------------------------------------------------------------------------------- benchmarks
def load_benchmark(name: str) -> ModuleType:
    """``benchmarks/<name>.py`` (not a package) as the module ``bench_<name>``, registered in
    ``sys.modules`` so that its dataclasses find their module."""
    spec = importlib.util.spec_from_file_location(
        f"bench_{name}", REPO / "benchmarks" / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------------------ other backend
def __getattr__(name: str) -> Any:
    """``BACKEND``: the Keras backend in use (conftest picks it), read when first asked for, so
    that importing this module does not import Keras."""
    if name == "BACKEND":
        import keras

        return keras.backend.backend()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def run_on_other_backend(test_file: str) -> None:
    """Rerun ``test_file`` under the other Keras backend in a subprocess; fail if it fails.

    JAX runs in its default 32-bit mode, as training does, so its float64 cases skip there.
    """
    import keras

    other = {"tensorflow": "jax", "jax": "tensorflow"}.get(keras.backend.backend())
    if other is None or os.environ.get("ASLFR_NESTED_BACKEND_RUN"):
        pytest.skip("already the nested run, or a backend without a partner")
    env = dict(os.environ, KERAS_BACKEND=other, ASLFR_NESTED_BACKEND_RUN="1")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test_file],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert " passed" in result.stdout.strip().splitlines()[-1], result.stdout[-2000:]
