import os

import numpy as np
import pytest

from aslfr_lib import atomic


def test_write_replaces_whole_file_and_leaves_no_temporaries(tmp_path):
    target = tmp_path / "sub" / "a.json"
    atomic.write_json(target, {"a": 1})
    atomic.write_json(target, {"b": 2})
    assert target.read_text().strip().startswith("{") and '"b": 2' in target.read_text()
    assert [p.name for p in target.parent.iterdir()] == ["a.json"]


def test_failure_keeps_old_content(tmp_path):
    target = tmp_path / "x.txt"
    atomic.write_text(target, "old")
    with pytest.raises(RuntimeError), atomic.atomic_path(target) as path:
        path.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.txt"]


def test_npy_round_trip_and_permissions(tmp_path):
    target = tmp_path / "a.npy"
    atomic.save_npy(target, np.arange(5, dtype=np.int8))
    np.testing.assert_array_equal(np.load(target, mmap_mode="r"), np.arange(5))
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask
