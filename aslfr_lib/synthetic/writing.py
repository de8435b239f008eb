"""Synthetic fingerspelling data in the exact layout of the Kaggle ASLFR competition.

The real data cannot reach our machines, so every later stage runs on this by default and the same
code runs unchanged on the real download. What it writes (``train.csv``, the character map,
``train_landmarks/<file_id>.parquet`` and optionally the supplemental set) matches the
competition's files column for column and dtype for dtype.

How a sequence is made:

- A fixed alphabet of 59 hand shapes (one per character), built from its own constant seed so that
  datasets with different ``--seed`` share the same letters. A shape is 24 numbers: finger joint
  flexion and spread, thumb pose and wrist rotation; a small forward-kinematics model turns them
  into MediaPipe's 21 hand points. ``j`` and ``z`` add a movement.
- Signers articulate the letters with their own hand size, rotation, position, speed and small
  per-letter variations; consecutive letters blend (co-articulation), doubled letters slide or
  bounce, and the hand rises from and returns to rest before and after the phrase.
- MediaPipe's failures are imitated: the hand is lost in bursts, left and right are sometimes
  swapped, the other hand occasionally shows up.
- Face, lips and pose move on their own, independent of the characters, so a model cannot read
  the phrase without the hands.

``difficulty`` (0..1) scales speed, co-articulation, signer variation, jitter and drop-outs. The
default is tuned so that the dataset statistics match the real ones in
``/work/shared/fixtures/README.md``; 0 gives easy data for smoke tests.
"""

from __future__ import annotations

import argparse
import math
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from aslfr_lib import atomic, config, landmarks, vocab

# --------------------------------------------------------------------------------------------
# Configuration


@dataclass(frozen=True)
class SynthConfig:
    out: str = config.param("data/synthetic", "output folder")
    sequences: int = config.param(1000, "number of sequences in train.csv")
    participants: int = config.param(20, "number of signers")
    seed: int = config.param(0, "random seed (the letter shapes do not depend on it)")
    sequences_per_file: int = config.param(1000, "sequences per parquet file (Kaggle: ~1,000)")
    difficulty: float = config.param(
        0.6, "0 = easy (smoke tests), 1 = hard; the default matches the real data's statistics"
    )
    supplemental_sequences: int = config.param(
        0, ">0 also writes supplemental_metadata.csv and supplemental_landmarks/"
    )


TRAIN_CSV = "train.csv"
SUPPLEMENTAL_CSV = "supplemental_metadata.csv"
METADATA_COLUMNS = ["path", "file_id", "sequence_id", "participant_id", "phrase"]
SPLITS = {  # split -> (metadata file, landmark folder)
    "train": (TRAIN_CSV, "train_landmarks"),
    "supplemental": (SUPPLEMENTAL_CSV, "supplemental_landmarks"),
}
SEQUENCES_PER_ROW_GROUP = 128  # bounds memory while writing; readers see one table

# --------------------------------------------------------------------------------------------
# Phrases: the competition's kinds (addresses, phone numbers, URLs, names) plus a few phrases with
# the rare characters, so every character of the map occurs.


def _words(text: str, separator: str | None = None) -> list[str]:
    return text.split(separator)


_STREETS = _words(
    "main oak maple cedar pine elm washington lake hill park sunset river spring highland "
    "franklin lincoln jefferson madison jackson church mill center walnut cherry willow meadow "
    "forest ridge valley king queen victoria harbor bay ocean mountain summit prospect liberty "
    "union grant adams monroe hamilton clinton pleasant chestnut birch aspen poplar sycamore "
    "magnolia dogwood laurel hickory juniper heritage orchard canyon mesa prairie canal bridge "
    "station market college lexington hudson bristol dover salem camden newport ashland "
    "fairview greenwood kingston riverside lakeview hillcrest brookside woodland cypress "
    "sierra vista alta loma rancho del mar palm coral"
)
_STREET_TYPES = _words(
    "street st road rd avenue ave lane ln drive dr boulevard blvd court ct place pl way "
    "circle cir terrace trail parkway highway hwy loop square run path"
)
_DIRECTIONS = _words("north south east west northeast northwest southeast southwest n s e w ne nw")
_FIRST_NAMES = _words(
    "william james john robert michael david mary patricia jennifer linda elizabeth susan "
    "jessica sarah karen nancy lisa betty daniel matthew anthony mark donald steven paul "
    "andrew joshua kenneth kevin brian george emily emma olivia ava sophia mia amelia harper "
    "evelyn abigail ella scarlett grace chloe lily aria zoe nora riley layla ethan noah liam "
    "lucas mason logan oliver elijah aiden jacob carlos maria jose juan ana luis sofia wei "
    "mei hiroshi yuki aisha omar fatima ivan olga priya raj chen kim lee"
)
_LAST_NAMES = _words(
    "smith johnson williams brown jones garcia miller davis rodriguez martinez hernandez "
    "lopez gonzalez wilson anderson thomas taylor moore jackson martin lee perez thompson "
    "white harris sanchez clark ramirez lewis robinson walker young allen king wright scott "
    "torres nguyen hill flores green adams nelson baker hall rivera campbell mitchell carter "
    "roberts lanier okafor kowalski schmidt novak rossi dubois silva tanaka yamamoto patel "
    "singh khan ali cohen murphy obrien mcdonald fischer weber jensen larsen"
)
_WORDS = _words(
    "home shop news blog mail store cloud data photo music games sport travel food health "
    "tech book art design studio market media city green blue star sun moon river stone "
    "light fire wolf bear fox tiger eagle apple orange lemon coffee tea bread pizza garden "
    "house school learn code dev app web net link page info help care team work job money "
    "bank pay card deal sale best top my your our the go get buy find"
)
_PATH_WORDS = _words(
    "index about contact login search home products services blog news help faq cart "
    "account settings profile scales events jobs team docs api support shop gallery "
    "download images video"
)
_TLDS = _words("com com com org net edu gov io co us info biz")
_SYLLABLES = _words(
    "ka ku ha ya la ma ri to ne so be di fu go ji mo pa ra sa ti vo we zu an el in or "
    "un bar kel mon tar vin dor lah zen pik rus"
)
# Sentence pieces for the supplemental set (~500 distinct sentences, as in the real data).
_SUBJECTS = _words(
    (
        "i|you|we|they|he|she|my friend|the cat|the dog|a bird|my mom|his dad|our team|the kids|"
        "the man|a girl|the boy|my sister|her brother|the teacher"
    ),
    "|",
)
_VERBS = _words(  # past tense or modal, so any subject agrees
    "liked|wanted|saw|needed|loved|had|made|found|ate|bought|drew|read|lost|will get|can see|took",
    "|",
)
_OBJECTS = _words(
    (
        "the book|a red apple|the ball|my keys|a new car|the big dog|her phone|the movie|some tea|"
        "a cake|the map|my hat|a gift|the bus|his shoes|the box|a pen|the song|a plan|the door"
    ),
    "|",
)
_TAILS = _words("|today|now|again|at home|at night|every day|too|later|here|there", "|")
_QUESTIONS = _words(
    (
        "where is the bus|can you help me|what time is it|how are you|who is that|why not|"
        "what is your name|are you ok|is it raining|do you like tea|where do you live|"
        "can we go now|how much is it|what did you say"
    ),
    "|",
)


def _digits(rng: np.random.Generator, count: int, leading_zero: bool = False) -> str:
    digits = rng.integers(0, 10, count)
    if not leading_zero and count > 1:
        digits[0] = rng.integers(1, 10)
    return "".join(map(str, digits))


def _pick(rng: np.random.Generator, words: list[str]) -> str:
    return words[rng.integers(len(words))]


