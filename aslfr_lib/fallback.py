"""The phrase to predict when the input shows (almost) no hand.

Kaggle's test set keeps every sequence, also those where MediaPipe found the signing hand in
none or a handful of frames. A model cannot read those, and what it emits for an empty input
is arbitrary; a fixed phrase chosen to be close to typical phrases scores better (the 1st-place
solution gained +0.006 this way). The rule depends on the input alone, so the exported model
applies it too: fewer than ``min_hand_frames`` frames with a hand -> ``phrase``.

``choose_phrase`` minimises the total Levenshtein distance to the training phrases: a greedy
search that grows the phrase one character at a time, then keeps the better of it and the best
training phrase. ``choose_min_hand_frames`` picks the threshold on validation sequences: the
count below which giving the fallback instead of the model's phrase saves the most distance.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from rapidfuzz.distance import Levenshtein
from rapidfuzz.process import cdist

from aslfr_lib import atomic, vocab
from aslfr_lib.scoring import levenshtein_distances

FALLBACK_FILE = "fallback.json"  # in a training run's folder, beside best.keras
REFERENCE_PHRASES = 4000  # training phrases the search measures against (a seeded sample)
CANDIDATE_PHRASES = 1000  # training phrases tried as they are
MAX_LENGTH = 24
MAX_HAND_FRAMES_SEARCHED = 16  # thresholds above this are not considered


@dataclasses.dataclass(frozen=True)
class Fallback:
    phrase: str
    min_hand_frames: int = 1  # inputs with fewer frames showing a hand get ``phrase``
    train_score: float = float("nan")  # competition score of ``phrase`` on the training phrases

    def apply(self, predictions: Sequence[str], hand_frames: Sequence[int]) -> list[str]:
        """``predictions`` with the fallback phrase where the input had too few hand frames."""
        if len(predictions) != len(hand_frames):
            raise ValueError(f"{len(predictions)} predictions for {len(hand_frames)} inputs")
        return [
            self.phrase if count < self.min_hand_frames else phrase
            for phrase, count in zip(predictions, hand_frames, strict=True)
        ]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _total_distances(candidates: list[str], references: list[str]) -> np.ndarray:
    return cdist(candidates, references, scorer=Levenshtein.distance, workers=1).sum(axis=1)


def choose_phrase(phrases: Sequence[str], seed: int = 0) -> tuple[str, float]:
    """(phrase, its competition score on ``phrases``): the phrase with the least total distance
    to ``phrases`` that the search finds."""
    phrases = [p for p in phrases if p]
    if not phrases:
        raise ValueError("choose_phrase needs at least one non-empty phrase")
    rng = np.random.default_rng(seed)
    references = list(rng.choice(phrases, min(REFERENCE_PHRASES, len(phrases)), replace=False))
    best, best_distance = "", float(sum(map(len, references)))
    characters = list(vocab.CHAR_TO_ID)
    while len(best) < MAX_LENGTH:  # grow by the character that helps most, while one helps
        candidates = [best + c for c in characters]
        totals = _total_distances(candidates, references)
        if totals.min() >= best_distance:
            break
        best, best_distance = candidates[int(totals.argmin())], float(totals.min())
    sample = list(rng.choice(phrases, min(CANDIDATE_PHRASES, len(phrases)), replace=False))
    totals = _total_distances(sample, references)
    if totals.min() < best_distance:
        best, best_distance = sample[int(totals.argmin())], float(totals.min())
    characters_total = sum(map(len, references))
    return best, (characters_total - best_distance) / characters_total


def choose_min_hand_frames(
    phrase: str, targets: Sequence[str], predictions: Sequence[str], hand_frames: Sequence[int]
) -> int:
    """The threshold t (1 to ``MAX_HAND_FRAMES_SEARCHED``) that saves the most distance when
    the sequences with fewer than t hand frames get ``phrase`` instead of the model's
    predictions (the smallest such t on ties; 1 = only inputs without any hand frame)."""
    hand_frames = np.asarray(hand_frames)
    model = levenshtein_distances(targets, predictions)
    fixed = levenshtein_distances(targets, [phrase] * len(targets))
    gains = [
        (model - fixed)[hand_frames < threshold].sum()
        for threshold in range(1, MAX_HAND_FRAMES_SEARCHED + 1)
    ]
    return int(np.argmax(gains)) + 1


def save(fallback: Fallback, folder: str | Path) -> Path:
    path = Path(folder) / FALLBACK_FILE
    atomic.write_json(path, fallback.to_dict())
    return path


def load(folder: str | Path) -> Fallback | None:
    """The run's fallback, or None for runs trained before fallbacks existed."""
    path = Path(folder) / FALLBACK_FILE
    if not path.is_file():
        return None
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
        fallback = Fallback(**values)
    except (ValueError, TypeError) as error:
        raise ValueError(f"{path}: not a fallback file ({error})") from error
    unknown = vocab.unknown_characters(fallback.phrase)
    if unknown or fallback.min_hand_frames < 0:
        raise ValueError(f"{path}: phrase characters {unknown} / min_hand_frames invalid")
    return fallback
