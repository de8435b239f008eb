"""Statistics of a dataset folder in the competition's layout (synthetic or the real download),
and of what each style did in a synthetic one."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from aslfr_lib import landmarks
from aslfr_lib.synthetic.layout import METADATA_COLUMNS, SPLITS
from aslfr_lib.synthetic.signers import sample_signers
from aslfr_lib.synthetic.styles import DOUBLED_LETTER_MARKS, style_names

if TYPE_CHECKING:
    from aslfr_lib.synthetic.writing import SynthConfig


def _describe(values: np.ndarray) -> dict[str, float]:
    return {
        "mean": float(np.mean(values)),
        "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
        "min": float(np.min(values)),
        "max": float(np.max(values)),
    }


_WRISTS = ["x_left_hand_0", "x_right_hand_0"]  # MediaPipe reports a hand whole or not at all


def _hand_counts(path: Path, expected: pd.Series) -> pd.DataFrame:
    """Per sequence of one parquet file: frames, frames with a left / right / no hand."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: listed in the metadata but missing")
    # ParquetFile without threads, not pandas.read_parquet: Arrow's dataset scanner can abort the
    # process at exit (see runner._read_indexed).
    with pq.ParquetFile(path) as parquet:
        read = parquet.read(columns=_WRISTS, use_threads=False, use_pandas_metadata=True)
    table = read.to_pandas(use_threads=False)
    if table.index.name != landmarks.INDEX_COLUMN:
        raise ValueError(f"{path}: index is {table.index.name!r}, expected 'sequence_id'")
    ids = table.index.to_numpy()
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]]) if len(ids) else np.zeros(0, int)
    run_ids = pd.Index(ids[starts])
    if run_ids.has_duplicates:
        repeated = run_ids[run_ids.duplicated()][0]
        raise ValueError(f"{path}: rows of sequence {repeated} are not contiguous")
    missing = pd.Index(expected).difference(run_ids)
    if len(missing):
        raise ValueError(f"{path}: sequence {missing[0]} is in the metadata but not in the file")
    left = table[_WRISTS[0]].notna().to_numpy()
    right = table[_WRISTS[1]].notna().to_numpy()
    counts = pd.DataFrame(
        {
            "frames": np.diff(np.r_[starts, len(ids)]),
            "left": np.add.reduceat(left, starts),
            "right": np.add.reduceat(right, starts),
            "no_hand": np.add.reduceat(~left & ~right, starts),
        },
        index=run_ids,
    )
    return counts.loc[expected.to_numpy()]


def summarize(data_dir: str | Path, split: str = "train", progress: bool = False) -> dict[str, Any]:
    """Statistics of a dataset folder in the competition's layout (synthetic or real)."""
    data_dir = Path(data_dir)
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {list(SPLITS)}")
    metadata_path = data_dir / SPLITS[split][0]
    if not metadata_path.exists():
        raise FileNotFoundError(f"{metadata_path}: no such file (is {data_dir} a dataset folder?)")
    metadata = pd.read_csv(metadata_path, keep_default_na=False)
    absent = [column for column in METADATA_COLUMNS if column not in metadata.columns]
    if absent:
        raise ValueError(f"{metadata_path}: missing columns {absent}")
    groups = metadata.groupby("path", sort=False)
    counts = pd.concat(
        [
            _hand_counts(data_dir / path, rows["sequence_id"])
            for path, rows in tqdm(
                groups, desc=f"summarize {metadata_path.name}", unit="file", disable=not progress
            )
        ]
    ).loc[metadata["sequence_id"].to_numpy()]
    lengths = metadata["phrase"].astype(str).str.len().to_numpy()
    frames = counts["frames"].to_numpy()
    total = frames.sum()
    hands = counts[["left", "right"]].groupby(metadata["participant_id"].to_numpy()).sum()
    return {
        "split": split,
        "sequences": len(metadata),
        "files": metadata["path"].nunique(),
        "participants": metadata["participant_id"].nunique(),
        "unique_phrases": metadata["phrase"].nunique(),
        "phrase_length": _describe(lengths),
        "frames": _describe(frames),
        "frames_per_character": float(total / lengths.sum()),
        "no_hand_frames_pct": float(100 * counts["no_hand"].sum() / total),
        "left_hand_missing_pct": float(100 * (1 - counts["left"].sum() / total)),
        "right_hand_missing_pct": float(100 * (1 - counts["right"].sum() / total)),
        "left_handed_signers": int((hands["left"] > hands["right"]).sum()),
    }


def format_summary(summary: dict[str, Any]) -> str:
    """The summary as a few readable lines (what ``aslfr synth`` prints)."""

    def stats(values: dict[str, float]) -> str:
        return (
            f"mean {values['mean']:.1f}  std {values['std']:.1f}  "
            f"min {values['min']:.0f}  max {values['max']:.0f}"
        )

    lines = [
        f"{summary['split']}: {summary['sequences']:,} sequences in {summary['files']:,} files, "
        f"{summary['participants']} participants ({summary['left_handed_signers']} left-handed), "
        f"{summary['unique_phrases']:,} distinct phrases",
        f"  phrase length        {stats(summary['phrase_length'])}",
        f"  frames per sequence  {stats(summary['frames'])}",
        f"  frames per character {summary['frames_per_character']:.1f}",
        f"  frames with no hand  {summary['no_hand_frames_pct']:.1f} %",
        f"  left hand missing    {summary['left_hand_missing_pct']:.1f} % of frames",
        f"  right hand missing   {summary['right_hand_missing_pct']:.1f} % of frames",
    ]
    if "styles" in summary:
        lines.append("  by style:")
        lines.append(format_style_statistics(pd.DataFrame(summary["styles"]).set_index("style")))
    if "supplemental" in summary:
        lines.append(format_summary(summary["supplemental"]))
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# What each style did (synthetic datasets only: the styles come from the signers ``config`` makes).


