"""Competition score of a trained model: ``aslfr evaluate`` and ``evaluate(model, X, y)``.

The competition's metric is the normalised total Levenshtein distance: with N the total number
of target characters and D the sum of the distances between each prediction and its target,
score = (N - D) / N (1 is perfect; an empty prediction for everything scores 0; worse than
empty is negative).

Scoring functions need only numpy, pandas and rapidfuzz (no Keras); ``evaluate`` decodes with
the model and imports Keras then.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aslfr_lib import atomic
from aslfr_lib.backend import BackendError
from aslfr_lib.config import add_arguments, from_args, param
from aslfr_lib.language_model import LM_BONUS_HELP, LM_WEIGHT_HELP
from aslfr_lib.scoring import competition_score, levenshtein_distances

WORST_SHOWN = 10


@dataclasses.dataclass
class EvaluationResult:
    """Score and per-sequence table (``sequence_id`` when known, target, prediction, distance)."""

    score: float
    mean_distance: float
    table: pd.DataFrame
    worst: pd.DataFrame

    @property
    def distances(self) -> np.ndarray:
        return self.table["distance"].to_numpy()

    def summary(self) -> dict[str, Any]:
        """JSON-friendly numbers. With a ``trainable`` column (validation: False for held-out
        sequences too short to train on, scored like the others) also the score without them,
        labelled as the subset it is."""
        numbers = {
            "score": float(self.score),
            "mean_distance": float(self.mean_distance),
            "sequences": len(self.table),
            "characters": int(self.table["target"].str.len().sum()),
            "total_distance": int(self.table["distance"].sum()),
            "exact_matches": int((self.table["distance"] == 0).sum()),
        }
        if "trainable" in self.table and not self.table["trainable"].all():
            subset = self.table[self.table["trainable"]]
            numbers["sequences_too_short_to_train"] = int((~self.table["trainable"]).sum())
            numbers["score_trainable_subset"] = competition_score(
                subset["target"], subset["prediction"]
            )
        return numbers


def evaluate_phrases(
    targets: Sequence[str],
    predictions: Sequence[str],
    sequence_ids: Sequence[int] | None = None,
    worst: int = WORST_SHOWN,
) -> EvaluationResult:
    """Score phrases already decoded; ``worst`` rows with the largest distances kept apart."""
    distances = levenshtein_distances(targets, predictions)
    table = pd.DataFrame(
        {"target": list(targets), "prediction": list(predictions), "distance": distances}
    )
    if sequence_ids is not None:
        table.insert(0, "sequence_id", np.asarray(sequence_ids, dtype=np.int64))
    ranked = table.assign(length=table["target"].str.len())
    ranked = ranked.sort_values(["distance", "length"], ascending=[False, True], kind="stable")
    return EvaluationResult(
        score=competition_score(targets, predictions),
        mean_distance=float(distances.mean()) if len(distances) else 0.0,
        table=table,
        worst=ranked.drop(columns="length").head(worst),
    )


def evaluate(
    model: Any,
    X: np.ndarray,
    y: np.ndarray,
    sequence_ids: Sequence[int] | None = None,
    batch_size: int = 256,
    worst: int = WORST_SHOWN,
    progress: bool = False,
    decoder: str = "auto",
    fallback: Any = None,
    hand_frames: Sequence[int] | None = None,
    beam: int | None = None,
    ctc_weight: float = 0.3,
    language_model: Any = None,
) -> EvaluationResult:
    """Batched greedy decoding of ``X`` with ``model`` (``decoder``: attention, ctc or auto =
    CTC when the model has a CTC head), scored against target ids ``y``. With a ``fallback``
    (``aslfr_lib.fallback.Fallback``), inputs with fewer than its ``min_hand_frames`` of
    ``hand_frames`` get its phrase, as the exported model does. ``language_model``: fused by
    the search decoders (``aslfr_lib.language_model``)."""
    from aslfr_lib.decoding import decode, ids_to_phrases

    if len(X) != len(y):
        raise ValueError(f"{len(X)} frame sequences but {len(y)} targets")
    ids = decode(  # model: one, or a list (ensemble); beam, ctc_weight: decoding.decode's
        model, np.asarray(X), decoder, batch_size, progress, beam=beam, ctc_weight=ctc_weight,
        language_model=language_model,
    )  # fmt: skip
    predictions = ids_to_phrases(ids)
    if fallback is not None:
        if hand_frames is None:
            raise ValueError("a fallback needs the hand frames of each input")
        predictions = fallback.apply(predictions, hand_frames)
    return evaluate_phrases(ids_to_phrases(y), predictions, sequence_ids, worst)


def baseline_scores(train_phrases: Sequence[str], targets: Sequence[str]) -> dict[str, float]:
    """Scores of predictions that ignore the input, the floor a model must clear.

    ``empty``: predict nothing (what a model that only emits PAD/EOS gets: 0 by definition);
    ``most_common_phrase``: always the training set's most frequent phrase;
    ``most_common_character``: the most frequent training character, repeated to the mean
    training phrase length.
    """
    common_phrase = collections.Counter(train_phrases).most_common(1)[0][0]
    characters = collections.Counter("".join(train_phrases))
    mean_length = round(float(np.mean([len(p) for p in train_phrases])))
    common_characters = characters.most_common(1)[0][0] * mean_length
    return {
        "empty": competition_score(targets, [""] * len(targets)),
        "most_common_phrase": competition_score(targets, [common_phrase] * len(targets)),
        "most_common_character": competition_score(targets, [common_characters] * len(targets)),
    }


# ----------------------------------------------------------------------------------------------
# Command line


@dataclasses.dataclass(frozen=True)
class EvaluateConfig:
    model: str | tuple[str, ...] = param(
        "outputs/train", "run folder (uses best.keras) or a .keras file; repeat for an ensemble"
    )
    processed: str = param("data/processed", "folder of preprocessed arrays")
    split: str = param("val", "val or train")
    out: str | None = param(None, "folder for the metrics JSON, table and plot (default: model's)")
    batch_size: int = param(256, "sequences per greedy-decoding batch")
    worst: int = param(WORST_SHOWN, "worst predictions to print")
    backend: str = param("tensorflow", "Keras backend: tensorflow or jax")
    decoder: str = param("auto", "auto (CTC head if any), attention, ctc, ctc_beam or joint")
    beam: int | None = param(None, "beam width of ctc_beam and joint (default 5)")
    ctc_weight_decoding: float = param(0.3, "joint: weight of the CTC prefix score")
    lm_weight: float = param(0.0, LM_WEIGHT_HELP)
    lm_bonus: float = param(0.0, LM_BONUS_HELP)


def model_path(model: str | Path) -> Path:
    """A ``.keras`` file, or a run folder's ``best.keras`` (else ``last.keras``)."""
    path = Path(model)
    if path.is_dir():
        for name in ("best.keras", "last.keras"):
            if (path / name).is_file():
                return path / name
        raise FileNotFoundError(f"{path}: no best.keras or last.keras (train a model first)")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file")
    return path


