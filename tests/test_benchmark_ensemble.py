"""``aslfr train --seeds`` and benchmarks/ensemble.py on tiny members (end to end, slow)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from helpers import load_benchmark

from aslfr_lib import training
from aslfr_lib.training import TrainConfig

bench = load_benchmark("ensemble")

TINY_FLAGS = [
    *["--encoder-dim", "16", "--decoder-dim", "16", "--encoder-blocks", "1"],
    *["--decoder-blocks", "1", "--num-heads", "2", "--ctc-weight", "0.5"],
    *["--epochs", "1", "--warmup-epochs", "0", "--batch-size", "8", "--verbose", "0"],
    *["--examples-every", "0"],
]


def test_seed_runs_write_one_folder_per_seed():
    runs = training.seed_runs(TrainConfig(out="runs/best"), "42,43")
    assert [(run.seed, run.out) for run in runs] == [
        (42, "runs/best/seed42"),
        (43, "runs/best/seed43"),
    ]
    assert dataclasses.replace(runs[0], seed=43, out="runs/best/seed43") == runs[1]
    with pytest.raises(ValueError, match="integers"):
        training.seed_runs(TrainConfig(), "42,x")
    with pytest.raises(ValueError, match="repeats"):
        training.seed_runs(TrainConfig(), "42,42")


def test_rows_are_every_member_alone_then_the_first_n():
    rows = bench.rows_of(["a", "b", "c"], [2, 3, 4], ["ctc", "joint"])
    groups = [tuple(row["members"]) for row in rows[::2]]
    assert groups == [("a",), ("b",), ("c",), ("a", "b"), ("a", "b", "c")]
    assert [row["decoder"] for row in rows[:2]] == ["ctc", "joint"]


@pytest.mark.slow
def test_seeds_then_the_benchmark_table(tmp_path, capsys):
    from aslfr_lib.preprocess import PreprocessConfig
    from aslfr_lib.preprocess import run as run_preprocess
    from aslfr_lib.synthetic import SynthConfig, generate

    data, processed, runs = tmp_path / "data", tmp_path / "processed", tmp_path / "runs"
    generate(SynthConfig(out=str(data), sequences=48, participants=6, seed=1), progress=False)
    run_preprocess(
        PreprocessConfig(
            data=str(data), out=str(processed), frames=32, val_fraction=0.5, workers=1
        ),
        progress=False,
    )
    argv = ["--processed", str(processed), "--out", str(runs), "--seeds", "1,2", *TINY_FLAGS]
    assert training.main(argv) == 0, capsys.readouterr().err
    members = [str(runs / "seed1"), str(runs / "seed2")]
    assert all((Path(m) / "best.keras").is_file() for m in members)

    from aslfr_lib import evaluation

    argv = ["--model", members[0], "--model", members[1], "--processed", str(processed)]
    argv += ["--decoder", "joint", "--beam", "2", "--out", str(tmp_path / "eval"), "--quiet"]
    assert evaluation.main(argv) == 0, capsys.readouterr().err
    metrics = json.loads((tmp_path / "eval" / "evaluation_val.json").read_text())
    assert metrics["members"] == [f"{m}/best.keras" for m in members]
    assert metrics["decoder"] == "joint"

    out = tmp_path / "bench"
    argv = ["--members", *members, "--processed", str(processed), "--data", str(data)]
    argv += ["--out", str(out), "--sizes", "2", "--decoders", "ctc,joint", "--beam", "2"]
    assert bench.main([*argv, "--limit", "6"]) == 0
    results = json.loads((out / "results.json").read_text())["results"]
    assert len(results) == 6  # seed1, seed2, seed1+seed2; two decoders each
    assert all(r["status"] == "ok" and r["sequences"] == 6 for r in results)
    assert results[-1]["settings"]["beam"] == 2 and results[-1]["model_mb"] > 0
    table = (out / "ensemble.md").read_text()
    assert "| seed1+seed2 | joint | 2 |" in table
    assert bench.main([*argv, "--limit", "6"]) == 0  # cached: the same table
    assert (out / "ensemble.md").read_text() == table
