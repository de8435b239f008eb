"""benchmarks/robustness.py: the worst-case table and the visible-characters ceiling per style."""

from __future__ import annotations

import argparse
import json

from helpers import load_benchmark

bench = load_benchmark("robustness")


def _run(recipe: str, style: str, seed: int, score: float | None, aligned: int | None = 2):
    return {
        "recipe": recipe,
        "style": style,
        "seed": seed,
        "score": score,
        "alignment_epoch": aligned,
        "stalled": aligned is None,
    }


def test_table_reads_each_recipe_by_its_worst_run_and_shows_each_style_ceiling():
    results = [
        _run("demo", "default", 42, 0.80),
        _run("demo", "default", 43, 0.70),
        _run("demo", "dropout", 42, 0.60),
        _run("demo", "dropout", 43, 0.50),
        _run("new", "default", 42, 0.90),
        _run("new", "default", 43, 0.80),
        _run("new", "dropout", 42, 0.75, aligned=None),
        _run("new", "dropout", 43, None),  # failed: no score, left out of every number
    ]
    table = bench.summarise(
        results, ["demo", "new"], ["default", "dropout"], {"default": 0.9, "dropout": 0.67}
    )
    lines = table.splitlines()
    assert lines[0].split("|")[1:-1] == [
        f" {name} "
        for name in ("recipe", "default", "dropout", "mean", "worst", "ratio (worst)")
        + ("aligned by", "stalled")
    ]
    # per style: mean over seeds; then the mean and the worst single run; ratio on worst
    assert lines[2] == "| demo | 0.750 | 0.550 | 0.650 | 0.500 | 1.000 | 2 | 0/4 |"
    assert lines[3] == "| new | 0.850 | 0.750 | 0.817 | 0.750 | 1.500 | never | 1/3 |"
    assert lines[4] == "| *visible characters* | 0.900 | 0.670 | - | - | - | - | - |"


def test_visible_share_is_lower_for_a_style_that_loses_the_hand_for_long_stretches(tmp_path):
    args = argparse.Namespace(
        sequences=80, participants=16, data_dir=str(tmp_path), min_frames_per_char=1.0
    )
    shares = {}
    for style in ("deliberate", "dropout"):
        processed = bench.ensure_dataset(style, args)
        assert processed == tmp_path / f"{style}-80-p16" / "processed-mf1"
        shares[style] = bench.visible_share(style, processed, args)
        cached = json.loads((processed / "visible.json").read_text())
        assert cached["visible"] == shares[style] and cached["sequences"] > 0
    # dropout loses a third of its letters for their whole time (the style's table: 33 %),
    # deliberate about one in twenty
    assert 0.5 < shares["dropout"] < 0.85 < shares["deliberate"] <= 1.0
