"""A character n-gram language model of the training phrases, for shallow fusion in the beam search.

Unseen signers make letters whose shapes overlap (each signer's own version of a letter), and
the landmarks alone then leave several readings open. The phrases themselves are far from random
(street names and types, digits in house numbers, ``www.`` and ``.com``), so a model of which
character follows which settles many of them. Kaggle's phrases are mostly unique (46,478 of
67,208), as are the generator's (98.6 % of held-out phrases are not training phrases), so the
model is a low-order n-gram: it learns spelling, not phrases.

Estimation: interpolated Witten-Bell over orders 0 .. ``order - 1`` of context, the unigram
interpolated with the uniform distribution over the characters and EOS. Contexts are padded with
SOS, so the model knows how phrases start; EOS is predicted, so it knows how they end.

Lookup in the search (``keras.ops``, builtin TFLite ops): a hypothesis carries its context as
one integer, the base-``NUM_CLASSES`` number of its last ``order - 1`` tokens (the newest the
lowest digit), updated by ``next_context``. ``context_rows`` maps every such number to the row
of ``log_probs`` of its longest context seen in training, so no back-off happens at search time.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from aslfr_lib import atomic
from aslfr_lib.vocab import EOS, NUM_CHARACTERS, NUM_CLASSES, SOS

LM_WEIGHT_HELP = "weight of the run's character language model in the beam search (0: none)"
LM_BONUS_HELP = "score added per character with the language model (offsets its cost per character)"
LANGUAGE_MODEL_FILE = "language_model.npz"  # in a training run's folder, beside best.keras
DEFAULT_ORDER = 4  # 2.29 bits per character on held-out phrases of the demo data (order 5: 2.25)
MAX_ORDER = 4  # context_rows has NUM_CLASSES ** (order - 1) entries: 0.95 MB at order 4
# The search reads log-probabilities as integers in steps of 1/256 (rounding moves a score by at
# most 0.002): a float table would be an int8 target of the export's dynamic-range
# quantization, which cost 0.010 of score on the demo data (and Keras and TFLite would differ).
FIXED_POINT_SCALE = 256.0
FIXED_POINT_FLOOR = -100.0  # NEG (PAD, SOS: masked by the search anyway) clipped to fit int16
NEG = -1e9  # the search's log of an impossible event (PAD and SOS are never predicted)


def check_fusion_settings(weight: float, bonus: float) -> None:
    if not (weight >= 0 and np.isfinite(weight)) or not np.isfinite(bonus):
        raise ValueError(f"lm_weight must be >= 0 and lm_bonus finite, got {weight}, {bonus}")


@dataclasses.dataclass(frozen=True)
class LanguageModel:
    """The tables of a fitted model and how the search weighs them.

    The search adds ``weight * log P_lm(c | context) + bonus`` to the score of each character
    ``c`` (``weight * log P_lm(EOS | context)`` to an ending): the bonus per character offsets
    the model's cost of every character, which would otherwise favour short phrases.
    """

    order: int
    context_rows: np.ndarray  # (NUM_CLASSES ** (order - 1),) int32: context -> row
    log_probs: np.ndarray  # (rows, NUM_CLASSES) float32: log P(next | context); NEG for PAD, SOS
    weight: float = 0.0
    bonus: float = 0.0

    def __post_init__(self) -> None:
        if not 1 <= self.order <= MAX_ORDER:
            raise ValueError(f"order must be in 1..{MAX_ORDER}, got {self.order}")
        if self.context_rows.shape != (self.contexts,):
            raise ValueError(f"context_rows has shape {self.context_rows.shape}")
        if self.log_probs.ndim != 2 or self.log_probs.shape[1] != NUM_CLASSES:
            raise ValueError(f"log_probs has shape {self.log_probs.shape}")
        check_fusion_settings(self.weight, self.bonus)

    @property
    def fusing(self) -> bool:
        """Whether the search's scores change at all (weight 0 and bonus 0: they do not)."""
        return self.weight != 0 or self.bonus != 0

    @property
    def contexts(self) -> int:
        return NUM_CLASSES ** (self.order - 1)

    @property
    def start_context(self) -> int:
        """The context of a phrase's first character: ``order - 1`` SOS tokens."""
        return sum(SOS * NUM_CLASSES**i for i in range(self.order - 1))

    def next_context(self, context, token):
        """The context after ``token`` (ints or integer arrays/tensors of one shape)."""
        return (context * NUM_CLASSES + token) % self.contexts

    def phrase_log_prob(self, ids: Sequence[int]) -> float:
        """log P(phrase + EOS) of character ids (for tests and perplexity)."""
        context, total = self.start_context, 0.0
        for token in [*ids, EOS]:
            total += float(self.log_probs[self.context_rows[context], token])
            context = self.next_context(context, token)
        return total

    @property
    def fixed_point_log_probs(self) -> np.ndarray:
        """(rows, NUM_CLASSES) int16: ``log_probs`` in steps of ``1 / FIXED_POINT_SCALE``."""
        clipped = np.maximum(self.log_probs.astype(np.float64), FIXED_POINT_FLOOR)
        return np.round(clipped * FIXED_POINT_SCALE).astype(np.int16)

    def fused(self, weight: float, bonus: float) -> LanguageModel:
        return dataclasses.replace(self, weight=weight, bonus=bonus)


