"""TFLite export: the only home of tf.* ops.

``aslfr export --model DIR --out DIR [--fp16]`` writes ``model.tflite``, ``inference_args.json``
and ``submission.zip`` (see ``stage``). The modules, in the order the data flows:

- ``preprocessing``: ``preprocess_tf``, the in-graph twin of the numpy preprocessing;
- ``inference``: ``InferenceModule``, raw landmarks -> encoder once -> KV-cached greedy decoding;
- ``tflite``: conversion with builtin ops only, the 40 MB limit;
- ``artifacts``: the submission files;
- ``compare``: Keras vs TFLite phrases on the same sequences;
- ``reference``: the reference notebook's uncached export, the benchmark's baseline;
- ``stage``: ``ExportConfig``, ``export_submission``, the command line.

The export traces ``keras.ops`` into a TensorFlow graph, so it needs the TensorFlow backend; it
is chosen here unless the process already chose one.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from aslfr_lib.export.artifacts import SubmissionPaths, submission_files, write_submission  # noqa: E402
from aslfr_lib.export.compare import compare_predictions, match_rate  # noqa: E402
from aslfr_lib.export.inference import InferenceModule  # noqa: E402
from aslfr_lib.export.stage import (  # noqa: E402
    ExportConfig,
    ExportError,
    ExportResult,
    export_model,
    export_submission,
    harness_check,
    keras_vs_tflite,
    load_trained_model,
    main,
    run,
    stage_metrics,
    write_stage_metrics,
)
from aslfr_lib.export.tflite import (  # noqa: E402
    ConversionError,
    ModelTooLargeError,
    check_size,
    convert,
)

__all__ = [
    "ConversionError",
    "ExportConfig",
    "ExportError",
    "ExportResult",
    "InferenceModule",
    "ModelTooLargeError",
    "SubmissionPaths",
    "check_size",
    "compare_predictions",
    "convert",
    "export_model",
    "export_submission",
    "harness_check",
    "keras_vs_tflite",
    "load_trained_model",
    "main",
    "match_rate",
    "run",
    "stage_metrics",
    "submission_files",
    "write_stage_metrics",
    "write_submission",
]
