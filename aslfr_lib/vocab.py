"""The competition's character vocabulary: one source of truth for ids and special tokens."""

from __future__ import annotations

import json
from collections.abc import Iterable
from importlib import resources

import numpy as np

CHARACTER_MAP_FILE = "character_to_prediction_index.json"


def load_character_map(path: str | None = None) -> dict[str, int]:
    """Character -> id, from ``path`` or the copy shipped with the package."""
    if path is None:
        text = resources.files("aslfr_lib").joinpath("resources", CHARACTER_MAP_FILE).read_text()
    else:
        with open(path, encoding="utf-8") as file:
            text = file.read()
    mapping = json.loads(text)
    ids = sorted(mapping.values())
    if ids != list(range(len(ids))):
        raise ValueError(
            f"{path or CHARACTER_MAP_FILE}: ids must be 0..{len(ids) - 1} without gaps"
        )
    return mapping


CHAR_TO_ID: dict[str, int] = load_character_map()
ID_TO_CHAR: dict[int, str] = {i: c for c, i in CHAR_TO_ID.items()}

NUM_CHARACTERS = len(CHAR_TO_ID)  # 59 printable characters
PAD = NUM_CHARACTERS  # 59: padding after EOS, ignored by loss and metrics
SOS = NUM_CHARACTERS + 1  # 60: start of sentence, first decoder input
EOS = NUM_CHARACTERS + 2  # 61: end of sentence, last target
NUM_CLASSES = NUM_CHARACTERS + 3  # 62 classifier outputs
MAX_PHRASE_LENGTH = 31  # longest phrase in the competition data
TARGET_LENGTH = MAX_PHRASE_LENGTH + 1  # 32: phrase + EOS


class VocabularyError(ValueError):
    """A phrase that cannot be encoded."""


def encode(phrase: str, length: int = TARGET_LENGTH) -> np.ndarray:
    """Phrase -> int8 ids of ``length``: characters, EOS, then PAD."""
    if len(phrase) + 1 > length:
        raise VocabularyError(
            f"phrase {phrase!r} has {len(phrase)} characters; at most {length - 1} fit with EOS"
        )
    ids = np.full(length, PAD, dtype=np.int8)
    for position, character in enumerate(phrase):
        try:
            ids[position] = CHAR_TO_ID[character]
        except KeyError:
            raise VocabularyError(
                f"character {character!r} (position {position}) of phrase {phrase!r} "
                "is not in the competition's character map"
            ) from None
    ids[len(phrase)] = EOS
    return ids


def unknown_characters(phrase: str) -> list[str]:
    """Characters of ``phrase`` that the map lacks, in order of first appearance."""
    return list(dict.fromkeys(c for c in phrase if c not in CHAR_TO_ID))


def decode(ids: Iterable[int]) -> str:
    """Ids -> phrase: stops at EOS, skips PAD and SOS."""
    characters = []
    for token in ids:
        token = int(token)
        if token == EOS:
            break
        if token in (PAD, SOS):
            continue
        characters.append(ID_TO_CHAR[token])
    return "".join(characters)


def decode_like_harness(ids: Iterable[int]) -> str:
    """What Kaggle's scorer does with argmax ids: map known ids, drop the rest, never stop."""
    return "".join(ID_TO_CHAR.get(int(token), "") for token in ids)
