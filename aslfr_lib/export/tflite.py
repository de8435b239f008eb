"""``tf.Module`` -> TFLite flatbuffer with builtin ops only, and the size limit Kaggle enforces.

Kaggle's runtime has no Flex delegate, so conversion allows ``TFLITE_BUILTINS`` only: a graph
that needs a TensorFlow op fails here, with the op named, instead of on Kaggle.

Weights: float32 by default; ``fp16`` stores float16 weights (half the file; LiteRT widens them
to float32 when it loads the model, so the results and the speed barely change);
``dynamic_range`` stores int8 weights and quantizes activations on the fly inside the matrix
products (a quarter of the file and a faster encoder, but the logits move, so strings can change:
measure the score before submitting it).
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from aslfr_lib.export.command import (  # noqa: F401 - re-exported: the TF-free definitions
    MAX_MODEL_MB,
    QUANTIZATIONS,
    ConversionError,
    quantization_of,
)

BYTES_PER_MB = 1_000_000  # the stricter reading of "40 MB" (not MiB)


class ModelTooLargeError(ValueError):
    """The converted model exceeds the size limit."""


def convert(module: Any, quantization: str = "float32") -> bytes:
    """Flatbuffer of ``module.serve`` (a tf.function with an input signature).

    The signature is named ``serving_default`` (the converter's name for a single concrete
    function), which is the one Kaggle's harness calls.
    """
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {QUANTIZATIONS}, got {quantization!r}")
    function = module.serve.get_concrete_function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], module)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantization in ("fp16", "dynamic_range"):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "fp16":
        converter.target_spec.supported_types = [tf.float16]
    try:
        return converter.convert()
    except Exception as error:  # the converter raises several unrelated types
        raise ConversionError(
            f"TFLite conversion with builtin ops only failed ({type(error).__name__}): {error}"
        ) from error


def check_size(size_bytes: int, max_size_mb: float = MAX_MODEL_MB, what: str = "model.tflite"):
    """Raise ``ModelTooLargeError`` when ``size_bytes`` exceeds ``max_size_mb`` megabytes."""
    limit = int(max_size_mb * BYTES_PER_MB)
    if size_bytes > limit:
        raise ModelTooLargeError(
            f"{what} is {size_bytes / BYTES_PER_MB:.1f} MB, over the {max_size_mb:g} MB limit "
            f"({size_bytes:,} > {limit:,} bytes); export with --fp16 (half the size) or "
            "--dynamic-range (a quarter), or train a smaller model"
        )
