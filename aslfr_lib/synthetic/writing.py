"""Datasets: ``SynthConfig`` (the ``aslfr synth`` flags), planning the metadata, rendering and
writing the parquet files, and the command line."""

from __future__ import annotations

import argparse
import math
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from aslfr_lib import atomic, config, landmarks, vocab
from aslfr_lib.synthetic.layout import SPLITS
from aslfr_lib.synthetic.phrases import make_phrase, make_sentence_pool
from aslfr_lib.synthetic.rendering import RenderedSequence, render_sequence
from aslfr_lib.synthetic.signers import Signer, sample_signers
from aslfr_lib.synthetic.styles import check_style_name, style_names
from aslfr_lib.synthetic.summary import format_summary, style_statistics, summarize

# --------------------------------------------------------------------------------------------
# Configuration


@dataclass(frozen=True)
class SynthConfig:
    out: str = config.param("data/synthetic", "output folder")
    sequences: int = config.param(1000, "number of sequences in train.csv")
    participants: int = config.param(20, "number of signers")
    seed: int = config.param(0, "random seed (the letter shapes do not depend on it)")
    sequences_per_file: int = config.param(1000, "sequences per parquet file (Kaggle: ~1,000)")
    difficulty: float = config.param(
        0.6, "0 = easy (smoke tests), 1 = hard; the default matches the real data's statistics"
    )
    supplemental_sequences: int = config.param(
        0, ">0 also writes supplemental_metadata.csv and supplemental_landmarks/"
    )
    style: str = config.param(
        "default",
        f"how the signers sign: {', '.join(style_names())} (mix: each signer draws one; "
        "see aslfr_lib/synthetic/styles.py); default is the generator the published numbers used",
    )


SEQUENCES_PER_ROW_GROUP = 128  # bounds memory while writing; readers see one table

# --------------------------------------------------------------------------------------------
# Datasets.


def _check(config: SynthConfig) -> None:
    problems = []
    if config.sequences < 1:
        problems.append(f"sequences must be >= 1 (got {config.sequences})")
    if config.participants < 1:
        problems.append(f"participants must be >= 1 (got {config.participants})")
    if config.sequences_per_file < 1:
        problems.append(f"sequences_per_file must be >= 1 (got {config.sequences_per_file})")
    if not 0.0 <= config.difficulty <= 1.0:
        problems.append(f"difficulty must be in [0, 1] (got {config.difficulty})")
    if config.supplemental_sequences < 0:
        problems.append(
            f"supplemental_sequences must be >= 0 (got {config.supplemental_sequences})"
        )
    try:
        check_style_name(config.style)
    except ValueError as error:
        problems.append(str(error))
    if problems:
        raise ValueError("SynthConfig: " + "; ".join(problems))


def plan_metadata(config: SynthConfig, signers: list[Signer]) -> dict[str, pd.DataFrame]:
    """train.csv (and supplemental_metadata.csv) rows, sorted by file then sequence id."""
    rng = np.random.default_rng([config.seed, 2])
    counts = {"train": config.sequences, "supplemental": config.supplemental_sequences}
    counts = {split: count for split, count in counts.items() if count > 0}
    total = sum(counts.values())
    sequence_ids = rng.choice(2**31 - 10**9, total, replace=False) + 10**9
    files = {split: math.ceil(count / config.sequences_per_file) for split, count in counts.items()}
    file_ids = rng.choice(2**31 - 10**6, sum(files.values()), replace=False) + 10**6
    weights = rng.dirichlet(np.full(len(signers), 3.0))
    participant_ids = np.array([signer.participant_id for signer in signers])
    pool = make_sentence_pool(rng) if "supplemental" in counts else []
    tables = {}
    for split, count in counts.items():
        folder = SPLITS[split][1]
        ids, sequence_ids = sequence_ids[:count], sequence_ids[count:]
        split_files, file_ids = np.sort(file_ids[: files[split]]), file_ids[files[split] :]
        if split == "train":
            phrases = [make_phrase(rng) for _ in range(count)]
        else:
            phrases = [pool[i] for i in rng.integers(len(pool), size=count)]
        table = pd.DataFrame(
            {
                "file_id": split_files[rng.permutation(count) % len(split_files)],
                "sequence_id": ids.astype(np.int64),
                "participant_id": participant_ids[rng.choice(len(signers), count, p=weights)],
                "phrase": phrases,
            }
        )
        table.insert(0, "path", [f"{folder}/{file_id}.parquet" for file_id in table["file_id"]])
        tables[split] = table.sort_values(["file_id", "sequence_id"], ignore_index=True)
    return tables


def _landmark_schema() -> pa.Schema:
    """Arrow schema of a competition parquet, with the pandas metadata that makes ``sequence_id``
    the index when read back by ``pandas.read_parquet``."""
    empty = pd.DataFrame(
        {landmarks.FRAME_COLUMN: np.zeros(0, np.int16)}
        | {name: np.zeros(0, np.float32) for name in landmarks.LANDMARK_COLUMNS},
        index=pd.Index(np.zeros(0, np.int64), name=landmarks.INDEX_COLUMN),
    )
    return pa.Schema.from_pandas(empty, preserve_index=True)


LANDMARK_SCHEMA = _landmark_schema()


