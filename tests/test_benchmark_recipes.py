"""benchmarks/recipes.py: the row configs, the flags each row gets, the cache keys and the table
(no training: the benchmark itself is the end-to-end run)."""

import argparse
import dataclasses
import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import load_benchmark

from aslfr_lib.config import make
from aslfr_lib.training import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
recipes = load_benchmark("recipes")

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

    def train_print(row, style="default", seed=42, common=settings):
        return recipes.fingerprint(recipes.train_key(row, common, style, seed))

    def result_print(row, style="default", seed=42):
        return recipes.fingerprint(recipes.result_key(row, settings, style, seed))

    assert train_print(joint_attention) == train_print(joint_ctc)
    assert result_print(joint_attention) != result_print(joint_ctc)
    assert train_print(joint_ctc, seed=43) != train_print(joint_ctc)
    assert train_print(joint_ctc, common=dataclasses.replace(settings, sequences=300)) != (
        train_print(joint_ctc)
    )
    # every style is its own dataset: its own training and its own result
    assert train_print(joint_ctc, style="fluent") != train_print(joint_ctc)
    assert result_print(joint_ctc, style="fluent") != result_print(joint_ctc)
    assert settings.dataset("fluent")["synth"]["style"] == "fluent"


def test_style_list_keeps_order_drops_repeats_and_names_the_valid_styles():
    assert recipes.style_list("fluent, default,fluent") == ["fluent", "default"]
    with pytest.raises(argparse.ArgumentTypeError, match="'nope'.*valid styles: default, fluent"):
        recipes.style_list("default,nope")
    with pytest.raises(argparse.ArgumentTypeError, match="no style"):
        recipes.style_list(",")
    assert recipes.parse_args([]).styles is None  # the sizes' default: FULL or QUICK
    assert recipes.parse_args([]).seeds == [42, 43]
    assert len(recipes.style_list(recipes.QUICK["styles"])) >= 2  # --quick crosses styles too


def ok(row, style, seed, score, seconds=100.0):
    return {
        "row": row,
        "style": style,
        "seed": seed,
        "status": "ok",
        "score": score,
        "training_seconds": seconds,
        "parameters": 123456,
        "tflite_mb": 0.85,
        "p50_ms": 3.5,
        "train_fingerprint": f"{row}-{style}-{seed}",
    }


def failed(row, style, seed):
    return {"row": row, "style": style, "seed": seed, "status": "failed"} | {
        "step": "aslfr train",
        "log": f"{row}-{style}-s{seed}/train.log",
    }


STYLES = ["default", "fluent"]
SCORES = {  # row: {style: (seed 1, seed 2)}
    "base": {"default": (0.6, 0.8), "fluent": (0.4, 0.2)},
    "better": {"default": (0.7, 0.9), "fluent": (0.5, 0.3)},
    # a better mean than base's, and a worse worst: the case the worst column is there for
    "tuned": {"default": (0.95, 0.95), "fluent": (0.3, 0.1)},
}


def made_results():
    results = {
        (row, style, seed): ok(row, style, seed, score, seconds=100.0 * seed)
        for row, styles in SCORES.items()
        for style, scores in styles.items()
        for seed, score in zip((1, 2), scores, strict=True)
    }
    results |= {
        ("broken", "default", 1): failed("broken", "default", 1),
        ("broken", "default", 2): ok("broken", "default", 2, 0.9),
        ("broken", "fluent", 1): ok("broken", "fluent", 1, 0.5),
        ("broken", "fluent", 2): ok("broken", "fluent", 2, 0.6),
    }
    return results


def test_worst_is_the_lowest_single_run_and_mean_is_over_every_run():
    results = made_results()
    case = recipes.worst_case(recipes.row_runs(results, "better"), STYLES)
    assert case.style_means == pytest.approx({"default": 0.8, "fluent": 0.4})
    assert case.mean == pytest.approx(0.6)
    assert case.worst == pytest.approx(0.3)  # fluent, seed 2: below every style's mean
    assert (case.finished, case.runs, case.failed_styles) == (4, 4, [])
    broken = recipes.worst_case(recipes.row_runs(results, "broken"), STYLES)
    assert broken.worst is None and broken.failed_styles == ["default"]
    assert broken.mean == pytest.approx((0.9 + 0.5 + 0.6) / 3)
    assert broken.style_means["fluent"] == pytest.approx(0.55)


def test_table_has_a_column_per_style_then_mean_worst_and_the_ratio_on_the_worst():
    rows = ["base", "better", "tuned", "broken"]
    lines = recipes.table_rows(rows, STYLES, made_results())
    header = recipes.table_header(STYLES)
    assert header[:7] == ["row", "seeds", "default", "fluent", "mean", "worst", "ratio (worst)"]
    table = {line[0]: dict(zip(header, line, strict=True)) for line in lines}
    assert [line[0] for line in lines] == rows
    assert table["base"] == {
        "row": "base",
        "seeds": "1, 2",
        "default": "0.7000",
        "fluent": "0.3000",
        "mean": "0.5000",
        "worst": "0.2000",
        "ratio (worst)": "1.000",
        "training s": "150",  # the mean of 100 and 200
        "parameters": "123,456",
        "TFLite MB": "0.85",
        "p50 ms": "3.5",
    }
    assert (table["better"]["worst"], table["better"]["ratio (worst)"]) == ("0.3000", "1.500")
    # tuned: the better mean, and half the baseline's worst
    assert (table["tuned"]["mean"], table["tuned"]["worst"]) == ("0.5750", "0.1000")
    assert table["tuned"]["ratio (worst)"] == "0.500"
    broken = table["broken"]
    assert (broken["default"], broken["fluent"]) == ("failed", "0.5500")
    assert broken["mean"] == "0.6667 (3 of 4 runs)"
    assert (broken["worst"], broken["ratio (worst)"]) == ("failed", "–")
    markdown = recipes.markdown_table(header, lines).splitlines()
    assert markdown[0].startswith("| row | seeds | default | fluent | mean | worst |")
    assert len(markdown) == 2 + len(rows)