def _ordinal(number: int) -> str:
    suffix = (
        "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    )
    return f"{number}{suffix}"


def _pseudo_word(rng: np.random.Generator) -> str:
    """A pronounceable made-up word ("kuhaylah"), so URLs are mostly unique, as in the real data."""
    return "".join(_pick(rng, _SYLLABLES) for _ in range(rng.integers(2, 6)))


def _address(rng: np.random.Generator) -> str:
    number = _digits(rng, int(rng.choice([1, 2, 3, 4, 5], p=[0.04, 0.12, 0.3, 0.38, 0.16])))
    street_type = _pick(rng, _STREET_TYPES)
    form = rng.random()
    if form < 0.3:
        text = f"{number} {_pick(rng, _STREETS)} {street_type}"
    elif form < 0.65:
        text = f"{number} {_pick(rng, _DIRECTIONS)} {_pick(rng, _STREETS)} {street_type}"
    elif form < 0.85:
        ordinal = _ordinal(int(rng.integers(1, 1000)))
        text = f"{number} {_pick(rng, _DIRECTIONS)} {ordinal} {street_type}"
    else:
        text = f"{number} {_ordinal(int(rng.integers(1, 200)))} {street_type}"
    if rng.random() < 0.15:
        text += f" {_pick(rng, ['apt', 'unit', 'suite', '#'])} {rng.integers(1, 999)}"
    return text


def _phone(rng: np.random.Generator) -> str:
    form = rng.random()
    area, exchange, line = _digits(rng, 3), _digits(rng, 3), _digits(rng, 4, leading_zero=True)
    if form < 0.45:
        return f"{area}-{exchange}-{line}"
    if form < 0.8:
        return f"+1-{area}-{exchange}-{line}"
    if form < 0.9:
        country = _digits(rng, int(rng.integers(1, 3)))
        return f"+{country}-{_digits(rng, 2)}-{_digits(rng, 4)}-{line}"
    if form < 0.95:
        return f"{area}.{exchange}.{line}"
    return f"({area}) {exchange}-{line}"


def _url(rng: np.random.Generator) -> str:
    def word() -> str:
        return _pseudo_word(rng) if rng.random() < 0.5 else _pick(rng, _WORDS)

    tld = _pick(rng, _TLDS)
    form = rng.random()
    if form < 0.3:
        return f"www.{word()}{word()}.{tld}"
    if form < 0.6:
        return f"www.{word()}.{tld}/{_pick(rng, _PATH_WORDS)}"
    if form < 0.65:
        return f"www.{word()}{word()}.{tld}/{_pick(rng, _PATH_WORDS)}"
    if form < 0.77:
        return f"{word()}.{tld}/{_pick(rng, _PATH_WORDS)}"
    if form < 0.85:
        return f"{_pick(rng, ['http://', 'https://'])}{word()}.{tld}"
    user = f"{_pick(rng, _FIRST_NAMES)}{_pick(rng, ['', '.', '_'])}{_pick(rng, _LAST_NAMES)}"
    if rng.random() < 0.3:
        user = f"{_pick(rng, _FIRST_NAMES)}{_digits(rng, 2)}"
    return f"{user}@{word()}.{tld}"


def _name(rng: np.random.Generator) -> str:
    first, last = _pick(rng, _FIRST_NAMES), _pick(rng, _LAST_NAMES)
    form = rng.random()
    if form < 0.55:
        return f"{first} {last}"
    if form < 0.7:
        return f"{first} {_pick(rng, _FIRST_NAMES)} {last}"
    if form < 0.85:
        return f"{first} {chr(ord('a') + rng.integers(26))} {last}"
    if form < 0.93:
        return f"{first} {last}-{_pick(rng, _LAST_NAMES)}"
    return f"{_pick(rng, ['dr.', 'mr.', 'ms.', 'mrs.'])} {first} {last}"


def _rare(rng: np.random.Generator) -> str:
    word, name = _pick(rng, _WORDS), _pick(rng, _LAST_NAMES)
    number = str(rng.integers(1, 999))
    templates = [
        f"${number}.{_digits(rng, 2, leading_zero=True)}",
        f"{number}% off",
        f"{name} & {_pick(rng, _LAST_NAMES)}",
        f"{_pick(rng, _FIRST_NAMES)}'s {word}",
        f"{word}_{_pick(rng, _WORDS)}",
        f"{word}*{number}",
        f"{word}={number}",
        f"[{word} {number}",
        f"~/{word}",
        f"{word}!",
        f"{word}?",
        f"{word}, {name}; {number}: {_pick(rng, _WORDS)}",
        f"{number}:{_digits(rng, 2, leading_zero=True)} {_pick(rng, ['am', 'pm'])}",
        f"#{word}{number}",
        f"{word}+{_pick(rng, _WORDS)}",
    ]
    return templates[rng.integers(len(templates))]


def _short(rng: np.random.Generator) -> str:
    choices = [
        chr(ord("a") + rng.integers(26)),
        str(rng.integers(0, 10)),
        _pick(rng, _WORDS)[:4],
        _pick(rng, _FIRST_NAMES),
        str(rng.integers(10, 999)),
    ]
    return choices[rng.integers(len(choices))]


_PHRASE_KINDS = (  # (maker, weight): mix tuned to the real length statistics
    (_address, 0.45),
    (_phone, 0.10),
    (_url, 0.30),
    (_name, 0.10),
    (_rare, 0.03),
    (_short, 0.02),
)


def make_phrase(rng: np.random.Generator) -> str:
    """One competition-like phrase: 1..31 characters, all in the character map."""
    makers = [maker for maker, _ in _PHRASE_KINDS]
    weights = np.array([weight for _, weight in _PHRASE_KINDS])
    while True:
        phrase = makers[rng.choice(len(makers), p=weights / weights.sum())](rng)
        if 1 <= len(phrase) <= vocab.MAX_PHRASE_LENGTH:
            assert not vocab.unknown_characters(phrase), phrase
            return phrase


def make_sentence_pool(rng: np.random.Generator, size: int = 500) -> list[str]:
    """Distinct everyday sentences for the supplemental set (its phrases repeat, as in Kaggle's)."""
    pool: dict[str, None] = {}
    for _ in range(size * 50):
        if len(pool) >= size:
            break
        if rng.random() < 0.1:
            sentence = _pick(rng, _QUESTIONS) + _pick(rng, ["", "?"])
        else:
            tail = _pick(rng, _TAILS)
            sentence = f"{_pick(rng, _SUBJECTS)} {_pick(rng, _VERBS)} {_pick(rng, _OBJECTS)}"
            sentence = f"{sentence} {tail}" if tail else sentence
        if len(sentence) <= vocab.MAX_PHRASE_LENGTH:
            pool[sentence] = None
    return list(pool)


# --------------------------------------------------------------------------------------------
# Hand model: 24 shape parameters -> MediaPipe's 21 hand points.
#
# Local frame of a right hand, palm to the camera: x toward the thumb, y down the image (fingers
# point to -y), z away from the camera (MediaPipe: smaller z = closer). Unit: wrist to middle
# knuckle. Parameter layout:

MCP, PIP, DIP, SPREAD = slice(0, 4), slice(4, 8), slice(8, 12), slice(12, 16)  # index..pinky
THUMB_ABDUCTION, THUMB_OPPOSITION, THUMB_FLEXION = 16, 17, slice(18, 21)  # 3 joints
ROTATION = slice(21, 24)  # roll (in the image plane), pitch, yaw of the wrist
NUM_SHAPE_PARAMETERS = 24

_KNUCKLES = np.array(  # index, middle, ring, pinky knuckles (MCP)
    [[0.30, -0.95, 0.0], [0.08, -1.00, 0.0], [-0.13, -0.94, 0.0], [-0.32, -0.82, 0.0]]
)
_THUMB_BASE = np.array([0.22, -0.18, -0.05])  # thumb CMC, landmark 1
_FINGER_FAN = np.array([0.10, 0.0, -0.08, -0.18])  # resting angle of each finger from vertical
_THUMB_FAN = 0.5
_BONES = np.array(  # proximal, middle, distal bone lengths: thumb, index, middle, ring, pinky
    [
        [0.38, 0.30, 0.26],
        [0.43, 0.25, 0.20],
        [0.48, 0.29, 0.22],
        [0.45, 0.27, 0.21],
        [0.35, 0.21, 0.19],
    ]
)
_TOWARD_CAMERA = np.array([0.0, 0.0, -1.0])


def _rotation_matrices(roll: np.ndarray, pitch: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    """(T,) angles -> (T, 3, 3) rotations Rz(roll) @ Rx(pitch) @ Ry(yaw)."""
    cr, sr, cp, sp, cy, sy = (f(a) for a in (roll, pitch, yaw) for f in (np.cos, np.sin))
    zero, one = np.zeros_like(roll), np.ones_like(roll)
    rz = np.stack([cr, -sr, zero, sr, cr, zero, zero, zero, one], -1).reshape(-1, 3, 3)
    rx = np.stack([one, zero, zero, zero, cp, -sp, zero, sp, cp], -1).reshape(-1, 3, 3)
    ry = np.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], -1).reshape(-1, 3, 3)
    return rz @ rx @ ry


