"""``aslfr doctor``: versions, devices, disk and the data layout, with fakes for the GPU cases."""

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from aslfr_lib import doctor

PLENTY = SimpleNamespace(free=500e9)


def fake_devices(seen):
    return lambda versions, gpu: {"jax": seen}


@pytest.mark.parametrize(
    ("gpu", "seen", "ready"),
    [(False, ["cpu"], True), (True, ["cpu"], False), (True, ["gpu"], True)],
)
def test_gpu_on_the_machine_must_be_seen_by_a_backend(gpu, seen, ready):
    found = doctor.report(has_gpu=lambda: gpu, devices=fake_devices(seen), disk=lambda path: PLENTY)
    assert found.ready is ready and found.machine_has_gpu is gpu
    if not ready:
        (problem,) = found.problems
        assert "no backend sees" in problem and "make gpu-venv" in problem
    assert "jax sees" in found.format()


def test_too_little_disk_is_a_problem_with_its_fix():
    found = doctor.report(
        has_gpu=lambda: False,
        devices=fake_devices(["cpu"]),
        disk=lambda path: SimpleNamespace(free=2e9),
    )
    assert not found.ready and "6 GB needed (make demo)" in found.problems[0]


def write_layout(folder: Path, files=("a.parquet", "b.parquet"), character_map=True) -> Path:
    (folder / "train_landmarks").mkdir(parents=True)
    rows = ["path,file_id,sequence_id,participant_id,phrase"]
    for i, name in enumerate(("a.parquet", "b.parquet")):
        rows.append(f"train_landmarks/{name},{i},{i},{i},hello")
    (folder / "train.csv").write_text("\n".join(rows) + "\n")
    for name in files:
        (folder / "train_landmarks" / name).write_bytes(b"PAR1")
    if character_map:
        (folder / doctor.CHARACTER_MAP).write_text("{}")
    return folder


@pytest.mark.parametrize(
    ("files", "character_map", "expected"),
    [
        (("a.parquet", "b.parquet"), True, None),
        (("a.parquet",), True, "1 parquet file(s) listed in train.csv are missing"),
        (("a.parquet", "b.parquet"), False, "character_to_prediction_index.json: missing"),
    ],
)
def test_data_layout_is_checked(tmp_path, files, character_map, expected):
    data = write_layout(tmp_path / "data", files, character_map)
    found = doctor.report(
        data, has_gpu=lambda: False, devices=fake_devices(["cpu"]), disk=lambda path: PLENTY
    )
    assert found.data["train.csv"] == "2 sequences in 2 files"
    if expected is None:
        assert found.ready
    else:
        assert not found.ready and any(expected in p for p in found.problems)
        assert all("kaggle competitions download" in p for p in found.problems)


def test_aslfr_doctor_runs_as_a_command(tmp_path):
    aslfr = Path(sys.executable).parent / "aslfr"
    missing = tmp_path / "nowhere"
    done = subprocess.run(
        [str(aslfr), "doctor", "--data", str(missing), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    found = json.loads(done.stdout)
    assert found["ready"] is False and "no such folder" in found["problems"][-1]
    assert found["versions"]["keras"] and found["versions"]["tensorflow"]
    assert found["machine_has_gpu"] in (True, False) and "jax" in found["devices"]


@pytest.mark.slow
def test_gpu_extra_resolves_from_the_package_index(tmp_path):
    """``pip install --dry-run`` of what ``.[train,gpu]`` asks for: JAX with its CUDA plugin
    beside TensorFlow's CPU build, resolved together (``make gpu-venv``)."""
    import tomllib

    extras = tomllib.loads(Path("pyproject.toml").read_text())["project"]["optional-dependencies"]
    wanted = extras["train"] + extras["gpu"]
    report = tmp_path / "report.json"
    command = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed"]
    command += ["--quiet", "--report", str(report), *wanted]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    names = {item["metadata"]["name"] for item in json.loads(report.read_text())["install"]}
    assert {"jax", "jaxlib", "keras"} <= names and any("cuda" in n and "plugin" in n for n in names)
    assert "tensorflow" not in names  # the CPU build only: no second set of CUDA libraries


def test_a_jax_only_machine_is_told_what_export_needs():
    """A GPU machine with JAX but no TensorFlow (a lent H200): the report still comes, says the
    GPU is seen, and names what export needs; TensorFlow is never asked for its devices."""
    versions = {name: None for name in ("keras", "tensorflow", "jaxlib", "papermill")}
    versions.update(python="3.12.0", jax="0.10.2 (jax)", keras="3.15.1 (keras)")
    found = doctor.report(
        has_gpu=lambda: True,
        devices=fake_devices(["gpu (NVIDIA H200)"]),
        disk=lambda path: PLENTY,
        packages=lambda: versions,
    )
    (problem,) = found.problems
    assert "tensorflow is not installed" in problem and "--backend jax" in problem
    assert "gpu (NVIDIA H200)" in found.format()
    assert doctor.backend_devices({"jax": None, "tensorflow": None}, True) == {}  # nothing imported
