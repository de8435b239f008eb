"""Ensembles and decoders, scored through the exported model.tflite as Kaggle's harness runs it.

    .venv/bin/python benchmarks/ensemble.py --members RUN/seed42 RUN/seed43 RUN/seed44 \\
        --processed data/processed --data data/asl-fingerspelling [--limit 2000]
    # members: aslfr train --config configs/best.yaml --processed ... --out RUN --seeds 42,43,44

For every member alone, and for the ensembles of its first 2, 3, ... members (``--sizes``), and
for every decoder (``--decoders``, default ctc, ctc_beam, attention, joint; those the members'
heads allow), the benchmark runs ``aslfr export --model M1 [--model M2 ...] --decoder D`` (int8
weights, the export default) and ``aslfr check-submission --split val --json`` on the processed
validation split (the held-out signers). It prints one table: held-out score, its difference to
the first row (member 1, greedy CTC: the current export), model MB, p50/p95 ms per sequence
(LiteRT, 1 thread) and projected harness hours for 40,000 sequences (mean ms; the harness
allows 5 h). Each row is a subprocess with its log in ``--out``; a row whose result.json holds
the same settings is reused (``--force`` reruns), and a failing row is marked and skipped.

Questions it answers: ensemble of 3 vs the best single member (same decoder), and joint /
ctc_beam vs greedy CTC (same members).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # recipes.py's subprocess helpers

from recipes import StepFailed, aslfr_command, display, run_logged, run_step  # noqa: E402

from aslfr_lib import atomic  # noqa: E402

DECODERS = ("ctc", "ctc_beam", "attention", "joint")
HARNESS_HOURS = 5.0
RESULT = "result.json"
COLUMNS = ("members", "decoder", "beam", "held-out score", "vs first", "MB", "p50 ms", "p95 ms",
           "hours / 40k")  # fmt: skip


def rows_of(members: list[str], sizes: list[int], decoders: list[str]) -> list[dict[str, Any]]:
    """The exports to score: each member alone, then the first n members for n in ``sizes``."""
    groups = [[member] for member in members]
    groups += [members[:n] for n in sizes if 1 < n <= len(members)]
    return [{"members": group, "decoder": decoder} for group in groups for decoder in decoders]


def label(row: dict[str, Any]) -> str:
    names = [Path(member).name for member in row["members"]]
    return "+".join(names)


def folder_name(row: dict[str, Any], index: int) -> str:
    return f"{index:02d}-{len(row['members'])}m-{row['decoder']}"


def settings(row: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """What a cached result must match to be reused."""
    return {
        "members": [str(Path(m).resolve()) for m in row["members"]],
        "decoder": row["decoder"],
        "beam": args.beam if row["decoder"] in ("ctc_beam", "joint") else 1,
        "ctc_weight_decoding": args.ctc_weight_decoding if row["decoder"] == "joint" else None,
        "processed": str(Path(args.processed).resolve()),
        "data": str(Path(args.data).resolve()),
        "limit": args.limit,
        "checkpoint": args.checkpoint,
        "export_flags": args.export_flags,
    }


def score_row(row: dict[str, Any], folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Export and check one row (or reuse its result); returns the result."""
    wanted = settings(row, args)
    cached = folder / RESULT
    if cached.is_file() and not args.force:
        result = json.loads(cached.read_text(encoding="utf-8"))
        if result.get("settings") == wanted and result.get("status") == "ok":
            return result
    submission = folder / "submission"
    export = [*aslfr_command(), "export", "--quiet", "--out", str(submission)]
    for member in row["members"]:
        export += ["--model", member]
    export += ["--processed", args.processed, "--checkpoint", args.checkpoint]
    export += ["--decoder", row["decoder"]]
    if row["decoder"] in ("ctc_beam", "joint"):
        export += ["--beam", str(args.beam)]
    if row["decoder"] == "joint":
        export += ["--ctc-weight-decoding", str(args.ctc_weight_decoding)]
    export += args.export_flags
    check = [*aslfr_command(), "check-submission", str(submission / "submission.zip")]
    check += ["--data", args.data, "--processed", args.processed, "--split", "val"]
    check += ["--num-threads", "1", "--json", "--no-progress"]
    if args.limit:
        check += ["--limit", str(args.limit)]
    try:
        run_step("aslfr export", export, folder / "export.log")
        status, _ = run_logged(check, folder / "check.log", folder / "check.json")
        if status:
            raise StepFailed("aslfr check-submission", folder / "check.log")
        report = json.loads((folder / "check.json").read_text(encoding="utf-8"))
    except StepFailed as error:
        print(f"  {label(row)} {row['decoder']}: FAILED: {error}", flush=True)
        return {"settings": wanted, "status": "failed", "log": display(error.log)}
    result = {
        "settings": wanted,
        "status": "ok",
        "score": report["score"],
        "sequences": report["sequences"],
        "model_mb": report["model_bytes"] / 1e6,
        "p50_ms": report["p50_ms"],
        "p95_ms": report["p95_ms"],
        "mean_ms": report["mean_ms"],
        "hours_40k": report["mean_ms"] * 40_000 / 3_600_000,
    }
    atomic.write_json(cached, result)
    return result


