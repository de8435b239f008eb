"""Signing styles: what real signers vary and the default generator fixes (``aslfr synth --style``).

A recipe tuned on one way of signing stalls on another. A ``Style`` sets the knobs that differ most
between real signers; ``difficulty`` keeps setting everything else (jitter, landmark noise, swapped
hands, the spread between signers, recordings cut short). A knob left at ``None`` is set by
``difficulty`` as before; a value overrides it. Each signer still varies around the style's values
(speed and hold by about +-20 %, drop-out and its burst length per signer).

``default`` reproduces the generator as it was before styles existed, byte for byte for the same
seed and difficulty; ``mix`` gives each signer one of the other styles (uniformly, from its own
random stream, so the rest of the dataset draws the same numbers). The named styles, with the
default difficulty's values (0.6) where a style leaves a knob to ``difficulty``:

| style        | frames/letter | hold     | co-articulation | lead-in/out | doubled: slide/bounce/none | idiolect | drop-out, burst | other hand: p, frames |
| ------------ | ------------- | -------- | --------------- | ----------- | -------------------------- | -------- | --------------- | --------------------- |
| `default`    | 6.8           | 0.33     | 0.21            | 22 / 16     | 0.7 / 0.3 / 0              | 0.16     | 0.31, 2-6       | 0.06, 8-40            |
| `fluent`     | **4**         | **0.12** | **0.40**        | **10 / 8**  | 0.7 / 0.3 / 0              | 0.16     | 0.31, 2-6       | 0.06, 8-40            |
| `deliberate` | **11**        | **0.60** | **0.05**        | **40 / 32** | **0.2 / 0.2 / 0.6**        | 0.16     | 0.31, 2-6       | 0.06, 8-40            |
| `idiolect`   | 6.8           | 0.33     | 0.21            | 22 / 16     | 0.7 / 0.3 / 0              | **0.40** | 0.31, 2-6       | 0.06, 8-40            |
| `dropout`    | 6.8           | 0.33     | 0.21            | 22 / 16     | 0.7 / 0.3 / 0              | 0.16     | **0.45, 10-30** | 0.06, 8-40            |
| `two_hands`  | 6.8           | 0.33     | 0.21            | 22 / 16     | 0.7 / 0.3 / 0              | 0.16     | 0.31, 2-6       | **0.7, 30-150**       |
| `mix`        | each signer draws one of the six above (uniformly)                                                                                   |

(frames/letter, hold, co-articulation, idiolect and drop-out at difficulty 0.6; at 0 and 1 the
default's are 10.6 / 4.25, 0.6 / 0.15, 0 / 0.35, 0.02 / 0.25 and 0.05 / 0.48.) At 30 frames per
second, 4 frames per letter is a fast fingerspeller (~7 letters/s), 11 a careful one (~3/s).

What they did (``style_statistics``; seed 0, 80 sequences by 12 signers, difficulty 0.6; frames
per character include lead-in and lead-out; the other slot holds the resting hand and swaps; a lost
run is a stretch without a hand inside a sequence):

| style        | frames/char | frames with a hand | other slot | lost run (frames) |
| ------------ | ----------- | ------------------ | ---------- | ----------------- |
| `default`    | 7.8         | 56.8 %             | 6.1 %      | 3.1               |
| `fluent`     | 4.6         | 66.5 %             | 6.3 %      | 3.1               |
| `deliberate` | 13.9        | 54.5 %             | 5.3 %      | 3.2               |
| `idiolect`   | 7.8         | 56.8 %             | 6.1 %      | 3.1               |
| `dropout`    | 8.3         | 43.3 %             | 4.1 %      | 13.9              |
| `two_hands`  | 8.0         | 64.6 %             | 23.9 %     | 3.0               |

``idiolect`` changes the letters' shapes only (each signer's spread of joint angles around the
alphabet is about 2.4 times the default's), so its timing and visibility equal ``default``'s.
"""  # noqa: E501 - the table reads better unwrapped

from __future__ import annotations

from dataclasses import dataclass

MIX = "mix"  # not a Style: each signer draws one of STYLES