def hand_points(parameters: np.ndarray, bone_scale: np.ndarray | None = None) -> np.ndarray:
    """Forward kinematics: (T, 24) shape parameters -> (T, 21, 3) points, rotated about the wrist.

    ``bone_scale`` (5,) stretches each digit (thumb first): a signer's own hand proportions.
    """
    parameters = np.atleast_2d(parameters)
    count = len(parameters)
    bones = _BONES * (1.0 if bone_scale is None else np.asarray(bone_scale)[:, None])
    points = np.zeros((count, 21, 3))

    # Fingers: planar chains that flex toward the camera.
    fan = _FINGER_FAN + parameters[:, SPREAD]  # (T, 4)
    along = np.stack([np.sin(fan), -np.cos(fan), np.zeros_like(fan)], -1)  # (T, 4, 3)
    flexion = np.cumsum(
        np.stack([parameters[:, MCP], parameters[:, PIP], parameters[:, DIP]], -1), -1
    )  # (T, 4, 3 joints)
    directions = (
        np.cos(flexion)[..., None] * along[:, :, None, :]
        + np.sin(flexion)[..., None] * _TOWARD_CAMERA
    )  # (T, 4, 3 joints, 3)
    joints = _KNUCKLES[None, :, None, :] + np.cumsum(
        bones[1:, :, None] * directions, axis=2
    )  # (T, 4, 3, 3)
    for finger in range(4):
        first = 5 + 4 * finger
        points[:, first] = _KNUCKLES[finger]
        points[:, first + 1 : first + 4] = joints[:, finger]

    # Thumb: abduction in the palm plane, opposition toward the camera, flexion across the palm.
    abduction = _THUMB_FAN + parameters[:, THUMB_ABDUCTION]
    opposition = parameters[:, THUMB_OPPOSITION]
    in_plane = np.stack([np.sin(abduction), -np.cos(abduction), np.zeros(count)], -1)
    across = np.stack([-np.cos(abduction), -np.sin(abduction), np.zeros(count)], -1)
    axis = np.cos(opposition)[:, None] * in_plane + np.sin(opposition)[:, None] * _TOWARD_CAMERA
    curl = across + _TOWARD_CAMERA
    curl -= np.sum(curl * axis, -1, keepdims=True) * axis
    curl /= np.linalg.norm(curl, axis=-1, keepdims=True)
    thumb_flexion = np.cumsum(parameters[:, THUMB_FLEXION], -1)  # (T, 3)
    thumb_directions = (
        np.cos(thumb_flexion)[..., None] * axis[:, None]
        + np.sin(thumb_flexion)[..., None] * curl[:, None]
    )
    points[:, 1] = _THUMB_BASE
    points[:, 2:5] = _THUMB_BASE + np.cumsum(bones[0][None, :, None] * thumb_directions, axis=1)

    rotation = _rotation_matrices(*parameters[:, ROTATION].T)
    return np.einsum("tij,tkj->tki", rotation, points)


# --------------------------------------------------------------------------------------------
# The alphabet of hand shapes. FIXED: built from its own seed, never from --seed.

ALPHABET_SEED = 20230511
_FINGER_STATES = np.array(  # MCP, PIP, DIP flexion
    [
        [0.05, 0.05, 0.05],  # extended
        [1.50, 1.65, 0.95],  # curled into the fist
        [1.35, 0.10, 0.05],  # bent at the knuckle, straight
        [0.25, 1.35, 1.05],  # hooked
        [0.75, 0.85, 0.55],  # rounded
    ]
)
_FINGER_STATE_ODDS = [0.35, 0.30, 0.10, 0.12, 0.13]
_THUMB_STATES = np.array(  # abduction, opposition, flexion x 3
    [
        [1.00, 0.20, 0.05, 0.05, 0.05],  # out
        [0.10, 0.05, 0.05, 0.10, 0.05],  # along the index
        [0.50, 0.90, 0.20, 0.35, 0.30],  # across the fingers
        [0.20, 1.20, 0.30, 0.50, 0.40],  # tucked under
        [0.70, 0.75, 0.15, 0.30, 0.25],  # rounded
    ]
)
_SPREADS = np.array(  # index, middle, ring, pinky: closed, spread, index and middle crossed
    [[0, 0, 0, 0], [0.22, 0.05, -0.08, -0.2], [-0.18, 0.16, 0, 0]]
)
_SPREAD_ODDS = [0.6, 0.25, 0.15]
_ORIENTATIONS = np.array(  # roll, pitch, yaw
    [[0, 0, 0], [1.45, 0, 0.3], [2.7, 0.3, 0], [0.1, 0, 1.2], [0.35, 0.7, 0.2]]
)  # upright, sideways, pointing down, palm sideways, tilted forward
_ORIENTATION_ODDS = [0.6, 0.12, 0.1, 0.1, 0.08]
REST = vocab.NUM_CHARACTERS  # shape index of the relaxed hand before and after signing
_REST_SHAPE = np.array(
    [0.5] * 4 + [0.6] * 4 + [0.3] * 4 + [0.0] * 4 + [0.3, 0.3, 0.2, 0.2, 0.1] + [0.4, 0.6, 0.3]
)
MIN_SHAPE_DISTANCE = 0.12  # mean point distance (hand units) between any two letters' images


def _shape_from_states(finger: np.ndarray, thumb: int, spread: int, orientation: int) -> np.ndarray:
    flexion = _FINGER_STATES[finger]  # (4, 3)
    return np.concatenate(
        [flexion[:, 0], flexion[:, 1], flexion[:, 2], _SPREADS[spread]]
        + [_THUMB_STATES[thumb], _ORIENTATIONS[orientation]]
    )


def _image_shape(parameters: np.ndarray) -> np.ndarray:
    """(K, 24) -> (K, 21, 2) centred image-plane points: what a camera can tell apart."""
    points = hand_points(parameters)[..., :2]
    return points - points.mean(axis=1, keepdims=True)


def _build_alphabet() -> tuple[np.ndarray, dict[int, tuple[np.ndarray, float]]]:
    """(60, 24) shapes (59 characters + REST) and the movements of the moving letters."""
    rng = np.random.default_rng(ALPHABET_SEED)
    shapes: list[np.ndarray] = []
    images: list[np.ndarray] = []
    while len(shapes) < vocab.NUM_CHARACTERS:
        shape = _shape_from_states(
            rng.choice(5, 4, p=_FINGER_STATE_ODDS),
            rng.integers(5),
            rng.choice(3, p=_SPREAD_ODDS),
            rng.choice(5, p=_ORIENTATION_ODDS),
        )
        shape = shape + rng.normal(0, 0.06, NUM_SHAPE_PARAMETERS)
        image = _image_shape(shape[None])[0]
        if images:
            distances = np.linalg.norm(np.array(images) - image, axis=-1).mean(-1)
            if distances.min() < MIN_SHAPE_DISTANCE:
                continue
        shapes.append(shape)
        images.append(image)
    alphabet = np.array(shapes + [_REST_SHAPE])
    # As in ASL, "j" is "i" drawn in the air: the same shape plus a twist and a hooked path.
    # Movements: (path of the wrist in hand units over the letter's time, added roll in radians).
    j, i, z = (vocab.CHAR_TO_ID[c] for c in "jiz")
    alphabet[j] = alphabet[i]
    movements = {
        j: (np.array([[0, 0], [0, 0.35], [-0.2, 0.55], [-0.45, 0.45]]), -1.0),
        z: (np.array([[0, 0], [0.55, 0], [0.05, 0.5], [0.6, 0.5]]) - [0.3, 0.25], 0.0),
    }
    return alphabet, movements


ALPHABET, MOVEMENTS = _build_alphabet()

