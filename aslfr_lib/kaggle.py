"""``aslfr kaggle-bundle --out DIR``: aslfr for a Kaggle kernel that cannot reach the package index.

A Kaggle kernel has TensorFlow, Keras, JAX and most of what aslfr imports, and often no internet.
The bundle is a folder to upload as a Kaggle dataset: the wheel of ``aslfr_lib`` and the wheels
of the few packages the image lacks (``MISSING_ON_KAGGLE``), for each Python version Kaggle may
run, plus ``requirements.txt`` (what to install), a README, ``dataset-metadata.json`` for
``kaggle datasets create`` and the notebooks. The first cell of each notebook installs it, only
under ``/kaggle``, with ``pip install --no-index --no-deps``: nothing is fetched and nothing the
image ships (``NEVER_BUNDLED``: TensorFlow, Keras, JAX) is replaced.

Assumption (Kaggle/docker-python's ``installed_cpu_packages.txt``, 2026): the image ships
tensorflow 2.19, keras 3.13, jax 0.7, numpy, pandas, pyarrow, matplotlib, seaborn, tqdm, pyyaml,
protobuf, flatbuffers, ml_dtypes, typing-extensions, papermill and ipykernel; it lacks rapidfuzz
and ai-edge-litert (LiteRT, which ``check-submission`` runs the model with) and its dependency
backports.strenum.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
MISSING_ON_KAGGLE = ("rapidfuzz>=3.9", "ai-edge-litert>=2.0", "backports.strenum")
NEVER_BUNDLED = frozenset({"tensorflow", "tensorflow-cpu", "keras", "jax", "jaxlib", "numpy"})
PYTHON_VERSIONS = ("3.11", "3.12")  # Kaggle's image follows Colab's Python; either works
# pip download takes exact platform tags: every manylinux glibc up to Kaggle's Ubuntu 22.04 (2.35).
PLATFORMS = ("manylinux2014_x86_64", *(f"manylinux_2_{minor}_x86_64" for minor in range(17, 36)))
REQUIREMENTS = "requirements.txt"

README = """\
# aslfr bundle for Kaggle kernels

Made by `aslfr kaggle-bundle` ({created}). Wheels:

{wheels}

Upload this folder as a Kaggle dataset, then add it to a notebook (Add Input):

    kaggle datasets create -p {folder}     # edit dataset-metadata.json's id first
    # or: kaggle.com -> Datasets -> New Dataset -> upload every file of this folder

The first cell of each aslfr notebook (`notebooks/` here) finds this bundle under
/kaggle/input and runs

    pip install --no-index --no-deps --find-links BUNDLE -r BUNDLE/requirements.txt

`--no-index`: nothing comes from the internet (kernels often have none). `--no-deps`: only
what requirements.txt names is installed, so the image's TensorFlow, Keras and JAX stay as
they are. Outside /kaggle the cell does nothing.

