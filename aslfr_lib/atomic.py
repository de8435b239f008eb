"""Atomic file output: write to a temporary file beside the target, then rename over it.

A killed process leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(target: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto ``target`` on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=suffix + ".tmp", dir=target.parent
    )
    os.close(handle)
    os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes 0600; give what open() would
    temporary = Path(temporary)
    try:
        yield temporary
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def write_bytes(target: str | Path, data: bytes) -> None:
    with atomic_path(target) as path:
        path.write_bytes(data)


def write_text(target: str | Path, text: str) -> None:
    with atomic_path(target) as path:
        path.write_text(text, encoding="utf-8")


def write_json(target: str | Path, data: Any) -> None:
    write_text(target, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def save_npy(target: str | Path, array: np.ndarray) -> None:
    """``np.save`` atomically (the temporary name keeps ``.npy`` so numpy adds nothing)."""
    with atomic_path(target, suffix=".npy") as path, open(path, "wb") as file:
        np.save(file, array)