def test_every_run_is_listed_and_a_failed_run_names_its_log():
    results = made_results()
    lines = recipes.seed_rows(["tuned", "broken"], STYLES, results)
    assert lines[0] == ["tuned", "1 / 2", "0.9500 / 0.9500", "0.3000 / 0.1000"]
    assert lines[1] == ["broken", "1 / 2", "failed / 0.9000", "0.5000 / 0.6000"]
    assert recipes.failed_runs(results) == [
        "`broken` default s1: aslfr train (`broken-default-s1/train.log`)"
    ]


def test_a_failed_or_negative_baseline_leaves_ratios_empty():
    results = {
        ("base", "default", 1): failed("base", "default", 1),
        ("base", "fluent", 1): ok("base", "fluent", 1, 0.4),
        ("other", "default", 1): ok("other", "default", 1, 0.3),
        ("other", "fluent", 1): ok("other", "fluent", 1, 0.5),
    }
    lines = recipes.table_rows(["base", "other"], STYLES, results)
    assert lines[0][5:7] == ["failed", "–"] and lines[1][5:7] == ["0.3000", "–"]
    results[("base", "default", 1)] = ok("base", "default", 1, -0.5)  # would invert the order
    lines = recipes.table_rows(["base", "other"], STYLES, results)
    assert lines[0][5] == "-0.5000" and lines[1][6] == "–"


def test_shared_training_groups():
    results = {
        ("a", "default", 1): {**ok("a", "default", 1, 0.1), "train_fingerprint": "x"},
        ("b", "default", 1): {**ok("b", "default", 1, 0.1), "train_fingerprint": "x"},
        ("a", "fluent", 1): {**ok("a", "fluent", 1, 0.1), "train_fingerprint": "z"},
        ("b", "fluent", 1): {**ok("b", "fluent", 1, 0.1), "train_fingerprint": "z"},
        ("c", "default", 1): {**ok("c", "default", 1, 0.1), "train_fingerprint": "y"},
    }
    assert recipes.shared_training(results) == [["a", "b"]]


def test_comment_header():
    text = "# What it is,\n# over two lines.\n#\n# Why: because.\nname: x\n# not this\n"
    assert recipes.comment_header(text) == "What it is, over two lines. Why: because."


TINY_ROW = """\
# A tiny CTC row.
# Why: the smoke test.
name: tiny
train:
  optimizer: adamw
  ctc_weight: 1.0
  jit_compile: false
export:
  decoder: ctc
"""
BROKEN_ROW = """\
# A row whose training cannot start.
# Why: a failed run is shown as failed, not as a number.
name: broken
train:
  no_such_flag: 1
"""
TINY_ARCHITECTURE = "train:\n  encoder_dim: 32\n  encoder_blocks: 1\n  decoder_dim: 32\n"


def run_benchmark(tmp_path, *arguments):
    command = [sys.executable, str(ROOT / "benchmarks" / "recipes.py"), "--quick"]
    command += ["--sequences", "80", "--participants", "5", "--epochs", "1", "--seeds", "42"]
    command += ["--recipes", str(tmp_path / "rows"), "--architecture", str(tmp_path / "arch.yaml")]
    command += ["--out", str(tmp_path / "out"), "--data-dir", str(tmp_path / "data"), *arguments]
    process = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=600)
    return process, (tmp_path / "out" / "recipes.md").read_text()


@pytest.mark.slow
def test_quick_run_crosses_styles_caches_per_style_and_shows_a_failed_row(tmp_path):
    (tmp_path / "rows").mkdir()
    (tmp_path / "rows" / "10_tiny.yaml").write_text(TINY_ROW)
    (tmp_path / "rows" / "20_broken.yaml").write_text(BROKEN_ROW)
    (tmp_path / "arch.yaml").write_text(TINY_ARCHITECTURE)
    process, doc = run_benchmark(tmp_path)  # --quick's styles: default, fluent
    assert process.returncode == 1, process.stdout + process.stderr  # the broken row
    header = "| row | seeds | default | fluent | mean | worst | ratio (worst) | training s |"
    assert header in doc
    scores = {}
    for style in ("default", "fluent"):
        result = json.loads((tmp_path / "out" / f"tiny-{style}-s42" / "result.json").read_text())
        assert result["key"]["dataset"]["synth"]["style"] == style
        assert f"--style {style}" in (tmp_path / "data" / style / "synth.log").read_text()
        scores[style] = result["score"]
    tiny = next(line for line in doc.splitlines() if line.startswith("| tiny | 42 |"))
    cells = [cell.strip() for cell in tiny.strip("|").split("|")]
    mean, worst = statistics.fmean(scores.values()), min(scores.values())
    expected = [
        f"{scores['default']:.4f}",
        f"{scores['fluent']:.4f}",
        f"{mean:.4f}",
        f"{worst:.4f}",
    ]
    assert cells[2:6] == expected
    assert "| broken | 42 | failed | failed | – | failed | – |" in doc
    process, doc = run_benchmark(tmp_path, "--styles", "default")
    assert "tiny default s42: result reused" in process.stdout
    assert "fluent" not in process.stdout
    assert "| row | seeds | default | mean | worst |" in doc
