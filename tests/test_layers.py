"""Layers of the transformer: masks, normalisation, embeddings, attention, blocks (TF backend)."""

import keras
import numpy as np
import pytest
from keras import ops

from aslfr_lib import layers


def test_has_landmarks_and_key_padding_mask():
    frames = np.zeros((2, 4, 3), np.float32)
    frames[0, 1, 2] = 0.5
    frames[0, 3, 0] = -1.0
    mask = ops.convert_to_numpy(layers.has_landmarks(frames))
    np.testing.assert_array_equal(mask, [[False, True, False, True], [False] * 4])
    attention = ops.convert_to_numpy(layers.key_padding_mask(mask))
    assert attention.shape == (2, 1, 4)
    np.testing.assert_array_equal(attention[0, 0], mask[0])
    # A sequence with no landmarks attends to all its frames instead of to nothing.
    np.testing.assert_array_equal(attention[1, 0], [True] * 4)


def test_causal_mask_with_offset():
    mask = ops.convert_to_numpy(layers.causal_mask(3, 4))
    np.testing.assert_array_equal(mask[0], np.tril(np.ones((3, 4), bool)))
    step = ops.convert_to_numpy(layers.causal_mask(1, 5, offset=2))
    np.testing.assert_array_equal(step[0, 0], [True, True, True, False, False])


def test_non_zero_normalization_keeps_zeros_and_validates():
    layer = layers.NonZeroNormalization()
    x = np.array([[[0.0, 2.0, 4.0], [1.0, 0.0, 0.0]]], np.float32)
    layer.build(x.shape)
    layer.set_statistics([1.0, 1.0, 2.0], [2.0, 0.5, 4.0])
    out = ops.convert_to_numpy(layer(x))
    np.testing.assert_allclose(out, [[[0.0, 2.0, 0.5], [0.0, 0.0, 0.0]]])
    with pytest.raises(ValueError, match="positive standard deviations"):
        layer.set_statistics([0, 0, 0], [1.0, 0.0, 1.0])
    with pytest.raises(ValueError, match="shape"):
        layer.set_statistics([0, 0], [1, 1])


def test_normalization_and_frame_mask_stay_float32_under_mixed_precision():
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        normalization, frame_mask = layers.NonZeroNormalization(), layers.FrameMask()
        x = np.full((1, 2, 3), 0.123456789, np.float32)
        out = normalization(x)
        assert normalization.compute_dtype == "float32"
        assert ops.convert_to_numpy(out).dtype == np.float32
        np.testing.assert_allclose(ops.convert_to_numpy(out), x, rtol=1e-7)
        assert ops.convert_to_numpy(frame_mask(np.full((1, 2, 3), 1e-30, np.float32))).all()
    finally:
        keras.config.set_dtype_policy("float32")


def test_landmark_embedding_uses_empty_embedding_for_empty_frames():
    layer = layers.LandmarkEmbedding(4)
    features = np.random.default_rng(0).normal(size=(1, 3, 5)).astype(np.float32)
    mask = np.array([[True, False, True]])
    layer.build(features.shape)
    layer.empty_embedding.assign([1.0, 2.0, 3.0, 4.0])
    out = ops.convert_to_numpy(layer(features, mask))
    np.testing.assert_allclose(out[0, 1], [1.0, 2.0, 3.0, 4.0])
    dense = ops.convert_to_numpy(layer.dense_2(layer.dense_1(features)))
    np.testing.assert_allclose(out[0, [0, 2]], dense[0, [0, 2]], rtol=1e-6)


def test_position_embedding_start_index_reads_the_right_row():
    layer = layers.PositionEmbedding(6)
    layer.build((None, 6, 2))
    table = np.arange(12, dtype=np.float32).reshape(6, 2)
    layer.embeddings.assign(table)
    zeros = np.zeros((1, 1, 2), np.float32)
    np.testing.assert_allclose(ops.convert_to_numpy(layer(zeros, start_index=4))[0, 0], table[4])
    full = ops.convert_to_numpy(layer(np.zeros((1, 3, 2), np.float32)))
    np.testing.assert_allclose(full[0], table[:3])
    with pytest.raises(ValueError, match="only 6 embeddings"):
        layer(np.zeros((1, 7, 2), np.float32))


