"""CTC head, joint loss, CTC decoding in Keras and in the TFLite export; the conformer encoder."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import TINY_ARCHITECTURE
from keras import ops

from aslfr_lib.checkpoints import load_checkpoint, save_checkpoint
from aslfr_lib.decoding import ctc_collapse, ctc_greedy_decode, decode, greedy_decode
from aslfr_lib.losses import CTCLoss, ctc_loss_per_sequence
from aslfr_lib.model import ModelConfig, build_model
from aslfr_lib.training import TrainConfig, compile_model
from aslfr_lib.vocab import EOS, PAD, encode

FRAMES, FEATURES = 12, 164


def tiny(**overrides) -> ModelConfig:
    values = dict(TINY_ARCHITECTURE, frames=FRAMES, features=FEATURES, ctc_weight=0.5)
    return ModelConfig(**{**values, **overrides})


def ctc_output(logits: np.ndarray, lengths) -> np.ndarray:
    """``layers.CTCOutput``'s layout: logits with the frame mask appended."""
    mask = np.arange(logits.shape[1])[None, :] < np.asarray(lengths)[:, None]
    return np.concatenate([logits, mask[..., None].astype(np.float32)], axis=-1)


def test_ctc_collapse_merges_repeats_and_drops_blanks():
    a, b = encode("a")[0], encode("b")[0]
    best = np.array([[a, a, PAD, a, b, b, PAD, EOS], [b, PAD, PAD, PAD, a, a, a, a]])
    ids = ctc_collapse(best, lengths=[8, 3])
    np.testing.assert_array_equal(ids[0, :4], [a, a, b, EOS])  # the blank splits "a a"
    np.testing.assert_array_equal(ids[1, :2], [b, EOS])  # frames past the length are ignored
    assert (ids[:, 4:] == PAD).all()


def test_ctc_loss_ignores_masked_frames_and_masks_unalignable_phrases():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 10, 62)).astype(np.float32)
    targets = np.stack([encode("ab"), encode("aa"), encode("abcdefghijk")])  # last: 11 > 10
    lengths = [5, 3, 10]
    losses, characters, usable = (
        ops.convert_to_numpy(t) for t in ctc_loss_per_sequence(targets, ctc_output(logits, lengths))
    )
    np.testing.assert_array_equal(usable, [1, 1, 0])  # "aa" needs 3 frames: fits exactly
    np.testing.assert_array_equal(characters, [2, 2, 0])
    assert np.isfinite(losses).all() and losses[2] == 0 and (losses[:2] > 0).all()
    # Frames after the length do not change the loss.
    changed = logits.copy()
    changed[0, 5:] = 100.0
    again = ops.convert_to_numpy(ctc_loss_per_sequence(targets, ctc_output(changed, lengths))[0])
    np.testing.assert_allclose(again[0], losses[0], rtol=1e-5)
    # Per character over the usable sequences, as a mean over the batch.
    total = ops.convert_to_numpy(CTCLoss()(targets, ctc_output(logits, lengths)))
    np.testing.assert_allclose(total, losses.sum() / characters.sum(), rtol=1e-5)


def test_unalignable_phrase_gives_finite_gradients():
    import tensorflow as tf

    logits = tf.Variable(np.random.default_rng(1).normal(size=(2, 4, 62)).astype(np.float32))
    targets = np.stack([encode("ab"), encode("abcdefgh")])
    with tf.GradientTape() as tape:
        output = tf.concat([logits, tf.ones((2, 4, 1))], axis=-1)
        loss = CTCLoss()(targets, output)
    gradient = tape.gradient(loss, logits).numpy()
    assert np.isfinite(loss.numpy()) and np.isfinite(gradient).all()
    assert np.abs(gradient[1]).max() == 0  # the unalignable row teaches nothing


@pytest.mark.parametrize("ctc_weight", [0.5, 1.0])
def test_joint_and_ctc_only_models_train_save_and_decode(tmp_path, ctc_weight):
    config = tiny(ctc_weight=ctc_weight, encoder_type="conformer", conv_kernel_size=3)
    model = build_model(config, means=np.zeros(FEATURES, np.float32), stds=np.ones(FEATURES))
    compile_model(model, TrainConfig(epochs=2, optimizer="adamw", ctc_weight=ctc_weight), 1)
    rng = np.random.default_rng(0)
    frames = rng.normal(size=(4, FRAMES, FEATURES)).astype(np.float32)
    frames[:, 9:] = 0
    phrase = np.stack([encode("ab"), encode("c"), encode("dd"), encode("e f")])
    targets = {"ctc": phrase} if ctc_weight == 1 else {"ctc": phrase, "logits": phrase}
    logs = model.train_on_batch({"frames": frames, "phrase": phrase}, targets, return_dict=True)
    assert np.isfinite(logs["loss"]) and np.isfinite(logs.get("ctc_loss", logs["loss"]))
    save_checkpoint(model, tmp_path / "m.keras", include_optimizer=False)
    loaded = load_checkpoint(tmp_path / "m.keras")
    np.testing.assert_array_equal(
        ctc_greedy_decode(loaded, frames), ctc_greedy_decode(model, frames)
    )
    assert (decode(model, frames) == ctc_greedy_decode(model, frames)).all()  # auto = CTC
    if ctc_weight < 1:
        np.testing.assert_array_equal(
            decode(model, frames, "attention"), greedy_decode(model, frames)
        )
    else:
        with pytest.raises(ValueError, match="no attention head"):
            decode(model, frames, "attention")


