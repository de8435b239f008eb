"""``stage_metrics.json``: what a stage (notebook or command) reports to the pipeline.

Each stage writes its numbers into its own output folder; ``aslfr pipeline`` merges them into the
run's ``metrics.json``. One definition of the file name and its atomic write, below both the
pipeline and the stages that write it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aslfr_lib import atomic

STAGE_METRICS = "stage_metrics.json"


def write_stage_metrics(folder: str | Path, metrics: dict[str, Any]) -> Path:
    """Write ``metrics`` as ``folder/stage_metrics.json`` (atomically); returns the path."""
    path = Path(folder) / STAGE_METRICS
    atomic.write_json(path, metrics)
    return path


def read_stage_metrics(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / STAGE_METRICS
    return json.loads(path.read_text(encoding="utf-8"))