def landmark_table(sequence_ids: list[int] | np.ndarray, blocks: list[np.ndarray]) -> pa.Table:
    """Sequences' (T, 1629) float32 landmarks -> a table in the competition's parquet layout.

    NaN becomes null, as ``DataFrame.to_parquet`` stores it; pandas reads both back as NaN.
    """
    if len(sequence_ids) != len(blocks):
        raise ValueError(f"{len(sequence_ids)} sequence ids for {len(blocks)} landmark blocks")
    for sequence_id, block in zip(sequence_ids, blocks, strict=True):
        if block.ndim != 2 or block.shape[1] != len(landmarks.LANDMARK_COLUMNS):
            raise ValueError(
                f"sequence {sequence_id}: landmarks of shape {block.shape}, "
                f"expected (frames, {len(landmarks.LANDMARK_COLUMNS)})"
            )
    lengths = [len(block) for block in blocks]
    rows = sum(lengths)
    # (1629, rows): each column contiguous (cheap when blocks are column-major, as rendered).
    columns = np.concatenate([np.asarray(block, dtype=np.float32).T for block in blocks], axis=1)
    missing = np.isnan(columns)
    null_counts = missing.sum(axis=1)
    validity = np.packbits(~missing, axis=1, bitorder="little")  # Arrow's bitmap layout
    arrays = [pa.array(np.concatenate([np.arange(n, dtype=np.int16) for n in lengths]))]
    for column, bitmap, nulls in zip(columns, validity, null_counts, strict=True):
        buffers = [pa.py_buffer(bitmap) if nulls else None, pa.py_buffer(column)]
        arrays.append(pa.Array.from_buffers(pa.float32(), rows, buffers, null_count=int(nulls)))
    arrays.append(pa.array(np.repeat(np.asarray(sequence_ids, dtype=np.int64), lengths)))
    return pa.Table.from_arrays(arrays, schema=LANDMARK_SCHEMA)


def _readable(path: Path) -> None:
    """Dataset files are for everyone to read (the temporary file starts out private)."""
    path.chmod(0o644)


def _sequence_rng(config: SynthConfig, split: str, sequence_id: int) -> np.random.Generator:
    """One stream per sequence, so its landmarks do not depend on file or chunk boundaries."""
    return np.random.default_rng([config.seed, 3, list(SPLITS).index(split), int(sequence_id)])


def render_listed(
    config: SynthConfig, split: str, sequence_id: int, signer: Signer, phrase: str
) -> RenderedSequence:
    """The sequence ``config``'s dataset lists as ``sequence_id`` of ``split``, rendered from its
    own random stream (the same landmarks whichever file or chunk it is written in)."""
    rng = _sequence_rng(config, split, sequence_id)
    return render_sequence(phrase, signer, rng, config.difficulty)


def _write_landmark_file(
    path: Path, rows: pd.DataFrame, signers: dict[int, Signer], config: SynthConfig, split: str
) -> None:
    """Render and write one parquet file, a row group per ``SEQUENCES_PER_ROW_GROUP`` sequences.

    Parquet encoding releases the GIL, so a row group is written while the next one renders.
    """
    with (
        atomic.atomic_path(path) as temporary,
        pq.ParquetWriter(
            temporary,
            LANDMARK_SCHEMA,
            compression="none",  # noisy float32 does not compress: snappy only costs time
            # Dictionaries only help the repeated columns; on noisy floats they cost time.
            use_dictionary=[landmarks.INDEX_COLUMN, landmarks.FRAME_COLUMN],
        ) as writer,
        ThreadPoolExecutor(max_workers=1) as background,
    ):
        pending = None
        for start in range(0, len(rows), SEQUENCES_PER_ROW_GROUP):
            chunk = rows.iloc[start : start + SEQUENCES_PER_ROW_GROUP]
            blocks = [
                render_listed(config, split, sequence_id, signers[participant], phrase).landmarks
                for sequence_id, participant, phrase in zip(
                    chunk["sequence_id"], chunk["participant_id"], chunk["phrase"], strict=True
                )
            ]
            table = landmark_table(chunk["sequence_id"].to_numpy(), blocks)
            if pending is not None:
                pending.result()  # row groups stay in order
            pending = background.submit(writer.write_table, table)
        if pending is not None:
            pending.result()
    _readable(path)


def generate(config: SynthConfig, progress: bool = True) -> dict[str, Any]:
    """Write a synthetic dataset in the competition's layout; returns ``summarize(config.out)``
    plus ``"styles"``: the rows of ``style_statistics(config)``."""
    _check(config)
    out = Path(config.out)
    signers = sample_signers(config)
    by_participant = {signer.participant_id: signer for signer in signers}
    tables = plan_metadata(config, signers)
    character_map = resources.files("aslfr_lib").joinpath("resources", vocab.CHARACTER_MAP_FILE)
    with atomic.atomic_path(out / vocab.CHARACTER_MAP_FILE) as temporary:
        temporary.write_bytes(character_map.read_bytes())
        _readable(temporary)
    files = [
        (split, path, rows)
        for split, table in tables.items()
        for path, rows in table.groupby("path", sort=False)
    ]
    for split, path, rows in tqdm(files, desc=f"synth {out}", unit="file", disable=not progress):
        _write_landmark_file(out / path, rows, by_participant, config, split)
    # Metadata last: a table never lists a file that is not there yet.
    for split, table in tables.items():
        with atomic.atomic_path(out / SPLITS[split][0]) as temporary:
            table.to_csv(temporary, index=False)
            _readable(temporary)
    summary = summarize(out, progress=progress)
    summary["styles"] = style_statistics(config).reset_index(names="style").to_dict("records")
    if "supplemental" in tables:
        summary["supplemental"] = summarize(out, "supplemental", progress=progress)
    return summary


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="aslfr synth",
        description="Write a synthetic dataset in the layout of Kaggle's ASL fingerspelling data.",
    )
    config.add_arguments(parser, SynthConfig)
    arguments = parser.parse_args(argv)
    try:
        summary = generate(config.from_args(SynthConfig, arguments))
    except ValueError as error:
        parser.error(str(error))
    print(format_summary(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
