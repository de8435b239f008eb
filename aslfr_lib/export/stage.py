"""The export stage: trained ``.keras`` -> ``submission.zip``, and the checks notebook 03 shows.

``aslfr export --model DIR --out DIR [--fp16]`` loads ``DIR/best.keras`` (or ``last.keras``),
builds ``export.inference.InferenceModule``, converts it with builtin ops only, refuses a file
over the size limit and writes ``model.tflite``, ``inference_args.json`` and ``submission.zip``.
With ``--data`` it then runs the harness check (``aslfr_lib.submission.check_submission``) and
the Keras-vs-TFLite comparison on the processed validation split (or the first ``--limit``
sequences of train.csv) and writes ``stage_metrics.json`` for the pipeline.

Notebook 03 calls the same functions, one per cell: ``export_submission``, ``keras_vs_tflite``,
``harness_check`` (its ``latencies_ms`` for ``plots.plot_latency_histogram``),
``submission_files`` and ``write_stage_metrics``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras

from aslfr_lib import ensemble
from aslfr_lib import stage_metrics as stage_metrics_file
from aslfr_lib.checkpoints import CheckpointError, load_checkpoint
from aslfr_lib.config import to_dict
from aslfr_lib.decoding import DEFAULT_CTC_WEIGHT_DECODING
from aslfr_lib.export import tflite
from aslfr_lib.export.artifacts import SubmissionPaths, write_submission
from aslfr_lib.export.command import ExportConfig, ExportError
from aslfr_lib.export.inference import InferenceModule
from aslfr_lib.submission import (
    PROCESSED_META,
    SubmissionReport,
    check_submission,
    split_sequence_ids,
)


@dataclasses.dataclass
class ExportResult:
    paths: SubmissionPaths
    checkpoint: str  # the .keras file exported ("<in memory>" for a model object)
    quantization: str
    mirror: bool
    skip_empty_frames: bool
    frames: int
    model_bytes: int
    zip_bytes: int
    seconds: float  # build + conversion + writing
    model: Any = dataclasses.field(repr=False)  # the Keras model, for comparisons
    decoder: str = "attention"  # the head the TFLite graph decodes with
    fallback: Any = None  # aslfr_lib.fallback.Fallback baked into the graph, or None
    beam: int = 1  # hypotheses of the search decoders (1: greedy)
    ctc_weight_decoding: float = 0.0  # the CTC prefix score's weight in the search
    members: tuple[str, ...] = ()  # an ensemble's checkpoints ("<in memory>" each), in order
    language_model: Any = None  # aslfr_lib.language_model.LanguageModel fused by the search

    def summary(self) -> dict[str, Any]:
        return {
            "model_tflite": str(self.paths.model),
            "inference_args": str(self.paths.inference_args),
            "submission_zip": str(self.paths.zip),
            "checkpoint": self.checkpoint,
            "quantization": self.quantization,
            "decoder": self.decoder,
            "beam": self.beam,
            "ctc_weight_decoding": self.ctc_weight_decoding,
            "lm_weight": self.language_model.weight if self.language_model else 0.0,
            "lm_bonus": self.language_model.bonus if self.language_model else 0.0,
            "lm_order": self.language_model.order if self.language_model else None,
            "members": list(self.members) or [self.checkpoint],
            "mirror": self.mirror,
            "skip_empty_frames": self.skip_empty_frames,
            "frames": self.frames,
            "model_mb": round(self.model_bytes / 1e6, 3),
            "zip_mb": round(self.zip_bytes / 1e6, 3),
            "seconds": round(self.seconds, 1),
            "fallback": None if self.fallback is None else self.fallback.to_dict(),
        }


def require_tensorflow_backend() -> None:
    """The export traces ``keras.ops`` into a TF graph, which only the TF backend produces."""
    if keras.backend.backend() != "tensorflow":
        raise ExportError(
            f"the export needs the TensorFlow Keras backend, this process uses "
            f"{keras.backend.backend()!r}; run it with KERAS_BACKEND=tensorflow"
        )


def checkpoint_path(model: str | Path, checkpoint: str = "best") -> Path:
    """``model`` itself if it is a ``.keras`` file, else ``model/<checkpoint>.keras``."""
    path = Path(model)
    if path.suffix != ".keras":
        path = path / f"{checkpoint}.keras"
    if not path.is_file():
        raise ExportError(
            f"{path}: no such model file; `aslfr train --out DIR` writes DIR/best.keras "
            "and DIR/last.keras"
        )
    return path


def _with_float32_policies(config: Any) -> Any:
    """A model config with every mixed-precision dtype policy replaced by float32."""
    if isinstance(config, dict):
        if config.get("class_name") in ("DTypePolicy", "FloatDTypePolicy"):
            name = config.get("config", {}).get("name", "")
            if name.startswith("mixed_"):
                return {**config, "config": {**config["config"], "name": "float32"}}
        return {key: _with_float32_policies(value) for key, value in config.items()}
    if isinstance(config, list):
        return [_with_float32_policies(value) for value in config]
    return config


def float32_model(model: Any) -> Any:
    """``model`` computing in float32: TFLite has no bfloat16 kernels, and a mixed-precision
    model would otherwise be traced in bfloat16. Weights are float32 in both, so they carry over.
    """
    if all(layer.dtype_policy.compute_dtype == "float32" for layer in _layers_within(model)):
        return model
    rebuilt = model.__class__.from_config(_with_float32_policies(model.get_config()))
    rebuilt.set_weights(model.get_weights())
    return rebuilt


def _layers_within(model: Any) -> list[Any]:
    """``model`` and the layers of it and its nested models (sub-layers follow their parent's
    dtype policy, so these decide the compute dtype)."""
    found = [model]
    for layer in model.layers:
        found.extend(_layers_within(layer) if isinstance(layer, keras.Model) else [layer])
    return found


def load_trained_model(model: str | Path, checkpoint: str = "best") -> tuple[Any, Path]:
    """The Keras model of a training run (float32), and the file it came from."""
    require_tensorflow_backend()
    path = checkpoint_path(model, checkpoint)
    try:  # compile=False: losses, metrics and the optimizer are not needed to export
        loaded = load_checkpoint(path, compile=False)
    except CheckpointError as error:
        raise ExportError(str(error)) from error
    return float32_model(loaded), path


def processed_mirror(processed: str | Path) -> bool:
    """The ``mirror`` setting the processed data was made with (meta.json)."""
    path = Path(processed) / PROCESSED_META
    if not path.is_file():
        raise ExportError(f"{path}: no such file; run `aslfr preprocess --out {processed}` first")
    meta = json.loads(path.read_text(encoding="utf-8"))
    try:
        return bool(meta["config"]["mirror"])
    except KeyError:
        raise ExportError(f"{path}: has no config.mirror") from None


def resolve_mirror(config: ExportConfig) -> bool:
    if config.mirror is not None:
        return config.mirror
    return processed_mirror(config.processed) if config.processed else True


def export_model(
    model: Any,
    out: str | Path,
    quantization: str = "float32",
    mirror: bool = True,
    skip_empty_frames: bool = True,
    max_size_mb: float = tflite.MAX_MODEL_MB,
    checkpoint: str = "<in memory>",
    decoder: str = "auto",
    fallback: Any = None,
    beam: int | None = None,
    ctc_weight_decoding: float = DEFAULT_CTC_WEIGHT_DECODING,
    members: Sequence[str] | None = None,
    language_model: Any = None,
) -> ExportResult:
    """Convert a Keras model, or a list of them (an ensemble in one graph), into the submission
    files in ``out``; nothing is written when the conversion fails or the file is too large.
    ``decoder``: attention (KV-cached greedy loop), ctc (greedy CTC on the encoder, no loop),
    ctc_beam or joint (``beam_search`` with ``beam`` hypotheses; ``ctc_weight_decoding``) or
    auto (CTC when the models have a CTC head). ``members``: the checkpoints' names, for
    messages (an ensemble too large says which to drop). ``language_model``: a fused
    ``aslfr_lib.language_model.LanguageModel`` for the search decoders, its tables baked in."""
    from aslfr_lib.decoding import members_of, resolve_decoder

    require_tensorflow_backend()
    started = time.perf_counter()
    models = [float32_model(m) for m in members_of(model)]
    default = [checkpoint] if len(models) == 1 else [f"member {i + 1}" for i in range(len(models))]
    names = list(members) if members else default
    ensemble.check_members(models, names)
    decoder = resolve_decoder(models, decoder)
    module = InferenceModule(
        models,
        mirror=mirror,
        skip_empty_frames=skip_empty_frames,
        decoder=decoder,
        fallback=fallback,
        beam=beam,
        ctc_weight=ctc_weight_decoding,
        language_model=language_model,
    )
    model_bytes = tflite.convert(module, quantization)
    try:
        tflite.check_size(len(model_bytes), max_size_mb)
    except tflite.ModelTooLargeError as error:
        if len(models) == 1:
            raise
        advice = ensemble.drop_advice(
            len(model_bytes),
            int(max_size_mb * tflite.BYTES_PER_MB),
            [m.count_params() for m in models],
            names,
        )
        raise tflite.ModelTooLargeError(
            f"{error}; this ensemble of {len(models)}: {advice}"
        ) from None
    paths = write_submission(out, model_bytes)
    return ExportResult(
        paths=paths,
        checkpoint=checkpoint,
        quantization=quantization,
        mirror=mirror,
        skip_empty_frames=module.skip_empty_frames,
        frames=module.frames,
        model_bytes=len(model_bytes),
        zip_bytes=paths.zip.stat().st_size,
        seconds=time.perf_counter() - started,
        model=models[0] if len(models) == 1 else models,
        decoder=decoder,
        fallback=module.fallback,
        beam=module.beam,
        ctc_weight_decoding=module.ctc_weight,
        members=tuple(names) if len(models) > 1 else (),
        language_model=module.language_model,
    )


def export_submission(
    config: ExportConfig, model: Any = None, language_model: Any = None
) -> ExportResult:
    """The export of ``config`` (``model``: a Keras model, or a list, to use instead of
    ``config.model``, with its fused ``language_model`` if any). An ensemble's fallback
    phrase and language model are its first member's."""
    from aslfr_lib import fallback
    from aslfr_lib import language_model as lm

    checkpoint, run_fallback, names = "<in memory>", None, None
    if model is None:
        loaded = [load_trained_model(path, config.checkpoint) for path in config.models]
        model = [m for m, _ in loaded] if len(loaded) > 1 else loaded[0][0]
        names = [str(path) for _, path in loaded]
        checkpoint = names[0]
        run_fallback = fallback.load(loaded[0][1].parent)  # written by aslfr train
        language_model = lm.for_decoding(loaded[0][1].parent, config.lm_weight, config.lm_bonus)
    return export_model(
        model,
        config.out,
        quantization=config.quantization,
        mirror=resolve_mirror(config),
        skip_empty_frames=config.skip_empty_frames,
        max_size_mb=config.max_size_mb,
        checkpoint=checkpoint,
        decoder=config.decoder,
        fallback=run_fallback,
        beam=config.beam,
        ctc_weight_decoding=config.ctc_weight_decoding,
        members=names,
        language_model=language_model,
    )


