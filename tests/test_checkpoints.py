"""Checkpoints: one loader registering our classes, clear errors, best.keras without optimizer."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest
from helpers import TINY_ARCHITECTURE

from aslfr_lib import checkpoints
from aslfr_lib.checkpoints import CheckpointError, load_checkpoint, read_run_state, save_checkpoint
from aslfr_lib.model import ModelConfig, build_model
from aslfr_lib.training import TrainConfig, compile_model

ROOT = Path(__file__).resolve().parents[1]
TINY = ModelConfig(**TINY_ARCHITECTURE, frames=8, features=6)


def trained_a_step(optimizer: str = "radam_lookahead"):
    """A compiled tiny model after one training step (so the optimizer has state)."""
    model = build_model(TINY, means=np.full(6, 0.5, np.float32), stds=np.ones(6, np.float32))
    compile_model(model, TrainConfig(epochs=2, optimizer=optimizer), steps_per_epoch=1)
    rng = np.random.default_rng(0)
    frames = rng.normal(size=(4, 8, 6)).astype(np.float32)
    phrase = np.full((4, 32), 61, np.int32)
    phrase[:, 0] = 1
    model.train_on_batch({"frames": frames, "phrase": phrase}, phrase)
    return model


def test_every_module_registering_classes_is_imported_by_the_loader():
    """A registered class in a module the loader does not import would fail in a fresh process."""
    registering = set()
    for path in sorted((ROOT / "aslfr_lib").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if "register_keras_serializable" in text:
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            registering.add(module)
    assert registering, "no registered classes found: the scan is broken"
    assert registering <= set(checkpoints.REGISTERING_MODULES)


def test_no_module_but_checkpoints_calls_load_model():
    """``keras.saving.load_model`` anywhere else would skip the registrations."""
    offenders = []
    for folder in ("aslfr_lib", "benchmarks"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path.name == "checkpoints.py":
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Attribute) and node.attr == "load_model":
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


def test_best_checkpoint_leaves_the_optimizer_out_and_both_load(tmp_path):
    model = trained_a_step()
    save_checkpoint(model, tmp_path / "last.keras", {"state": {"epochs_completed": 1}})
    save_checkpoint(model, tmp_path / "best.keras", {"state": {}}, include_optimizer=False)
    last_size = (tmp_path / "last.keras").stat().st_size
    best_size = (tmp_path / "best.keras").stat().st_size
    assert best_size < 0.6 * last_size  # RAdam's 2 moments + Lookahead's slow weights are gone
    assert model.optimizer is not None and model.compiled  # the live model is untouched
    best = load_checkpoint(tmp_path / "best.keras")
    last = load_checkpoint(tmp_path / "last.keras", compile=True)
    for a, b in zip(best.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert int(last.optimizer.iterations.numpy()) == 1
    assert read_run_state(tmp_path / "last.keras")["state"]["epochs_completed"] == 1


def test_bad_checkpoint_files_get_one_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        load_checkpoint(tmp_path / "missing.keras")
    text = tmp_path / "text.keras"
    text.write_text("not a zip")
    with pytest.raises(CheckpointError, match=r"text\.keras: not a Keras archive"):
        load_checkpoint(text)
    model = build_model(TINY)
    good = tmp_path / "good.keras"
    save_checkpoint(model, good)
    truncated = tmp_path / "truncated.keras"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(truncated)
    foreign = tmp_path / "foreign.keras"
    with zipfile.ZipFile(foreign, "w") as archive:
        archive.writestr("something.txt", "hello")
    with pytest.raises(CheckpointError, match="no config.json"):
        load_checkpoint(foreign)
    with pytest.raises(CheckpointError, match="not written by aslfr train"):
        read_run_state(good)


@pytest.mark.slow
def test_a_fresh_process_loads_a_checkpoint_through_the_loader(tmp_path):
    """The loader registers everything itself: nothing imported beforehand but the loader."""
    save_checkpoint(trained_a_step(), tmp_path / "last.keras")
    script = (
        "import sys; from aslfr_lib.checkpoints import load_checkpoint; "
        "m = load_checkpoint(sys.argv[1], compile=True); "
        "print(type(m.optimizer).__name__, int(m.optimizer.iterations.numpy()))"
    )
    env = {**os.environ, "KERAS_BACKEND": keras.backend.backend()}
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "last.keras")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["Lookahead", "1"]
