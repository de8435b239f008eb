"""Run a Kaggle submission the way the competition's scorer does, without TensorFlow.

The scorer reads ``inference_args.json`` for ``selected_columns``, reads each sequence's frames
with ``pandas.read_parquet(path, columns=selected_columns)``, calls the TFLite signature runner
``serving_default`` with ``inputs=frames`` ([frames, columns] float32, NaNs kept) and turns
``outputs`` ([length, classes]) into text with ``argmax`` and its character map. This module
repeats exactly that with the LiteRT interpreter, so a submission that passes here fails on
Kaggle only for reasons outside the file (time and memory limits). It reads the same values as
``pandas.read_parquet`` without Arrow's dataset scanner (see ``_read_indexed``).

Only numpy, pandas, pyarrow and ai-edge-litert are imported: the inference path must work in
environments without TensorFlow (the MediaPipe video environment pins numpy 1.26).
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from ai_edge_litert.interpreter import Interpreter

from aslfr_lib.landmarks import ALL_COLUMNS, INDEX_COLUMN
from aslfr_lib.vocab import decode_like_harness

MODEL_FILE = "model.tflite"
ARGS_FILE = "inference_args.json"
SUBMISSION_FILES = frozenset({MODEL_FILE, ARGS_FILE})
SIGNATURE = "serving_default"
INPUT_NAME = "inputs"
OUTPUT_NAME = "outputs"


class SubmissionError(ValueError):
    """A submission the harness would reject: names the file, signature, tensor or field."""


class SequenceError(ValueError):
    """A parquet file or sequence that cannot be read as the harness reads it."""


@dataclass(frozen=True)
class Submission:
    """The two files the harness reads, loaded from a submission.zip or a folder."""

    source: Path  # the submission.zip or folder it was loaded from
    model_bytes: bytes  # model.tflite
    selected_columns: list[str]  # inference_args.json's selected_columns, in order
    size_bytes: int  # the zip's size on disk (a folder: the two files together)

    @property
    def model_size_bytes(self) -> int:
        return len(self.model_bytes)


def _parse_inference_args(text: bytes, where: str) -> list[str]:
    try:
        args = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise SubmissionError(f"{where}: not valid JSON ({error})") from None
    if not isinstance(args, dict) or "selected_columns" not in args:
        raise SubmissionError(
            f'{where}: must be a JSON object with a "selected_columns" list; '
            f"got {type(args).__name__} with keys {sorted(args) if isinstance(args, dict) else []}"
        )
    columns = args["selected_columns"]
    if not isinstance(columns, list) or not columns:
        raise SubmissionError(f"{where}: selected_columns must be a non-empty list of names")
    not_strings = [c for c in columns if not isinstance(c, str)]
    if not_strings:
        raise SubmissionError(f"{where}: selected_columns holds non-strings {not_strings[:5]}")
    duplicates = sorted({c for c in columns if columns.count(c) > 1})
    if duplicates:
        raise SubmissionError(f"{where}: selected_columns repeats {duplicates[:5]}")
    # The harness reads these names from the competition parquet; any other name fails there.
    known = set(ALL_COLUMNS)
    unknown = [c for c in columns if c not in known]
    if unknown:
        raise SubmissionError(
            f"{where}: selected_columns has {len(unknown)} name(s) that are not competition "
            f"parquet columns, e.g. {unknown[:5]}"
        )
    return columns


def _check_members(names: Sequence[str], where: Path) -> None:
    missing = sorted(SUBMISSION_FILES - set(names))
    extra = sorted(set(names) - SUBMISSION_FILES)
    repeated = sorted({n for n in names if names.count(n) > 1})
    problems = []
    if missing:
        problems.append(f"missing {missing}")
    if extra:
        problems.append(f"unexpected {extra}")
    if repeated:
        problems.append(f"more than one {repeated}")
    if problems:
        raise SubmissionError(
            f"{where}: must hold exactly {sorted(SUBMISSION_FILES)}: {'; '.join(problems)}"
        )


def _load_zip(path: Path) -> Submission:
    try:
        with zipfile.ZipFile(path) as archive:
            # The reference notebook zips with folder prefixes (kaggle/working/model.tflite) and
            # was scored, so members are matched by file name; folder entries carry no data.
            members = [info for info in archive.infolist() if not info.is_dir()]
            _check_members([Path(info.filename).name for info in members], path)
            content = {Path(info.filename).name: archive.read(info) for info in members}
    except (zipfile.BadZipFile, OSError) as error:
        raise SubmissionError(f"{path}: not a readable zip file ({error})") from None
    columns = _parse_inference_args(content[ARGS_FILE], f"{path}:{ARGS_FILE}")
    return Submission(path, content[MODEL_FILE], columns, path.stat().st_size)


def _load_folder(path: Path) -> Submission:
    _check_members([p.name for p in path.iterdir()], path)
    model_bytes = (path / MODEL_FILE).read_bytes()
    args_bytes = (path / ARGS_FILE).read_bytes()
    columns = _parse_inference_args(args_bytes, str(path / ARGS_FILE))
    return Submission(path, model_bytes, columns, len(model_bytes) + len(args_bytes))


def load_submission(path: str | Path) -> Submission:
    """Read a submission.zip (or a folder) that holds exactly model.tflite + inference_args.json."""
    path = Path(path)
    if path.is_dir():
        return _load_folder(path)
    if not path.is_file():
        raise SubmissionError(f"{path}: no such submission file or folder")
    return _load_zip(path)


def _describe(details: dict) -> str:
    shape = [int(size) for size in details["shape_signature"]]
    return f"dtype {np.dtype(details['dtype']).name}, shape {shape}"


class HarnessRunner:
    """The harness's view of a submission: ``serving_default(inputs=frames)['outputs']``."""

    def __init__(self, submission: Submission | str | Path, num_threads: int = 1):
        if not isinstance(submission, Submission):
            submission = load_submission(submission)
        self.submission = submission
        self.num_threads = num_threads
        self.selected_columns = submission.selected_columns
        where = f"{submission.source}:{MODEL_FILE}"
        try:
            self.interpreter = Interpreter(
                model_content=submission.model_bytes, num_threads=num_threads
            )
        except (ValueError, RuntimeError) as error:
            raise SubmissionError(f"{where}: LiteRT cannot load the model ({error})") from None

        signatures = self.interpreter.get_signature_list()
        if SIGNATURE not in signatures:
            raise SubmissionError(
                f"{where}: no signature {SIGNATURE!r} (the harness calls it); "
                f"the model has {sorted(signatures)}"
            )
        self.signature_runner = self.interpreter.get_signature_runner(SIGNATURE)
        inputs = self.signature_runner.get_input_details()
        outputs = self.signature_runner.get_output_details()

        if list(inputs) != [INPUT_NAME]:
            raise SubmissionError(
                f"{where}: signature {SIGNATURE!r} must take exactly one input named "
                f"{INPUT_NAME!r}; it takes {sorted(inputs)}"
            )
        details = inputs[INPUT_NAME]
        width = len(self.selected_columns)
        shape = list(details["shape_signature"])
        if np.dtype(details["dtype"]) != np.float32 or len(shape) != 2 or shape[1] != width:
            raise SubmissionError(
                f"{where}: input {INPUT_NAME!r} must be float32 [frames, {width}] "
                f"({width} = len(selected_columns)); it is {_describe(details)}"
            )

        if OUTPUT_NAME not in outputs:
            raise SubmissionError(
                f"{where}: signature {SIGNATURE!r} has no output named {OUTPUT_NAME!r} "
                f"(the harness reads it); outputs are {sorted(outputs)}"
            )
        details = outputs[OUTPUT_NAME]
        if np.dtype(details["dtype"]) != np.float32 or len(details["shape_signature"]) != 2:
            raise SubmissionError(
                f"{where}: output {OUTPUT_NAME!r} must be float32 [length, classes]; "
                f"it is {_describe(details)}"
            )

    def outputs(self, frames: np.ndarray) -> np.ndarray:
        """``outputs`` for one sequence: ``frames`` is [frames, len(selected_columns)]."""
        frames = np.asarray(frames, dtype=np.float32)
        width = len(self.selected_columns)
        if frames.ndim != 2 or frames.shape[1] != width or frames.shape[0] == 0:
            raise ValueError(
                f"frames must be [frames >= 1, {width}] (one column per selected column); "
                f"got shape {list(frames.shape)}"
            )
        try:
            result = self.signature_runner(**{INPUT_NAME: frames})[OUTPUT_NAME]
        except (ValueError, RuntimeError) as error:
            raise SubmissionError(
                f"{self.submission.source}:{MODEL_FILE}: inference failed on "
                f"{frames.shape[0]} frames ({error})"
            ) from None
        if result.ndim != 2:
            raise SubmissionError(
                f"{self.submission.source}:{MODEL_FILE}: output {OUTPUT_NAME!r} came back "
                f"with shape {list(result.shape)}; the harness needs [length, classes]"
            )
        return result

    def predict_phrase(self, frames: np.ndarray) -> str:
        """The phrase the harness scores: argmax per position, ids outside the map dropped."""
        return decode_like_harness(np.argmax(self.outputs(frames), axis=1))