def _reference_attention(layer, query, key_value, mask):
    """The reference's per-head loop in numpy (scaled dot product, masked softmax)."""
    w_q, w_k, w_v, w_o = (
        ops.convert_to_numpy(d.kernel)
        for d in (layer.query_dense, layer.key_dense, layer.value_dense, layer.output_dense)
    )
    heads = []
    for h in range(layer.num_heads):
        cols = slice(h * layer.head_dim, (h + 1) * layer.head_dim)
        q, k, v = query @ w_q[:, cols], key_value @ w_k[:, cols], key_value @ w_v[:, cols]
        scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(layer.head_dim)
        scores = np.where(mask, scores, -1e9)
        weights = np.exp(scores - scores.max(-1, keepdims=True))
        heads.append((weights / weights.sum(-1, keepdims=True)) @ v)
    return np.concatenate(heads, -1) @ w_o


def test_fused_multi_head_attention_matches_per_head_reference_math():
    rng = np.random.default_rng(1)
    layer = layers.MultiHeadAttention(num_heads=3, head_dim=4, output_dim=5, dropout=0.5)
    query = rng.normal(size=(2, 3, 6)).astype(np.float32)
    key_value = rng.normal(size=(2, 7, 8)).astype(np.float32)
    mask = rng.random((2, 3, 7)) > 0.4
    mask[:, :, 0] = True
    out = ops.convert_to_numpy(layer(query, key_value, attention_mask=mask))
    assert out.shape == (2, 3, 5)
    np.testing.assert_allclose(out, _reference_attention(layer, query, key_value, mask), atol=1e-5)
    # Masked keys do not matter; dropout acts only when training.
    changed = key_value.copy()
    changed[~mask[:, 0, :]] += 10.0
    mask_first_query = np.broadcast_to(mask[:, :1, :], mask.shape)
    a = ops.convert_to_numpy(layer(query, key_value, attention_mask=mask_first_query))
    b = ops.convert_to_numpy(layer(query, changed, attention_mask=mask_first_query))
    np.testing.assert_allclose(a, b, atol=1e-5)
    trained = ops.convert_to_numpy(layer(query, key_value, attention_mask=mask, training=True))
    assert not np.allclose(trained, out)


def test_causal_self_attention_step_matches_full_call():
    rng = np.random.default_rng(2)
    layer = layers.CausalSelfAttention(num_heads=2, head_dim=3)
    x = rng.normal(size=(2, 5, 6)).astype(np.float32)
    full = ops.convert_to_numpy(layer(x))
    keys = values = np.zeros((2, 5, 2, 3), np.float32)
    for position in range(5):
        out, keys, values = layer.step(x[:, position : position + 1], keys, values, position)
        np.testing.assert_allclose(ops.convert_to_numpy(out)[:, 0], full[:, position], atol=1e-5)
    # Position i never sees later inputs.
    later = x.copy()
    later[:, 3:] += 5.0
    np.testing.assert_allclose(ops.convert_to_numpy(layer(later))[:, :3], full[:, :3], atol=1e-5)


def _roundtrip(layer, *args, **kwargs):
    """from_config(get_config) rebuilds an equal layer; with copied weights, equal outputs."""
    expected = ops.convert_to_numpy(layer(*args, **kwargs))
    clone = layer.__class__.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    clone(*args, **kwargs)
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(ops.convert_to_numpy(clone(*args, **kwargs)), expected, atol=1e-6)


