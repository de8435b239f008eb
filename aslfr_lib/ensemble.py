"""Ensembles: several trained checkpoints decoded as one model (``--model A --model B ...``).

What members must share, and why (``check_members``):

- **frames** (the encoder's input length): the exported graph preprocesses the raw landmarks
  once and every member's encoder reads the same rows; a CTC mean per frame needs the same time
  axis. Members trained with other ``--frames`` are an error.
- **features** and **vocabulary** (input width, classifier outputs): the same 164 landmark
  columns in, the same 62 classes out (the mean of log-probabilities is per class).
- **mirroring** of left-handed sequences (the processed data's ``mirror``, read from each
  member's run folder when its ``config.json`` names a processed folder that is still there).

What may differ: width, depth, encoder type, feature layers (hand-shape, bone, motion features)
and the normalisation statistics, because each member applies its own inside its encoder.
Members are combined by the mean of their log-probabilities: per frame for CTC decoding, per
step for attention decoding (``decoding``, ``export.inference``).

Importing this module needs no Keras: ``check_members`` asks the models only for shapes.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

MODEL_HELP = (
    "trained model folder (best.keras, last.keras) or a .keras file; repeat --model for an "
    "ensemble (members averaged: CTC per frame, attention per step)"
)


class EnsembleError(ValueError):
    """Members that cannot be decoded together (names the two checkpoints and the field)."""


def repeatable_model_flag(
    parser: argparse.ArgumentParser, help_text: str = MODEL_HELP
) -> argparse.ArgumentParser:
    """``parser`` with a repeatable ``--model`` (``--model A --model B``) instead of the config
    dataclass's, which keeps only the last value (a new parser with ``parser`` as parent)."""
    repeated = argparse.ArgumentParser(
        prog=parser.prog,
        description=parser.description,
        parents=[parser],
        conflict_handler="resolve",  # the new --model replaces the parent's
        add_help=False,  # the parent's -h is copied
    )
    repeated.add_argument("--model", action="append", default=None, help=help_text)
    return repeated


def model_list(model: str | Sequence[str]) -> tuple[str, ...]:
    """A config's ``model`` (one path, or several) as a non-empty tuple of paths."""
    models = (model,) if isinstance(model, str | Path) else tuple(model)
    if not models:
        raise EnsembleError("give at least one --model")
    return tuple(str(m) for m in models)


def single_or_tuple(model: str | Sequence[str]) -> str | tuple[str, ...]:
    """One path as a string (the usual case, as configs always held it), several as a tuple."""
    models = model_list(model)
    return models[0] if len(models) == 1 else models


def _classes(model: Any) -> int | None:
    from aslfr_lib.model import CTC_CLASSIFIER_NAME, decoder_of, has_ctc_head, has_decoder

    if has_ctc_head(model):
        return int(model.get_layer(CTC_CLASSIFIER_NAME).units)
    if has_decoder(model):
        return int(decoder_of(model).get_layer("classifier").units)
    return None


def properties(model: Any) -> dict[str, Any]:
    """What ensemble members must share: frames, features (per frame), classes."""
    from aslfr_lib.model import encoder_of, model_frames

    return {
        "frames": model_frames(model),
        "features": int(encoder_of(model).inputs[0].shape[-1]),
        "classes": _classes(model),
    }


def run_mirror(checkpoint: str | Path) -> bool | None:
    """The ``mirror`` setting of the data a checkpoint was trained on, when its run folder's
    ``config.json`` names a processed folder whose ``meta.json`` is still there (else None)."""
    folder = Path(checkpoint)
    folder = folder.parent if folder.suffix == ".keras" else folder
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        meta_path = Path(config["processed"]) / "meta.json"
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        return bool(meta["config"]["mirror"])
    except (OSError, KeyError, TypeError, ValueError):
        return None


def check_members(models: Sequence[Any], names: Sequence[str]) -> None:
    """Raise ``EnsembleError`` naming the first member that disagrees with the first one."""
    if len(models) != len(names):
        raise ValueError(f"{len(models)} models but {len(names)} names")
    if len(models) < 2:
        return
    reference = properties(models[0])
    for model, name in zip(models[1:], names[1:], strict=True):
        found = properties(model)
        for field, value in reference.items():
            if found[field] != value:
                raise EnsembleError(
                    f"{names[0]} and {name} differ in {field} ({value} vs {found[field]}): "
                    f"ensemble members must share frames, features and vocabulary "
                    f"(train them on the same processed data with the same --frames)"
                )
    mirrors = [(run_mirror(name), name) for name in names]
    known = [(mirror, name) for mirror, name in mirrors if mirror is not None]
    for mirror, name in known[1:]:
        if mirror != known[0][0]:
            raise EnsembleError(
                f"{known[0][1]} and {name} differ in mirror ({known[0][0]} vs {mirror}): their "
                "processed data flipped left-handed sequences differently"
            )


def drop_advice(
    total_bytes: int, limit_bytes: int, parameters: Sequence[int], names: Sequence[str]
) -> str:
    """Which members to leave out (the last ones first) so that the file fits: each member's
    share of the file is estimated by its share of the parameters."""
    total_parameters = sum(parameters) or 1
    sizes = [total_bytes * p / total_parameters for p in parameters]
    kept, dropped = list(range(len(names))), []
    while kept and sum(sizes[i] for i in kept) > limit_bytes:
        dropped.insert(0, kept.pop())
    each = ", ".join(f"{names[i]} (~{sizes[i] / 1e6:.1f} MB)" for i in dropped)
    if not kept:
        return "no member fits alone; export with --dynamic-range or train a smaller model"
    return f"drop {len(dropped)} member(s) to fit: {each}"
