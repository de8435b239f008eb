"""The V6 model: size, sub-models, reference-defect fixes, mixed precision, saving (TF and JAX)."""

import dataclasses
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from helpers import tiny_config
from keras import ops

from aslfr_lib.losses import masked_cross_entropy
from aslfr_lib.model import (
    ModelConfig,
    build_decoder,
    build_model,
    count_parameters,
    decoder_of,
    encoder_of,
    normalization_of,
)
from aslfr_lib.vocab import EOS, PAD, SOS

TINY = tiny_config()


def randomize(model, seed=0):
    """Random weights everywhere (zero-initialised embeddings would hide bugs)."""
    rng = np.random.default_rng(seed)
    for weight in model.trainable_weights:
        weight.assign(rng.normal(0.0, 0.3, weight.shape).astype(np.float32))


def copy_weights(source, target):
    """Same layer structure; position tables may differ in rows (reference decoder length)."""
    for a, b in zip(source.trainable_weights, target.trainable_weights, strict=True):
        value = ops.convert_to_numpy(a)
        b.assign(value[: b.shape[0]] if value.shape != tuple(b.shape) else value)


def batch(seed=0, count=3, config=TINY):
    rng = np.random.default_rng(seed)
    frames = rng.normal(size=(count, config.frames, config.features)).astype(np.float32)
    frames[0, 25:] = 0.0  # padded tail
    frames[1, ::3] = 0.0  # frames without landmarks in between
    phrase = rng.integers(0, PAD, size=(count, 32))
    phrase[:, 20] = EOS
    phrase[:, 21:] = PAD
    return frames, phrase


def logits_of(model, frames, phrase, **kwargs):
    return ops.convert_to_numpy(model({"frames": frames, "phrase": phrase}, **kwargs))


def test_default_model_size_matches_the_reference():
    counts = count_parameters(build_model())
    # The reference's 4,001,664 less its 96 unused decoder position rows (96 x 256).
    assert counts["trainable"] == 4_001_664 - 96 * 256 == 3_977_088
    assert counts["non_trainable"] == 2 * 164  # normalisation means and stds
    reference = build_model(ModelConfig(reference_decoder_positions=True))
    assert count_parameters(reference)["trainable"] == 4_001_664
    encoder = encoder_of(reference)
    assert encoder.get_layer("encoder_block_0").attention.head_dim == 48
    assert decoder_of(reference).get_layer("decoder_block_0").attention.head_dim == 32


def test_config_validation():
    with pytest.raises(ValueError, match="divisible"):
        ModelConfig(encoder_dim=100)
    with pytest.raises(ValueError, match="frames >= 32"):
        ModelConfig(frames=16, reference_decoder_positions=True)


def test_full_model_is_encoder_plus_teacher_forced_decoder():
    model = build_model(TINY)
    randomize(model)
    frames, phrase = batch()
    logits = logits_of(model, frames, phrase)
    assert logits.shape == (3, 32, 62) and logits.dtype == np.float32
    encoded = ops.convert_to_numpy(encoder_of(model)(frames))
    assert encoded.shape == (3, 40, 16)
    tokens = np.concatenate([np.full((3, 1), SOS), phrase[:, :-1]], axis=1)
    direct = decoder_of(model)(
        {"encoded": encoded, "frame_mask": np.any(frames != 0, -1), "tokens": tokens}
    )
    np.testing.assert_allclose(ops.convert_to_numpy(direct), logits, atol=1e-5)


def test_training_flag_and_determinism():
    model = build_model(TINY)
    randomize(model)
    frames, phrase = batch()
    inference = logits_of(model, frames, phrase)
    np.testing.assert_array_equal(inference, logits_of(model, frames, phrase))
    assert np.mean(inference != logits_of(model, frames, phrase, training=True)) > 0.99