def table(rows: list[dict[str, Any]], results: list[dict[str, Any]]) -> str:
    first = next((r["score"] for r in results if r.get("status") == "ok"), None)
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
    for row, result in zip(rows, results, strict=True):
        beam = result["settings"]["beam"]
        if result.get("status") != "ok":
            cells = [label(row), row["decoder"], beam, "failed: " + result.get("log", "")]
            lines.append("| " + " | ".join(str(c) for c in cells) + " |" + " |" * 5)
            continue
        cells = [
            label(row),
            row["decoder"],
            beam,
            f"{result['score']:.4f}",
            f"{result['score'] - first:+.4f}",
            f"{result['model_mb']:.2f}",
            f"{result['p50_ms']:.1f}",
            f"{result['p95_ms']:.1f}",
            f"{result['hours_40k']:.2f}",
        ]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", nargs="+", required=True, help="trained model folders")
    parser.add_argument("--processed", required=True, help="processed folder (its val split)")
    parser.add_argument("--data", required=True, help="competition-layout raw dataset")
    parser.add_argument("--out", default="outputs/bench-ensemble", help="logs, results, table")
    parser.add_argument("--sizes", default="2,3", help="ensemble sizes besides single members")
    parser.add_argument("--decoders", default=",".join(DECODERS), help="comma-separated")
    parser.add_argument("--beam", type=int, default=5, help="ctc_beam and joint beam width")
    parser.add_argument("--ctc-weight-decoding", type=float, default=0.3, help="joint")
    parser.add_argument("--limit", type=int, default=None, help="first N validation sequences")
    parser.add_argument("--checkpoint", default="best", help="best or last")
    parser.add_argument(
        "--export-flag",
        dest="export_flags",
        action="append",
        default=[],
        help="extra aslfr export flag, repeatable (e.g. --export-flag=--no-dynamic-range)",
    )
    parser.add_argument("--force", action="store_true", help="rerun rows with cached results")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    decoders = [d for d in args.decoders.split(",") if d]
    unknown = sorted(set(decoders) - set(DECODERS))
    if unknown:
        print(f"ensemble.py: unknown decoder(s) {unknown}; choose from {DECODERS}")
        return 2
    sizes = [int(n) for n in args.sizes.split(",") if n]
    rows = rows_of(list(args.members), sizes, decoders)
    out = Path(args.out)
    results = []
    for index, row in enumerate(rows):
        print(f"[ensemble] {index + 1}/{len(rows)} {label(row)} {row['decoder']}", flush=True)
        results.append(score_row(row, out / folder_name(row, index), args))
    text = table(rows, results)
    print(text)
    atomic.write_text(out / "ensemble.md", text + "\n")
    atomic.write_json(out / "results.json", {"rows": rows, "results": results})
    return 0 if all(r.get("status") == "ok" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
