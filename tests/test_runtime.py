"""Where training runs, and the warning when the machine's GPU is out of the backend's reach."""

import pytest

from aslfr_lib import runtime


@pytest.mark.parametrize(
    ("seen", "gpu_on_machine", "kind", "count", "warned"),
    [
        (["cpu"], False, "cpu", 1, False),  # a CPU machine: nothing to say
        (["cpu"], True, "cpu", 1, True),  # a GPU the CPU build cannot use
        (["gpu", "gpu"], True, "gpu", 2, False),  # the GPU build
    ],
)
def test_describe_reports_devices_and_warns_when_the_gpu_is_unseen(
    seen, gpu_on_machine, kind, count, warned
):
    got = runtime.describe(
        "jax", "bfloat16", None, devices=lambda backend: seen, has_gpu=lambda: gpu_on_machine
    )
    assert (got["device_kind"], got["device_count"]) == (kind, count)
    assert got["precision"] == "mixed_bfloat16" and got["xla"] is True  # JAX always compiles
    assert (got["warning"] is not None) == warned
    if warned:
        assert '".[gpu]"' in got["warning"] and "CPU" in got["warning"]
    assert runtime.summary_line(got).startswith(f"aslfr train: jax on {count} {kind.upper()}")


def test_tensorflow_xla_follows_jit_compile_else_the_device():
    cpu = dict(devices=lambda backend: ["cpu"], has_gpu=lambda: False)
    assert runtime.describe("tensorflow", "none", None, **cpu)["xla"] is False
    assert runtime.describe("tensorflow", "none", True, **cpu)["xla"] is True


def test_machine_has_gpu_reads_nvidia_smi_or_the_driver():
    assert runtime.machine_has_gpu(which=lambda name: None, exists=lambda path: False) is False
    assert runtime.machine_has_gpu(which=lambda name: "/usr/bin/nvidia-smi", exists=lambda p: False)
    assert runtime.machine_has_gpu(which=lambda name: None, exists=lambda p: p.endswith("nvidia"))


def test_this_machine_is_described_by_the_real_backend():
    got = runtime.describe("tensorflow", "none", None)
    assert got["device_kind"] in ("cpu", "gpu") and got["device_count"] >= 1


@pytest.mark.slow
def test_gpu_check_script_needs_no_tensorflow(tmp_path):
    """benchmarks/gpu_check.sh, for a lent GPU machine with JAX but no TensorFlow: here with
    TensorFlow made unimportable, it prints the doctor's report and the runtime line."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    blocked = tmp_path / "tensorflow"
    blocked.mkdir()
    (blocked / "__init__.py").write_text('raise ImportError("no TensorFlow on this machine")\n')
    env = {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": str(tmp_path)}
    done = subprocess.run(
        ["bash", str(Path(__file__).parents[1] / "benchmarks" / "gpu_check.sh")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "== aslfr doctor" in done.stdout and "jax sees" in done.stdout
    assert "aslfr train: jax on" in done.stdout and "mixed_bfloat16" in done.stdout
    assert "tensorflow imported: False" in done.stdout


@pytest.mark.slow
def test_a_jax_bfloat16_run_records_where_it_trained_and_exports_with_tensorflow(tmp_path):
    """What a GPU machine runs (``--backend jax --mixed-precision bfloat16``; here on the CPU):
    the runtime line is printed and kept in history.json, and ``aslfr export`` (TensorFlow)
    turns the .keras file into a submission."""
    import json

    from test_cli_chain import TINY_MODEL, aslfr, command_env, make_dataset

    _, processed = make_dataset(tmp_path)
    run = tmp_path / "run"
    env = {**command_env(), "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    trained = aslfr(
        tmp_path, "train", "--processed", processed, "--out", run, "--epochs", "1",
        "--warmup-epochs", "0", "--backend", "jax", "--mixed-precision", "bfloat16",
        *TINY_MODEL, env=env,
    )  # fmt: skip
    assert "aslfr train: jax on 1 CPU, mixed_bfloat16, XLA on" in trained.stdout
    recorded = json.loads((run / "history.json").read_text())["state"]["runtime"]
    assert recorded["backend"] == "jax" and recorded["precision"] == "mixed_bfloat16"
    aslfr(tmp_path, "export", "--model", run, "--out", tmp_path / "submission", "--quiet")
    assert (tmp_path / "submission" / "submission.zip").stat().st_size > 0
