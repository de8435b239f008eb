"""Run the three notebooks end to end with papermill: arrays -> trained model -> submission.

A run folder (``outputs/<run>/``) holds one sub-folder per stage (``processed/``, ``model/``,
``submission/``), the executed notebooks, the stages' PNG plots and a ``metrics.json`` that merges
every stage's ``stage_metrics.json`` with the wall time of each stage.

A stage is skipped when its outputs exist and were made from the same parameters, the same notebook
and the same upstream stage (a fingerprint in ``<stage folder>/.stage.json``), unless ``force``.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from aslfr_lib import atomic
from aslfr_lib.config import PIPELINE_SECTIONS, add_arguments, from_args, load_yaml, param
from aslfr_lib.stage_metrics import (  # noqa: F401 - write_stage_metrics: for notebooks
    STAGE_METRICS,
    read_stage_metrics,
    write_stage_metrics,
)

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"
STAMP = ".stage.json"


@dataclasses.dataclass(frozen=True)
class Stage:
    name: str  # key in the YAML config and in metrics.json
    notebook: str  # file in notebooks/
    folder: str  # stage output folder inside the run folder


STAGES = (
    Stage("preprocess", "01_preprocessing.ipynb", "processed"),
    Stage("train", "02_training.ipynb", "model"),
    Stage("export", "03_inference_export.ipynb", "submission"),
)


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    config: str = param("configs/demo.yaml", "YAML file with one section per stage")
    out: str | None = param(None, "run folder (default: outputs/<config name>)")
    data: str | None = param(
        None, "competition-layout dataset folder (overrides the config's data)"
    )
    force: bool = param(False, "run every stage even when its outputs are up to date")
    kernel: str = param("python3", "Jupyter kernel that runs the notebooks")


class StageFailed(RuntimeError):
    """A notebook raised: names the stage, the cell and where the executed notebook was kept."""


def stage_parameters(settings: dict[str, Any], data: str, run: Path) -> dict[str, dict[str, Any]]:
    """Parameters of each notebook: the config's section plus the paths that chain the stages."""
    folders = {stage.name: str(run / stage.folder) for stage in STAGES}
    return {
        "preprocess": {
            **settings.get("preprocess", {}),
            "data": data,
            "out": folders["preprocess"],
        },
        "train": {
            **settings.get("train", {}),
            "processed": folders["preprocess"],
            "out": folders["train"],
        },
        "export": {
            **settings.get("export", {}),
            "model": folders["train"],
            "processed": folders["preprocess"],
            "data": data,
            "out": folders["export"],
        },
    }


def _fingerprint(parameters: dict[str, Any], notebook: Path, upstream: str) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps(parameters, sort_keys=True).encode())
    digest.update(notebook.read_bytes())
    digest.update(upstream.encode())
    return digest.hexdigest()


def _up_to_date(folder: Path, fingerprint: str) -> bool:
    stamp = folder / STAMP
    if not stamp.exists() or not (folder / STAGE_METRICS).exists():
        return False
    return json.loads(stamp.read_text()).get("fingerprint") == fingerprint


class PrefixedLines:
    """A text stream that writes to ``stream`` with ``prefix`` before every line."""

    def __init__(self, stream: Any, prefix: str):
        self.stream, self.prefix, self.at_line_start = stream, prefix, True

    def write(self, text: str) -> int:
        for piece in text.splitlines(keepends=True):
            if self.at_line_start:
                self.stream.write(self.prefix)
            self.stream.write(piece)
            self.at_line_start = piece.endswith("\n")
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


def local_kernel_manager() -> type:
    """nbclient's kernel manager on IPC sockets under the temp folder: the kernel talks to this
    process only, so it opens no TCP ports to warn about ("Kernel is running over TCP without
    encryption"); nbclient owns it and removes the sockets when the kernel stops."""
    from jupyter_client.manager import AsyncKernelManager

    class LocalSocketsKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs: Any):
            kwargs.setdefault("transport", "ipc")
            super().__init__(**kwargs)
            if self.transport == "ipc":
                self.ip = str(Path(tempfile.gettempdir()) / f"aslfr-kernel-{uuid.uuid4().hex}")

    return LocalSocketsKernelManager


