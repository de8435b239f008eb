"""Shared test setup: the Keras backend is chosen before anything imports keras."""

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures"


@pytest.fixture(scope="module")
def module_tmp_path(request, tmp_path_factory) -> Iterator[Path]:
    """A folder for the data a test module's tests share, removed once they are done.

    ``tmp_path_factory``'s folders last until the session ends, so the suite's datasets (a few
    hundred MB each) would pile up on a CI machine's disk; each test's own ``tmp_path`` goes
    as soon as it passes (``tmp_path_retention_policy`` in pyproject.toml).
    """
    path = tmp_path_factory.mktemp(request.module.__name__.rpartition(".")[2])
    yield path
    shutil.rmtree(path, ignore_errors=True)
