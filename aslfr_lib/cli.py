"""``aslfr`` command line: one subcommand per stage, each owned by its module.

Subcommand modules are imported only when run, so ``aslfr check-submission`` and
``aslfr predict`` never import TensorFlow.
"""

from __future__ import annotations

import importlib
import sys

# subcommand -> ("module:function", one-line help); the function is ``(argv: list[str]) -> int``.
COMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("aslfr_lib.synthetic:main", "write a synthetic dataset in the competition's layout"),
    "preprocess": ("aslfr_lib.preprocess:main", "competition parquet -> training arrays"),
    "train": ("aslfr_lib.training:main", "train the transformer"),
    "evaluate": ("aslfr_lib.evaluation:main", "competition score of a trained model"),
    "export": ("aslfr_lib.export:main", "write model.tflite, inference_args.json, submission.zip"),
    "check-submission": (
        "aslfr_lib.submission:main",
        "run a submission.zip as Kaggle's harness does",
    ),
    "predict": ("aslfr_lib.predict:main", "phrase of a video or parquet sequence"),
    "pipeline": ("aslfr_lib.pipeline:main", "run notebooks 01 -> 02 -> 03 with papermill"),
    "demo": ("aslfr_lib.pipeline:demo_main", "synthetic data + the demo pipeline, end to end"),
    "extract": ("aslfr_lib.video:main", "MediaPipe Holistic landmarks of a video -> parquet"),
    "doctor": ("aslfr_lib.doctor:main", "is this machine ready? versions, devices, disk, data"),
    "kaggle-bundle": (
        "aslfr_lib.kaggle:main",
        "wheels to install aslfr offline on a Kaggle kernel (a dataset)",
    ),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items()]
    return "usage: aslfr COMMAND [options]\n\ncommands:\n" + "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"aslfr: unknown command {command!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module_name, function_name = COMMANDS[command][0].split(":")
    entry = getattr(importlib.import_module(module_name), function_name)
    return int(entry(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
