"""benchmarks/language_model.py: its arguments, and its rows on a tiny CTC run."""

from __future__ import annotations

import argparse
import json

import pytest
from helpers import load_benchmark, tiny_config
from test_evaluation import _processed

from aslfr_lib.model import build_model

bench = load_benchmark("language_model")


def test_arguments_parse_and_bad_ones_are_named():
    name, run, processed = bench.parse_run("idiolect=runs/a:b/processed")
    assert (name, str(run), str(processed)) == ("idiolect", "runs/a", "b/processed")
    with pytest.raises(argparse.ArgumentTypeError, match="NAME=RUN_FOLDER:PROCESSED"):
        bench.parse_run("runs/a")
    assert bench.parse_fusions("0.5/1.0,1") == [(0.5, 1.0), (1.0, 0.0)]


def test_rows_for_every_decoder_with_ratios_to_the_beam(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    build_model(tiny_config(frames=16, ctc_weight=1.0)).save(run / "best.keras")
    processed = _processed(tmp_path / "processed")
    out = tmp_path / "out"
    assert (
        bench.main(
            ["--run", f"tiny={run}:{processed}", "--fusions", "0.5/1,2/0", "--out", str(out)]
        )
        == 0
    )
    rows = json.loads((out / "results.json").read_text())
    assert [r["decoder"] for r in rows] == [
        "ctc", "ctc_beam", "ctc_beam + lm 0.5/1.0", "ctc_beam + lm 2.0/0.0"
    ]  # fmt: skip
    assert all(r["sequences"] == 3 and r["lm_bits_per_character"] > 0 for r in rows)
    table = (out / "language_model.md").read_text()
    beam = next(r["score"] for r in rows if r["decoder"] == "ctc_beam")
    assert "| tiny | ctc_beam | " in table and "| 1.000 |" in table
    for row in rows:
        ratio = f"{row['score'] / beam:.3f}" if beam else "-"
        assert f"| {row['decoder']} | {row['score']:.4f} | {ratio} |" in table
