"""``ExportConfig`` and the ``aslfr export`` command line, without importing TensorFlow.

``aslfr export --help`` and the pipeline's parameter cells read this module only; TensorFlow
is imported (quietly, ``aslfr_lib.backend``) when an export actually runs.
"""

from __future__ import annotations

import dataclasses
import json
import sys

from aslfr_lib import ensemble  # TF-free
from aslfr_lib.config import param, stage_config, stage_parser
from aslfr_lib.language_model import LM_BONUS_HELP, LM_WEIGHT_HELP, check_fusion_settings
from aslfr_lib.submission import DEFAULT_TEST_SEQUENCES  # TF-free

CHECKPOINTS = ("best", "last")
DECODERS = ("auto", "attention", "ctc", "ctc_beam", "joint")  # decoding.DECODERS (TF-free)
QUANTIZATIONS = ("float32", "fp16", "dynamic_range")
MAX_MODEL_MB = 40.0  # Kaggle's limit on the submitted model


class ConversionError(RuntimeError):
    """The graph does not convert to a TFLite model of builtin ops."""


class ExportError(ValueError):
    """A model or setting that cannot be exported (names the file and what is wrong)."""


def quantization_of(fp16: bool = False, dynamic_range: bool = False) -> str:
    """The ``QUANTIZATIONS`` entry of the two export flags; ``fp16`` wins over the default
    ``dynamic_range``, so ``--fp16`` alone asks for float16 weights."""
    return "fp16" if fp16 else "dynamic_range" if dynamic_range else "float32"


@dataclasses.dataclass(frozen=True)
class ExportConfig:
    model: str | tuple[str, ...] = param("outputs/model", ensemble.MODEL_HELP)
    out: str = param("outputs/submission", "folder for model.tflite, inference_args.json, zip")
    checkpoint: str = param("best", "checkpoint of the model folder: best or last")
    decoder: str = param(
        "auto",
        "auto (greedy CTC if the model has a CTC head), attention, ctc, ctc_beam (CTC prefix "
        "beam search) or joint (attention + CTC prefix scores)",
    )
    beam: int | None = param(
        None, "beam width of ctc_beam and joint (default 5); attention: > 1 for a beam search"
    )
    ctc_weight_decoding: float = param(
        0.3, "joint: weight of the CTC prefix score (the attention decoder's: 1 - it)"
    )
    lm_weight: float = param(0.0, LM_WEIGHT_HELP)
    lm_bonus: float = param(0.0, LM_BONUS_HELP)
    fp16: bool = param(False, "float16 weights: half the file (wins over dynamic_range)")
    dynamic_range: bool = param(
        True,
        "int8 weights (default: the same score, docs/recipes-default-style.md); --no-: float32",
    )
    skip_empty_frames: bool = param(
        True, "encoder over frames with landmarks only (exact, and faster)"
    )
    mirror: bool | None = param(
        None, "flip left-handed sequences (default: as --processed was made, else True)"
    )
    max_size_mb: float = param(MAX_MODEL_MB, "largest model.tflite accepted (Kaggle: 40)")
    processed: str | None = param(
        None, "processed folder: its mirror setting and validation split for the checks"
    )
    data: str | None = param(None, "competition-layout dataset: run the harness check on it")
    limit: int | None = param(None, "check only the first N sequences (default: all selected)")
    test_sequences: int = param(
        DEFAULT_TEST_SEQUENCES, "hidden test set size for the run-time estimate"
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "model", ensemble.single_or_tuple(self.model))
        if self.beam is not None and not 1 <= self.beam <= 16:
            raise ValueError(f"beam must be in 1..16, got {self.beam}")
        if not 0.0 <= self.ctc_weight_decoding <= 1.0:
            raise ValueError(
                f"ctc_weight_decoding must be in [0, 1], got {self.ctc_weight_decoding}"
            )
        if self.decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {DECODERS}, got {self.decoder!r}")
        if self.checkpoint not in CHECKPOINTS:
            raise ValueError(f"checkpoint must be one of {CHECKPOINTS}, got {self.checkpoint!r}")
        quantization_of(self.fp16, self.dynamic_range)
        check_fusion_settings(self.lm_weight, self.lm_bonus)
        if self.max_size_mb <= 0:
            raise ValueError(f"max_size_mb must be > 0, got {self.max_size_mb}")

    @property
    def quantization(self) -> str:
        return quantization_of(self.fp16, self.dynamic_range)

    @property
    def models(self) -> tuple[str, ...]:
        """The model folders or files: one, or an ensemble's members."""
        return ensemble.model_list(self.model)


def main(argv: list[str]) -> int:
    parser = stage_parser(
        ExportConfig,
        "aslfr export",
        "write model.tflite, inference_args.json and submission.zip for Kaggle's harness",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser = ensemble.repeatable_model_flag(parser)
    args = parser.parse_args(argv)
    try:
        config = stage_config(ExportConfig, args, "export")
        from aslfr_lib.backend import import_keras

        import_keras("tensorflow")
        from aslfr_lib.export import stage

        metrics = stage.run(config, progress=not args.quiet)
    except (ValueError, OSError, ConversionError) as error:  # ExportError, CheckpointError
        print(f"aslfr export: error: {error}", file=sys.stderr)
        return 1
    print(json.dumps(metrics, indent=1, default=str))
    return 0