# --------------------------------------------------------------------------------------------
# Face and pose templates (fixed; signers perturb them). Face unit: face height. The face is a
# stand-in (points in an oval) except for the lips, which sit where MediaPipe's mesh has them:
# the reference model reads lips, and they must look like lips to be a fair distraction.


def _build_face() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(468, 3) face mesh template, plus per-point displacements for mouth opening and smiling."""
    rng = np.random.default_rng(ALPHABET_SEED + 1)
    radius = np.sqrt(rng.uniform(0, 1, 468))
    angle = rng.uniform(0, 2 * np.pi, 468)
    face = np.stack(
        [0.38 * radius * np.cos(angle), 0.5 * radius * np.sin(angle), -0.25 * (1 - radius**2)], -1
    )
    opening, smile = np.zeros((468, 3)), np.zeros((468, 3))

    def arc(indices: list[int], left: float, right: float, height: float, below: float) -> None:
        """Place lip points along an arc; ``below`` is the drop of this lip as the mouth opens."""
        t = np.linspace(left, right, len(indices))
        face[indices, 0] = 0.22 * t
        face[indices, 1] = 0.27 + height * (1 - t**2) ** 0.7
        face[indices, 2] = -0.18 + 0.05 * t**2
        opening[indices, 1] = below * (1 - t**2) ** 0.5
        smile[indices, 0] = 0.03 * t
        smile[indices, 1] = -0.012 * t**2

    lips = landmarks.LIPS_LANDMARKS
    arc([lips[0], *lips[1:10], lips[10]], -1, 1, -0.045, -0.02)  # upper outer: 61 .. 291
    arc([lips[0], *lips[11:20], lips[10]][1:-1], -0.82, 0.82, 0.05, 0.06)  # lower outer
    arc([lips[20], *lips[21:30], lips[39]], -0.85, 0.85, -0.02, -0.03)  # upper inner: 78 .. 308
    arc(lips[30:39], -0.68, 0.68, 0.02, 0.07)  # lower inner
    return face, opening, smile


FACE_TEMPLATE, _MOUTH_OPENING, _SMILE = _build_face()

# MediaPipe pose points in face units relative to the nose (x toward the person's left = image
# right), and their z; 15/16 and 17..22 (wrists and hand points) are placed by the arms.
_POSE_TEMPLATE = np.array(
    [
        [0.00, 0.00, -0.9], [0.05, -0.08, -0.85], [0.09, -0.08, -0.85], [0.13, -0.08, -0.85],
        [-0.05, -0.08, -0.85], [-0.09, -0.08, -0.85], [-0.13, -0.08, -0.85], [0.3, -0.02, -0.4],
        [-0.3, -0.02, -0.4], [0.08, 0.18, -0.8], [-0.08, 0.18, -0.8], [0.75, 0.95, -0.2],
        [-0.75, 0.95, -0.2], [0.95, 2.0, -0.1], [-0.95, 2.0, -0.1], [0.9, 2.9, -0.3],
        [-0.9, 2.9, -0.3], [0.95, 3.05, -0.35], [-0.95, 3.05, -0.35], [0.9, 3.1, -0.35],
        [-0.9, 3.1, -0.35], [0.85, 3.0, -0.3], [-0.85, 3.0, -0.3], [0.5, 3.3, 0.0],
        [-0.5, 3.3, 0.0], [0.5, 4.8, 0.3], [-0.5, 4.8, 0.3], [0.5, 6.2, 0.8], [-0.5, 6.2, 0.8],
        [0.5, 6.35, 0.85], [-0.5, 6.35, 0.85], [0.5, 6.5, 0.5], [-0.5, 6.5, 0.5],
    ]
)  # fmt: skip

# --------------------------------------------------------------------------------------------
# Signers and difficulty.


def _lerp(easy: float, hard: float, difficulty: float) -> float:
    return easy + (hard - easy) * difficulty


@dataclass(frozen=True)
class Knobs:
    """What ``difficulty`` sets. At the default (0.6) dataset statistics match the real data's;
    the model-facing hardness (variation, co-articulation, jitter) grows with it too."""

    frames_per_character: float  # signing frames per character (lead-in/out come on top)
    hold: float  # part of a letter's time spent holding its shape rather than moving
    undershoot: float  # co-articulation: pull of a letter's shape toward its neighbours'
    signer_bias: float  # a signer's habitual offset of all joint angles (radians)
    letter_variation: float  # a signer's own version of each letter (radians)
    rotation_bias: float  # a signer's wrist rotation habit (radians)
    frame_jitter: float  # joint angle noise per frame (radians)
    point_noise: float  # landmark noise per frame (hand units)
    dropout: float  # mean fraction of frames where MediaPipe loses a raised hand
    swap: float  # fraction of detected frames given to the wrong hand slot
    aspect_spread: float  # spread of log(video height / width) among signers
    truncated: float  # share of sequences whose recording is cut short


def knobs(difficulty: float) -> Knobs:
    d = difficulty
    return Knobs(
        frames_per_character=_lerp(10.6, 4.25, d),
        hold=_lerp(0.6, 0.15, d),
        undershoot=_lerp(0.0, 0.35, d),
        signer_bias=_lerp(0.02, 0.15, d),
        letter_variation=_lerp(0.02, 0.25, d),
        rotation_bias=_lerp(0.05, 0.35, d),
        frame_jitter=_lerp(0.01, 0.08, d),
        point_noise=_lerp(0.005, 0.035, d),
        dropout=_lerp(0.05, 0.48, d),
        swap=_lerp(0.0, 0.15, d),
        aspect_spread=_lerp(0.03, 0.2, d),
        truncated=0.02 * d,
    )


@dataclass(frozen=True, eq=False)
class Signer:
    """One participant's way of signing and of being filmed (coordinates MediaPipe-normalised)."""

    participant_id: int
    left_handed: bool
    hand_length: float  # wrist to middle knuckle, in image heights
    aspect: float  # video height / width: x is normalised by width, y by height
    hand_anchor: tuple[float, float]  # where the signing wrist sits
    face_center: tuple[float, float]
    face_size: float  # face height, in image heights
    bone_scale: np.ndarray  # (5,) digit length factors, thumb first
    shapes: np.ndarray  # (60, 24) this signer's version of the alphabet (+ REST)
    frames_per_character: float
    hold: float
    undershoot: float
    frame_jitter: float
    point_noise: float
    dropout: float
    dropout_length: float  # mean frames per lost stretch
    swap: float
    slides_doubles: bool  # doubled letters: slide sideways (else bounce)
    face: np.ndarray  # (468, 3) this signer's face template
    mouthing: float  # how much the lips move


def sample_signer(
    rng: np.random.Generator, participant_id: int, left_handed: bool, difficulty: float
) -> Signer:
    k = knobs(difficulty)
    shapes = ALPHABET.copy()
    joint_bias = rng.normal(0, k.signer_bias, ROTATION.start)
    rotation_bias = rng.normal(0, k.rotation_bias, 3)
    shapes[:, : ROTATION.start] += joint_bias + rng.normal(
        0, k.letter_variation, (len(shapes), ROTATION.start)
    )
    shapes[:, ROTATION] += rotation_bias + rng.normal(0, k.letter_variation, (len(shapes), 3))
    anchor_x = rng.normal(0.40, 0.05)  # the right hand shows on the image's left
    # Signers differ a lot in how often MediaPipe loses their hand: a Beta around the mean.
    dropout = rng.beta(10 * k.dropout + 1e-3, 10 * (1 - k.dropout))
    return Signer(
        participant_id=int(participant_id),
        left_handed=bool(left_handed),
        hand_length=0.11 * rng.lognormal(0, 0.15),
        aspect=float(rng.lognormal(0, k.aspect_spread)),
        hand_anchor=(1 - anchor_x if left_handed else anchor_x, rng.normal(0.58, 0.06)),
        face_center=(rng.normal(0.5, 0.04), rng.normal(0.28, 0.04)),
        face_size=0.25 * rng.lognormal(0, 0.12),
        bone_scale=rng.normal(1, 0.04, 5),
        shapes=shapes,
        frames_per_character=k.frames_per_character * _factor(rng, 0.25),
        hold=k.hold * rng.uniform(0.8, 1.2),
        undershoot=k.undershoot,
        frame_jitter=k.frame_jitter,
        point_noise=k.point_noise * _factor(rng, 0.3),
        dropout=float(dropout),
        dropout_length=rng.uniform(2, 6),
        swap=k.swap * _factor(rng, 0.5),
        slides_doubles=bool(rng.random() < 0.7),
        face=(FACE_TEMPLATE + rng.normal(0, 0.01, FACE_TEMPLATE.shape)).astype(np.float32),
        mouthing=rng.uniform(0.2, 1.0),
    )


