"""Signers: what ``difficulty`` and the style set (``Knobs``) and each participant's own way of
signing and of being filmed (``Signer``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from aslfr_lib.synthetic.hand_model import ALPHABET, FACE_TEMPLATE, ROTATION
from aslfr_lib.synthetic.styles import MIX, STYLES, Style, get_style

if TYPE_CHECKING:
    from aslfr_lib.synthetic.writing import SynthConfig


def _lerp(easy: float, hard: float, difficulty: float) -> float:
    return easy + (hard - easy) * difficulty


@dataclass(frozen=True)
class Knobs:
    """What ``difficulty`` sets. At the default (0.6) dataset statistics match the real data's;
    the model-facing hardness (variation, co-articulation, jitter) grows with it too. A style
    (``styles.Style``) overrides the knobs it sets and leaves the others to ``difficulty``."""

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


IDIOLECT_BIAS = 0.6  # a style's idiolect sets letter_variation and, times this, signer_bias


def knobs(difficulty: float, style: Style | None = None) -> Knobs:
    d = difficulty
    k = Knobs(
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
    if style is None:
        return k
    overrides = {
        "frames_per_character": style.frames_per_character,
        "hold": style.hold,
        "undershoot": style.coarticulation,
        "letter_variation": style.idiolect,
        "signer_bias": None if style.idiolect is None else IDIOLECT_BIAS * style.idiolect,
        "dropout": style.dropout,
    }
    return dataclasses.replace(
        k, **{name: value for name, value in overrides.items() if value is not None}
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
    doubled_letters: str  # how a doubled letter shows: "slide" sideways, "bounce" or "none"
    face: np.ndarray  # (468, 3) this signer's face template
    mouthing: float  # how much the lips move
    style: str = "default"  # the name of the style this signer signs in
    lead_in: float = 22.0  # mean frames before the first letter
    lead_out: float = 16.0  # mean frames after the last letter
    other_hand_probability: float = 0.06  # share of sequences where the resting hand shows
    other_hand_frames: tuple[int, int] = (8, 40)  # its time in view: [low, high) frames


def sample_signer(
    rng: np.random.Generator,
    participant_id: int,
    left_handed: bool,
    difficulty: float,
    style: str = "default",
) -> Signer:
    """One signer. ``style="default"`` draws exactly the numbers the generator drew before styles
    existed (a style changes values drawn, never how many or in which order)."""
    chosen = get_style(style)
    k = knobs(difficulty, chosen)
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
        dropout_length=rng.uniform(*chosen.dropout_length),
        swap=k.swap * _factor(rng, 0.5),
        doubled_letters=chosen.doubled_letter_mark(rng.random()),
        face=(FACE_TEMPLATE + rng.normal(0, 0.01, FACE_TEMPLATE.shape)).astype(np.float32),
        mouthing=rng.uniform(0.2, 1.0),
        style=style,
        lead_in=chosen.lead_in,
        lead_out=chosen.lead_out,
        other_hand_probability=chosen.other_hand_probability,
        other_hand_frames=chosen.other_hand_frames,
    )


def signer_styles(config: SynthConfig) -> list[str]:
    """Each participant's style: ``config.style``, or for ``mix`` one of the named styles drawn
    from a stream of its own (so ids, handedness and each signer's numbers draw as before)."""
    if config.style != MIX:
        get_style(config.style)  # a clear error for an unknown name
        return [config.style] * config.participants
    names = list(STYLES)
    rng = np.random.default_rng([config.seed, 4])
    return [names[i] for i in rng.integers(len(names), size=config.participants)]


def sample_signers(config: SynthConfig) -> list[Signer]:
    """The participants: ids like Kaggle's small ints, about one in ten left-handed."""
    rng = np.random.default_rng([config.seed, 0])
    count = config.participants
    ids = np.sort(rng.choice(np.arange(1, max(256, 2 * count)), count, replace=False))
    left_handed_count = max(1, round(0.1 * count)) if count >= 5 else 0
    left_handed = set(rng.choice(count, left_handed_count, replace=False).tolist())
    styles = signer_styles(config)
    return [
        sample_signer(
            np.random.default_rng([config.seed, 1, i]),
            ids[i],
            i in left_handed,
            config.difficulty,
            styles[i],
        )
        for i in range(count)
    ]


def _factor(rng: np.random.Generator, spread: float, size: int | None = None) -> Any:
    """Random multiplier(s) with mean 1 and log-standard-deviation ``spread``."""
    return rng.lognormal(-(spread**2) / 2, spread, size)