def _phrase_ids(targets: np.ndarray) -> list[np.ndarray]:
    """(N, 32) targets (characters, EOS, PAD) -> each phrase's characters then EOS."""
    targets = np.asarray(targets)
    if targets.ndim != 2:
        raise ValueError(f"expected (phrases, positions) targets, got shape {targets.shape}")
    phrases = []
    for row, target in enumerate(targets):
        ends = np.flatnonzero(target == EOS)
        if len(ends) == 0 or np.any(target[: ends[0]] >= NUM_CHARACTERS):
            raise ValueError(f"target {row} is not characters followed by EOS: {target.tolist()}")
        phrases.append(target[: ends[0] + 1].astype(np.int64))
    return phrases


def fit(targets: np.ndarray | Iterable[Sequence[int]], order: int = DEFAULT_ORDER) -> LanguageModel:
    """An interpolated Witten-Bell model of ``order`` (1 = unigram) from training targets:
    (N, 32) character ids each followed by EOS (``vocab.encode``'s rows)."""
    if not 1 <= order <= MAX_ORDER:
        raise ValueError(f"order must be in 1..{MAX_ORDER}, got {order}")
    phrases = _phrase_ids(np.asarray(targets if isinstance(targets, np.ndarray) else list(targets)))
    if not phrases:
        raise ValueError("no phrases to fit a language model on")
    history = order - 1
    # Every event: (the last `history` tokens before it, SOS-padded, as one number; the token).
    padded = [np.concatenate([np.full(history, SOS), phrase]) for phrase in phrases]
    full_contexts, nexts = [], []
    for tokens in padded:
        context = np.zeros(len(tokens) - history, dtype=np.int64)
        for back in range(1, history + 1):  # the newest token is the lowest digit
            context += tokens[history - back : len(tokens) - back] * NUM_CLASSES ** (back - 1)
        full_contexts.append(context)
        nexts.append(tokens[history:])
    full_contexts, nexts = np.concatenate(full_contexts), np.concatenate(nexts)

    predicted = np.zeros(NUM_CLASSES, dtype=bool)
    predicted[:NUM_CHARACTERS] = predicted[EOS] = True
    lower = np.where(predicted, 1.0 / predicted.sum(), 0.0)[None]  # (1, C): order -1, uniform
    lower_contexts = np.zeros(1, dtype=np.int64)
    tables, seen_by_length = [], []
    for length in range(history + 1):  # context length 0 (unigram) .. history
        contexts = full_contexts % NUM_CLASSES**length
        seen, row = np.unique(contexts, return_inverse=True)
        counts = np.zeros((len(seen), NUM_CLASSES))
        np.add.at(counts, (row, nexts), 1.0)
        types = (counts > 0).sum(axis=1, keepdims=True)
        total = counts.sum(axis=1, keepdims=True)
        parent = np.searchsorted(lower_contexts, seen % NUM_CLASSES ** max(length - 1, 0))
        probs = (counts + types * lower[parent]) / (total + types)
        tables.append(probs)
        seen_by_length.append(seen)
        lower, lower_contexts = probs, seen

    offsets = np.cumsum([0] + [len(seen) for seen in seen_by_length])
    every = np.arange(NUM_CLASSES**history, dtype=np.int64)
    context_rows = np.zeros(len(every), dtype=np.int32)  # row 0: the unigram
    for length in range(1, history + 1):  # longer seen suffixes override shorter ones
        seen = seen_by_length[length]
        suffix = every % NUM_CLASSES**length
        where = np.minimum(np.searchsorted(seen, suffix), len(seen) - 1)
        hit = seen[where] == suffix
        context_rows[hit] = offsets[length] + where[hit]
    probs = np.concatenate(tables)
    with np.errstate(divide="ignore"):
        log_probs = np.where(predicted, np.log(probs), NEG).astype(np.float32)
    return LanguageModel(order, context_rows, log_probs)


def save(model: LanguageModel, folder: str | Path) -> Path:
    """``folder/language_model.npz`` (the tables; weight and bonus are the decoder's choice)."""
    path = Path(folder) / LANGUAGE_MODEL_FILE
    buffer = io.BytesIO()
    np.savez(buffer, order=model.order, context_rows=model.context_rows, log_probs=model.log_probs)
    atomic.write_bytes(path, buffer.getvalue())
    return path


def load(folder: str | Path) -> LanguageModel:
    """The language model ``aslfr train`` wrote into the run folder ``folder``."""
    path = Path(folder) / LANGUAGE_MODEL_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no language model in this run folder (runs trained before language models "
            "lack one: train again, or decode with lm_weight 0 and lm_bonus 0)"
        )
    try:
        with np.load(path) as tables:
            return LanguageModel(int(tables["order"]), tables["context_rows"], tables["log_probs"])
    except (ValueError, KeyError, OSError) as error:
        raise ValueError(f"{path}: not a language model file ({error})") from None


def for_decoding(folder: str | Path, weight: float, bonus: float) -> LanguageModel | None:
    """The run folder's model fused with ``weight`` and ``bonus``; None when both are 0 (the
    file is then not needed)."""
    check_fusion_settings(weight, bonus)
    if weight == 0 and bonus == 0:  # LanguageModel.fusing's rule, before any file is read
        return None
    return load(folder).fused(weight, bonus)


def fit_processed(processed: str | Path, order: int = DEFAULT_ORDER) -> LanguageModel:
    """``fit`` on the training split's targets of a preprocessed folder (``y_train.npy``)."""
    path = Path(processed) / "y_train.npy"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no training targets to fit the language model on")
    try:
        return fit(np.load(path), order)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None


__all__ = [
    "LANGUAGE_MODEL_FILE",
    "LanguageModel",
    "MAX_ORDER",
    "fit",
    "fit_processed",
    "load",
    "save",
]
