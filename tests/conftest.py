"""Shared test setup: the Keras backend is chosen before anything imports keras."""

import os
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures"