def test_layers_round_trip_their_config():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 5, 8)).astype(np.float32)
    context = rng.normal(size=(2, 7, 8)).astype(np.float32)
    frame_mask = rng.random((2, 7)) > 0.3
    tokens = rng.integers(0, 10, size=(2, 5))
    _roundtrip(layers.FrameMask(), x)
    _roundtrip(layers.NonZeroNormalization(), x)
    _roundtrip(layers.LandmarkEmbedding(6), x, frame_mask[:, :5])
    _roundtrip(layers.PositionEmbedding(9), x)
    _roundtrip(layers.TokenAndPositionEmbedding(10, 6, 4), tokens)
    _roundtrip(layers.MultiHeadAttention(2, 3, 4, dropout=0.1), x, context)
    _roundtrip(layers.FeedForward(16, dropout=0.3), x)
    _roundtrip(layers.TransformerBlock(2, 4, 16, 0.2, 0.3, 1e-6), x)
    _roundtrip(layers.TransformerBlock(2, 4, 16), x, context, layers.key_padding_mask(frame_mask))
    _roundtrip(layers.CausalSelfAttention(2, 4, dropout=0.2), x)
    _roundtrip(layers.KeyPaddingMask(), frame_mask)
    _roundtrip(layers.CrossAttentionMask(reference_causal=True), frame_mask, x)
    _roundtrip(layers.DecoderInputTokens(60), tokens)
    _roundtrip(layers.PadTokens(9, 59), tokens)
    _roundtrip(layers.KeepFirstPositions(3), x)


def test_teacher_forcing_and_token_padding():
    targets = np.array([[5, 6, 61, 59]])
    inputs = ops.convert_to_numpy(layers.DecoderInputTokens(60)(targets))
    np.testing.assert_array_equal(inputs, [[60, 5, 6, 61]])
    padded = ops.convert_to_numpy(layers.PadTokens(6, 59)(targets))
    np.testing.assert_array_equal(padded, [[5, 6, 61, 59, 59, 59]])


def test_transformer_block_is_post_layer_norm_and_uses_training_flag():
    rng = np.random.default_rng(4)
    block = layers.TransformerBlock(2, 4, 16, attention_dropout=0.5, mlp_dropout=0.5)
    x = rng.normal(size=(3, 5, 8)).astype(np.float32)
    out = ops.convert_to_numpy(block(x))
    # Post-LN: every output position is normalised (gamma 1, beta 0 at init).
    np.testing.assert_allclose(out.mean(-1), 0.0, atol=1e-5)
    np.testing.assert_allclose(out.std(-1), 1.0, atol=1e-3)
    np.testing.assert_array_equal(out, ops.convert_to_numpy(block(x)))
    assert not np.allclose(out, ops.convert_to_numpy(block(x, training=True)))


def test_hand_shape_features_ignore_where_the_hand_is_and_how_large():
    from aslfr_lib.layers import HandShapeFeatures

    rng = np.random.default_rng(0)
    frames = np.zeros((1, 3, 164), np.float32)
    frames[0, :, 42:84] = rng.uniform(0.3, 0.6, size=(3, 42))  # right hand in every frame
    frames[0, 1, 0:42] = rng.uniform(0.3, 0.6, size=42)  # left hand in frame 1 only
    moved = frames.copy()
    moved[0, :, 42:63] = frames[0, :, 42:63] * 1.7 + 0.2  # right hand x: larger and shifted
    moved[0, :, 63:84] = frames[0, :, 63:84] * 1.7 - 0.1  # y
    layer = HandShapeFeatures()
    a, b = (np.asarray(layer(f)) for f in (frames, moved))
    np.testing.assert_allclose(a, b, atol=1e-5)
    assert (a[0, [0, 2], :42] == 0).all()  # no left hand: zeros
    right = a[0, :, 42:]
    np.testing.assert_allclose(right[:, :21].mean(axis=1), 0, atol=1e-6)  # centred
    np.testing.assert_allclose(np.mean(right[:, :21] ** 2 + right[:, 21:] ** 2, axis=1), 1, 1e-5)


