import json

import numpy as np
import pytest
from helpers import FIXTURES

from aslfr_lib import vocab


def test_shipped_map_equals_competition_file():
    golden = json.loads((FIXTURES / "character_to_prediction_index.json").read_text())
    assert golden == vocab.CHAR_TO_ID
    assert vocab.NUM_CHARACTERS == 59


def test_special_tokens():
    assert (vocab.PAD, vocab.SOS, vocab.EOS, vocab.NUM_CLASSES) == (59, 60, 61, 62)
    assert vocab.TARGET_LENGTH == 32


def test_encode_layout():
    ids = vocab.encode("3 creekhouse")
    assert ids.dtype == np.int8 and ids.shape == (32,)
    assert ids[0] == vocab.CHAR_TO_ID["3"] and ids[1] == vocab.CHAR_TO_ID[" "]
    assert ids[12] == vocab.EOS
    assert (ids[13:] == vocab.PAD).all()


@pytest.mark.parametrize(
    "phrase", ["", "a", "6920 northeast 661st road", "x" * 31, "www.a-b_c.com/~d?e=f"]
)
def test_round_trip(phrase):
    assert vocab.decode(vocab.encode(phrase)) == phrase


def test_decode_stops_at_eos_and_skips_pad_sos():
    ids = [vocab.SOS, vocab.CHAR_TO_ID["h"], vocab.PAD, vocab.CHAR_TO_ID["i"], vocab.EOS, 40]
    assert vocab.decode(ids) == "hi"


def test_harness_decoding_drops_special_tokens():
    ids = [vocab.CHAR_TO_ID["h"], vocab.CHAR_TO_ID["i"], vocab.EOS, vocab.PAD, vocab.PAD]
    assert vocab.decode_like_harness(ids) == "hi"


def test_unknown_character_names_character_and_phrase():
    with pytest.raises(vocab.VocabularyError, match=r"'A'.*'hello A'"):
        vocab.encode("hello A")
    assert vocab.unknown_characters("héllo é!") == ["é"]


def test_too_long_phrase():
    with pytest.raises(vocab.VocabularyError, match="32 characters"):
        vocab.encode("a" * 32)
