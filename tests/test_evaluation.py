"""Competition score, evaluation tables, baselines and ``aslfr evaluate``."""

import json

import numpy as np
import pytest
from helpers import tiny_config
from rapidfuzz.distance import Levenshtein

from aslfr_lib import language_model
from aslfr_lib.evaluation import baseline_scores, evaluate, evaluate_phrases, main
from aslfr_lib.model import build_model
from aslfr_lib.scoring import competition_score, levenshtein_distances
from aslfr_lib.vocab import encode


def test_competition_score_is_normalised_total_levenshtein():
    targets = ["abc", "hello"]
    assert competition_score(targets, ["abd", "hell"]) == pytest.approx((8 - 2) / 8)
    assert competition_score(targets, targets) == 1.0
    assert competition_score(targets, ["", ""]) == 0.0
    assert competition_score(["ab"], ["xyzw"]) == pytest.approx((2 - 4) / 2)  # below zero
    # Totals, not a mean of per-sequence scores: the long phrase weighs more.
    assert competition_score(["a", "abcdefghij"], ["", "abcdefghij"]) == pytest.approx(10 / 11)
    np.testing.assert_array_equal(levenshtein_distances(targets, ["abd", "hell"]), [1, 1])
    with pytest.raises(ValueError, match="2 targets but 1 predictions"):
        competition_score(targets, ["abc"])
    with pytest.raises(ValueError, match="no characters"):
        competition_score([""], ["x"])


def test_evaluate_phrases_table_and_worst():
    result = evaluate_phrases(
        ["abc", "hello", "xy", "road"], ["abc", "help", "", "toad"], sequence_ids=[7, 8, 9, 10]
    )
    assert list(result.table.columns) == ["sequence_id", "target", "prediction", "distance"]
    assert result.table["distance"].tolist() == [0, 2, 2, 1]
    assert result.mean_distance == pytest.approx(5 / 4)
    # Worst first; among equal distances the shorter target (relatively worse) first.
    assert result.worst["sequence_id"].tolist() == [9, 8, 10, 7]
    summary = result.summary()
    assert summary["characters"] == 14 and summary["total_distance"] == 5
    assert summary["exact_matches"] == 1 and summary["score"] == pytest.approx(9 / 14)


def test_baselines_ignore_the_input():
    train = ["abc", "abc", "hello"]
    targets = ["abc", "xyz"]
    scores = baseline_scores(train, targets)
    assert scores["empty"] == 0.0
    assert scores["most_common_phrase"] == pytest.approx((6 - 3) / 6)
    # "a" (most frequent character) repeated round(11 / 3) = 4 times.
    expected = (6 - Levenshtein.distance("aaaa", "abc") - Levenshtein.distance("aaaa", "xyz")) / 6
    assert scores["most_common_character"] == pytest.approx(expected)


TINY = tiny_config(encoder_dim=16, decoder_blocks=1, frames=16)


def _processed(folder, with_val=True):
    rng = np.random.default_rng(0)
    folder.mkdir()
    phrases = ["abc", "hello", "3 main st"]
    counts = {"train": 6, "val": 3 if with_val else 0}
    meta = {"format_version": 2, "storage": "ragged", "config": {"frames": 16}}
    for split, count in counts.items():  # ragged layout: every sequence 16 frames
        values = rng.normal(size=(count, 16, 6)).astype(np.float32).reshape(-1, 6)
        np.save(folder / f"frames_{split}.npy", values)
        np.save(folder / f"offsets_{split}.npy", np.arange(count + 1, dtype=np.int64) * 16)
        targets = [encode(phrases[i % 3]) for i in range(count)]
        np.save(folder / f"y_{split}.npy", np.array(targets, np.int8).reshape(count, 32))
        meta[split] = {"sequence_ids": list(range(10 * len(split), 10 * len(split) + count))}
    np.save(folder / "means.npy", np.zeros(6, np.float32))
    np.save(folder / "stds.npy", np.ones(6, np.float32))
    (folder / "meta.json").write_text(json.dumps(meta))
    return folder


def test_evaluate_decodes_and_scores_consistently():
    model = build_model(TINY)
    rng = np.random.default_rng(1)
    X = rng.normal(size=(5, 16, 6)).astype(np.float32)
    y = np.stack([encode(p) for p in ["ab", "cd", "ef", "gh", "ij"]])
    result = evaluate(model, X, y, sequence_ids=[1, 2, 3, 4, 5], batch_size=2, worst=3)
    table = result.table
    assert table["target"].tolist() == ["ab", "cd", "ef", "gh", "ij"]
    assert table["distance"].tolist() == [
        Levenshtein.distance(t, p)
        for t, p in zip(table["target"], table["prediction"], strict=True)
    ]
    assert result.score == pytest.approx(competition_score(table["target"], table["prediction"]))
    assert len(result.worst) == 3


def test_evaluate_command_writes_metrics_table_and_plot(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    build_model(TINY).save(run / "best.keras")
    processed = _processed(tmp_path / "processed")
    assert main(["--model", str(run), "--processed", str(processed), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "score:" in printed and "worst 3 predictions" in printed
    metrics = json.loads((run / "evaluation_val.json").read_text())
    assert metrics["sequences"] == 3 and metrics["split"] == "val"
    assert metrics["model"].endswith("best.keras")
    assert (run / "distance_distribution_val.png").stat().st_size > 1000
    assert (run / "predictions_val.csv").read_text().startswith("sequence_id,target,prediction")

    out = tmp_path / "elsewhere"
    argv = ["--model", str(run / "best.keras"), "--processed", str(processed), "--split", "train"]
    assert main([*argv, "--out", str(out), "--quiet"]) == 0
    assert json.loads((out / "evaluation_train.json").read_text())["sequences"] == 6

    no_val = _processed(tmp_path / "no_val", with_val=False)
    assert main(["--model", str(run), "--processed", str(no_val), "--quiet"]) == 1
    assert "split is empty" in capsys.readouterr().err
    assert main(["--model", str(tmp_path / "missing"), "--processed", str(no_val)]) == 1
    assert "no such model file" in capsys.readouterr().err

    # The run's character language model, fused by a search decoder (an attention beam here).
    fused = ["--model", str(run), "--processed", str(processed), "--decoder", "attention"]
    fused += ["--beam", "2", "--lm-weight", "0.5", "--lm-bonus", "1", "--quiet"]
    assert main(fused) == 1
    assert "run/language_model.npz: no language model" in capsys.readouterr().err
    language_model.save(language_model.fit_processed(processed), run)
    assert main(fused) == 0
    metrics = json.loads((run / "evaluation_val.json").read_text())
    assert (metrics["lm_weight"], metrics["lm_bonus"], metrics["sequences"]) == (0.5, 1.0, 3)