@dataclass(frozen=True)
class Style:
    """The signing knobs real signers vary; ``None`` leaves a knob to ``difficulty``."""

    frames_per_character: float | None = None  # signing frames per letter, 3..12 (speed)
    hold: float | None = None  # share of a letter's time its shape is held, 0.05..0.8
    coarticulation: float | None = None  # pull of a letter's shape toward its neighbours', 0..0.6
    lead_in: float = 22.0  # mean frames before the first letter (rest, rising), 2..60
    lead_out: float = 16.0  # mean frames after the last letter (lowering, rest), 2..60
    double_slide: float = 0.7  # share of signers who slide a doubled letter sideways, 0..1
    double_bounce: float = 0.3  # share who bounce it (the rest mark it not at all), 0..1-slide
    idiolect: float | None = None  # each signer's own version of a letter (radians), 0..0.5
    dropout: float | None = None  # mean share of frames a raised hand is lost, 0..0.9
    dropout_length: tuple[float, float] = (2.0, 6.0)  # signer's mean lost burst, frames, 1..60
    other_hand_probability: float = 0.06  # share of sequences showing the resting hand, 0..1
    other_hand_frames: tuple[int, int] = (8, 40)  # its time in view: [low, high) frames, 1..400

    def __post_init__(self) -> None:
        problems = []

        def within(name: str, low: float, high: float) -> None:
            value = getattr(self, name)
            if value is not None and not low <= value <= high:
                problems.append(f"{name} must be in [{low}, {high}] (got {value})")

        def span(name: str, low: float, high: float) -> None:
            first, last = getattr(self, name)
            if not low <= first <= last <= high:
                problems.append(
                    f"{name} must be (low, high) with {low} <= low <= high <= {high} "
                    f"(got {getattr(self, name)})"
                )

        within("frames_per_character", 3.0, 12.0)
        within("hold", 0.05, 0.8)
        within("coarticulation", 0.0, 0.6)
        within("lead_in", 2.0, 60.0)
        within("lead_out", 2.0, 60.0)
        within("double_slide", 0.0, 1.0)
        within("double_bounce", 0.0, 1.0)
        if self.double_slide + self.double_bounce > 1.0 + 1e-9:
            problems.append(
                f"double_slide + double_bounce must be <= 1 "
                f"(got {self.double_slide} + {self.double_bounce})"
            )
        within("idiolect", 0.0, 0.5)
        within("dropout", 0.0, 0.9)
        span("dropout_length", 1.0, 60.0)
        within("other_hand_probability", 0.0, 1.0)
        span("other_hand_frames", 1, 400)
        if self.other_hand_frames[0] == self.other_hand_frames[1]:
            problems.append(
                f"other_hand_frames must have low < high (got {self.other_hand_frames})"
            )
        if problems:
            raise ValueError("Style: " + "; ".join(problems))

    def doubled_letter_mark(self, draw: float) -> str:
        """A signer's mark of doubled letters from one uniform ``draw`` in [0, 1)."""
        if draw < self.double_slide:
            return "slide"
        if draw < self.double_slide + self.double_bounce:
            return "bounce"
        return "none"


DOUBLED_LETTER_MARKS = ("slide", "bounce", "none")

STYLES: dict[str, Style] = {
    "default": Style(),
    "fluent": Style(frames_per_character=4.0, hold=0.12, coarticulation=0.4, lead_in=10.0,
                    lead_out=8.0),
    "deliberate": Style(frames_per_character=11.0, hold=0.6, coarticulation=0.05, lead_in=40.0,
                        lead_out=32.0, double_slide=0.2, double_bounce=0.2),
    "idiolect": Style(idiolect=0.4),
    "dropout": Style(dropout=0.45, dropout_length=(10.0, 30.0)),
    "two_hands": Style(other_hand_probability=0.7, other_hand_frames=(30, 150)),
}  # fmt: skip


def style_names() -> list[str]:
    """Every name ``--style`` accepts: the named styles, then ``mix``."""
    return [*STYLES, MIX]


def get_style(name: str) -> Style:
    """The named style; ``mix`` is not one (``sample_signers`` draws a style per signer)."""
    if name == MIX:
        raise ValueError(f"style {MIX!r} is drawn per signer: pick one of {list(STYLES)} here")
    if name not in STYLES:
        raise ValueError(f"unknown style {name!r}; valid styles: {', '.join(style_names())}")
    return STYLES[name]


def check_style_name(name: str) -> None:
    """A clear error for a name ``--style`` does not accept."""
    if name not in style_names():
        raise ValueError(f"unknown style {name!r}; valid styles: {', '.join(style_names())}")
