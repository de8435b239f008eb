"""What a submission misses on synthetic data, split by what the camera caught of each character.

The generator knows, for every character, whether MediaPipe (imitated) showed the hand while the
letter's shape was held, only while the hand moved into or out of it, or never (the hand was
lost for the letter's whole time slot: ``synthetic.character_visibility``). This scores a
submission through the harness (``aslfr check-submission``), attributes each edit to the truth
character it touches, and prints error rates per kind: the share of the remaining distance that
no landmark model can read from the hand, and the share it could.

    .venv/bin/python benchmarks/readability.py outputs/demo/submission/submission.zip \\
        --config configs/demo.yaml --processed outputs/demo/processed

``--config`` is the pipeline config that wrote the dataset (its ``synth`` section and ``data``
folder); the sequences are rendered again from the same seeds.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from rapidfuzz.distance import Levenshtein

from aslfr_lib import synthetic
from aslfr_lib.config import load_yaml, make
from aslfr_lib.submission import check_submission


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("submission", help="submission.zip (or a folder with its two files)")
    parser.add_argument("--config", default="configs/demo.yaml", help="pipeline config (synth)")
    parser.add_argument("--data", help="dataset folder (default: the config's)")
    parser.add_argument("--processed", help="processed folder: score only its split")
    parser.add_argument("--split", default="val", help="split of --processed (val or train)")
    return parser.parse_args(argv)


def attribute_edits(
    phrases: list[str], predictions: list[str], visibility: list[np.ndarray]
) -> dict[str, float]:
    """Characters and deleted-or-replaced characters per visibility kind, and insertions."""
    counts = {"insertions": 0}
    for kind in range(len(synthetic.VISIBILITY_NAMES)):
        counts[f"characters_{kind}"] = counts[f"wrong_{kind}"] = 0
    for phrase, prediction, seen in zip(phrases, predictions, visibility, strict=True):
        wrong = np.zeros(len(phrase), dtype=bool)
        for edit in Levenshtein.editops(phrase, prediction):
            if edit.tag == "insert":
                counts["insertions"] += 1
            else:  # delete or replace: the truth character at src_pos was not read
                wrong[edit.src_pos] = True
        for kind in range(len(synthetic.VISIBILITY_NAMES)):
            counts[f"characters_{kind}"] += int((seen == kind).sum())
            counts[f"wrong_{kind}"] += int((wrong & (seen == kind)).sum())
    return counts


def format_table(counts: dict[str, float], score: float) -> str:
    kinds = range(len(synthetic.VISIBILITY_NAMES))
    characters = sum(counts[f"characters_{kind}"] for kind in kinds)
    edits = sum(counts[f"wrong_{kind}"] for kind in kinds) + counts["insertions"]
    lines = [f"{'character':14s} {'share':>7s} {'not read':>9s} {'share of edits':>15s}"]
    for kind in sorted(kinds, reverse=True):
        share = counts[f"characters_{kind}"] / characters
        wrong = counts[f"wrong_{kind}"]
        rate = wrong / max(counts[f"characters_{kind}"], 1)
        lines.append(
            f"{synthetic.VISIBILITY_NAMES[kind]:14s} {share:7.1%} {rate:9.1%} "
            f"{wrong / max(edits, 1):15.1%}"
        )
    lines.append(f"{'insertions':14s} {'':7s} {'':9s} {counts['insertions'] / max(edits, 1):15.1%}")
    hidden = counts[f"wrong_{synthetic.HIDDEN}"]
    lines.append(
        f"score {score:.4f}; with every seen character read and no insertions it would be "
        f"{1 - hidden / characters:.4f} (hidden characters still as read now), at most "
        f"{1 - counts[f'characters_{synthetic.HIDDEN}'] / characters:.4f} reading no hidden one"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    settings = load_yaml(args.config)
    data = Path(args.data or settings["data"])
    synth = make(synthetic.SynthConfig, {**settings.get("synth", {}), "out": str(data)})
    report = check_submission(args.submission, data, args.processed, args.split, progress=True)
    visibility = synthetic.dataset_visibility(synth, [r.sequence_id for r in report.results])
    counts = attribute_edits(
        [r.phrase for r in report.results],
        [r.prediction for r in report.results],
        [visibility[r.sequence_id] for r in report.results],
    )
    print(f"{report.sequences} sequences of {data} ({report.selection})")
    print(format_table(counts, report.score))
    return 0


if __name__ == "__main__":
    sys.exit(main())