def check_selection(config: ExportConfig) -> dict[str, Any]:
    """Which sequences the checks use: the processed validation split when it has any,
    otherwise train.csv (keyword arguments of ``check_submission``/``compare_predictions``)."""
    processed = None
    if config.processed and split_sequence_ids(config.processed, "val"):
        processed = config.processed
    return {"processed": processed, "split": "val", "limit": config.limit}


def _require_data(config: ExportConfig) -> str:
    if not config.data:
        raise ExportError("the checks need a competition-layout dataset: set data (--data)")
    return config.data


def harness_check(
    config: ExportConfig, result: ExportResult, progress: bool = True
) -> SubmissionReport:
    """The exported zip scored as Kaggle's harness scores it, on ``check_selection(config)``."""
    return check_submission(
        result.paths.zip,
        _require_data(config),
        test_sequences=config.test_sequences,
        progress=progress,
        **check_selection(config),
    )


def keras_vs_tflite(config: ExportConfig, result: ExportResult, progress: bool = False):
    """Table of Keras and TFLite phrases on ``check_selection(config)`` (``compare``)."""
    from aslfr_lib.export.compare import compare_predictions

    return compare_predictions(
        result.model,
        result.paths.zip,
        _require_data(config),
        mirror=result.mirror,
        progress=progress,
        decoder=result.decoder,
        fallback=result.fallback,
        beam=result.beam,
        ctc_weight=result.ctc_weight_decoding,
        language_model=result.language_model,
        **check_selection(config),
    )