def _open(parquet_path: Path) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(parquet_path)
    except FileNotFoundError:
        raise SequenceError(f"{parquet_path}: no such parquet file") from None
    except (OSError, ValueError) as error:
        raise SequenceError(f"{parquet_path}: not a readable parquet file ({error})") from None


def _check_columns(parquet: pq.ParquetFile, where: Path, columns: Sequence[str]) -> None:
    names = set(parquet.schema_arrow.names)
    if INDEX_COLUMN not in names:
        raise SequenceError(f"{where}: has no {INDEX_COLUMN!r} index or column")
    missing = [c for c in columns if c not in names]
    if missing:
        raise SequenceError(
            f"{where}: lacks {len(missing)} of the {len(columns)} selected columns, "
            f"e.g. {missing[:5]}"
        )


def _row_groups_holding(parquet: pq.ParquetFile, sequence_id: int) -> list[int]:
    """Row groups whose sequence_id statistics admit ``sequence_id`` (all, without statistics)."""
    column = parquet.schema_arrow.get_field_index(INDEX_COLUMN)
    groups = []
    for group in range(parquet.metadata.num_row_groups):
        stats = parquet.metadata.row_group(group).column(column).statistics
        if stats is None or not stats.has_min_max or stats.min <= sequence_id <= stats.max:
            groups.append(group)
    return groups


