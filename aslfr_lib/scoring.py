"""The competition metric: (N - D) / N over N target characters and D total Levenshtein distance.

numpy and rapidfuzz only (C-speed edit distance), so evaluation, training and the TF-free
harness emulator (``submission``) all import it without importing each other.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from rapidfuzz.distance import Levenshtein


def levenshtein_distances(targets: Sequence[str], predictions: Sequence[str]) -> np.ndarray:
    """Edit distance of each prediction to its target (int64)."""
    if len(targets) != len(predictions):
        raise ValueError(f"{len(targets)} targets but {len(predictions)} predictions")
    return np.array(
        [Levenshtein.distance(t, p) for t, p in zip(targets, predictions, strict=True)],
        dtype=np.int64,
    )


def competition_score(targets: Sequence[str], predictions: Sequence[str]) -> float:
    """(N - D) / N over all sequences: N target characters, D total Levenshtein distance.

    Below 0 when predictions are longer than wrong; 1 only when every phrase is exact.
    """
    characters = sum(len(t) for t in targets)
    if characters == 0:
        raise ValueError("targets have no characters: the score is undefined")
    distance = int(levenshtein_distances(targets, predictions).sum())
    return (characters - distance) / characters