def stage_metrics(
    result: ExportResult,
    report: SubmissionReport | None = None,
    comparison: Any = None,
) -> dict[str, Any]:
    """What the pipeline's metrics.json records for this stage (``score``: the harness score)."""
    metrics: dict[str, Any] = {"export": result.summary()}
    if report is not None:
        metrics["check"] = report.summary()
        metrics["score"] = report.score
    if comparison is not None and len(comparison):
        metrics["keras_tflite_match"] = float(comparison["match"].mean())
        metrics["keras_tflite_compared"] = int(len(comparison))
    return metrics


def write_stage_metrics(
    out: str | Path,
    result: ExportResult,
    report: SubmissionReport | None = None,
    comparison: Any = None,
) -> dict[str, Any]:
    """Write ``stage_metrics.json`` into ``out`` (atomically); returns its content."""
    metrics = stage_metrics(result, report, comparison)
    stage_metrics_file.write_stage_metrics(out, metrics)
    return metrics


def run(config: ExportConfig, model: Any = None, progress: bool = True) -> dict[str, Any]:
    """Export, then (with ``data``) check; writes and returns the stage metrics."""
    result = export_submission(config, model)
    report = comparison = None
    if config.data:
        report = harness_check(config, result, progress)
        comparison = keras_vs_tflite(config, result)
    metrics = write_stage_metrics(config.out, result, report, comparison)
    metrics["config"] = to_dict(config)
    return metrics