Supported frameworks: {supported}.
An image with an older Keras (Kaggle's shipped 3.13.2 when this was written) cannot build the
model. Wheels for Python {pythons} (Kaggle's image runs one of them; `aslfr kaggle-bundle
--python X.Y` for another).
"""


class BundleError(RuntimeError):
    """The bundle cannot be built (not a source checkout, pip failed, a framework would ship)."""


def requirement_name(requirement: str) -> str:
    """``"rapidfuzz>=3.9"`` -> ``"rapidfuzz"``."""
    for separator in "<>=!~; [":
        requirement = requirement.split(separator)[0]
    return requirement.strip().lower()


def wheel_name(wheel: Path) -> str:
    """Distribution name of a wheel file, normalised the way pip compares names."""
    return wheel.name.split("-")[0].lower().replace("_", "-")


def _pip(*args: str) -> None:
    command = [sys.executable, "-m", "pip", *args]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise BundleError(f"{' '.join(command)} failed:\n{done.stderr.strip()[-2000:]}")


def build_aslfr_wheel(out: Path) -> Path:
    """The aslfr wheel, built from a copy of the checkout (the working tree stays clean)."""
    if not (PROJECT / "pyproject.toml").is_file():
        raise BundleError(f"{PROJECT}: not a source checkout; run kaggle-bundle from one")
    with tempfile.TemporaryDirectory(prefix="aslfr-wheel-") as scratch:
        source = Path(scratch) / "aslfr"
        source.mkdir()
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(PROJECT / name, source / name)
        shutil.copytree(
            PROJECT / "aslfr_lib",
            source / "aslfr_lib",
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )
        # No build isolation: setuptools is already here, and the registry may not be.
        _pip("wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(out), str(source))
    (wheel,) = out.glob("aslfr-*.whl")
    return wheel


def download_missing(
    out: Path, python_versions: tuple[str, ...], wheels_from: str | None = None
) -> None:
    """Wheels of ``MISSING_ON_KAGGLE`` for each Python version (Linux x86_64, CPython)."""
    for version in python_versions:
        args = ["download", "--quiet", "--no-deps", "--only-binary=:all:", "-d", str(out)]
        args += ["--python-version", version, "--implementation", "cp"]
        for platform in PLATFORMS:
            args += ["--platform", platform]
        if wheels_from:
            args += ["--no-index", "--find-links", wheels_from]
        _pip(*args, *MISSING_ON_KAGGLE)


def supported_frameworks() -> str:
    """The TensorFlow/Keras/JAX range pyproject.toml states, for the README."""
    import tomllib

    extras = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]
    train = extras["optional-dependencies"]["train"] + extras["optional-dependencies"]["jax"]
    return ", ".join(sorted({item.split(";")[0].strip() for item in train}))


def build_bundle(
    out: str | Path,
    python_versions: tuple[str, ...] = PYTHON_VERSIONS,
    wheels_from: str | None = None,
) -> dict:
    """Write the bundle into ``out`` (its old wheels replaced); returns its manifest."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise BundleError(f"{out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.whl"):
        old.unlink()
    aslfr = build_aslfr_wheel(out)
    download_missing(out, python_versions, wheels_from)
    wheels = sorted(out.glob("*.whl"))
    shipped = {wheel_name(wheel) for wheel in wheels}
    forbidden = shipped & NEVER_BUNDLED
    if forbidden:
        raise BundleError(f"the bundle would replace the image's {sorted(forbidden)}")
    names = ["aslfr", *(requirement_name(r) for r in MISSING_ON_KAGGLE)]
    (out / REQUIREMENTS).write_text(
        "# pip install --no-index --no-deps --find-links . -r requirements.txt\n"
        + "\n".join(names)
        + "\n"
    )
    notebooks = PROJECT / "notebooks"
    if notebooks.is_dir():
        (out / "notebooks").mkdir(exist_ok=True)
        for notebook in sorted(notebooks.glob("*.ipynb")):
            shutil.copy2(notebook, out / "notebooks" / notebook.name)
    metadata = out / "dataset-metadata.json"
    if not metadata.exists():  # the user's own id survives a rebuild
        metadata.write_text(
            json.dumps(
                {
                    "title": "aslfr bundle",
                    "id": "YOUR-KAGGLE-USERNAME/aslfr-bundle",
                    "licenses": [{"name": "Apache 2.0"}],
                },
                indent=2,
            )
            + "\n"
        )
    manifest = {
        "aslfr": aslfr.name,
        "wheels": [wheel.name for wheel in wheels],
        "install": names,
        "python_versions": list(python_versions),
        "never_bundled": sorted(NEVER_BUNDLED),
        "megabytes": round(sum(wheel.stat().st_size for wheel in wheels) / 1e6, 1),
    }
    (out / "bundle.json").write_text(json.dumps(manifest, indent=2) + "\n")
    (out / "README.md").write_text(
        README.format(
            created=f"aslfr {aslfr.name.split('-')[1]}",
            wheels="\n".join(f"- {wheel.name}" for wheel in wheels),
            folder=out,
            supported=supported_frameworks(),
            pythons=", ".join(python_versions),
        )
    )
    return manifest


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="aslfr kaggle-bundle", description=__doc__.split("\n")[0].split(": ", 1)[1]
    )
    parser.add_argument("--out", required=True, help="bundle folder (upload it as a dataset)")
    parser.add_argument(
        "--python",
        default=",".join(PYTHON_VERSIONS),
        help="comma-separated Python versions to fetch wheels for (default: %(default)s)",
    )
    parser.add_argument(
        "--wheels-from",
        default=None,
        help="folder of wheels to take the missing packages from, instead of the package index",
    )
    args = parser.parse_args(argv)
    versions = tuple(v.strip() for v in args.python.split(",") if v.strip())
    try:
        manifest = build_bundle(args.out, versions, args.wheels_from)
    except BundleError as error:
        print(f"aslfr kaggle-bundle: error: {error}", file=sys.stderr)
        return 1
    print(f"{args.out}: {len(manifest['wheels'])} wheels, {manifest['megabytes']} MB")
    for wheel in manifest["wheels"]:
        print(f"  {wheel}")
    print(f"next: upload {args.out} as a Kaggle dataset ({args.out}/README.md)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