def run(config: EvaluateConfig, progress: bool = True) -> tuple[EvaluationResult, dict[str, Path]]:
    """Evaluate a saved model on a processed split; writes metrics, table and plot."""
    from aslfr_lib import plots
    from aslfr_lib.backend import import_keras

    if config.split not in ("val", "train"):
        raise ValueError(f"split must be 'val' or 'train', got {config.split!r}")
    from aslfr_lib.ensemble import check_members, model_list

    paths = [model_path(m) for m in model_list(config.model)]
    path = paths[0]  # an ensemble's fallback and default output folder: its first member's
    import_keras(config.backend)
    from aslfr_lib import fallback, language_model
    from aslfr_lib.checkpoints import load_checkpoint
    from aslfr_lib.data import load_training_data
    from aslfr_lib.model import model_frames

    models = [load_checkpoint(p, compile=False) for p in paths]
    check_members(models, [str(p) for p in paths])
    model = models[0] if len(models) == 1 else models
    run_fallback = fallback.load(path.parent)
    fused = language_model.for_decoding(path.parent, config.lm_weight, config.lm_bonus)
    data = load_training_data(config.processed, frames=model_frames(models[0]))  # resized to fit
    X, y = data.split(config.split)
    if len(X) == 0:
        raise ValueError(
            f"{config.processed}: the {config.split} split is empty; try --split train"
        )
    result = evaluate(
        model,
        X,
        y,
        data.sequence_ids(config.split),
        config.batch_size,
        config.worst,
        progress,
        config.decoder,
        run_fallback,
        data.ragged(config.split).lengths,
        config.beam,
        config.ctc_weight_decoding,
        fused,
    )
    if config.split == "val":  # every held-out sequence counts; the trainable ones, labelled
        result.table["trainable"] = data.val_trainable
    out = Path(config.out) if config.out else path.parent
    files = {
        "metrics": out / f"evaluation_{config.split}.json",
        "predictions": out / f"predictions_{config.split}.csv",
        "distances": out / f"distance_distribution_{config.split}.png",
    }
    from aslfr_lib.decoding import resolve_decoder

    decoder = resolve_decoder(model, config.decoder)
    summary = {**result.summary(), "model": str(path), "split": config.split, "decoder": decoder}
    if len(paths) > 1:
        summary["members"] = [str(p) for p in paths]
    summary["fallback"] = None if run_fallback is None else run_fallback.to_dict()
    summary["lm_weight"], summary["lm_bonus"] = config.lm_weight, config.lm_bonus
    atomic.write_json(files["metrics"], summary)
    atomic.write_text(files["predictions"], result.table.to_csv(index=False))
    title = f"{config.split} Levenshtein distance distribution"
    plots.save_figure(plots.plot_distance_distribution(result.distances, title), files["distances"])
    return result, files


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="aslfr evaluate", description=__doc__.split("\n")[0])
    add_arguments(parser, EvaluateConfig)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    from aslfr_lib.ensemble import repeatable_model_flag

    parser = repeatable_model_flag(parser)
    args = parser.parse_args(argv)
    try:
        config = from_args(EvaluateConfig, args)
        result, files = run(config, progress=not args.quiet)
    except (ValueError, FileNotFoundError, BackendError) as error:  # CheckpointError: ValueError
        print(f"aslfr evaluate: error: {error}", file=sys.stderr)
        return 1
    print(
        f"score: {result.score:.4f} over all {len(result.table)} {config.split} sequences  "
        f"mean Levenshtein distance: {result.mean_distance:.3f}"
    )
    metrics = json.loads(files["metrics"].read_text(encoding="utf-8"))
    if metrics.get("sequences_too_short_to_train"):
        print(
            f"score over the trainable subset only (without the "
            f"{metrics['sequences_too_short_to_train']} too short to train on): "
            f"{metrics['score_trainable_subset']:.4f}"
        )
    print(f"worst {len(result.worst)} predictions:")
    with pd.option_context("display.width", 160, "display.max_colwidth", 40):
        print(result.worst.to_string(index=False))
    print("written: " + ", ".join(str(p) for p in files.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
