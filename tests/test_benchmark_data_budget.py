"""benchmarks/data_budget.py: sizes x styles x seeds, each style scored on its own test signers,
and the table of mean and worst (the aslfr steps are stand-ins here: no training)."""

import json
import re
from pathlib import Path

import pytest
from helpers import load_benchmark

ROOT = Path(__file__).resolve().parents[1]
data_budget = load_benchmark("data_budget")
recipes = data_budget.recipes

STYLES = ["default", "fluent"]


def ok(score, seconds=10.0):
    return {"status": "ok", "score": score, "training_seconds": seconds}


def row(sequences, runs, frames=64, training=(90, 80), epochs=(4, 5)):
    return {
        "sequences": sequences,
        "frames": frames,
        "training_sequences": dict(zip(STYLES, training, strict=True)),
        "epochs": dict(zip(STYLES, epochs, strict=True)),
        "runs": runs,
    }


def test_table_ratio_is_on_the_worst_against_the_smallest_dataset_and_failures_show():
    rows = [
        row(
            100,
            {("default", 1): ok(0.6), ("default", 2): ok(0.8)}
            | {("fluent", 1): ok(0.4), ("fluent", 2): ok(0.2, seconds=30.0)},
        ),
        row(
            200,
            {("default", 1): ok(0.9), ("default", 2): ok(0.9)}
            | {("fluent", 1): ok(0.3), ("fluent", 2): ok(0.5)},
            training=(180, 180),
            epochs=(2, 2),
        ),
        row(
            200,
            {("default", 1): ok(0.9)}
            | {("fluent", 1): {"status": "failed", "step": "aslfr export", "log": "x/export.log"}},
            frames=96,
        ),
    ]
    lines = data_budget.table(rows, STYLES)
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    cells = [
        dict(zip(header, (c.strip() for c in line.strip("|").split("|")), strict=True))
        for line in lines[2:]
    ]
    assert header[4:9] == ["default", "fluent", "mean", "worst", "ratio (worst)"]
    assert cells[0] == {
        "sequences": "100",
        "frames": "64",
        "training sequences": "80-90",  # styles differ: both shown
        "epochs": "4-5",
        "default": "0.7000",
        "fluent": "0.3000",
        "mean": "0.5000",
        "worst": "0.2000",
        "ratio (worst)": "1.000",
        "training s": "15",
    }
    assert (cells[1]["training sequences"], cells[1]["epochs"]) == ("180", "2")
    assert (cells[1]["mean"], cells[1]["worst"], cells[1]["ratio (worst)"]) == (
        "0.6500",
        "0.3000",
        "1.500",
    )
    assert (cells[2]["frames"], cells[2]["fluent"], cells[2]["worst"]) == ("96", "failed", "failed")
    assert cells[2]["mean"] == "0.9000 (1 of 2 runs)" and cells[2]["ratio (worst)"] == "–"


def test_styles_are_checked_and_the_seeds_default_to_two():
    args = data_budget.parse_args([])
    assert args.styles == ["default", "fluent", "idiolect"] and args.seeds == [42, 43]
    with pytest.raises(SystemExit):
        data_budget.parse_args(["--styles", "default,slow"])


class FakeSteps:
    """Stands in for ``recipes.run_step``: writes what each aslfr step would, records the
    commands, scores a run by its style, size and seed, and fails the runs in ``fail``."""

    def __init__(self, fail=()):
        self.commands = []
        self.fail = set(fail)

    def __call__(self, step, command, log, stdout=None):
        log.parent.mkdir(parents=True, exist_ok=True)  # as recipes.run_logged does
        parts = [str(part) for part in command]
        name = parts[len(recipes.aslfr_command())]
        self.commands.append((name, parts))

        def value(flag):
            return parts[parts.index(flag) + 1]

        if name == "synth":
            Path(value("--out")).mkdir(parents=True)
            (Path(value("--out")) / "train.csv").write_text("")
        elif name == "preprocess":
            size = int(re.search(r"sequences-(\d+)", value("--out")).group(1))
            meta = {"train": {"sequence_ids": list(range(size * 3 // 4))}}
            Path(value("--out")).mkdir(parents=True)
            (Path(value("--out")) / "meta.json").write_text(json.dumps(meta))
        elif name == "train":
            run = Path(value("--out")).parent.name  # sequences-SIZE-sSEED
            style = Path(value("--out")).parent.parent.name
            if (style, run) in self.fail:
                raise recipes.StepFailed(step, log)
        elif name == "check-submission":
            size, seed = re.search(r"sequences-(\d+)-s(\d+)", parts[-5]).groups()
            style = Path(value("--data")).parent.name
            score = int(size) / 1000 + (0.1 if style == "default" else 0) + (seed == "43") * 0.02
            stdout.write_text(json.dumps({"score": score, "sequences": 12}))
        return 5.0


def test_every_size_runs_on_every_style_and_seed_against_its_own_test_signers(
    tmp_path, monkeypatch, capsys
):
    fake = FakeSteps(fail={("fluent", "sequences-400-s43")})
    monkeypatch.setattr(recipes, "run_step", fake)
    argv = ["--config", str(ROOT / "configs" / "demo.yaml"), "--out", str(tmp_path)]
    argv += ["--sizes", "200", "400", "--epochs", "4", "--test-sequences", "12"]
    argv += ["--styles", "default,fluent", "--seeds", "42", "43"]
    assert data_budget.main(argv) == 1  # one failed run
    synths = [parts for name, parts in fake.commands if name == "synth"]
    test_sets = {(p[p.index("--style") + 1], p[p.index("--seed") + 1]) for p in synths}
    assert test_sets == {("default", "0"), ("default", "7"), ("fluent", "0"), ("fluent", "7")}
    checks = [parts for name, parts in fake.commands if name == "check-submission"]
    for parts in checks:  # each style's runs are scored on that style's test signers
        style = Path(parts[parts.index("--data") + 1]).parent.name
        assert Path(parts[-5]).parts[-4] == style  # <out>/<style>/<run>/submission/...zip
    assert len(checks) == 2 * 2 * 2 - 1
    trains = [parts for name, parts in fake.commands if name == "train"]
    assert sorted(p[p.index("--seed") + 1] for p in trains) == ["42"] * 4 + ["43"] * 4
    # budget 150 sequences x 4 epochs; 400 sequences train 300: 2 epochs
    assert {p[p.index("--epochs") + 1] for p in trains if "sequences-400" in str(p)} == {"2"}
    printed = capsys.readouterr().out
    line_200 = next(line for line in printed.splitlines() if line.startswith("| 200 |"))
    # default 0.3 and 0.32 (seed 43), fluent 0.2 and 0.22: the worst is fluent s42
    assert line_200.split("|")[5:10] == [" 0.3100 ", " 0.2100 ", " 0.2600 ", " 0.2000 ", " 1.000 "]
    line_400 = next(line for line in printed.splitlines() if line.startswith("| 400 |"))
    assert "| 0.5100 | failed | 0.4733 (3 of 4 runs) | failed | – |" in line_400
    assert "failed runs: 400 sequences, 64 frames, fluent s43: aslfr train" in printed
    fake.commands.clear()
    fake.fail.clear()
    assert data_budget.main(argv) == 0  # the rest is cached: only the failed run reruns
    assert [name for name, _ in fake.commands] == ["train", "export", "check-submission"]
    printed = capsys.readouterr().out
    line_400 = next(line for line in printed.splitlines() if line.startswith("| 400 |"))
    assert "| 0.5100 | 0.4100 | 0.4600 | 0.4000 | 2.000 |" in line_400
