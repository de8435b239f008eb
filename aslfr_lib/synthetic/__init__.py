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
  per-letter variations; consecutive letters blend (co-articulation), doubled letters slide,
  bounce or go unmarked, and the hand rises from and returns to rest before and after the phrase.
- MediaPipe's failures are imitated: the hand is lost in bursts, left and right are sometimes
  swapped, the other hand occasionally shows up.
- Face, lips and pose move on their own, independent of the characters, so a model cannot read
  the phrase without the hands.

``difficulty`` (0..1) scales speed, co-articulation, signer variation, jitter and drop-outs. The
default is tuned so that the dataset statistics match the real ones in
``/work/shared/fixtures/README.md``; 0 gives easy data for smoke tests.

``style`` (``aslfr synth --style NAME``, ``styles.STYLES``) sets what real signers vary and the
default fixes: speed, holds and co-articulation, lead-in and lead-out, doubled-letter marks, each
signer's own letters, drop-out bursts and the resting hand in view (``fluent``, ``deliberate``,
``idiolect``, ``dropout``, ``two_hands``; ``mix`` gives each signer one of them). ``default``
writes the same bytes as the generator before styles existed; ``style_statistics`` (printed by
``aslfr synth``) shows what each style did.

The package's parts: ``phrases`` (what is spelled), ``hand_model`` (hand points, the alphabet,
face and pose templates), ``styles`` (``Style``, ``STYLES``), ``signers`` (``Knobs``, ``Signer``),
``rendering`` (one sequence), ``visibility`` (what the camera caught of each character),
``layout`` and ``writing`` (the dataset, ``SynthConfig``, ``aslfr synth``), ``summary``
(statistics of a dataset folder and of its styles). Every name other code uses is re-exported
here: ``from aslfr_lib import synthetic; synthetic.X``.
"""

from aslfr_lib.synthetic.hand_model import (
    ALPHABET,
    ALPHABET_SEED,
    FACE_TEMPLATE,
    MIN_SHAPE_DISTANCE,
    MOVEMENTS,
    NUM_SHAPE_PARAMETERS,
    REST,
    ROTATION,
    _build_alphabet,
    _image_shape,
    hand_points,
)
from aslfr_lib.synthetic.layout import (
    METADATA_COLUMNS,
    SPLITS,
    SUPPLEMENTAL_CSV,
    TRAIN_CSV,
)
from aslfr_lib.synthetic.phrases import (
    make_phrase,
    make_sentence_pool,
)
from aslfr_lib.synthetic.rendering import (
    RenderedSequence,
    _columns,
    hand_from_block,
    render_sequence,
)
from aslfr_lib.synthetic.signers import (
    Knobs,
    Signer,
    knobs,
    sample_signer,
    sample_signers,
    signer_styles,
)
from aslfr_lib.synthetic.styles import (
    DOUBLED_LETTER_MARKS,
    MIX,
    STYLES,
    Style,
    get_style,
    style_names,
)
from aslfr_lib.synthetic.summary import (
    STYLE_COLUMNS,
    format_style_statistics,
    format_summary,
    style_statistics,
    summarize,
)
from aslfr_lib.synthetic.visibility import (
    HIDDEN,
    SEEN_HELD,
    SEEN_MOVING,
    VISIBILITY_NAMES,
    character_visibility,
    dataset_visibility,
)
from aslfr_lib.synthetic.writing import (
    LANDMARK_SCHEMA,
    SEQUENCES_PER_ROW_GROUP,
    SynthConfig,
    generate,
    landmark_table,
    main,
    plan_metadata,
    render_listed,
)

__all__ = [
    "ALPHABET",
    "ALPHABET_SEED",
    "DOUBLED_LETTER_MARKS",
    "FACE_TEMPLATE",
    "HIDDEN",
    "Knobs",
    "LANDMARK_SCHEMA",
    "METADATA_COLUMNS",
    "MIN_SHAPE_DISTANCE",
    "MIX",
    "MOVEMENTS",
    "NUM_SHAPE_PARAMETERS",
    "REST",
    "ROTATION",
    "RenderedSequence",
    "SEEN_HELD",
    "SEEN_MOVING",
    "SEQUENCES_PER_ROW_GROUP",
    "SPLITS",
    "STYLES",
    "STYLE_COLUMNS",
    "SUPPLEMENTAL_CSV",
    "Signer",
    "Style",
    "SynthConfig",
    "TRAIN_CSV",
    "VISIBILITY_NAMES",
    "_build_alphabet",
    "_columns",
    "_image_shape",
    "character_visibility",
    "dataset_visibility",
    "format_style_statistics",
    "format_summary",
    "generate",
    "get_style",
    "hand_from_block",
    "hand_points",
    "knobs",
    "landmark_table",
    "main",
    "make_phrase",
    "make_sentence_pool",
    "plan_metadata",
    "render_listed",
    "render_sequence",
    "sample_signer",
    "sample_signers",
    "signer_styles",
    "style_names",
    "style_statistics",
    "summarize",
]
