"""benchmarks/recipes.py: the row configs, the flags each row gets, the cache keys and the table
(no training: the benchmark itself is the end-to-end run)."""

import dataclasses
import importlib.util
import sys
from pathlib import Path

import pytest

from aslfr_lib.config import make
from aslfr_lib.training import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
SPEC = importlib.util.spec_from_file_location("bench_recipes", ROOT / "benchmarks" / "recipes.py")
recipes = importlib.util.module_from_spec(SPEC)
sys.modules[SPEC.name] = recipes  # dataclasses look their module up there
SPEC.loader.exec_module(recipes)

ROWS = recipes.load_recipes(recipes.RECIPES)
BY_NAME = {row.name: row for row in ROWS}


def common(epochs=30):
    return recipes.Common(
        epochs=epochs,
        batch_size=32,
        sequences=2000,
        participants=40,
        difficulty=0.6,
        architecture=recipes.read_architecture(recipes.ARCHITECTURE_CONFIG),
    )


def test_rows_are_ordered_by_the_number_of_their_file():
    names = [row.name for row in ROWS]
    required = ["v6_reference", "v6_fixes", "ctc_joint_attention", "ctc_joint_ctc", "ctc_only"]
    assert [name for name in names if name in required] == required
    assert names[0] == "v6_reference"  # the baseline of the ratio column
    numbers = [row.number for row in ROWS]
    assert numbers == sorted(numbers)
    assert all(row.description for row in ROWS)


def test_ctc_rows_are_v6_fixes_plus_the_ctc_settings():
    fixes = BY_NAME["v6_fixes"].train
    assert BY_NAME["ctc_joint_attention"].train == {**fixes, "ctc_weight": 0.5}
    assert BY_NAME["ctc_joint_ctc"].train == {**fixes, "ctc_weight": 0.5}
    assert BY_NAME["ctc_only"].train == {**fixes, "ctc_weight": 1.0}
    assert BY_NAME["ctc_joint_ctc"].export == {"decoder": "ctc"}
    reference = BY_NAME["v6_reference"].train
    assert reference["reference_decoder_positions"] and reference["reference_cross_attention_mask"]
    assert not any(key.startswith("reference_") for key in fixes)


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.name)
def test_train_flags_make_a_valid_train_config(row):
    flags = recipes.train_flags(row, common(), seed=42)
    missing = set(flags) - {field.name for field in dataclasses.fields(TrainConfig)}
    if missing:
        pytest.skip(f"TrainConfig has no {sorted(missing)} yet")
    config = make(TrainConfig, flags)
    assert (config.epochs, config.batch_size, config.seed) == (30, 32, 42)


def test_the_benchmark_imposes_budget_and_size_and_the_row_keeps_its_optimizer():
    flags = recipes.train_flags(BY_NAME["v6_reference"], common(epochs=30), seed=7)
    assert flags["epochs"] == 30 and flags["batch_size"] == 32 and flags["seed"] == 7
    assert flags["warmup_epochs"] == 3  # round(0.1 * 30)
    assert flags["encoder_dim"] == 96 and flags["decoder_blocks"] == 1  # configs/demo.yaml
    assert flags["optimizer"] == "radam_lookahead" and flags["lr_max"] == 0.001
    custom = dataclasses.replace(BY_NAME["v6_fixes"], train={"warmup_epochs": 0, "encoder_dim": 48})
    flags = recipes.train_flags(custom, common(), seed=42)
    assert flags["warmup_epochs"] == 0 and flags["encoder_dim"] == 48
    assert recipes.export_flags(BY_NAME["ctc_only"]) == {"checkpoint": "last", "decoder": "ctc"}


def test_rows_may_not_set_what_the_benchmark_owns(tmp_path):
    path = tmp_path / "10_bad.yaml"
    path.write_text("# a row\nname: bad\ntrain:\n  epochs: 3\n")
    with pytest.raises(recipes.RecipeError, match="epochs"):
        recipes.load_recipe(path)
    path.write_text("name: bad\ntrain:\n  lr_max: 0.1\n")
    with pytest.raises(recipes.RecipeError, match="no comment"):
        recipes.load_recipe(path)
    path.write_text("# a row\nname: bad\nexport:\n  checkpoint: best\n")
    with pytest.raises(recipes.RecipeError, match="checkpoint"):
        recipes.load_recipe(path)


