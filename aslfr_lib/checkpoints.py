"""Saving and loading ``.keras`` checkpoints: the one place that calls ``keras.saving.load_model``.

A checkpoint names our registered classes (layers, optimizers, schedules, losses, metrics) by
``aslfr>ClassName``; Keras finds them only if their modules were imported in this process.
``load_checkpoint`` imports every such module first, so a fresh ``aslfr evaluate`` or
``aslfr train --resume`` loads what ``aslfr train`` wrote. ``REGISTERING_MODULES`` lists them; a
test fails when a registered class lives in a module missing from it.

Saving is atomic (temporary folder beside the target, then ``os.replace``), and the run state of
``aslfr train`` (epochs done, best score, history) can travel inside the same zip.
``include_optimizer=False`` writes weights and architecture only: what evaluation, export and
fine-tuning read (``best.keras``); ``last.keras`` keeps the optimizer for ``--resume``.
"""

from __future__ import annotations

import importlib
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

RUN_STATE = "aslfr_run_state.json"  # extra member of the zip; Keras ignores it when loading
# Modules whose import registers classes a checkpoint may name (keras.saving registration).
REGISTERING_MODULES = (
    "aslfr_lib.layers",
    "aslfr_lib.conformer",
    "aslfr_lib.optimizers",
    "aslfr_lib.schedules",
    "aslfr_lib.losses",
    "aslfr_lib.metrics",
)
KERAS_ARCHIVE_MEMBERS = ("config.json", "metadata.json")


class CheckpointError(ValueError):
    """A checkpoint that is missing, truncated, not a Keras archive, or does not load."""


def register_custom_objects() -> None:
    """Import every module that registers classes with ``keras.saving``."""
    for name in REGISTERING_MODULES:
        importlib.import_module(name)


def check_archive(path: str | Path) -> Path:
    """``path`` as a Path if it is a readable ``.keras`` zip; a ``CheckpointError`` otherwise."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            broken = archive.testzip()
    except (zipfile.BadZipFile, OSError) as error:
        raise CheckpointError(
            f"{path}: not a Keras archive, or truncated ({error}); train again or use "
            "another checkpoint"
        ) from error
    if broken is not None:
        raise CheckpointError(f"{path}: corrupt Keras archive (member {broken} fails its CRC)")
    missing = [name for name in KERAS_ARCHIVE_MEMBERS if name not in names]
    if missing:
        raise CheckpointError(f"{path}: not a Keras archive (no {', '.join(missing)})")
    return path


def load_checkpoint(path: str | Path, compile: bool = False) -> Any:  # noqa: A002 - Keras's name
    """The Keras model in ``path``, with our classes registered first.

    ``compile=False`` (evaluation, export) skips the optimizer, loss and metrics; ``--resume``
    loads with ``compile=True`` to get the optimizer state back.
    """
    path = check_archive(path)
    register_custom_objects()
    import keras

    try:
        return keras.saving.load_model(path, compile=compile)
    except Exception as error:  # Keras raises many types for a foreign or damaged file
        raise CheckpointError(f"{path}: cannot load the Keras model ({error})") from error


def save_checkpoint(
    model: Any,
    path: str | Path,
    run_state: dict | None = None,
    include_optimizer: bool = True,
) -> None:
    """``model.save`` into a temporary folder beside ``path``, then rename over it.

    ``run_state`` (JSON) is added to the zip as ``RUN_STATE``, so the epoch count and history
    travel in the same atomic rename as the weights they describe. Without the optimizer the
    V6 model's file is 16.2 MB instead of 95.8 MB (RAdam's moments and Lookahead's slow
    weights, each as large as the weights, and their bookkeeping).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{path.stem}.", dir=path.parent) as folder:
        temporary = Path(folder) / path.name  # Keras insists on the .keras suffix
        if include_optimizer or getattr(model, "optimizer", None) is None:
            model.save(temporary)
        else:
            _save_without_optimizer(model, temporary)
        if run_state is not None:
            with zipfile.ZipFile(temporary, "a") as archive:
                archive.writestr(RUN_STATE, json.dumps(run_state))
        os.replace(temporary, path)


def _save_without_optimizer(model: Any, path: Path) -> None:
    """Save ``model`` as if it were never compiled (Keras 3 has no ``include_optimizer``)."""
    optimizer, compiled, compile_config = (
        model.optimizer,
        model.compiled,
        getattr(model, "_compile_config", None),
    )
    try:
        model.optimizer = None
        model.compiled = False
        model._compile_config = None
        model.save(path)
    finally:
        model.optimizer = optimizer
        model.compiled = compiled
        model._compile_config = compile_config


def read_run_state(path: str | Path) -> dict[str, Any]:
    """The ``run_state`` saved in a checkpoint by ``save_checkpoint``."""
    path = check_archive(path)
    with zipfile.ZipFile(path) as archive:
        if RUN_STATE not in archive.namelist():
            raise CheckpointError(
                f"{path} was not written by aslfr train (no {RUN_STATE}): cannot resume"
            )
        return json.loads(archive.read(RUN_STATE))