def test_normalisation_statistics_are_stored_and_used():
    rng = np.random.default_rng(5)
    means, stds = rng.normal(size=6), rng.uniform(0.5, 2.0, size=6)
    model = build_model(TINY, means=means, stds=stds)
    stored = normalization_of(model)
    np.testing.assert_allclose(stored[0], means, rtol=1e-6)
    np.testing.assert_allclose(stored[1], stds, rtol=1e-6)
    randomize(model)
    frames, phrase = batch()
    plain = build_model(TINY)
    copy_weights(model, plain)
    normalised = np.where(frames == 0, 0, (frames - means) / stds).astype(np.float32)
    np.testing.assert_allclose(
        logits_of(model, frames, phrase), logits_of(plain, normalised, phrase), atol=1e-4
    )


def test_reference_decoder_positions_give_identical_logits():
    """Defect 1: running the decoder over 128 positions and slicing 32 is wasted work."""
    reference = build_model(dataclasses.replace(TINY, reference_decoder_positions=True))
    randomize(reference, seed=1)
    fast = build_model(TINY)
    copy_weights(reference, fast)
    frames, phrase = batch(1)
    np.testing.assert_allclose(
        logits_of(fast, frames, phrase), logits_of(reference, frames, phrase), atol=1e-5
    )


def _decoder_logits(decoder, encoded, frame_mask, tokens):
    inputs = {"encoded": encoded, "frame_mask": frame_mask, "tokens": tokens}
    return ops.convert_to_numpy(decoder(inputs))


def test_cross_attention_ignores_empty_frames_unlike_the_reference():
    """Defect 2: the reference's causal cross-attention mask."""
    fixed = build_decoder(TINY)
    randomize(fixed, seed=2)
    reference = build_decoder(dataclasses.replace(TINY, reference_cross_attention_mask=True))
    copy_weights(fixed, reference)
    rng = np.random.default_rng(2)
    encoded = rng.normal(size=(1, 40, 16)).astype(np.float32)
    frame_mask = np.ones((1, 40), bool)
    frame_mask[0, 2:6] = False  # empty frames
    frame_mask[0, 30:] = False  # padded tail
    tokens = rng.integers(0, PAD, size=(1, 32))
    tokens[0, 0] = SOS
    base_fixed = _decoder_logits(fixed, encoded, frame_mask, tokens)
    base_reference = _decoder_logits(reference, encoded, frame_mask, tokens)
    assert not np.allclose(base_fixed, base_reference, atol=1e-3)

    empty_changed = encoded.copy()
    empty_changed[0, ~frame_mask[0]] += 3.0
    np.testing.assert_allclose(
        _decoder_logits(fixed, empty_changed, frame_mask, tokens), base_fixed, atol=1e-5
    )
    changed_reference = _decoder_logits(reference, empty_changed, frame_mask, tokens)
    assert not np.allclose(changed_reference[0, 2:], base_reference[0, 2:], atol=1e-3)

    late_changed = encoded.copy()
    late_changed[0, 20] += 3.0  # a frame with landmarks after decoder position 10
    late_fixed = _decoder_logits(fixed, late_changed, frame_mask, tokens)
    late_reference = _decoder_logits(reference, late_changed, frame_mask, tokens)
    assert not np.allclose(late_fixed[0, 10], base_fixed[0, 10], atol=1e-3)
    np.testing.assert_allclose(late_reference[0, :20], base_reference[0, :20], atol=1e-5)


def test_encoder_ignores_empty_frames():
    """Changing what empty frames embed to does not change the other frames' encodings."""
    model = build_model(TINY)
    randomize(model, seed=3)
    frames, _ = batch(3)
    encoder = encoder_of(model)
    before = ops.convert_to_numpy(encoder(frames))
    encoder.get_layer("landmark_embedding").empty_embedding.assign(np.full(32, 5.0, np.float32))
    after = ops.convert_to_numpy(encoder(frames))
    has = np.any(frames != 0, -1)
    np.testing.assert_allclose(after[has], before[has], atol=1e-5)
    assert not np.allclose(after[~has], before[~has], atol=1e-3)


