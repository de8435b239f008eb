"""Kaggle kernels: the offline bundle, the notebooks' install cell, an emulated kernel."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aslfr_lib import kaggle

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
BIN = Path(sys.executable).parent
# What the emulated image lacks, as on Kaggle: aslfr itself and MISSING_ON_KAGGLE.
NOT_IN_IMAGE = ("aslfr", "_aslfr", "__editable__", "rapidfuzz", "ai_edge_litert", "backports")


def install_cell(notebook: Path) -> str:
    cells = json.loads(notebook.read_text())["cells"]
    first_code = next(cell for cell in cells if cell["cell_type"] == "code")
    return "".join(first_code["source"])


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_first_code_cell_installs_the_bundle_only_under_kaggle(notebook, tmp_path, monkeypatch):
    from IPython.core.inputtransformer2 import TransformerManager

    source = install_cell(notebook)
    assert "aslfr kaggle-bundle" in source and "def " not in source and "class " not in source
    code = TransformerManager().transform_cell(source)  # %pip -> get_ipython().run_line_magic
    calls = []

    class FakeShell:
        def run_line_magic(self, name, line, _stack_depth=1):
            calls.append((name, line.format(**namespace)))

    kaggle_input = tmp_path / "input"
    kaggle_input.mkdir()
    monkeypatch.setenv("ASLFR_KAGGLE_INPUT", str(kaggle_input))
    namespace = {"get_ipython": FakeShell}
    exec(code, namespace)
    assert calls == []  # no bundle (anywhere but a Kaggle kernel with it attached): nothing

    bundle = kaggle_input / "my-aslfr-bundle"
    bundle.mkdir()
    (bundle / "aslfr-0.1.0-py3-none-any.whl").write_bytes(b"")
    namespace = {"get_ipython": FakeShell}
    exec(code, namespace)
    ((name, line),) = calls
    assert name == "pip" and line.split() == [
        "install",
        "--quiet",
        "--no-index",  # offline
        "--no-deps",  # never replaces the image's TensorFlow, Keras or JAX
        "--find-links",
        str(bundle),
        "-r",
        f"{bundle}/requirements.txt",
    ]


def test_requirement_names():
    assert [kaggle.requirement_name(r) for r in kaggle.MISSING_ON_KAGGLE] == [
        "rapidfuzz",
        "ai-edge-litert",
        "backports.strenum",
    ]
    assert not {kaggle.requirement_name(r) for r in kaggle.MISSING_ON_KAGGLE} & (
        kaggle.NEVER_BUNDLED
    )


def test_a_framework_in_the_bundle_is_refused(tmp_path, monkeypatch):
    def fake_aslfr(out):
        wheel = out / "aslfr-0.1.0-py3-none-any.whl"
        wheel.write_bytes(b"")
        return wheel

    def fake_download(out, versions, wheels_from=None):
        (out / "keras-3.15.1-py3-none-any.whl").write_bytes(b"")

    monkeypatch.setattr(kaggle, "build_aslfr_wheel", fake_aslfr)
    monkeypatch.setattr(kaggle, "download_missing", fake_download)
    with pytest.raises(kaggle.BundleError, match="replace the image's \\['keras'\\]"):
        kaggle.build_bundle(tmp_path / "bundle")


def test_aslfr_kaggle_bundle_runs_as_a_command(tmp_path):
    done = subprocess.run(
        [str(BIN / "aslfr"), "kaggle-bundle", "--help"], capture_output=True, text=True
    )
    assert done.returncode == 0 and "--out" in done.stdout
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    done = subprocess.run(
        [str(BIN / "aslfr"), "kaggle-bundle", "--out", str(not_a_folder)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("aslfr kaggle-bundle: error:") and "not a folder" in done.stderr


def image_site_packages(folder: Path) -> Path:
    """A stand-in for the Kaggle image's site-packages: this venv's packages (TensorFlow, Keras,
    JAX, papermill, ...) as symlinks, without aslfr and what the image lacks."""
    import sysconfig

    source = Path(sysconfig.get_paths()["purelib"])
    folder.mkdir()
    for entry in source.iterdir():
        name = entry.name.lower()
        if name.startswith(NOT_IN_IMAGE) or name.endswith(".pth") or name == "__pycache__":
            continue
        (folder / entry.name).symlink_to(entry)
    return folder


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(path.relative_to(folder)): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in sorted(folder.rglob("*"))
    }


@pytest.mark.slow
def test_notebooks_run_on_an_emulated_kaggle_kernel(tmp_path):
    """The bundle (network: pip download) installed offline into a kernel whose image has the
    frameworks but not aslfr; the three notebooks, as uploaded, run by papermill with the data
    read-only under input/ and every output under working/."""
    started = time.perf_counter()
    kaggle_root = tmp_path / "kaggle"
    bundle = kaggle_root / "input" / "aslfr-bundle"
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    built = subprocess.run(
        [str(BIN / "aslfr"), "kaggle-bundle", "--out", str(bundle), "--python", python],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr
    manifest = json.loads((bundle / "bundle.json").read_text())
    assert manifest["install"] == ["aslfr", "rapidfuzz", "ai-edge-litert", "backports.strenum"]
    assert not any(w.split("-")[0] in ("tensorflow", "keras", "jax") for w in manifest["wheels"])
    data = kaggle_root / "input" / "asl-fingerspelling"
    synth = [str(BIN / "aslfr"), "synth", "--out", str(data), "--sequences", "40"]
    synth += ["--participants", "5", "--seed", "3", "--sequences-per-file", "20"]
    subprocess.run([*synth, "--difficulty", "0"], check=True, capture_output=True)

    kernel = tmp_path / "kernel"  # the kernel's Python: the image's packages, no aslfr
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(kernel)], check=True)
    kernel_python = kernel / "bin" / "python"
    site = Path(
        subprocess.check_output(
            [kernel_python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            text=True,
        ).strip()
    )
    image = image_site_packages(tmp_path / "image-site-packages")
    (site / "kaggle_image.pth").write_text(f"{image}\n")
    subprocess.run(
        [kernel_python, "-m", "ipykernel", "install", "--prefix", str(kernel), "--name", "python3"],
        check=True,
        capture_output=True,
    )
    working = kaggle_root / "working"
    working.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "KERAS_BACKEND")}
    env["ASLFR_KAGGLE_INPUT"] = str(kaggle_root / "input")
    probe = "import aslfr_lib, keras, tensorflow; print(aslfr_lib.__file__, keras.__file__)"
    before = subprocess.run(
        [kernel_python, "-c", probe], cwd=working, env=env, capture_output=True, text=True
    )
    assert "No module named 'aslfr_lib'" in before.stderr  # the image has no aslfr

    for path in (kaggle_root / "input").rglob("*"):
        path.chmod(path.stat().st_mode & ~0o222)  # read-only, as Kaggle mounts inputs
    frozen = snapshot(kaggle_root / "input")
    tiny_model = ["-p", "encoder_dim", "32", "-p", "decoder_dim", "32", "-p", "encoder_blocks"]
    tiny_model += ["1", "-p", "decoder_blocks", "1", "-p", "epochs", "2", "-p", "warmup_epochs"]
    tiny_model += ["1", "-p", "batch_size", "16", "-p", "verbose", "2"]
    parameters = {
        "01_preprocessing": ["-p", "data", str(data), "-p", "out", "processed", "-p", "frames"]
        + ["32", "-p", "val_fraction", "0.25", "-p", "workers", "1"],
        "02_training": ["-p", "processed", "processed", "-p", "out", "model", *tiny_model],
        "03_inference_export": ["-p", "model", "model", "-p", "processed", "processed"]
        + ["-p", "data", str(data), "-p", "out", "submission", "-p", "limit", "10"],
    }
    try:
        for name, arguments in parameters.items():
            notebook = bundle / "notebooks" / f"{name}.ipynb"  # the copy a user uploads
            done = subprocess.run(
                [kernel_python, "-m", "papermill", str(notebook), f"{name}.ipynb", *arguments]
                + ["-k", "python3", "--cwd", str(working)],
                cwd=working,
                env=env,
                capture_output=True,
                text=True,
            )
            assert done.returncode == 0, done.stderr[-3000:]
    finally:
        for path in (kaggle_root / "input").rglob("*"):
            path.chmod(path.stat().st_mode | 0o200)
    assert snapshot(kaggle_root / "input") == frozen  # nothing written to the input

    after = subprocess.run(
        [kernel_python, "-c", probe], cwd=working, env=env, capture_output=True, text=True
    )
    aslfr_file, keras_file = after.stdout.split()
    assert aslfr_file.startswith(str(site))  # installed from the bundle into the kernel
    assert keras_file.startswith(str(image))  # the image's Keras, not replaced
    installed = {path.name.split("-")[0].lower() for path in site.glob("*.dist-info")}
    assert installed == {"aslfr", "rapidfuzz", "ai_edge_litert", "backports_strenum"}
    assert (working / "submission" / "submission.zip").is_file()
    assert (working / "model" / "best.keras").is_file()
    print(f"emulated Kaggle kernel: {time.perf_counter() - started:.0f} s")