def run_stage(
    stage: Stage, parameters: dict[str, Any], run: Path, kernel: str, fingerprint: str
) -> float:
    """Execute one notebook into the run folder; returns its wall time in seconds."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    source = NOTEBOOKS_DIR / stage.notebook
    executed = run / stage.notebook
    folder = run / stage.folder
    folder.mkdir(parents=True, exist_ok=True)
    (folder / STAMP).unlink(missing_ok=True)  # a failed rerun must not look up to date
    started = time.perf_counter()
    try:
        papermill.execute_notebook(
            str(source),
            str(executed),
            parameters=parameters,
            kernel_name=kernel,
            cwd=str(Path.cwd()),
            progress_bar=False,
            # What the notebook prints, as it prints it (training's epoch lines).
            stdout_file=PrefixedLines(sys.stdout, f"[{stage.name}] "),
            kernel_manager_class=local_kernel_manager(),
        )
    except PapermillExecutionError as error:
        raise StageFailed(
            f"stage {stage.name!r} failed in cell {error.cell_index} (execution count "
            f"{error.exec_count}): {error.ename}: {error.evalue}\n"
            f"executed notebook with the error kept at {executed}"
        ) from error
    seconds = time.perf_counter() - started
    atomic.write_json(folder / STAMP, {"fingerprint": fingerprint, "seconds": seconds})
    return seconds


def run_pipeline(config: PipelineConfig) -> dict[str, Any]:
    """Run (or skip) every stage; write and return the merged ``metrics.json``."""
    if not Path(config.config).is_file():
        raise FileNotFoundError(
            f"{config.config}: no such config file (configs/ has demo.yaml, v6.yaml, kaggle.yaml)"
        )
    settings = load_yaml(config.config)
    unknown = set(settings) - set(PIPELINE_SECTIONS)
    if unknown:
        raise ValueError(f"{config.config}: unknown section(s) {sorted(unknown)}")
    run = Path(config.out or Path("outputs") / settings.get("run", Path(config.config).stem))
    data = config.data or settings.get("data")
    if not data:
        raise ValueError(f"{config.config}: no 'data' folder given (config key or --data)")
    if not Path(data, "train.csv").exists():
        raise FileNotFoundError(
            f"{data}: no train.csv, so not a competition-layout dataset; write the synthetic one "
            f"with `aslfr synth --out {data}` (or `make demo`), or point --data at the Kaggle "
            "download"
        )
    run.mkdir(parents=True, exist_ok=True)

    parameters = stage_parameters(settings, str(data), run)
    metrics: dict[str, Any] = {"run": str(run), "data": str(data), "seconds": {}}
    upstream = ""
    for stage in STAGES:
        folder = run / stage.folder
        fingerprint = _fingerprint(parameters[stage.name], NOTEBOOKS_DIR / stage.notebook, upstream)
        if not config.force and _up_to_date(folder, fingerprint):
            print(f"[{stage.name}] up to date, skipped ({folder})")
            seconds = json.loads((folder / STAMP).read_text())["seconds"]
        else:
            print(f"[{stage.name}] running {stage.notebook} -> {run / stage.notebook}", flush=True)
            seconds = run_stage(stage, parameters[stage.name], run, config.kernel, fingerprint)
            print(f"[{stage.name}] done in {seconds:.0f} s", flush=True)
        metrics["seconds"][stage.name] = round(seconds, 1)
        metrics[stage.name] = read_stage_metrics(folder)
        upstream = fingerprint

    metrics["plots"] = sorted(str(path.relative_to(run)) for path in run.rglob("*.png"))
    metrics["score"] = metrics["export"].get("score", metrics["train"].get("score"))
    atomic.write_json(run / "metrics.json", metrics)
    return metrics


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="aslfr pipeline", description=__doc__.split("\n")[0])
    add_arguments(parser, PipelineConfig)
    args = parser.parse_args(argv)
    try:
        config = from_args(PipelineConfig, args)
        metrics = run_pipeline(config)
    except StageFailed as error:
        print(f"aslfr pipeline: {error}", file=sys.stderr)
        return 1
    except (ValueError, FileNotFoundError) as error:
        print(f"aslfr pipeline: error: {error}", file=sys.stderr)
        return 1
    print(f"results in {metrics['run']}/ (metrics.json, notebooks, plots, submission/)")
    score = metrics["score"]
    check = metrics.get("export", {}).get("check", {})
    counted = f" over all {check['sequences']} held-out sequences" if "sequences" in check else ""
    print(
        "held-out score: " + (f"{score:.4f}" if isinstance(score, float) else str(score)) + counted
    )
    if check.get("score_trainable_subset") is not None:
        print(
            f"  (trainable subset only, without the {check['too_short_to_train']} too short to "
            f"train on: {check['score_trainable_subset']:.4f})"
        )
    return 0


# The synth settings a demo dataset was written with: a config that asks for other ones (more
# signers, another style) gets a new dataset instead of silently training on the old one.
DEMO_SYNTH_FILE = "synth.json"


def stale_demo_dataset(data: Path, synth: dict[str, Any]) -> str | None:
    """Why the demo's dataset ``data`` no longer matches the config's ``synth`` settings, or None
    (also None when there is no dataset yet or the config has no ``synth`` section)."""
    if not synth or not (data / "train.csv").exists():
        return None
    recorded = data / DEMO_SYNTH_FILE
    if not recorded.exists():
        return f"has no {DEMO_SYNTH_FILE} (written by an earlier version)"
    written = json.loads(recorded.read_text(encoding="utf-8"))
    changed = {key for key in {*written, *synth} if written.get(key) != synth.get(key)}
    if not changed:
        return None
    differences = ", ".join(f"{k} {written.get(k)} -> {synth.get(k)}" for k in sorted(changed))
    return f"was written with other synth settings ({differences})"


def demo_main(argv: list[str]) -> int:
    """``make demo``: write the synthetic dataset when missing, then run the demo pipeline."""
    parser = argparse.ArgumentParser(prog="aslfr demo", description=demo_main.__doc__)
    parser.add_argument("--config", default="configs/demo.yaml")
    parser.add_argument("--data", default=None, help="dataset folder (default: the config's)")
    parser.add_argument("--out", default=None, help="run folder (default: outputs/<run>)")
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args(argv)
    try:
        settings = load_yaml(args.config)
    except FileNotFoundError as error:
        print(f"aslfr demo: error: {error}", file=sys.stderr)
        return 1
    data = Path(args.data or settings["data"])
    synth = settings.get("synth", {})
    stale = args.data is None and stale_demo_dataset(data, synth)
    if stale:
        print(f"aslfr demo: {data} {stale}: writing it again with the config's synth settings")
    if stale or not (data / "train.csv").exists():
        from aslfr_lib.config import make
        from aslfr_lib.synthetic import SynthConfig, generate

        partial = data.with_name(data.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        generate(make(SynthConfig, {**synth, "out": str(partial)}))
        atomic.write_json(partial / DEMO_SYNTH_FILE, synth)
        if stale:
            shutil.rmtree(data)  # the demo's own generated data, replaced by its new version
        partial.rename(data)  # a killed generation never looks like a finished dataset
    started = time.perf_counter()
    code = main(
        ["--config", args.config, "--data", str(data)]
        + (["--out", args.out] if args.out else [])
        + (["--force"] if args.force else [])
    )
    print(f"demo wall time: {time.perf_counter() - started:.0f} s")
    return code