# --------------------------------------------------------------------------------------------
# One sequence.

_AXIS_STRIDE = len(landmarks.LANDMARK_COLUMNS) // 3  # 543 columns per axis
_PART_OFFSET = {
    part: sum(list(landmarks.PARTS.values())[:i]) for i, part in enumerate(landmarks.PARTS)
}


def _put(block: np.ndarray, part: str, points: np.ndarray) -> None:
    """Write (T, n, 3) points of ``part`` into (T, 1629) competition columns."""
    for axis in range(3):
        block[:, _columns(part, axis)] = points[..., axis]


def _runs(rng: np.random.Generator, length: int, rate: float, mean_run: float) -> np.ndarray:
    """(length,) bool, True on about ``rate`` of the frames in stretches of ``mean_run`` frames."""
    mask = np.zeros(length, dtype=bool)
    rate = min(max(rate, 0.0), 0.98)
    if rate == 0.0 or length == 0:
        return mask
    mean_gap = mean_run * (1 - rate) / rate
    state = rng.random() < rate
    position = 0
    while position < length:
        run = rng.geometric(1 / max(mean_run if state else mean_gap, 1.0))
        if state:
            mask[position : position + run] = True
        position += run
        state = not state
    return mask


def _wander(
    rng: np.random.Generator,
    frames: int,
    channels: int,
    scale: float,
    cycles_per_frame: tuple[float, float] = (0.004, 0.04),
) -> np.ndarray:
    """(frames, channels) smooth random motion: two sinusoids per channel, amplitude ~``scale``."""
    time = np.arange(frames)[:, None, None]
    frequency = rng.uniform(*cycles_per_frame, (1, channels, 2))
    phase = rng.uniform(0, 2 * np.pi, (1, channels, 2))
    return scale * np.sin(2 * np.pi * frequency * time + phase).sum(-1) / np.sqrt(2)


def _factor(rng: np.random.Generator, spread: float, size: int | None = None) -> Any:
    """Random multiplier(s) with mean 1 and log-standard-deviation ``spread``."""
    return rng.lognormal(-(spread**2) / 2, spread, size)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


@dataclass(frozen=True)
class RenderedSequence:
    landmarks: np.ndarray  # (T, 1629) float32 in competition column order, NaN = not detected
    letter: np.ndarray  # (T,) int: position in the phrase of the letter's time slot, -1 outside
    holding: np.ndarray  # (T,) int: position of the letter whose shape the hand holds, -1 moving


def render_sequence(
    phrase: str, signer: Signer, rng: np.random.Generator, difficulty: float
) -> RenderedSequence:
    """Landmarks of ``signer`` fingerspelling ``phrase`` as MediaPipe Holistic would record them."""
    unknown = vocab.unknown_characters(phrase)
    if unknown or not phrase:
        raise vocab.VocabularyError(f"cannot sign {phrase!r}: characters {unknown} not in the map")
    k = knobs(difficulty)
    ids = np.array([vocab.CHAR_TO_ID[c] for c in phrase])
    count = len(ids)

    # Timeline (frames, relative to the first letter's start).
    durations = np.maximum(
        signer.frames_per_character * _factor(rng, 0.35) * _factor(rng, 0.25, count), 1.0
    )
    ends = np.cumsum(durations)
    starts, centers, signing = ends - durations, ends - durations / 2, ends[-1]
    lead_in, lead_out = 22 * _factor(rng, 0.9), 16 * _factor(rng, 0.9)  # frames
    rise_in, rise_out = rng.uniform(3, 10, 2)
    frames = max(1, math.ceil(lead_in + signing + lead_out))
    time = np.arange(frames) + 0.5 - lead_in

    # Key shapes: REST, the letters (pulled toward their neighbours), REST.
    key_ids = np.concatenate([[REST], ids, [REST]])
    key_times = np.concatenate([[-rise_in], centers, [signing + rise_out]])
    keys = signer.shapes[key_ids]
    neighbours = (keys[:-2] + keys[2:]) / 2
    keys[1:-1] += signer.undershoot * (neighbours - keys[1:-1])
    # Key positions (hand units, right-hand frame): rest is lower; doubled letters slide aside.
    key_offsets = np.zeros((len(key_ids), 2))
    key_offsets[[0, -1]] = [0.4, 2.2]
    doubled = np.flatnonzero(ids[1:] == ids[:-1]) + 1  # letter positions repeating the previous
    if signer.slides_doubles:
        slide = np.zeros(count)
        slide[doubled] = -0.45
        key_offsets[1:-1, 0] += np.cumsum(slide)

    interval = np.clip(np.searchsorted(key_times, time, side="right") - 1, 0, len(key_times) - 2)
    progress = (time - key_times[interval]) / (key_times[interval + 1] - key_times[interval])
    moving = (np.clip(progress, 0, 1) - signer.hold / 2) / (1 - signer.hold)
    blend = _smoothstep(moving)[:, None]
    parameters = (1 - blend) * keys[interval] + blend * keys[interval + 1]
    offsets = (1 - blend) * key_offsets[interval] + blend * key_offsets[interval + 1]
    if not signer.slides_doubles:  # bounce: dip between the two instances of a doubled letter
        bouncing = np.isin(interval, doubled) & (progress >= 0) & (progress <= 1)
        offsets[bouncing, 1] += 0.4 * np.sin(np.pi * progress[bouncing])

    # Letters with a movement follow their path during their own time slot.
    letter = np.searchsorted(ends, time, side="right")
    letter = np.where((time >= 0) & (letter < count), letter, -1)
    for character, (path, twist) in MOVEMENTS.items():
        now = (letter >= 0) & (ids[letter] == character)
        if now.any():
            phase = (time[now] - starts[letter[now]]) / durations[letter[now]]
            knots = np.linspace(0, 1, len(path))
            offsets[now, 0] += np.interp(phase, knots, path[:, 0])
            offsets[now, 1] += np.interp(phase, knots, path[:, 1])
            parameters[now, ROTATION.start] += twist * _smoothstep(phase)
    # Which letter's shape is held (keys are REST, letters..., REST; between keys it moves).
    holding = np.where(moving <= 0, interval - 1, np.where(moving >= 1, interval, -1))
    holding = np.where((holding >= 0) & (holding < count), holding, -1)

    # The dominant hand: jittered shape -> points -> image. Its slow path (drift and rising from
    # rest) is shared with the pose's wrist; the letters' own offsets are not.
    parameters[:, : ROTATION.start] += rng.normal(0, signer.frame_jitter, (frames, ROTATION.start))
    parameters[:, ROTATION] += rng.normal(0, signer.frame_jitter / 2, (frames, 3))
    drift = _wander(rng, frames, 2, 0.2, (0.002, 0.01))  # slower than the letters' movements
    drift[:, 0] -= 0.004 * np.clip(time, 0, signing)  # spelling drifts toward the signing side
    rest_keys = np.zeros_like(key_offsets)
    rest_keys[[0, -1]] = key_offsets[[0, -1]]
    slow_path = (1 - blend) * rest_keys[interval] + blend * rest_keys[interval + 1] + drift
    hand = hand_points(parameters, signer.bone_scale)
    hand += rng.normal(0, signer.point_noise, hand.shape) * [1, 1, 2]
    hand[..., :2] += (offsets + drift)[:, None, :]
    mirror = -1.0 if signer.left_handed else 1.0
    signing_hand = _hand_to_image(hand, signer, mirror, signer.hand_anchor)

    # What MediaPipe detects: the raised hand minus lost stretches; now and then the wrong slot.
    raised = (time >= -rise_in) & (time <= signing + rise_out)
    dropout = signer.dropout * _factor(rng, 0.4)
    detected = raised & ~_runs(rng, frames, dropout, signer.dropout_length)
    swapped = detected & _runs(rng, frames, signer.swap, 3.0)

    # The other hand shows up in a few sequences, low and relaxed, mirrored.
    other_detected = np.zeros(frames, dtype=bool)
    other_hand = np.full_like(signing_hand, np.nan)
    if rng.random() < 0.06:
        start = rng.integers(frames)
        other_detected[start : start + rng.integers(8, 40)] = True
        other_detected &= ~_runs(rng, frames, 0.2, 3.0)
        relaxed = signer.shapes[REST] + rng.normal(0, 0.2, NUM_SHAPE_PARAMETERS)
        other = hand_points(np.repeat(relaxed[None], frames, 0), signer.bone_scale)
        other += rng.normal(0, signer.point_noise, other.shape)
        other[..., :2] += [-0.3, 1.6]
        other_anchor = (1 - signer.hand_anchor[0], signer.hand_anchor[1])
        other_hand = _hand_to_image(other, signer, -mirror, other_anchor)

    # Column-major, as parquet stores it: writing a file then needs no transpose. Every column
    # is written below.
    block = np.empty((len(landmarks.LANDMARK_COLUMNS), frames), dtype=np.float32).T
    dominant_slot, other_slot = "right_hand", "left_hand"
    if signer.left_handed:
        dominant_slot, other_slot = other_slot, dominant_slot
    in_dominant_slot = np.where((detected & ~swapped)[:, None, None], signing_hand, np.nan)
    in_dominant_slot = np.where(
        (swapped & other_detected)[:, None, None], other_hand, in_dominant_slot
    )
    in_other_slot = np.where((other_detected & ~swapped)[:, None, None], other_hand, np.nan)
    in_other_slot = np.where(swapped[:, None, None], signing_hand, in_other_slot)
    _put(block, dominant_slot, in_dominant_slot)
    _put(block, other_slot, in_other_slot)

    # Face, lips and pose: their own random motion, independent of the letters.
    head = _head_transform(signer, _wander(rng, frames, 4, 1.0) * [0.008, 0.008, 0.04, 0.015])
    talking = _wander(rng, frames, 2, 1.0, (0.02, 0.15))  # mouthing, at syllable-like pace
    mouth_open = np.clip(signer.mouthing * (0.5 + 0.5 * talking[:, :1]), 0, None)  # (T, 1)
    smile = 0.5 + 0.5 * talking[:, 1:]
    face_x, face_y, face_z = (_columns("face", axis) for axis in range(3))
    columns = block.T  # (1629, T) view: a face axis is a contiguous run of rows
    columns[face_x], columns[face_y] = _transform(head, signer.face[:, :2])
    columns[face_z] = signer.face_size * signer.face[:, 2:]
    lips = landmarks.LIPS_LANDMARKS
    lips_u = mouth_open * _MOUTH_OPENING[lips, 0] + smile * _SMILE[lips, 0]  # (T, 40) face units
    lips_v = mouth_open * _MOUTH_OPENING[lips, 1] + smile * _SMILE[lips, 1]
    columns[face_x.start + np.array(lips)] += (head[:, 0:1] * lips_u + head[:, 1:2] * lips_v).T
    columns[face_y.start + np.array(lips)] += (head[:, 3:4] * lips_u + head[:, 4:5] * lips_v).T
    face_lost = _runs(rng, frames, 0.005, 4.0)  # rare face detection failures
    for axis in (face_x, face_y, face_z):
        columns[axis] += (rng.random((468, frames), np.float32) - 0.5) * 0.004
        columns[axis, face_lost] = np.nan

    # Pose: the head and torso follow the face loosely; the signing arm follows the hand's slow
    # path (not its letters); the other arm hangs.
    torso = _head_transform(signer, _wander(rng, frames, 4, 1.0) * [0.004, 0.004, 0.02, 0.008])
    pose = np.empty((frames, 33, 3))
    pose_x, pose_y = _transform(torso, _POSE_TEMPLATE[:, :2])
    pose[..., 0], pose[..., 1] = pose_x.T, pose_y.T
    pose[..., 2] = _POSE_TEMPLATE[:, 2]
    shoulder, elbow, wrist = (11, 13, 15) if signer.left_handed else (12, 14, 16)
    wrist_xy = _hand_to_image(
        np.pad(slow_path, ((0, 0), (0, 1)))[:, None], signer, mirror, signer.hand_anchor
    )[:, 0, :2]
    fingers = [wrist + 2, wrist + 4, wrist + 6]
    pose[:, fingers, :2] += (wrist_xy - pose[:, wrist, :2])[:, None]
    pose[:, wrist, :2] = wrist_xy
    pose[:, elbow, :2] = (pose[:, shoulder, :2] + wrist_xy) / 2 + [-0.06 * mirror, 0.12]
    pose += rng.normal(0, [0.003, 0.003, 0.05], pose.shape)  # pose z is notoriously unreliable
    _put(block, "pose", pose)

    if rng.random() < k.truncated:  # recordings cut short exist in the real data too
        kept = max(1, int(frames * rng.uniform(0.02, 0.5)))
        block, letter, holding = block[:kept], letter[:kept], holding[:kept]
    return RenderedSequence(block, letter, holding)


