"""The submission files: ``model.tflite``, ``inference_args.json`` and ``submission.zip``.

The zip holds exactly the two files at its root, as Kaggle's harness expects. Every file is
written atomically and the zip last, so a folder never holds a zip that disagrees with the
files beside it.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from aslfr_lib import atomic
from aslfr_lib.landmarks import SELECTED_COLUMNS
from aslfr_lib.runner import ARGS_FILE, MODEL_FILE

ZIP_FILE = "submission.zip"


@dataclass(frozen=True)
class SubmissionPaths:
    model: Path  # model.tflite
    inference_args: Path  # inference_args.json
    zip: Path  # submission.zip with both at its root


def inference_args(selected_columns: list[str] | None = None) -> dict[str, list[str]]:
    """The harness reads these parquet columns, in this order, as the model's input."""
    return {
        "selected_columns": list(SELECTED_COLUMNS if selected_columns is None else selected_columns)
    }


def write_submission(
    out: str | Path, model_bytes: bytes, selected_columns: list[str] | None = None
) -> SubmissionPaths:
    """Write the three files into ``out``; returns their paths."""
    out = Path(out)
    paths = SubmissionPaths(out / MODEL_FILE, out / ARGS_FILE, out / ZIP_FILE)
    args_text = json.dumps(inference_args(selected_columns), indent=1) + "\n"
    atomic.write_bytes(paths.model, model_bytes)
    atomic.write_text(paths.inference_args, args_text)
    with (
        atomic.atomic_path(paths.zip) as temporary,
        zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_DEFLATED) as archive,
    ):
        archive.writestr(MODEL_FILE, model_bytes)
        archive.writestr(ARGS_FILE, args_text)
    return paths


def submission_files(out: str | Path) -> pd.DataFrame:
    """The files of a submission folder and the zip's members, with their sizes."""
    out = Path(out)
    rows = []
    for name in (MODEL_FILE, ARGS_FILE, ZIP_FILE):
        path = out / name
        if path.is_file():
            rows.append({"file": name, "in": str(out), "bytes": path.stat().st_size})
    zip_path = out / ZIP_FILE
    if zip_path.is_file():
        with zipfile.ZipFile(zip_path) as archive:
            for info in archive.infolist():
                rows.append(
                    {
                        "file": info.filename,
                        "in": ZIP_FILE,
                        "bytes": info.file_size,
                        "compressed_bytes": info.compress_size,
                    }
                )
    table = pd.DataFrame(rows, columns=["file", "in", "bytes", "compressed_bytes"])
    table["MB"] = (table["bytes"] / 1e6).round(3)
    return table