def test_select_rows_keeps_file_order_and_names_unknown_rows():
    chosen = recipes.select_rows(ROWS, ["v6_fixes", "v6_reference"])
    assert [row.name for row in chosen] == ["v6_reference", "v6_fixes"]
    with pytest.raises(recipes.RecipeError, match="nope"):
        recipes.select_rows(ROWS, ["nope"])


def test_command_line_of_flags():
    flags = {"lr_max": 0.002, "fp16": False, "mirror": True, "limit": None, "ids": [1, 2]}
    assert recipes.command_line(flags) == ["--lr-max", "0.002", "--no-fp16", "--mirror"] + [
        "--ids",
        "1",
        "2",
    ]


def test_rows_with_the_same_train_settings_share_the_training_not_the_result():
    joint_attention, joint_ctc = BY_NAME["ctc_joint_attention"], BY_NAME["ctc_joint_ctc"]
    settings = common()
    rows = (joint_attention, joint_ctc)
    train_print = [recipes.fingerprint(recipes.train_key(r, settings, 42)) for r in rows]
    assert train_print[0] == train_print[1]
    assert recipes.fingerprint(recipes.result_key(joint_attention, settings, 42)) != (
        recipes.fingerprint(recipes.result_key(joint_ctc, settings, 42))
    )
    assert recipes.fingerprint(recipes.train_key(joint_ctc, settings, 43)) != train_print[0]
    other_data = dataclasses.replace(settings, sequences=300)
    assert recipes.fingerprint(recipes.train_key(joint_ctc, other_data, 42)) != train_print[0]


def ok(row, seed, score, seconds=100.0):
    return {
        "row": row,
        "seed": seed,
        "status": "ok",
        "score": score,
        "training_seconds": seconds,
        "parameters": 123456,
        "tflite_mb": 0.85,
        "p50_ms": 3.5,
        "train_fingerprint": row,
    }


def test_table_ratios_means_and_failed_rows():
    results = {
        ("base", 1): ok("base", 1, 0.2),
        ("base", 2): ok("base", 2, 0.4),
        ("better", 1): ok("better", 1, 0.3, seconds=200.0),
        ("better", 2): ok("better", 2, 0.5, seconds=300.0),
        ("broken", 1): {"status": "failed", "step": "aslfr train", "log": "t/train.log"},
        ("broken", 2): ok("broken", 2, 0.1),
    }
    lines = recipes.table_rows(["base", "better", "broken"], [1, 2], results)
    assert lines[0] == ["base", "1", "0.2000", "1.000", "100", "123,456", "0.85", "3.5"]
    assert lines[2][:4] == ["base", "mean", "0.3000", "1.000"]
    assert lines[3][:4] == ["better", "1", "0.3000", "1.500"]
    assert lines[4][:4] == ["better", "2", "0.5000", "1.250"]
    assert lines[5][:5] == ["better", "mean", "0.4000", "1.333", "250"]
    assert lines[6][2] == "failed (aslfr train: `t/train.log`)"
    assert lines[8][:4] == ["broken", "mean of 1", "0.1000", "0.333"]
    table = recipes.markdown_table(lines)
    assert table.splitlines()[0].startswith("| row | seed | held-out score | ratio |")
    assert len(table.splitlines()) == 2 + len(lines)


def test_a_failed_baseline_leaves_ratios_empty():
    results = {
        ("base", 1): {"status": "failed", "step": "aslfr export", "log": "x.log"},
        ("other", 1): ok("other", 1, 0.3),
    }
    lines = recipes.table_rows(["base", "other"], [1], results)
    assert lines[1][3] == "–"
    results[("base", 1)] = ok("base", 1, -0.5)  # a negative baseline would invert the order
    assert recipes.table_rows(["base", "other"], [1], results)[1][3] == "–"


def test_shared_training_groups():
    results = {
        ("a", 1): {**ok("a", 1, 0.1), "train_fingerprint": "x"},
        ("b", 1): {**ok("b", 1, 0.1), "train_fingerprint": "x"},
        ("c", 1): {**ok("c", 1, 0.1), "train_fingerprint": "y"},
    }
    assert recipes.shared_training(results) == [["a", "b"]]


def test_comment_header():
    text = "# What it is,\n# over two lines.\n#\n# Why: because.\nname: x\n# not this\n"
    assert recipes.comment_header(text) == "What it is, over two lines. Why: because."