# How much of a character the camera caught (``character_visibility``).
HIDDEN, SEEN_MOVING, SEEN_HELD = 0, 1, 2
VISIBILITY_NAMES = ("hidden", "seen moving", "seen held")


def character_visibility(rendered: RenderedSequence, length: int) -> np.ndarray:
    """(length,) per character of the phrase: ``SEEN_HELD`` when some frame shows a hand while
    the signing hand holds the letter's shape, else ``SEEN_MOVING`` when some frame of the
    letter's time slot shows a hand (it moves into or out of the shape), else ``HIDDEN``: the
    hand was lost for the letter's whole slot, so only its neighbours and the phrase's context
    can tell it. What a landmark model can read at best; a hand in either slot counts."""
    block = rendered.landmarks
    shown = ~np.isnan(block[:, _columns("right_hand", 0)]).all(axis=1)
    shown |= ~np.isnan(block[:, _columns("left_hand", 0)]).all(axis=1)
    characters = np.arange(length)[:, None]
    in_slot = ((rendered.letter[None] == characters) & shown[None]).any(axis=1)
    held = ((rendered.holding[None] == characters) & shown[None]).any(axis=1)
    return np.where(held, SEEN_HELD, np.where(in_slot, SEEN_MOVING, HIDDEN))


def dataset_visibility(config: SynthConfig, sequence_ids: Any) -> dict[int, np.ndarray]:
    """``character_visibility`` of the given sequences of the dataset ``config`` wrote (train
    split), rendered again from the same seeds. A sequence that ``config`` would not have
    written is an error: the visibility of another dataset would be meaningless."""
    signers = sample_signers(config)
    by_participant = {signer.participant_id: signer for signer in signers}
    table = plan_metadata(config, signers)["train"].set_index("sequence_id")
    unknown = sorted(set(int(i) for i in sequence_ids) - set(table.index))
    if unknown:
        raise ValueError(
            f"sequence {unknown[0]} (and {len(unknown) - 1} more) is not in the dataset that "
            f"{config} writes: pass the synth settings the dataset was made with"
        )
    visibility = {}
    for sequence_id in sequence_ids:
        row = table.loc[int(sequence_id)]
        signer = by_participant[row.participant_id]
        rendered = render_listed(config, "train", sequence_id, signer, row.phrase)
        visibility[int(sequence_id)] = character_visibility(rendered, len(row.phrase))
    return visibility


def _columns(part: str, axis: int) -> slice:
    """Columns of one axis of ``part`` in the (T, 1629) competition layout."""
    first = axis * _AXIS_STRIDE + _PART_OFFSET[part]
    return slice(first, first + landmarks.PARTS[part])


def hand_from_block(block: np.ndarray, part: str) -> np.ndarray:
    """(T, n, 3) points of ``part`` read back from (T, 1629) competition columns."""
    return np.stack([block[:, _columns(part, axis)] for axis in range(3)], -1)


