"""Greedy decoding: batched, KV-cached single steps, and their agreement (TF backend)."""

import dataclasses

import numpy as np
import pytest
from helpers import tiny_config
from keras import ops

from aslfr_lib.decoding import (
    decode_step,
    greedy_decode,
    ids_to_phrases,
    init_decoder_cache,
)
from aslfr_lib.model import build_model, decoder_of, encoder_of
from aslfr_lib.vocab import CHAR_TO_ID, EOS, NUM_CLASSES, PAD, SOS, encode

TINY = tiny_config()


def randomized_model(config=TINY, seed=0):
    model = build_model(config)
    rng = np.random.default_rng(seed)
    for weight in model.trainable_weights:
        weight.assign(rng.normal(0.0, 0.3, weight.shape).astype(np.float32))
    # EOS wins wherever "y" would win with a positive logit, so that (with seed 1) sequences
    # end at different positions.
    classifier = decoder_of(model).get_layer("classifier").kernel
    kernel = ops.convert_to_numpy(classifier)
    kernel[:, EOS] = kernel[:, CHAR_TO_ID["y"]] * 1.01
    classifier.assign(kernel)
    return model


def sample_frames(count=6, seed=0):
    rng = np.random.default_rng(seed)
    frames = rng.normal(size=(count, 40, 6)).astype(np.float32)
    for index in range(count):
        frames[index, 10 + 5 * index :] = 0.0
    frames[-1] = 0.0  # one sequence with no landmarks at all
    return frames


def test_ids_to_phrases_stops_at_eos():
    ids = np.stack([encode("abc"), encode("")])
    ids[0, 5] = CHAR_TO_ID["z"]  # after EOS: ignored
    assert ids_to_phrases(ids) == ["abc", ""]


@pytest.mark.parametrize(
    "flags",
    [{}, {"reference_cross_attention_mask": True, "reference_decoder_positions": True}],
)
def test_decode_step_matches_full_decoder(flags):
    model = randomized_model(dataclasses.replace(TINY, **flags), seed=1)
    frames = sample_frames()
    rng = np.random.default_rng(1)
    tokens = rng.integers(0, NUM_CLASSES, size=(len(frames), 32)).astype(np.int32)
    tokens[:, 0] = SOS
    encoded = ops.convert_to_numpy(encoder_of(model)(frames))
    frame_mask = np.any(frames != 0, -1)
    full = ops.convert_to_numpy(
        decoder_of(model)({"encoded": encoded, "frame_mask": frame_mask, "tokens": tokens})
    )
    cache = init_decoder_cache(model, encoded, frame_mask)
    shapes = {name: tuple(value.shape) for name, value in cache.items()}
    assert shapes["self_key"] == (len(frames), 32, 2, 4)
    for position in range(32):
        logits, cache = decode_step(model, cache, tokens[:, position], position)
        assert {name: tuple(value.shape) for name, value in cache.items()} == shapes
        np.testing.assert_allclose(ops.convert_to_numpy(logits), full[:, position], atol=1e-4)


def test_cached_greedy_equals_full_decoder_greedy():
    model = randomized_model(seed=1)
    frames = sample_frames(seed=1)
    batched = greedy_decode(model, frames, batch_size=4)  # two batches, the last one padded
    np.testing.assert_array_equal(batched, greedy_decode(model, frames, batch_size=64))
    uncached = greedy_decode(model, frames, batch_size=4, cached=False)
    np.testing.assert_array_equal(batched, uncached)
    lengths = [list(row).index(EOS) if EOS in row else 32 for row in batched]
    assert len(set(lengths)) > 1, f"test needs sequences ending at different places: {lengths}"
    for row, length in zip(batched, lengths, strict=True):
        assert (row[length + 1 :] == PAD).all()
        assert not np.isin(row[:length], [PAD, SOS, EOS]).any()


class _ScriptedDecoder:
    """Stands in for the decoder sub-model: sequence ``i`` emits EOS at position ``i``."""

    name = "decoder"

    def __init__(self):
        self.calls = 0
        self.seen_tokens = []

    def predict_on_batch(self, inputs):
        self.calls += 1
        tokens = inputs["tokens"]
        self.seen_tokens.append(tokens.copy())
        logits = np.zeros((len(tokens), 32, NUM_CLASSES), np.float32)
        logits[:, :, CHAR_TO_ID["x"]] = 1.0
        for index in range(len(tokens)):
            logits[index, index, EOS] = 2.0
        return logits


class _Encoder:
    name = "encoder"

    def predict_on_batch(self, frames):
        return np.zeros((len(frames), frames.shape[1], 4), np.float32)


class _Model:
    name = "scripted"

    def __init__(self):
        self.parts = {"encoder": _Encoder(), "decoder": _ScriptedDecoder()}

    def get_layer(self, name):
        return self.parts[name]


def test_greedy_stops_when_every_sequence_has_ended_and_pads_after_eos():
    model = _Model()
    frames = np.ones((3, 8, 2), np.float32)
    ids = greedy_decode(model, frames, cached=False)
    assert ids_to_phrases(ids) == ["", "x", "xx"]
    np.testing.assert_array_equal(ids[2, :4], [CHAR_TO_ID["x"], CHAR_TO_ID["x"], EOS, PAD])
    assert (ids[:, 3:] == PAD).all()
    decoder = model.parts["decoder"]
    assert decoder.calls == 3  # the last sequence ends at position 2; padding rows never count
    last_inputs = decoder.seen_tokens[-1]
    np.testing.assert_array_equal(last_inputs[2, :3], [SOS, CHAR_TO_ID["x"], CHAR_TO_ID["x"]])


def test_greedy_rejects_bad_shapes():
    with pytest.raises(ValueError, match="sequences, frames, features"):
        greedy_decode(_Model(), np.zeros((8, 2), np.float32))