def test_conformer_encoder_ignores_padded_frames():
    """Padding a sequence with empty frames leaves its encoding unchanged (the export's rule)."""
    from aslfr_lib.model import encoder_of

    config = tiny(encoder_type="conformer", conv_kernel_size=5, ctc_weight=0.0)
    encoder = encoder_of(build_model(config))
    frames = np.random.default_rng(2).normal(size=(1, FRAMES, FEATURES)).astype(np.float32)
    frames[:, 7:] = 0
    longer = np.concatenate([frames, np.zeros_like(frames)], axis=1)
    bigger = encoder_of(
        build_model(
            tiny(encoder_type="conformer", conv_kernel_size=5, ctc_weight=0.0, frames=2 * FRAMES)
        )
    )
    bigger.set_weights(
        [w if w.shape != (FRAMES, 16) else np.concatenate([w, w]) for w in encoder.get_weights()]
    )
    a = ops.convert_to_numpy(encoder(frames))[0, :7]
    b = ops.convert_to_numpy(bigger(longer))[0, :7]
    np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("encoder_type", "decoder"),
    [("conformer", "ctc"), ("conformer", "attention"), ("transformer", "ctc")],
)
def test_tflite_export_decodes_like_keras(tmp_path, encoder_type, decoder):
    from aslfr_lib.export.inference import InferenceModule
    from aslfr_lib.export.tflite import convert
    from aslfr_lib.preprocess import preprocess_sequence
    from aslfr_lib.runner import HarnessRunner

    config = tiny(
        encoder_type=encoder_type,
        conv_kernel_size=3,
        frames=32,
        hand_shape_features=True,
        hand_bone_features=encoder_type == "conformer",
        hand_motion_features=encoder_type == "transformer",
    )
    rng = np.random.default_rng(3)
    model = build_model(
        config, means=np.full(FEATURES, 0.5, np.float32), stds=np.full(FEATURES, 0.2)
    )
    for weight in model.weights:  # larger random weights: varied, confident argmaxes
        weight.assign(weight.numpy() * 3)
    model_bytes = convert(InferenceModule(model, decoder=decoder))
    (tmp_path / "model.tflite").write_bytes(model_bytes)
    from aslfr_lib.export.artifacts import write_submission

    paths = write_submission(tmp_path / "sub", model_bytes)
    runner = HarnessRunner(paths.zip, num_threads=1)
    for length in (1, 5, 20, 32, 50):
        raw = rng.uniform(0.2, 0.8, size=(length, FEATURES)).astype(np.float32)
        raw[::3, :42] = np.nan  # some frames without the left hand
        keras_ids = decode(model, preprocess_sequence(raw, frames=32)[None], decoder)
        from aslfr_lib.decoding import ids_to_phrases

        assert runner.predict_phrase(raw) == ids_to_phrases(keras_ids)[0], length


def test_resumed_joint_model_keeps_its_losses_and_optimizer(tmp_path):
    """``--resume`` loads last.keras compiled: both losses, their weights and the optimizer."""
    config = tiny(ctc_weight=0.3)
    model = build_model(config, means=np.zeros(FEATURES, np.float32), stds=np.ones(FEATURES))
    compile_model(model, TrainConfig(epochs=2, optimizer="radam_lookahead", ctc_weight=0.3), 1)
    frames = np.random.default_rng(4).normal(size=(2, FRAMES, FEATURES)).astype(np.float32)
    phrase = np.stack([encode("ab"), encode("c")])
    batch = ({"frames": frames, "phrase": phrase}, {"ctc": phrase, "logits": phrase})
    model.train_on_batch(*batch)
    save_checkpoint(model, tmp_path / "last.keras")
    resumed = load_checkpoint(tmp_path / "last.keras", compile=True)
    assert int(resumed.optimizer.iterations.numpy()) == 1
    expected = model.test_on_batch(*batch, return_dict=True)
    got = resumed.test_on_batch(*batch, return_dict=True)
    for name in ("loss", "ctc_loss", "logits_loss"):
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-5)
    np.testing.assert_allclose(
        expected["loss"], 0.3 * expected["ctc_loss"] + 0.7 * expected["logits_loss"], rtol=1e-5
    )


def test_mixed_precision_keeps_both_heads_in_float32():
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = build_model(tiny(encoder_type="conformer", conv_kernel_size=3))
    finally:
        keras.config.set_dtype_policy(previous)
    frames = np.random.default_rng(5).normal(size=(2, FRAMES, FEATURES)).astype(np.float32)
    outputs = model({"frames": frames, "phrase": np.stack([encode("a"), encode("b")])})
    assert outputs["ctc"].dtype == "float32" and outputs["logits"].dtype == "float32"
    assert model.get_layer("ctc_classifier").compute_dtype == "float32"


def test_unalignable_training_sequences_are_counted_in_the_log(capsys):
    from types import SimpleNamespace

    from aslfr_lib.training import report_unalignable

    y = np.stack([encode("ab"), encode("abcdef"), encode("aab")])  # "aab" needs 4 frames
    data = SimpleNamespace(y_train=y, train_lengths=np.array([5, 5, 3]))
    assert report_unalignable(data) == 2
    assert "2 of 3 training sequences have more characters" in capsys.readouterr().out
