"""``aslfr doctor [--data DIR] [--json]``: is this machine ready for a long run? In seconds.

Prints the versions that matter (Python, Keras, TensorFlow and whether it is the CPU build, JAX
and the devices it sees, LiteRT, papermill, MediaPipe in ``.venv-video``), whether a GPU is on
the machine and whether a backend can use it (``aslfr_lib.runtime``), free disk against what the
demo and the competition data need, and, with ``--data``, whether the competition layout there
is complete. Every problem comes with its fix; the exit code is 0 when there is none, else 1.
Nothing is trained and TensorFlow is not imported unless it is a GPU build on a GPU machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aslfr_lib import runtime

GB = 1e9
DEMO_NEEDS_GB = 6.0  # data/synthetic-demo (5.2 GB of parquet) + outputs/demo
REAL_DATA_NEEDS_GB = 200.0  # the competition download (Kaggle lists ~190 GB) + processed arrays
VIDEO_PYTHON = Path(".venv-video/bin/python")
CHARACTER_MAP = "character_to_prediction_index.json"
PACKAGES = {  # shown name -> distributions that provide it, first found wins
    "keras": ("keras",),
    "tensorflow": ("tensorflow-cpu", "tensorflow"),
    "jax": ("jax",),
    "jaxlib": ("jaxlib",),
    "jax CUDA plugin": ("jax-cuda12-plugin", "jax-cuda13-plugin"),
    "LiteRT": ("ai-edge-litert",),
    "papermill": ("papermill",),
}


@dataclasses.dataclass
class Report:
    versions: dict[str, str | None]
    devices: dict[str, list[str] | str]
    machine_has_gpu: bool
    disk_free_gb: float
    data: dict[str, Any] | None
    problems: list[str]  # each with its fix

    @property
    def ready(self) -> bool:
        return not self.problems

    def format(self) -> str:
        width = 26
        lines = ["versions"]
        for name, version in self.versions.items():
            lines.append(f"  {name:<{width - 2}}{version or 'not installed'}")
        lines.append(f"{'machine has a GPU':<{width}}{'yes' if self.machine_has_gpu else 'no'}")
        for name, seen in self.devices.items():
            shown = ", ".join(seen) if isinstance(seen, list) else seen
            lines.append(f"{name + ' sees':<{width}}{shown}")
        lines.append(
            f"{'disk free':<{width}}{self.disk_free_gb:.1f} GB (make demo needs "
            f"{DEMO_NEEDS_GB:g} GB, the competition data about {REAL_DATA_NEEDS_GB:g} GB)"
        )
        if self.data is not None:
            lines.append(f"{'data':<{width}}{self.data['path']}: {self.data['summary']}")
        lines.append("problems (each with its fix):" if self.problems else "ready: no problems")
        lines += [f"  - {problem}" for problem in self.problems]
        return "\n".join(lines)


def distribution_version(names: tuple[str, ...]) -> str | None:
    for name in names:
        try:
            return f"{importlib.metadata.version(name)} ({name})"
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def mediapipe_version(python: Path = VIDEO_PYTHON) -> str | None:
    """MediaPipe lives in its own environment (``make video-env``), asked through its Python."""
    if not python.exists():
        return None
    done = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('mediapipe'))"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return done.stdout.strip() or None if done.returncode == 0 else None


def backend_devices(versions: dict[str, str | None], gpu: bool) -> dict[str, list[str] | str]:
    """Devices each installed backend sees. The CPU build of TensorFlow sees the CPU only, so
    it is not imported (3 s); a GPU build on a GPU machine is asked."""
    devices: dict[str, list[str] | str] = {}
    if versions["jax"]:
        try:
            import jax

            devices["jax"] = [
                device.platform + (f" ({device.device_kind})" if device.platform != "cpu" else "")
                for device in jax.devices()
            ]
        except Exception as error:  # noqa: BLE001 - a broken install is a finding, not a crash
            devices["jax"] = f"error: {error}"
    tensorflow = versions["tensorflow"]
    if tensorflow and "tensorflow-cpu" in tensorflow:
        devices["tensorflow"] = ["cpu"]
    elif tensorflow:
        devices["tensorflow"] = runtime.backend_devices("tensorflow") if gpu else ["cpu"]
    return devices


def check_data(folder: Path) -> tuple[dict[str, Any], list[str]]:
    """Is ``folder`` a complete competition download? (summary, problems with their fixes)."""
    problems = []
    fix = "download it: kaggle competitions download -c asl-fingerspelling, then unzip into it"
    if not folder.is_dir():
        return {"path": str(folder), "summary": "missing"}, [f"{folder}: no such folder; {fix}"]
    counts = {}
    for csv, required in (("train.csv", True), ("supplemental_metadata.csv", False)):
        path = folder / csv
        if not path.is_file():
            if required:
                problems.append(f"{path}: missing; {fix}")
            continue
        import pandas as pd

        try:
            table = pd.read_csv(path, usecols=["path", "sequence_id"])
        except ValueError as error:
            problems.append(f"{path}: not the competition's layout ({error}); {fix}")
            continue
        files = sorted(set(table["path"]))
        missing = [name for name in files if not (folder / name).is_file()]
        counts[csv] = f"{len(table):,} sequences in {len(files)} files"
        if missing:
            problems.append(
                f"{folder}: {len(missing)} parquet file(s) listed in {csv} are missing, e.g. "
                f"{missing[0]}; {fix}"
            )
    if not (folder / CHARACTER_MAP).is_file():
        problems.append(f"{folder / CHARACTER_MAP}: missing; {fix}")
    summary = "; ".join(f"{name}: {text}" for name, text in counts.items()) or "no metadata"
    return {"path": str(folder), "summary": summary, **counts}, problems


def installed_versions() -> dict[str, str | None]:
    """Python and each package of ``PACKAGES`` (None: not installed), from their metadata."""
    versions = {"python": sys.version.split()[0]}
    versions.update({name: distribution_version(dists) for name, dists in PACKAGES.items()})
    versions["mediapipe (.venv-video)"] = mediapipe_version()
    return versions


def report(
    data: str | Path | None = None,
    has_gpu: Callable[[], bool] = runtime.machine_has_gpu,
    devices: Callable[[dict, bool], dict] = backend_devices,
    disk: Callable[[str], Any] = shutil.disk_usage,
    packages: Callable[[], dict[str, str | None]] = installed_versions,
) -> Report:
    versions = packages()
    gpu = has_gpu()
    seen = devices(versions, gpu)
    problems = []
    if not versions["keras"]:
        problems.append("keras is not installed; training needs it: make venv")
    if not versions["tensorflow"]:
        problems.append(
            "tensorflow is not installed; export (aslfr export, notebook 03) needs its CPU build: "
            'make venv, or pip install -e ".[train]" (training with --backend jax runs without it)'
        )
    if gpu and not any(
        isinstance(v, list) and any(d.startswith("gpu") for d in v) for v in seen.values()
    ):
        problems.append(
            f"this machine has an NVIDIA GPU that no backend sees, so training would run on the "
            f"CPU; install: {runtime.GPU_INSTALL} (or make gpu-venv)"
        )
    where = Path(data) if data is not None else Path(".")
    probe = where if where.exists() else Path(".")
    free = disk(str(probe)).free / GB
    needed = REAL_DATA_NEEDS_GB if data is not None else DEMO_NEEDS_GB
    if free < needed:
        problems.append(
            f"{free:.1f} GB free at {probe.resolve()}, {needed:g} GB needed "
            f"({'the competition data' if data is not None else 'make demo'}); free some space"
        )
    data_report = None
    if data is not None:
        data_report, data_problems = check_data(Path(data))
        problems += data_problems
        if data_report.get("train.csv"):  # the download is there: its own size is not needed
            problems = [p for p in problems if "GB needed" not in p]
    return Report(versions, seen, gpu, round(free, 1), data_report, problems)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="aslfr doctor", description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=None, help="competition-layout folder to check")
    parser.add_argument("--json", action="store_true", help="machine-readable report")
    args = parser.parse_args(argv)
    found = report(args.data)
    if args.json:
        print(json.dumps({**dataclasses.asdict(found), "ready": found.ready}, indent=2))
    else:
        print(found.format())
    return 0 if found.ready else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
