"""The reference's V6 transformer as ``encoder`` and ``decoder`` functional sub-models.

    frames (B, 128, 164) --encoder--> encoded (B, 128, decoder_dim)
    (encoded, frame_mask (B, 128), tokens (B, 32)) --decoder--> logits (B, 32, 62), float32

The full model takes ``{"frames", "phrase"}`` (phrase = target ids) and feeds the decoder
``SOS, phrase[:, :31]`` (teacher forcing). Greedy decoding, cached decoding and the TFLite export
reuse the two sub-models, found by name with ``encoder_of``/``decoder_of``.

Opt-in parts (defaults reproduce V6): ``ctc_weight`` > 0 adds a CTC head on the encoder
(``ctc_classifier``; 1 drops the decoder), ``encoder_type="conformer"`` a depthwise conv module
after each encoder block (``conformer.ConvModule``), ``hand_shape_features`` 84 hand-relative
features, ``hand_bone_features`` 140 bone directions and joint turns and
``hand_motion_features`` 6 hand movements beside the normalised landmarks,
``decoder_token_mask`` decoder-input masking.

Importing this module does not import Keras (the builders do), so the command line can read
``ModelConfig`` before it chooses the Keras backend.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from aslfr_lib.config import param
from aslfr_lib.vocab import NUM_CLASSES, PAD, SOS, TARGET_LENGTH

ENCODER_NAME = "encoder"
DECODER_NAME = "decoder"
CTC_CLASSIFIER_NAME = "ctc_classifier"
LOGITS_OUTPUT = "logits"  # output names of a model with a CTC head (dict outputs)
CTC_OUTPUT = "ctc"
CTC_BLANK = PAD  # CTC's blank class: PAD is never a character, so the 62 classes serve both heads
ENCODER_TYPES = ("transformer", "conformer")
# Layers of the encoder that add features computed from the raw landmarks, in concatenation order;
# each is also the name of the ArchitectureConfig field that switches it on.
EXTRA_FEATURE_LAYERS = ("hand_shape_features", "hand_bone_features", "hand_motion_features")


@dataclasses.dataclass(frozen=True)
class ArchitectureConfig:
    """Width, depth and regularisation of the transformer (defaults: the reference's V6)."""

    encoder_dim: int = param(384, "encoder width (landmark embedding and encoder blocks)")
    encoder_blocks: int = param(3, "encoder transformer blocks (self-attention + MLP)")
    decoder_dim: int = param(256, "decoder width; the encoder output is projected to it")
    decoder_blocks: int = param(2, "decoder blocks (cross-attention + MLP)")
    num_heads: int = param(4, "attention heads in every attention layer")
    head_dim_divisor: int = param(
        2, "per-head q/k/v width = width / num_heads / this (the reference halves it: 48, 32)"
    )
    mlp_ratio: int = param(2, "MLP hidden width = block width * mlp_ratio")
    embedding_dropout: float = param(0.0, "dropout after the frame embedding")
    mlp_dropout: float = param(0.3, "dropout inside each MLP")
    attention_dropout: float = param(0.2, "dropout on each attention layer's output")
    classifier_dropout: float = param(0.1, "dropout before the classifier")
    layer_norm_epsilon: float = param(1e-6, "layer normalisation epsilon")
    reference_decoder_positions: bool = param(
        False,
        "run the decoder over all `frames` positions and keep the first 32, as the reference "
        "did (same logits, ~4x the decoder work and a `frames`-row position table)",
    )
    hand_shape_features: bool = param(
        False, "append each hand's points relative to its centre and size (84 features)"
    )
    hand_bone_features: bool = param(
        False, "append each hand's bone directions and finger joint turns (140 features)"
    )
    hand_motion_features: bool = param(
        False, "append each hand's movement since the previous frame, in hand sizes (6 features)"
    )
    encoder_type: str = param(
        "transformer", "transformer (V6) or conformer (+ depthwise conv module per block)"
    )
    conv_kernel_size: int = param(15, "conformer: depthwise convolution width in frames (odd)")
    conv_expansion: int = param(1, "conformer: conv module width = encoder width * this")
    ctc_weight: float = param(
        0.0, "loss = w * CTC (encoder head) + (1 - w) * cross-entropy; 0: V6, 1: CTC only"
    )
    decoder_token_mask: float = param(
        0.0, "training: share of decoder input tokens replaced by PAD (0: off)"
    )
    reference_cross_attention_mask: bool = param(
        False,
        "cross-attention with the reference's causal mask (decoder position i sees frames "
        "0..i, empty or not) instead of hiding empty frames",
    )

    def __post_init__(self) -> None:
        if self.encoder_type not in ENCODER_TYPES:
            raise ValueError(
                f"encoder_type must be one of {ENCODER_TYPES}, got {self.encoder_type!r}"
            )
        if not 0.0 <= self.ctc_weight <= 1.0:
            raise ValueError(f"ctc_weight must be in [0, 1], got {self.ctc_weight}")
        if self.conv_kernel_size < 1 or self.conv_kernel_size % 2 == 0:
            raise ValueError(f"conv_kernel_size must be odd, got {self.conv_kernel_size}")
        if not 0.0 <= self.decoder_token_mask < 1.0:
            raise ValueError(f"decoder_token_mask must be in [0, 1), got {self.decoder_token_mask}")
        for name in ("encoder_dim", "decoder_dim"):
            width = getattr(self, name)
            if width % (self.num_heads * self.head_dim_divisor):
                raise ValueError(
                    f"{name}={width} must be divisible by num_heads * head_dim_divisor = "
                    f"{self.num_heads * self.head_dim_divisor}"
                )

    @property
    def has_decoder(self) -> bool:
        """The attention decoder exists unless the model is trained by CTC alone."""
        return self.ctc_weight < 1.0

    @property
    def has_ctc_head(self) -> bool:
        return self.ctc_weight > 0.0

    @property
    def encoder_head_dim(self) -> int:
        return self.encoder_dim // self.num_heads // self.head_dim_divisor

    @property
    def decoder_head_dim(self) -> int:
        return self.decoder_dim // self.num_heads // self.head_dim_divisor


@dataclasses.dataclass(frozen=True)
class ModelConfig(ArchitectureConfig):
    """Architecture plus the input shape, which the preprocessed data decides."""

    frames: int = param(128, "frames per sequence after preprocessing (encoder positions)")
    features: int = param(164, "landmark features per frame")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.reference_decoder_positions and self.frames < TARGET_LENGTH:
            raise ValueError(
                f"reference_decoder_positions needs frames >= {TARGET_LENGTH}, got {self.frames}"
            )

    @property
    def decoder_positions(self) -> int:
        """Positions the decoder computes: 32, or all frames like the reference."""
        return self.frames if self.reference_decoder_positions else TARGET_LENGTH

    @classmethod
    def from_architecture(
        cls, architecture: ArchitectureConfig, frames: int, features: int
    ) -> ModelConfig:
        """A ModelConfig with ``architecture``'s fields (any config that has them)."""
        names = {f.name for f in dataclasses.fields(ArchitectureConfig)}
        values = {name: getattr(architecture, name) for name in names}
        return cls(**values, frames=frames, features=features)


def build_encoder(config: ModelConfig) -> Any:
    """``encoder``: frames (B, frames, features) -> encoded (B, frames, decoder_dim)."""
    import keras

    from aslfr_lib import layers
    from aslfr_lib.conformer import ConvModule

    frames = keras.Input((config.frames, config.features), name="frames")
    frame_mask = layers.FrameMask(name="frame_mask")(frames)  # (B, S)
    x = layers.NonZeroNormalization(name="normalization")(frames)
    feature_layers = {  # (B, S, 84), (B, S, 140), (B, S, 6)
        "hand_shape_features": layers.HandShapeFeatures,
        "hand_bone_features": layers.HandBoneFeatures,
        "hand_motion_features": layers.HandMotionFeatures,
    }
    # In EXTRA_FEATURE_LAYERS' order, which the export concatenates in; each is switched on by
    # the config field of its name.
    extra = [
        feature_layers[name](name=name)(frames)
        for name in EXTRA_FEATURE_LAYERS
        if getattr(config, name)
    ]
    if extra:
        x = keras.layers.Concatenate(name="features")([x, *extra])
    x = layers.LandmarkEmbedding(config.encoder_dim, name="landmark_embedding")(x, frame_mask)
    x = layers.PositionEmbedding(config.frames, name="position_embedding")(x)  # (B, S, De)
    x = keras.layers.Dropout(config.embedding_dropout, name="embedding_dropout")(x)
    attention_mask = layers.KeyPaddingMask(name="attention_mask")(frame_mask)  # (B, 1, S)
    for index in range(config.encoder_blocks):
        x = layers.TransformerBlock(
            num_heads=config.num_heads,
            head_dim=config.encoder_head_dim,
            intermediate_dim=config.encoder_dim * config.mlp_ratio,
            attention_dropout=config.attention_dropout,
            mlp_dropout=config.mlp_dropout,
            layer_norm_epsilon=config.layer_norm_epsilon,
            name=f"encoder_block_{index}",
        )(x, attention_mask=attention_mask)
        if config.encoder_type == "conformer":
            x = ConvModule(
                kernel_size=config.conv_kernel_size,
                expansion=config.conv_expansion,
                dropout=config.mlp_dropout,
                layer_norm_epsilon=config.layer_norm_epsilon,
                name=f"encoder_conv_{index}",
            )(x, frame_mask)
    if config.encoder_dim != config.decoder_dim:
        x = keras.layers.Dense(
            config.decoder_dim,
            use_bias=False,
            kernel_initializer="glorot_uniform",
            name="projection",
        )(x)  # (B, S, Dd)
    return keras.Model(frames, x, name=ENCODER_NAME)


def build_decoder(config: ModelConfig) -> Any:
    """``decoder``: {encoded, frame_mask, tokens (B, 32)} -> logits (B, 32, 62) float32.

    ``tokens`` are decoder inputs (SOS first); position ``i``'s logits predict token ``i + 1``.
    """
    import keras

    from aslfr_lib import layers

    encoded = keras.Input((config.frames, config.decoder_dim), name="encoded")
    frame_mask = keras.Input((config.frames,), dtype="bool", name="frame_mask")
    tokens = keras.Input((TARGET_LENGTH,), dtype="int32", name="tokens")
    x = tokens
    if config.decoder_token_mask > 0:
        x = layers.TokenMasking(config.decoder_token_mask, PAD, name="token_masking")(x)
    if config.reference_decoder_positions:
        x = layers.PadTokens(config.decoder_positions, PAD, name="pad_tokens")(x)
    x = layers.TokenAndPositionEmbedding(
        NUM_CLASSES, config.decoder_positions, config.decoder_dim, name="token_embedding"
    )(x)  # (B, T, Dd)
    x = layers.CausalSelfAttention(
        num_heads=config.num_heads,
        head_dim=config.decoder_head_dim,
        dropout=config.attention_dropout,
        layer_norm_epsilon=config.layer_norm_epsilon,
        name="self_attention",
    )(x)
    cross_mask = layers.CrossAttentionMask(
        config.reference_cross_attention_mask, name="cross_attention_mask"
    )(frame_mask, x)
    for index in range(config.decoder_blocks):
        x = layers.TransformerBlock(
            num_heads=config.num_heads,
            head_dim=config.decoder_head_dim,
            intermediate_dim=config.decoder_dim * config.mlp_ratio,
            attention_dropout=config.attention_dropout,
            mlp_dropout=config.mlp_dropout,
            layer_norm_epsilon=config.layer_norm_epsilon,
            name=f"decoder_block_{index}",
        )(x, context=encoded, attention_mask=cross_mask)
    if config.reference_decoder_positions:
        x = layers.KeepFirstPositions(TARGET_LENGTH, name="keep_target_positions")(x)
    x = keras.layers.Dropout(config.classifier_dropout, name="classifier_dropout")(x)
    logits = keras.layers.Dense(
        NUM_CLASSES,
        use_bias=False,
        kernel_initializer="he_uniform",
        dtype="float32",  # logits and loss in float32 under mixed precision
        name="classifier",
    )(x)  # (B, 32, 62)
    inputs = {"encoded": encoded, "frame_mask": frame_mask, "tokens": tokens}
    return keras.Model(inputs, logits, name=DECODER_NAME)


def build_model(config: ModelConfig | None = None, means=None, stds=None) -> Any:
    """The full model: {frames (B, frames, features), phrase (B, 32)} -> logits (B, 32, 62).

    With a CTC head (``ctc_weight`` > 0) the outputs are a dict: ``logits`` (the decoder's,
    absent when ``ctc_weight`` is 1) and ``ctc`` (B, frames, 63): per-frame CTC logits over
    the 62 classes (blank = PAD) with the frame mask appended (``layers.CTCOutput``).

    ``means``/``stds`` (length ``features``) are stored in the model for the non-zero
    normalisation; without them it is the identity until ``set_normalization`` is called.
    """
    import keras

    from aslfr_lib import layers

    config = ModelConfig() if config is None else config
    frames = keras.Input((config.frames, config.features), name="frames")
    phrase = keras.Input((TARGET_LENGTH,), dtype="int32", name="phrase")
    encoded = build_encoder(config)(frames)
    frame_mask = layers.FrameMask(name="frame_mask")(frames)
    outputs = {}
    if config.has_decoder:
        tokens = layers.DecoderInputTokens(SOS, name="decoder_input_tokens")(phrase)
        outputs[LOGITS_OUTPUT] = build_decoder(config)(
            {"encoded": encoded, "frame_mask": frame_mask, "tokens": tokens}
        )
    if config.has_ctc_head:
        x = keras.layers.Dropout(config.classifier_dropout, name="ctc_dropout")(encoded)
        ctc_logits = keras.layers.Dense(NUM_CLASSES, dtype="float32", name=CTC_CLASSIFIER_NAME)(
            x
        )  # (B, S, 62): per-frame characters, blank = PAD
        outputs[CTC_OUTPUT] = layers.CTCOutput(name="ctc_output")(ctc_logits, frame_mask)
    if not config.has_ctc_head:
        outputs = outputs[LOGITS_OUTPUT]  # V6: one output, as the reference
    model = keras.Model({"frames": frames, "phrase": phrase}, outputs, name="aslfr_transformer")
    if means is not None or stds is not None:
        set_normalization(model, means, stds)
    return model


def has_decoder(model: Any) -> bool:
    """True when ``model`` (a full model) has the attention decoder."""
    return any(layer.name == DECODER_NAME for layer in model.layers)


def has_ctc_head(model: Any) -> bool:
    """True when ``model`` (a full model) has a CTC classifier on its encoder."""
    return any(layer.name == CTC_CLASSIFIER_NAME for layer in model.layers)


def ctc_classifier_of(model: Any) -> Any:
    return model.get_layer(CTC_CLASSIFIER_NAME)


def attention_logits(outputs: Any) -> Any:
    """The decoder logits of a full model's outputs (a tensor, or the dict of a CTC model)."""
    return outputs[LOGITS_OUTPUT] if isinstance(outputs, dict) else outputs


def encoder_of(model: Any) -> Any:
    """The ``encoder`` sub-model of a full model (or the encoder itself)."""
    return model if model.name == ENCODER_NAME else model.get_layer(ENCODER_NAME)


def model_frames(model: Any) -> int:
    """Frames per sequence the encoder was built for (its input's time axis)."""
    return int(encoder_of(model).inputs[0].shape[1])


def decoder_of(model: Any) -> Any:
    """The ``decoder`` sub-model of a full model (or the decoder itself)."""
    return model if model.name == DECODER_NAME else model.get_layer(DECODER_NAME)


def set_normalization(model: Any, means, stds) -> None:
    """Store the preprocessing means/stds (length ``features``) in the model."""
    if means is None or stds is None:
        raise ValueError("set_normalization needs both means and stds")
    encoder_of(model).get_layer("normalization").set_statistics(means, stds)


def normalization_of(model: Any) -> tuple[Any, Any]:
    """The stored (means, stds) as numpy arrays."""
    layer = encoder_of(model).get_layer("normalization")
    from keras import ops

    return ops.convert_to_numpy(layer.mean), ops.convert_to_numpy(layer.std)


def count_parameters(model: Any) -> dict[str, int]:
    """Trainable and non-trainable scalar counts (the latter: normalisation statistics)."""
    import math

    trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
    frozen = sum(math.prod(w.shape) for w in model.non_trainable_weights)
    return {"trainable": trainable, "non_trainable": frozen, "total": trainable + frozen}
