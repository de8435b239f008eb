"""How much of each character the camera caught: held, only moving, or never (hidden)."""

from __future__ import annotations

from typing import Any

import numpy as np

from aslfr_lib.synthetic.rendering import RenderedSequence, _columns
from aslfr_lib.synthetic.signers import sample_signers
from aslfr_lib.synthetic.writing import SynthConfig, plan_metadata, render_listed

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
