"""Where training runs: backend, devices, precision and XLA, said at the start of every run.

A GPU machine with the CPU builds of TensorFlow and JAX (what ``pip install -e ".[train,jax]"``
installs from the package index) trains on the CPU, silently, two orders of magnitude slower.
``describe`` reads what the chosen Keras backend sees; ``machine_has_gpu`` looks at the machine
itself (``nvidia-smi`` on the PATH, or the NVIDIA driver's ``/proc/driver/nvidia``); ``warning``
says when the two disagree and which install fixes it. The probes are arguments so that tests
can fake a GPU.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from typing import Any

GPU_INSTALL = 'pip install -e ".[gpu]"  (JAX with its CUDA plugin), then --backend jax'
NVIDIA_DRIVER = "/proc/driver/nvidia"


def machine_has_gpu(
    which: Callable[[str], str | None] = shutil.which,
    exists: Callable[[str], bool] = os.path.exists,
) -> bool:
    """True when an NVIDIA GPU is installed, whatever the Python packages can see."""
    return which("nvidia-smi") is not None or exists(NVIDIA_DRIVER)


def backend_devices(backend: str) -> list[str]:
    """Device kinds the backend sees, e.g. ``["gpu", "gpu"]`` or ``["cpu"]``."""
    if backend == "jax":
        import jax

        return [device.platform for device in jax.devices()]
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    return ["gpu"] * len(gpus) if gpus else ["cpu"]


def describe(
    backend: str,
    mixed_precision: str,
    jit_compile: bool | None,
    devices: Callable[[str], list[str]] = backend_devices,
    has_gpu: Callable[[], bool] = machine_has_gpu,
) -> dict[str, Any]:
    """What ``aslfr train`` prints and records: backend, device kind and count, precision, XLA,
    and ``warning`` (None, or what to install) when the machine's GPU is out of reach."""
    seen = devices(backend)
    kind = "gpu" if "gpu" in seen else seen[0] if seen else "cpu"
    xla = backend == "jax" or (jit_compile if jit_compile is not None else kind == "gpu")
    found = has_gpu()
    warning = None
    if found and kind != "gpu":
        warning = (
            f"this machine has an NVIDIA GPU but the {backend} backend sees none, so training "
            f"runs on the CPU; install the GPU build: {GPU_INSTALL}"
        )
    return {
        "backend": backend,
        "device_kind": kind,
        "device_count": sum(1 for d in seen if d == kind),
        "precision": "float32" if mixed_precision == "none" else f"mixed_{mixed_precision}",
        "xla": bool(xla),
        "machine_has_gpu": found,
        "warning": warning,
    }


def summary_line(description: dict[str, Any]) -> str:
    d = description
    return (
        f"aslfr train: {d['backend']} on {d['device_count']} {d['device_kind'].upper()}"
        f"{'s' if d['device_count'] != 1 else ''}, {d['precision']}, "
        f"XLA {'on' if d['xla'] else 'off'}"
    )