def _hand_to_image(
    points: np.ndarray, signer: Signer, mirror: float, anchor: tuple[float, float]
) -> np.ndarray:
    """Hand units (right-hand frame) -> normalised image coordinates; z stays wrist-relative."""
    scale = signer.hand_length
    image = np.empty_like(points)
    image[..., 0] = anchor[0] + mirror * scale * signer.aspect * points[..., 0]
    image[..., 1] = anchor[1] + scale * points[..., 1]
    image[..., 2] = scale * points[..., 2]
    return image


def _head_transform(signer: Signer, motion: np.ndarray) -> np.ndarray:
    """(T, 4) shift x, shift y, tilt, zoom -> (T, 6) affine maps of face units to the image:
    ``x = m0 u + m1 v + m2``, ``y = m3 u + m4 v + m5`` (x is normalised by the video's width)."""
    scale = signer.face_size * (1 + motion[:, 3])
    cos, sin = np.cos(motion[:, 2]) * scale, np.sin(motion[:, 2]) * scale
    center_x, center_y = signer.face_center
    maps = [
        signer.aspect * cos,
        -signer.aspect * sin,
        center_x + motion[:, 0],
        sin,
        cos,
        center_y + motion[:, 1],
    ]
    return np.stack(maps, -1).astype(np.float32)