def _read_indexed(
    parquet: pq.ParquetFile, where: Path, columns: Sequence[str], sequence_id: int | None = None
) -> pd.DataFrame:
    """The columns, indexed by sequence_id whether the file stores it as index or column.

    Read without threads and without Arrow's dataset scanner (which ``pandas.read_parquet`` uses):
    the scanner leaves thread-pool work behind that can abort the process at exit with
    "terminate called without an active exception" (apache/arrow#39862). The values are the ones
    ``pandas.read_parquet`` returns.
    """
    wanted = [INDEX_COLUMN, *columns]
    try:
        if sequence_id is None:
            table = parquet.read(columns=wanted, use_threads=False)
        else:
            groups = _row_groups_holding(parquet, sequence_id)
            table = parquet.read_row_groups(groups, columns=wanted, use_threads=False)
    except (OSError, ValueError) as error:  # pyarrow's IO and decoding errors
        raise SequenceError(f"{where}: corrupt parquet data ({error})") from None
    frame = table.to_pandas(use_threads=False)
    if frame.index.name != INDEX_COLUMN:
        frame = frame.set_index(INDEX_COLUMN)
    if sequence_id is not None:
        frame = frame[frame.index == sequence_id]
    return frame


def _to_frames(rows: pd.DataFrame, columns: Sequence[str], where: str, sequence_id) -> np.ndarray:
    try:
        return rows[list(columns)].to_numpy(dtype=np.float32)
    except (TypeError, ValueError) as error:
        raise SequenceError(
            f"{where}: sequence_id {sequence_id}: selected columns are not numeric ({error})"
        ) from None


def frames_of(
    table: pd.DataFrame, sequence_id: int, columns: Sequence[str], where: str = "table"
) -> np.ndarray:
    """float32 [n, len(columns)] of one sequence of a table indexed by sequence_id, in row order."""
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise SequenceError(f"{where}: lacks {len(missing)} selected columns, e.g. {missing[:5]}")
    rows = table[np.asarray(table.index == sequence_id)]
    if rows.empty:
        raise SequenceError(f"{where}: sequence_id {sequence_id} not found")
    return _to_frames(rows, columns, where, sequence_id)


def read_sequence(parquet_path: str | Path, sequence_id: int, columns: Sequence[str]) -> np.ndarray:
    """Frames of one sequence as the harness reads them: float32 [n, len(columns)], NaNs kept."""
    parquet_path = Path(parquet_path)
    with _open(parquet_path) as parquet:
        _check_columns(parquet, parquet_path, columns)
        table = _read_indexed(parquet, parquet_path, columns, int(sequence_id))
        ids = _read_indexed(parquet, parquet_path, []).index.unique() if table.empty else None
    if table.empty:
        raise SequenceError(
            f"{parquet_path}: sequence_id {sequence_id} not found; the file has "
            f"{len(ids)} sequence(s), e.g. {[int(i) for i in ids[:5]]}"
        )
    return _to_frames(table, columns, str(parquet_path), sequence_id)  # rows of sequence_id only


def read_sequences(
    parquet_path: str | Path, columns: Sequence[str]
) -> Iterator[tuple[int, np.ndarray]]:
    """(sequence_id, frames) for every sequence of a parquet file, in order of first row."""
    parquet_path = Path(parquet_path)
    with _open(parquet_path) as parquet:
        _check_columns(parquet, parquet_path, columns)
        table = _read_indexed(parquet, parquet_path, columns)
    if table.empty:
        raise SequenceError(f"{parquet_path}: holds no rows")
    for sequence_id, rows in table.groupby(level=0, sort=False):
        yield int(sequence_id), _to_frames(rows, columns, str(parquet_path), sequence_id)