def test_hand_motion_features_measure_moves_in_hand_sizes():
    from aslfr_lib.layers import HandMotionFeatures

    rng = np.random.default_rng(2)
    shape = rng.uniform(-1, 1, size=(2, 21)).astype(np.float32)  # one hand shape, x row, y row
    frames = np.zeros((1, 5, 164), np.float32)
    centres = [(0.5, 0.5), (0.5, 0.5), (0.56, 0.47), (0.0, 0.0), (0.6, 0.5)]  # frame 3: no hand
    scales = [0.05, 0.05, 0.05, 0.05, 0.06]
    for t, ((cx, cy), scale) in enumerate(zip(centres, scales, strict=True)):
        if cx:
            frames[0, t, 42:63] = cx + scale * shape[0]
            frames[0, t, 63:84] = cy + scale * shape[1]
    out = np.asarray(HandMotionFeatures()(frames))[0]
    assert out.shape == (5, 6)
    assert (out[:, :3] == 0).all()  # no left hand
    right = out[:, 3:]
    np.testing.assert_array_equal(right[[0, 3, 4]], 0)  # first frame; hand missing now or before
    np.testing.assert_allclose(right[1], 0, atol=1e-6)  # held still
    x, y = shape[0] - shape[0].mean(), shape[1] - shape[1].mean()
    size = 0.05 * np.sqrt(np.mean(x * x + y * y))
    np.testing.assert_allclose(right[2], [0.06 / size, -0.03 / size, 0], rtol=1e-3, atol=1e-5)
    moved = frames.copy()  # the same motion elsewhere in the image reads the same
    moved[0, :, 42:84] = np.where(frames[0, :, 42:84] != 0, frames[0, :, 42:84] + 0.2, 0)
    np.testing.assert_allclose(np.asarray(HandMotionFeatures()(moved))[0], out, atol=1e-4)


def test_hand_bone_features_are_directions_and_joint_turns():
    from aslfr_lib.layers import HAND_BONES, HandBoneFeatures

    rng = np.random.default_rng(1)
    frames = np.zeros((1, 3, 164), np.float32)
    frames[0, :, 42:84] = rng.uniform(0.3, 0.6, size=(3, 42))  # right hand in every frame
    frames[0, 1, 0:42] = rng.uniform(0.3, 0.6, size=42)  # left hand in frame 1 only
    frames[0, 2, [42 + 8, 63 + 8]] = 0  # frame 2: the right index tip is missing
    angle = 0.7  # rotate, scale and shift the right hand
    x, y = frames[0, :, 42:63], frames[0, :, 63:84]
    moved = frames.copy()
    present = (x != 0) | (y != 0)
    moved[0, :, 42:63] = np.where(present, 1.3 * (np.cos(angle) * x - np.sin(angle) * y) + 0.1, 0)
    moved[0, :, 63:84] = np.where(present, 1.3 * (np.sin(angle) * x + np.cos(angle) * y) - 0.2, 0)
    layer = HandBoneFeatures()
    a, b = (np.asarray(layer(f))[0] for f in (frames, moved))
    assert a.shape == (3, 140)
    assert (a[[0, 2], :70] == 0).all()  # no left hand: zeros
    right, turned = a[:, 70:], b[:, 70:]
    ux, uy = right[:, :20], right[:, 20:40]
    index_tip = HAND_BONES.index((7, 8))
    norms = np.hypot(ux, uy)
    np.testing.assert_allclose(np.delete(norms[2], index_tip), 1, rtol=1e-5)  # unit directions
    assert norms[2, index_tip] == 0  # a bone with a missing end
    # Directions turn with the hand; the joints' turns (cosine, sine) do not.
    expected_ux = np.cos(angle) * ux - np.sin(angle) * uy
    np.testing.assert_allclose(turned[:, :20], expected_ux, atol=1e-5)
    np.testing.assert_allclose(turned[:, 40:], right[:, 40:], atol=1e-5)
    # A joint's cosine and sine: the turn from one bone to the next.
    bone, following = HAND_BONES.index((5, 6)), HAND_BONES.index((6, 7))
    turn = np.arctan2(uy[0, following], ux[0, following]) - np.arctan2(uy[0, bone], ux[0, bone])
    joint = 3 * 1 + 1  # index finger, its second joint (PIP)
    np.testing.assert_allclose(right[0, 40 + joint], np.cos(turn), atol=1e-5)
    np.testing.assert_allclose(right[0, 55 + joint], np.sin(turn), atol=1e-5)