def _hand_frames(path: Path) -> dict[int, np.ndarray]:
    """Per sequence of one parquet file: (T, 2) bool, a hand in the left / right slot."""
    with pq.ParquetFile(path) as parquet:
        read = parquet.read(columns=_WRISTS, use_threads=False, use_pandas_metadata=True)
    table = read.to_pandas(use_threads=False)
    ids = table.index.to_numpy()
    shown = table[_WRISTS].notna().to_numpy()
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]]) if len(ids) else np.zeros(0, int)
    return dict(zip(ids[starts].tolist(), np.split(shown, starts[1:]), strict=True))


def _lost_runs(hand: np.ndarray) -> np.ndarray:
    """Lengths of the stretches without a hand between the first and last frames with one."""
    gaps = np.diff(np.flatnonzero(hand)) - 1
    return gaps[gaps > 0]


STYLE_COLUMNS = {  # column of ``style_statistics`` -> what it measures
    "signers": "participants signing in the style",
    "sequences": "sequences they signed",
    "frames_per_character": "frames per character, lead-in and lead-out included",
    "hand_frames_pct": "frames with a hand in either slot, %",
    "other_slot_pct": "frames with a hand in the non-dominant slot (resting hand, swaps), %",
    "mean_lost_run": "mean frames per stretch without a hand, inside a sequence",
    "slide": "signers who slide a doubled letter aside",
    "bounce": "signers who bounce it",
    "none": "signers who do not mark it",
}


def style_statistics(config: SynthConfig, split: str = "train") -> pd.DataFrame:
    """Per style, what it did in the dataset ``config`` wrote to ``config.out`` (one row per
    style its signers use, columns ``STYLE_COLUMNS``): speed, hands in view, lost stretches and
    doubled-letter marks, so a user sees what ``--style`` changed."""
    signers = {signer.participant_id: signer for signer in sample_signers(config)}
    data_dir = Path(config.out)
    metadata_path = data_dir / SPLITS[split][0]
    if not metadata_path.exists():
        raise FileNotFoundError(f"{metadata_path}: no such file (is {data_dir} a dataset folder?)")
    metadata = pd.read_csv(metadata_path, keep_default_na=False)
    strangers = sorted(set(metadata["participant_id"]) - set(signers))
    if strangers:
        raise ValueError(
            f"{metadata_path}: participant {strangers[0]} is not a signer of {config}: pass the "
            "synth settings the dataset was made with"
        )
    totals: dict[str, dict[str, Any]] = {}
    for path, rows in metadata.groupby("path", sort=False):
        shown = _hand_frames(data_dir / path)
        for sequence_id, participant, phrase in zip(
            rows["sequence_id"], rows["participant_id"], rows["phrase"], strict=True
        ):
            signer = signers[participant]
            hands = shown[int(sequence_id)]
            total = totals.setdefault(
                signer.style,
                {"sequences": 0, "characters": 0, "frames": 0, "hand": 0, "other": 0, "runs": []},
            )
            total["sequences"] += 1
            total["characters"] += len(phrase)
            total["frames"] += len(hands)
            total["hand"] += int(hands.any(axis=1).sum())
            total["other"] += int(hands[:, 1 if signer.left_handed else 0].sum())
            total["runs"].append(_lost_runs(hands.any(axis=1)))
    table = {}
    for style in [name for name in style_names() if name in totals]:
        total = totals[style]
        runs = np.concatenate(total["runs"])
        in_style = [s for s in signers.values() if s.style == style]
        marks = [s.doubled_letters for s in in_style]
        table[style] = {
            "signers": len(in_style),
            "sequences": total["sequences"],
            "frames_per_character": total["frames"] / total["characters"],
            "hand_frames_pct": 100 * total["hand"] / total["frames"],
            "other_slot_pct": 100 * total["other"] / total["frames"],
            "mean_lost_run": float(runs.mean()) if len(runs) else 0.0,
        } | {mark: marks.count(mark) for mark in DOUBLED_LETTER_MARKS}
    return pd.DataFrame.from_dict(table, orient="index", columns=list(STYLE_COLUMNS))


def format_style_statistics(table: pd.DataFrame) -> str:
    """``style_statistics`` as a small aligned table (what ``aslfr synth`` prints)."""
    lines = [
        "  style       signers  sequences  frames/char  hand frames  other slot  lost run  "
        "doubled letters (signers)"
    ]
    for style, row in table.iterrows():
        lines.append(
            f"  {style:<11} {row['signers']:>7.0f}  {row['sequences']:>9.0f}  "
            f"{row['frames_per_character']:>11.1f}  {row['hand_frames_pct']:>9.1f} %  "
            f"{row['other_slot_pct']:>8.1f} %  {row['mean_lost_run']:>8.1f}  "
            f"slide {row['slide']:.0f}, bounce {row['bounce']:.0f}, none {row['none']:.0f}"
        )
    return "\n".join(lines)