def test_sequence_without_landmarks_gives_finite_logits():
    model = build_model(TINY)
    randomize(model)
    frames = np.zeros((2, 40, 6), np.float32)
    _, phrase = batch(count=2)
    assert np.isfinite(logits_of(model, frames, phrase)).all()


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_keeps_logits_and_loss_in_float32(policy):
    keras.config.set_dtype_policy(policy)
    try:
        model = build_model(TINY)
        randomize(model)
        frames, phrase = batch()
        logits = model({"frames": frames, "phrase": phrase}, training=True)
        assert ops.convert_to_numpy(logits).dtype == np.float32
        assert encoder_of(model).get_layer("encoder_block_0").compute_dtype == policy[6:]
        loss = ops.convert_to_numpy(masked_cross_entropy(phrase, logits))
        assert loss.dtype == np.float32 and np.isfinite(loss)
        assert all(w.dtype == "float32" for w in model.weights)
    finally:
        keras.config.set_dtype_policy("float32")


def test_keras_file_round_trip(tmp_path):
    model = build_model(TINY, means=np.full(6, 0.5), stds=np.full(6, 2.0))
    randomize(model, seed=4)
    frames, phrase = batch(4)
    expected = logits_of(model, frames, phrase)
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(logits_of(loaded, frames, phrase), expected, atol=1e-6)
    np.testing.assert_allclose(normalization_of(loaded)[1], 2.0)
    assert encoder_of(loaded).name == "encoder" and decoder_of(loaded).name == "decoder"


JAX_SCRIPT = textwrap.dedent(
    """
    import sys
    import keras, numpy as np
    from keras import ops
    from aslfr_lib.decoding import decode_step, greedy_decode, init_decoder_cache
    from aslfr_lib.model import ModelConfig, build_model, decoder_of, encoder_of
    assert keras.backend.backend() == "jax"
    folder = sys.argv[1]
    data = np.load(folder + "/expected.npz")
    feed = {"frames": data["frames"], "phrase": data["phrase"]}

    # A model saved by TensorFlow loads on JAX with the same outputs.
    loaded = keras.saving.load_model(folder + "/tf.keras")
    np.testing.assert_allclose(loaded.predict_on_batch(feed), data["logits"], atol=1e-5)

    # Build, save and load on JAX.
    config = ModelConfig(**eval(sys.argv[2]))
    model = build_model(config)
    model.set_weights(loaded.get_weights())
    logits = model.predict_on_batch(feed)
    model.save(folder + "/jax.keras")
    again = keras.saving.load_model(folder + "/jax.keras")
    np.testing.assert_allclose(again.predict_on_batch(feed), logits, atol=1e-6)

    # Cached decoding steps match the full decoder on JAX too.
    encoded = encoder_of(model).predict_on_batch(data["frames"])
    frame_mask = np.any(data["frames"] != 0, -1)
    tokens = np.concatenate([np.full((len(encoded), 1), 60), data["phrase"][:, :-1]], 1)
    full = decoder_of(model).predict_on_batch(
        {"encoded": encoded, "frame_mask": frame_mask, "tokens": tokens.astype("int32")}
    )
    cache = init_decoder_cache(model, encoded, frame_mask)
    for position in range(3):
        step, cache = decode_step(model, cache, tokens[:, position], position)
        np.testing.assert_allclose(ops.convert_to_numpy(step), full[:, position], atol=1e-4)
    # The compiled cached greedy loop (ops.while_loop under jax.jit) equals the plain one.
    frames = data["frames"]
    np.testing.assert_array_equal(
        greedy_decode(model, frames), greedy_decode(model, frames, cached=False)
    )
    print("jax ok")
    """
)


@pytest.mark.slow
def test_jax_backend_loads_builds_saves_and_decodes(tmp_path):
    model = build_model(TINY, means=np.full(6, 0.5), stds=np.full(6, 2.0))
    randomize(model, seed=6)
    frames, phrase = batch(6)
    np.savez(
        tmp_path / "expected.npz",
        frames=frames,
        phrase=phrase,
        logits=logits_of(model, frames, phrase),
    )
    model.save(tmp_path / "tf.keras")
    fields = {f.name: getattr(TINY, f.name) for f in dataclasses.fields(TINY)}
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    result = subprocess.run(
        [sys.executable, "-c", JAX_SCRIPT, str(tmp_path), repr(fields)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "jax ok" in result.stdout
