"""TFLite export: the only home of tf.* ops.

``aslfr export --model DIR --out DIR [--fp16]`` writes ``model.tflite``, ``inference_args.json``
and ``submission.zip`` (see ``stage``). The modules, in the order the data flows:

- ``preprocessing``: ``preprocess_tf``, the in-graph twin of the numpy preprocessing;
- ``inference``: ``InferenceModule``, raw landmarks -> encoder once -> KV-cached greedy decoding;
- ``tflite``: conversion with builtin ops only, the 40 MB limit;
- ``artifacts``: the submission files;
- ``compare``: Keras vs TFLite phrases on the same sequences;
- ``reference``: the reference notebook's uncached export, the benchmark's baseline;
- ``stage``: ``export_submission`` and the checks of notebook 03;
- ``command``: ``ExportConfig`` and ``aslfr export`` (TensorFlow-free until an export runs).

The export traces ``keras.ops`` into a TensorFlow graph, so it needs the TensorFlow backend; it
is chosen here unless the process already chose one.
"""

import importlib
import os
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

# name -> module that defines it; imported on first use, so ``aslfr export --help`` and
# ``ExportConfig`` need no TensorFlow, and the first heavy import is the quiet one.
_HOMES = {
    "ConversionError": "command",
    "ExportConfig": "command",
    "ExportError": "command",
    "main": "command",
    "SubmissionPaths": "artifacts",
    "submission_files": "artifacts",
    "write_submission": "artifacts",
    "compare_predictions": "compare",
    "match_rate": "compare",
    "InferenceModule": "inference",
    "ExportResult": "stage",
    "export_model": "stage",
    "export_submission": "stage",
    "harness_check": "stage",
    "keras_vs_tflite": "stage",
    "load_trained_model": "stage",
    "run": "stage",
    "stage_metrics": "stage",
    "write_stage_metrics": "stage",
    "ModelTooLargeError": "tflite",
    "check_size": "tflite",
    "convert": "tflite",
}
_LIGHT = {"command", "artifacts"}  # TF-free modules


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if home not in _LIGHT:
        from aslfr_lib.backend import import_keras

        import_keras("tensorflow")  # the export traces a TF graph: TF backend unless chosen
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)


__all__ = sorted(_HOMES)