def _transform(maps: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(T, 6) affine maps of (n, 2) points -> image x and y, each (n, T)."""
    homogeneous = np.hstack([points, np.ones((len(points), 1))]).astype(np.float32)  # (n, 3)
    return homogeneous @ maps[:, :3].T, homogeneous @ maps[:, 3:].T


# --------------------------------------------------------------------------------------------
# Datasets.


def _check(config: SynthConfig) -> None:
    problems = []
    if config.sequences < 1:
        problems.append(f"sequences must be >= 1 (got {config.sequences})")
    if config.participants < 1:
        problems.append(f"participants must be >= 1 (got {config.participants})")
    if config.sequences_per_file < 1:
        problems.append(f"sequences_per_file must be >= 1 (got {config.sequences_per_file})")
    if not 0.0 <= config.difficulty <= 1.0:
        problems.append(f"difficulty must be in [0, 1] (got {config.difficulty})")
    if config.supplemental_sequences < 0:
        problems.append(
            f"supplemental_sequences must be >= 0 (got {config.supplemental_sequences})"
        )
    if problems:
        raise ValueError("SynthConfig: " + "; ".join(problems))


def sample_signers(config: SynthConfig) -> list[Signer]:
    """The participants: ids like Kaggle's small ints, about one in ten left-handed."""
    rng = np.random.default_rng([config.seed, 0])
    count = config.participants
    ids = np.sort(rng.choice(np.arange(1, max(256, 2 * count)), count, replace=False))
    left_handed_count = max(1, round(0.1 * count)) if count >= 5 else 0
    left_handed = set(rng.choice(count, left_handed_count, replace=False).tolist())
    return [
        sample_signer(
            np.random.default_rng([config.seed, 1, i]), ids[i], i in left_handed, config.difficulty
        )
        for i in range(count)
    ]


def plan_metadata(config: SynthConfig, signers: list[Signer]) -> dict[str, pd.DataFrame]:
    """train.csv (and supplemental_metadata.csv) rows, sorted by file then sequence id."""
    rng = np.random.default_rng([config.seed, 2])
    counts = {"train": config.sequences, "supplemental": config.supplemental_sequences}
    counts = {split: count for split, count in counts.items() if count > 0}
    total = sum(counts.values())
    sequence_ids = rng.choice(2**31 - 10**9, total, replace=False) + 10**9
    files = {split: math.ceil(count / config.sequences_per_file) for split, count in counts.items()}
    file_ids = rng.choice(2**31 - 10**6, sum(files.values()), replace=False) + 10**6
    weights = rng.dirichlet(np.full(len(signers), 3.0))
    participant_ids = np.array([signer.participant_id for signer in signers])
    pool = make_sentence_pool(rng) if "supplemental" in counts else []
    tables = {}
    for split, count in counts.items():
        folder = SPLITS[split][1]
        ids, sequence_ids = sequence_ids[:count], sequence_ids[count:]
        split_files, file_ids = np.sort(file_ids[: files[split]]), file_ids[files[split] :]
        if split == "train":
            phrases = [make_phrase(rng) for _ in range(count)]
        else:
            phrases = [pool[i] for i in rng.integers(len(pool), size=count)]
        table = pd.DataFrame(
            {
                "file_id": split_files[rng.permutation(count) % len(split_files)],
                "sequence_id": ids.astype(np.int64),
                "participant_id": participant_ids[rng.choice(len(signers), count, p=weights)],
                "phrase": phrases,
            }
        )
        table.insert(0, "path", [f"{folder}/{file_id}.parquet" for file_id in table["file_id"]])
        tables[split] = table.sort_values(["file_id", "sequence_id"], ignore_index=True)
    return tables


def _landmark_schema() -> pa.Schema:
    """Arrow schema of a competition parquet, with the pandas metadata that makes ``sequence_id``
    the index when read back by ``pandas.read_parquet``."""
    empty = pd.DataFrame(
        {landmarks.FRAME_COLUMN: np.zeros(0, np.int16)}
        | {name: np.zeros(0, np.float32) for name in landmarks.LANDMARK_COLUMNS},
        index=pd.Index(np.zeros(0, np.int64), name=landmarks.INDEX_COLUMN),
    )
    return pa.Schema.from_pandas(empty, preserve_index=True)


LANDMARK_SCHEMA = _landmark_schema()


def landmark_table(sequence_ids: list[int] | np.ndarray, blocks: list[np.ndarray]) -> pa.Table:
    """Sequences' (T, 1629) float32 landmarks -> a table in the competition's parquet layout.

    NaN becomes null, as ``DataFrame.to_parquet`` stores it; pandas reads both back as NaN.
    """
    if len(sequence_ids) != len(blocks):
        raise ValueError(f"{len(sequence_ids)} sequence ids for {len(blocks)} landmark blocks")
    for sequence_id, block in zip(sequence_ids, blocks, strict=True):
        if block.ndim != 2 or block.shape[1] != len(landmarks.LANDMARK_COLUMNS):
            raise ValueError(
                f"sequence {sequence_id}: landmarks of shape {block.shape}, "
                f"expected (frames, {len(landmarks.LANDMARK_COLUMNS)})"
            )
    lengths = [len(block) for block in blocks]
    rows = sum(lengths)
    # (1629, rows): each column contiguous (cheap when blocks are column-major, as rendered).
    columns = np.concatenate([np.asarray(block, dtype=np.float32).T for block in blocks], axis=1)
    missing = np.isnan(columns)
    null_counts = missing.sum(axis=1)
    validity = np.packbits(~missing, axis=1, bitorder="little")  # Arrow's bitmap layout
    arrays = [pa.array(np.concatenate([np.arange(n, dtype=np.int16) for n in lengths]))]
    for column, bitmap, nulls in zip(columns, validity, null_counts, strict=True):
        buffers = [pa.py_buffer(bitmap) if nulls else None, pa.py_buffer(column)]
        arrays.append(pa.Array.from_buffers(pa.float32(), rows, buffers, null_count=int(nulls)))
    arrays.append(pa.array(np.repeat(np.asarray(sequence_ids, dtype=np.int64), lengths)))
    return pa.Table.from_arrays(arrays, schema=LANDMARK_SCHEMA)


def _readable(path: Path) -> None:
    """Dataset files are for everyone to read (the temporary file starts out private)."""
    path.chmod(0o644)


def _sequence_rng(config: SynthConfig, split: str, sequence_id: int) -> np.random.Generator:
    """One stream per sequence, so its landmarks do not depend on file or chunk boundaries."""
    return np.random.default_rng([config.seed, 3, list(SPLITS).index(split), int(sequence_id)])


def render_listed(
    config: SynthConfig, split: str, sequence_id: int, signer: Signer, phrase: str
) -> RenderedSequence:
    """The sequence ``config``'s dataset lists as ``sequence_id`` of ``split``, rendered from its
    own random stream (the same landmarks whichever file or chunk it is written in)."""
    rng = _sequence_rng(config, split, sequence_id)
    return render_sequence(phrase, signer, rng, config.difficulty)


def _write_landmark_file(
    path: Path, rows: pd.DataFrame, signers: dict[int, Signer], config: SynthConfig, split: str
) -> None:
    """Render and write one parquet file, a row group per ``SEQUENCES_PER_ROW_GROUP`` sequences.

    Parquet encoding releases the GIL, so a row group is written while the next one renders.
    """
    with (
        atomic.atomic_path(path) as temporary,
        pq.ParquetWriter(
            temporary,
            LANDMARK_SCHEMA,
            compression="none",  # noisy float32 does not compress: snappy only costs time
            # Dictionaries only help the repeated columns; on noisy floats they cost time.
            use_dictionary=[landmarks.INDEX_COLUMN, landmarks.FRAME_COLUMN],
        ) as writer,
        ThreadPoolExecutor(max_workers=1) as background,
    ):
        pending = None
        for start in range(0, len(rows), SEQUENCES_PER_ROW_GROUP):
            chunk = rows.iloc[start : start + SEQUENCES_PER_ROW_GROUP]
            blocks = [
                render_listed(config, split, sequence_id, signers[participant], phrase).landmarks
                for sequence_id, participant, phrase in zip(
                    chunk["sequence_id"], chunk["participant_id"], chunk["phrase"], strict=True
                )
            ]
            table = landmark_table(chunk["sequence_id"].to_numpy(), blocks)
            if pending is not None:
                pending.result()  # row groups stay in order
            pending = background.submit(writer.write_table, table)
        if pending is not None:
            pending.result()
    _readable(path)


def generate(config: SynthConfig, progress: bool = True) -> dict[str, Any]:
    """Write a synthetic dataset in the competition's layout; returns ``summarize(config.out)``."""
    _check(config)
    out = Path(config.out)
    signers = sample_signers(config)
    by_participant = {signer.participant_id: signer for signer in signers}
    tables = plan_metadata(config, signers)
    character_map = resources.files("aslfr_lib").joinpath("resources", vocab.CHARACTER_MAP_FILE)
    with atomic.atomic_path(out / vocab.CHARACTER_MAP_FILE) as temporary:
        temporary.write_bytes(character_map.read_bytes())
        _readable(temporary)
    files = [
        (split, path, rows)
        for split, table in tables.items()
        for path, rows in table.groupby("path", sort=False)
    ]
    for split, path, rows in tqdm(files, desc=f"synth {out}", unit="file", disable=not progress):
        _write_landmark_file(out / path, rows, by_participant, config, split)
    # Metadata last: a table never lists a file that is not there yet.
    for split, table in tables.items():
        with atomic.atomic_path(out / SPLITS[split][0]) as temporary:
            table.to_csv(temporary, index=False)
            _readable(temporary)
    summary = summarize(out, progress=progress)
    if "supplemental" in tables:
        summary["supplemental"] = summarize(out, "supplemental", progress=progress)
    return summary


# --------------------------------------------------------------------------------------------
# Statistics of a dataset folder (synthetic or the real download).


def _describe(values: np.ndarray) -> dict[str, float]:
    return {
        "mean": float(np.mean(values)),
        "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
        "min": float(np.min(values)),
        "max": float(np.max(values)),
    }


_WRISTS = ["x_left_hand_0", "x_right_hand_0"]  # MediaPipe reports a hand whole or not at all


def _hand_counts(path: Path, expected: pd.Series) -> pd.DataFrame:
    """Per sequence of one parquet file: frames, frames with a left / right / no hand."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: listed in the metadata but missing")
    # ParquetFile without threads, not pandas.read_parquet: Arrow's dataset scanner can abort the
    # process at exit (see runner._read_indexed).
    with pq.ParquetFile(path) as parquet:
        read = parquet.read(columns=_WRISTS, use_threads=False, use_pandas_metadata=True)
    table = read.to_pandas(use_threads=False)
    if table.index.name != landmarks.INDEX_COLUMN:
        raise ValueError(f"{path}: index is {table.index.name!r}, expected 'sequence_id'")
    ids = table.index.to_numpy()
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]]) if len(ids) else np.zeros(0, int)
    run_ids = pd.Index(ids[starts])
    if run_ids.has_duplicates:
        repeated = run_ids[run_ids.duplicated()][0]
        raise ValueError(f"{path}: rows of sequence {repeated} are not contiguous")
    missing = pd.Index(expected).difference(run_ids)
    if len(missing):
        raise ValueError(f"{path}: sequence {missing[0]} is in the metadata but not in the file")
    left = table[_WRISTS[0]].notna().to_numpy()
    right = table[_WRISTS[1]].notna().to_numpy()
    counts = pd.DataFrame(
        {
            "frames": np.diff(np.r_[starts, len(ids)]),
            "left": np.add.reduceat(left, starts),
            "right": np.add.reduceat(right, starts),
            "no_hand": np.add.reduceat(~left & ~right, starts),
        },
        index=run_ids,
    )
    return counts.loc[expected.to_numpy()]


def summarize(data_dir: str | Path, split: str = "train", progress: bool = False) -> dict[str, Any]:
    """Statistics of a dataset folder in the competition's layout (synthetic or real)."""
    data_dir = Path(data_dir)
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {list(SPLITS)}")
    metadata_path = data_dir / SPLITS[split][0]
    if not metadata_path.exists():
        raise FileNotFoundError(f"{metadata_path}: no such file (is {data_dir} a dataset folder?)")
    metadata = pd.read_csv(metadata_path, keep_default_na=False)
    absent = [column for column in METADATA_COLUMNS if column not in metadata.columns]
    if absent:
        raise ValueError(f"{metadata_path}: missing columns {absent}")
    groups = metadata.groupby("path", sort=False)
    counts = pd.concat(
        [
            _hand_counts(data_dir / path, rows["sequence_id"])
            for path, rows in tqdm(
                groups, desc=f"summarize {metadata_path.name}", unit="file", disable=not progress
            )
        ]
    ).loc[metadata["sequence_id"].to_numpy()]
    lengths = metadata["phrase"].astype(str).str.len().to_numpy()
    frames = counts["frames"].to_numpy()
    total = frames.sum()
    hands = counts[["left", "right"]].groupby(metadata["participant_id"].to_numpy()).sum()
    return {
        "split": split,
        "sequences": len(metadata),
        "files": metadata["path"].nunique(),
        "participants": metadata["participant_id"].nunique(),
        "unique_phrases": metadata["phrase"].nunique(),
        "phrase_length": _describe(lengths),
        "frames": _describe(frames),
        "frames_per_character": float(total / lengths.sum()),
        "no_hand_frames_pct": float(100 * counts["no_hand"].sum() / total),
        "left_hand_missing_pct": float(100 * (1 - counts["left"].sum() / total)),
        "right_hand_missing_pct": float(100 * (1 - counts["right"].sum() / total)),
        "left_handed_signers": int((hands["left"] > hands["right"]).sum()),
    }


def format_summary(summary: dict[str, Any]) -> str:
    """The summary as a few readable lines (what ``aslfr synth`` prints)."""

    def stats(values: dict[str, float]) -> str:
        return (
            f"mean {values['mean']:.1f}  std {values['std']:.1f}  "
            f"min {values['min']:.0f}  max {values['max']:.0f}"
        )

    lines = [
        f"{summary['split']}: {summary['sequences']:,} sequences in {summary['files']:,} files, "
        f"{summary['participants']} participants ({summary['left_handed_signers']} left-handed), "
        f"{summary['unique_phrases']:,} distinct phrases",
        f"  phrase length        {stats(summary['phrase_length'])}",
        f"  frames per sequence  {stats(summary['frames'])}",
        f"  frames per character {summary['frames_per_character']:.1f}",
        f"  frames with no hand  {summary['no_hand_frames_pct']:.1f} %",
        f"  left hand missing    {summary['left_hand_missing_pct']:.1f} % of frames",
        f"  right hand missing   {summary['right_hand_missing_pct']:.1f} % of frames",
    ]
    if "supplemental" in summary:
        lines.append(format_summary(summary["supplemental"]))
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="aslfr synth",
        description="Write a synthetic dataset in the layout of Kaggle's ASL fingerspelling data.",
    )
    config.add_arguments(parser, SynthConfig)
    arguments = parser.parse_args(argv)
    try:
        summary = generate(config.from_args(SynthConfig, arguments))
    except ValueError as error:
        parser.error(str(error))
    print(format_summary(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
