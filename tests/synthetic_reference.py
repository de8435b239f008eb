"""Reference datasets of the synthetic generator, pinned by the sha256 of every file written.

The project's published numbers were measured on data from the generator as it was before named
styles existed; ``style="default"`` must keep writing exactly those bytes. This module writes a
few tiny datasets that reach every path of the generator (left-handed signers, doubled letters,
the other hand, the supplemental set, two difficulties) and hashes what it wrote.

Run it as a script to print the hashes of the code checked out now (paste them into
``tests/test_synthetic.py`` only when the generator's output is *meant* to change)::

    .venv/bin/python tests/synthetic_reference.py

Floating point results (numpy's vectorised sin/cos/exp use different code paths on CPUs with and
without AVX-512) and the library versions written into parquet metadata make the bytes depend on
the environment; ``environment()`` names what they depend on, so a test can tell a changed
generator from a changed machine.
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
import tempfile
from pathlib import Path

REFERENCE_DATASETS = {  # folder -> SynthConfig fields (the style is left at its default)
    f"difficulty_{difficulty}": {
        "sequences": 16,
        "participants": 6,
        "seed": 11,
        "sequences_per_file": 6,
        "difficulty": difficulty,
        "supplemental_sequences": 6,
    }
    for difficulty in (0.0, 0.6, 1.0)
}


def environment() -> dict[str, object]:
    """What the bytes of a dataset depend on besides the generator's code."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    features = np._core._multiarray_umath.__cpu_features__
    return {
        "machine": platform.machine(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "pyarrow": pa.__version__,
        "avx512_skx": bool(features.get("AVX512_SKX", False)),
    }


def file_hashes(folder: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``folder``."""
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def reference_hashes(out: Path) -> dict[str, str]:
    """Write every reference dataset under ``out``; ``folder/relative path`` -> sha256."""
    from aslfr_lib.synthetic import SynthConfig, generate

    hashes = {}
    for name, fields in REFERENCE_DATASETS.items():
        generate(SynthConfig(out=str(out / name), **fields), progress=False)
        hashes |= {f"{name}/{path}": digest for path, digest in file_hashes(out / name).items()}
    return hashes


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        hashes = reference_hashes(Path(folder))
    json.dump({"environment": environment(), "hashes": hashes}, sys.stdout, indent=4)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
