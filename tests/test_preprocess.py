"""aslfr_lib.preprocess: per-sequence steps, statistics, split, the run on tiny parquet data
(ragged outputs), resuming, and every kind of bad input."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aslfr_lib import landmarks, vocab
from aslfr_lib import preprocess as pp

COLUMN_INDEX = {name: i for i, name in enumerate(landmarks.LANDMARK_COLUMNS)}
SELECTED_IN_FULL = np.array([COLUMN_INDEX[name] for name in landmarks.SELECTED_COLUMNS])


# ----------------------------------------------------------------------------------------------
# Tiny competition-layout datasets


def make_raw(
    rng: np.random.Generator,
    hand_frames: int,
    handless: int = 0,
    left_handed: bool = False,
) -> np.ndarray:
    """[hand_frames + handless, 164] with NaN where missing: lips always, one hand per frame."""
    total = hand_frames + handless
    raw = np.full((total, landmarks.NUM_FEATURES), np.nan, dtype=np.float32)
    raw[:, landmarks.LIPS] = rng.uniform(0.3, 0.7, (total, 80))
    hand_rows = np.sort(rng.permutation(total)[:hand_frames])
    dominant = landmarks.LEFT_HAND if left_handed else landmarks.RIGHT_HAND
    raw[hand_rows, dominant] = rng.uniform(0.1, 0.9, (hand_frames, 42))
    return raw


def write_parquet(path: Path, sequences: dict[int, np.ndarray], all_columns: bool = True) -> None:
    """Competition layout: index sequence_id, column frame, landmark columns as float32."""
    ids, frames, blocks = [], [], []
    for sequence_id, raw in sequences.items():
        ids += [sequence_id] * len(raw)
        frames += list(range(len(raw)))
        blocks.append(raw)
    selected = np.concatenate(blocks) if blocks else np.zeros((0, 164), np.float32)
    if all_columns:
        values = np.full((len(selected), len(landmarks.LANDMARK_COLUMNS)), np.nan, np.float32)
        values[:, SELECTED_IN_FULL] = selected
        columns = landmarks.LANDMARK_COLUMNS
    else:
        values, columns = selected, landmarks.SELECTED_COLUMNS
    table = pd.DataFrame(values, columns=columns)
    table.insert(0, "frame", np.array(frames, dtype=np.int16))
    table.index = pd.Index(np.array(ids, dtype=np.int64), name="sequence_id")
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_parquet(path)


def write_dataset(root: Path, files: dict[int, list[dict]], **parquet_options) -> dict:
    """files: file_id -> [{sequence_id, participant_id, phrase, raw}]; returns raw by id."""
    rows, raws = [], {}
    for file_id, sequences in files.items():
        path = f"train_landmarks/{file_id}.parquet"
        write_parquet(
            root / path, {s["sequence_id"]: s["raw"] for s in sequences}, **parquet_options
        )
        for s in sequences:
            rows.append([path, file_id, s["sequence_id"], s["participant_id"], s["phrase"]])
            raws[s["sequence_id"]] = s["raw"]
    pd.DataFrame(rows, columns=list(pp.CSV_COLUMNS)).to_csv(root / "train.csv", index=False)
    return raws


def standard_files(seed: int = 0) -> dict[int, list[dict]]:
    """3 files, 4 participants, 12 sequences, some left-handed, one of each exclusion."""
    rng = np.random.default_rng(seed)
    phrases = ["abc", "hello world", "1 main st", "www.x.com", "a-b", "zz"]
    files: dict[int, list[dict]] = {}
    sequence_id = 1000
    for file_id in (11, 22, 33):
        files[file_id] = []
        for k in range(4):
            sequence_id += 1
            phrase = phrases[(sequence_id + k) % len(phrases)]
            raw = make_raw(
                rng,
                hand_frames=int(rng.integers(2 * len(phrase) + 1, 160)),
                handless=int(rng.integers(0, 20)),
                left_handed=k == 1,
            )
            files[file_id].append(
                {
                    "sequence_id": sequence_id,
                    "participant_id": 100 + (sequence_id % 4),
                    "phrase": phrase,
                    "raw": raw,
                }
            )
    # Exclusions: too few hand frames, no hand at all, a phrase of 32 characters.
    files[11][0]["raw"] = make_raw(rng, hand_frames=3, handless=30)
    files[22][0]["raw"] = make_raw(rng, hand_frames=0, handless=10)
    files[33][0]["phrase"] = "x" * 32
    return files


def config_for(root: Path, out: Path, **overrides) -> pp.PreprocessConfig:
    values = {"data": str(root), "out": str(out), "frames": 16, "workers": 1, "val_fraction": 0.25}
    return pp.PreprocessConfig(**(values | overrides))


@pytest.fixture(scope="module")
def dataset_template(module_tmp_path) -> tuple[Path, dict]:
    root = module_tmp_path / "template"
    return root, write_dataset(root, standard_files())


@pytest.fixture
def dataset(dataset_template, tmp_path: Path) -> tuple[Path, dict]:
    """A fresh copy of the standard dataset per test (tests damage it on purpose)."""
    template, raws = dataset_template
    root = tmp_path / "data"
    shutil.copytree(template, root)
    return root, raws


def output_bytes(out: Path) -> dict[str, bytes]:
    return {name: (out / name).read_bytes() for name in (*pp.ARRAY_FILES, pp.META_FILE)}


# ----------------------------------------------------------------------------------------------
# One sequence


def test_clean_sequence_zeroes_nan_and_drops_handless_frames():
    raw = np.full((5, 164), np.nan, np.float32)
    raw[:, landmarks.LIPS] = 0.5
    raw[1, landmarks.RIGHT_HAND] = 0.25
    raw[3, landmarks.RIGHT_HAND] = 0.75
    raw[3, 42] = np.nan  # a single missing value inside a present hand
    cleaned = pp.clean_sequence(raw)
    assert cleaned.dtype == np.float32 and cleaned.shape == (2, 164)
    assert not np.isnan(cleaned).any()
    np.testing.assert_array_equal(cleaned[0, landmarks.RIGHT_HAND], 0.25)
    assert cleaned[1, 42] == 0 and cleaned[1, 43] == 0.75
    np.testing.assert_array_equal(cleaned[:, landmarks.LEFT_HAND], 0)
    np.testing.assert_array_equal(cleaned[:, landmarks.LIPS], 0.5)


def test_left_handed_sequence_is_mirrored_into_right_hand_slots():
    cols = landmarks.SELECTED_COLUMNS
    raw = np.zeros((3, 164), np.float32)
    raw[:, cols.index("x_left_hand_0")] = 0.3
    raw[:, cols.index("y_left_hand_0")] = 0.6
    raw[0, cols.index("x_right_hand_5")] = 0.9  # right hand seen once, left three times
    raw[:, cols.index("x_face_61")] = 0.2
    raw[:, cols.index("x_face_0")] = 0.45  # midline point stays in place
    cleaned = pp.clean_sequence(raw)
    assert cleaned[0, cols.index("x_right_hand_0")] == np.float32(1) - np.float32(0.3)
    assert cleaned[0, cols.index("y_right_hand_0")] == np.float32(0.6)
    assert cleaned[0, cols.index("x_left_hand_5")] == np.float32(1) - np.float32(0.9)
    assert cleaned[1, cols.index("x_left_hand_5")] == 0  # missing stays missing, not 1
    assert cleaned[0, cols.index("x_face_291")] == np.float32(1) - np.float32(0.2)
    assert cleaned[0, cols.index("x_face_61")] == 0
    assert cleaned[0, cols.index("x_face_0")] == np.float32(1) - np.float32(0.45)
    np.testing.assert_array_equal(pp.clean_sequence(raw, mirror=False), raw)


def test_right_handed_and_tied_sequences_are_not_mirrored():
    raw = np.zeros((2, 164), np.float32)
    raw[0, landmarks.LEFT_HAND] = 0.3
    raw[1, landmarks.RIGHT_HAND] = 0.6
    np.testing.assert_array_equal(pp.clean_sequence(raw), raw)


def test_resize_pads_shorter_and_keeps_exact_length():
    frames = np.arange(3 * 164, dtype=np.float32).reshape(3, 164) + 1
    padded = pp.resize_frames(frames, 5)
    np.testing.assert_array_equal(padded[:3], frames)
    np.testing.assert_array_equal(padded[3:], 0)
    np.testing.assert_array_equal(pp.resize_frames(frames, 3), frames)


def test_resize_longer_is_half_pixel_bilinear():
    frames = np.random.default_rng(0).random((4, 164), dtype=np.float32)
    halved = pp.resize_frames(frames, 2)  # source positions 0.5 and 2.5
    np.testing.assert_allclose(halved[0], (frames[0] + frames[1]) / 2, rtol=1e-6)
    np.testing.assert_allclose(halved[1], (frames[2] + frames[3]) / 2, rtol=1e-6)
    three = frames[:3]
    two = pp.resize_frames(three, 2)  # scale 1.5: positions 0.25 and 1.75
    np.testing.assert_allclose(two[0], three[0] + 0.25 * (three[1] - three[0]), rtol=1e-6)
    np.testing.assert_allclose(two[1], three[1] + 0.75 * (three[2] - three[1]), rtol=1e-6)
    ramp = np.repeat(np.arange(10, dtype=np.float32)[:, None], 164, axis=1)
    one = pp.resize_frames(ramp, 1)  # position 4.5: the middle of the ramp
    np.testing.assert_allclose(one, 4.5)


def test_resize_into_out_equals_a_new_array():
    rng = np.random.default_rng(3)
    batch = np.full((3, 8, 164), np.nan, np.float32)  # rows of a batch, with stale values
    for row, count in enumerate((3, 8, 21)):
        frames = rng.random((count, 164), dtype=np.float32)
        result = pp.resize_frames(frames, 8, out=batch[row])
        assert np.shares_memory(result, batch)
        np.testing.assert_array_equal(batch[row], pp.resize_frames(frames, 8))
    with pytest.raises(ValueError, match="out must be"):
        pp.resize_frames(frames, 8, out=np.empty((8, 164), np.float64))


def test_preprocess_sequence_shape_and_empty_input():
    rng = np.random.default_rng(1)
    out = pp.preprocess_sequence(make_raw(rng, 40, handless=7), frames=32)
    assert out.shape == (32, 164) and out.dtype == np.float32
    np.testing.assert_array_equal(pp.preprocess_sequence(make_raw(rng, 0, 9), 8), 0)
    np.testing.assert_array_equal(pp.preprocess_sequence(np.zeros((0, 164), np.float32), 8), 0)
    with pytest.raises(ValueError, match="164"):
        pp.clean_sequence(np.zeros((3, 10)))


# ----------------------------------------------------------------------------------------------
# Statistics and split


def test_normalisation_ignores_zeros_and_guards_constant_columns(monkeypatch):
    rng = np.random.default_rng(2)
    X = rng.normal(0.5, 0.2, (7, 9, 164)).astype(np.float32)
    X[rng.random(X.shape) < 0.3] = 0
    X[..., 0] = 0  # never present
    X[..., 1] = np.where(X[..., 1] != 0, 0.4, 0)  # constant where present
    monkeypatch.setattr(pp, "MOMENT_BLOCK_VALUES", 164 * 5)  # many merged blocks
    means, stds = pp.compute_normalisation(X)
    assert means.dtype == stds.dtype == np.float32 and means.shape == (164,)
    assert (means[0], stds[0]) == (0, 1)
    assert means[1] == pytest.approx(0.4) and stds[1] == 1
    for column in range(2, 164):
        values = X[..., column][X[..., column] != 0].astype(np.float64)
        assert means[column] == pytest.approx(values.mean(), rel=1e-5)
        assert stds[column] == pytest.approx(values.std(), rel=1e-4)


def test_split_by_participant_is_disjoint_and_deterministic():
    participants = np.repeat(np.arange(10), np.arange(1, 11))
    is_val = pp.split_by_participant(participants, 0.2, seed=3)
    assert not set(participants[is_val]) & set(participants[~is_val])
    assert is_val.sum() >= 0.2 * len(participants) and (~is_val).any()
    np.testing.assert_array_equal(is_val, pp.split_by_participant(participants, 0.2, seed=3))
    others = [pp.split_by_participant(participants, 0.2, seed=s) for s in range(4, 10)]
    assert any((o != is_val).any() for o in others)
    assert not pp.split_by_participant(participants, 0.0, seed=3).any()
    assert (~pp.split_by_participant(participants, 0.99, seed=3)).any()
    with pytest.raises(pp.PreprocessError, match="2 participants"):
        pp.split_by_participant(np.array([5, 5, 5]), 0.1, seed=0)


# ----------------------------------------------------------------------------------------------
# The run


def test_run_writes_consistent_outputs(dataset, tmp_path):
    root, raws = dataset
    out = tmp_path / "out"
    summary = pp.run(config_for(root, out), progress=False)
    data = pp.load_processed(out)
    meta = data.meta

    assert summary["excluded_by_reason"] == {
        "no_hand_frames": 1,
        "phrase_too_long": 1,
        "too_few_hand_frames": 1,
    }
    assert summary["train"] + summary["val"] == 9 and summary["val"] > 0
    assert summary["mirrored"] == 3
    assert {e["sequence_id"] for e in meta["exclusions"]} == {1001, 1005, 1009}
    assert (meta["storage"], meta["format_version"]) == ("ragged", pp.OUTPUT_FORMAT_VERSION)
    assert meta["columns"] == landmarks.SELECTED_COLUMNS and meta["config"]["frames"] == 16
    assert data.frames == 16
    assert data.y_train.dtype == np.int8 and data.y_val.shape == (summary["val"], 32)
    assert not set(meta["train"]["participant_ids"]) & set(meta["val"]["participant_ids"])

    phrases = pd.read_csv(root / "train.csv").set_index("sequence_id")["phrase"]
    for split, ragged, y in (
        ("train", data.ragged_train, data.y_train),
        ("val", data.ragged_val, data.y_val),
    ):
        assert isinstance(ragged.values, np.memmap) and ragged.values.dtype == np.float32
        offsets = np.load(out / f"offsets_{split}.npy")
        assert offsets.dtype == np.int64 and offsets.shape == (len(y) + 1,) and offsets[0] == 0
        assert offsets[-1] == len(ragged.values) == len(np.load(out / f"frames_{split}.npy"))
        np.testing.assert_array_equal(ragged.lengths, meta[split]["hand_frames"])
        for row, sequence_id in enumerate(meta[split]["sequence_ids"]):
            # Stored: the cleaned frames at their own length; read: padded or resized to any
            # length exactly as the padded arrays of format 1 held them.
            np.testing.assert_array_equal(ragged[row], pp.clean_sequence(raws[sequence_id]))
            for length in (16, 128):
                expected = pp.preprocess_sequence(raws[sequence_id], frames=length)
                np.testing.assert_array_equal(pp.ResizedFrames(ragged, length)[row], expected)
            np.testing.assert_array_equal(y[row], vocab.encode(phrases[sequence_id]))
            assert vocab.decode(y[row]) == phrases[sequence_id]
    lengths = np.concatenate([data.ragged_train.lengths, data.ragged_val.lengths])
    assert lengths.min() < 128 < lengths.max()  # both padding and resizing are exercised
    assert data.X_train.shape == (summary["train"], 16, 164)
    means, stds = pp.compute_normalisation(data.ragged_train.values)
    np.testing.assert_allclose(data.means, means, rtol=1e-5)
    np.testing.assert_allclose(data.stds, stds, rtol=1e-5)
    assert not (out / pp.PARTS_DIR).exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp files left


def test_held_out_sequences_too_short_to_train_on_stay_in_validation(tmp_path):
    files = standard_files()
    rng = np.random.default_rng(1)
    files[33][1]["raw"] = make_raw(rng, hand_frames=2, handless=20)  # 1010, participant 102
    files[22][2]["raw"] = make_raw(rng, hand_frames=0, handless=9)  # 1007, participant 103
    root = tmp_path / "data"
    raws = write_dataset(root, files)
    out = tmp_path / "out"
    for seed in range(20):  # a split that holds out participants 102 and 103
        config = config_for(root, out, val_fraction=0.6, seed=seed)
        try:
            summary = pp.run(config, progress=False)
        except pp.PreprocessError as error:  # a split that left no trainable sequence
            assert "long enough to train on" in str(error)
            continue
        data = pp.load_processed(out)
        meta = data.meta
        val_participants = set(meta["val"]["participant_ids"])
        too_short = [e for e in meta["exclusions"] if e["reason"] in pp.TOO_SHORT_REASONS]
        scored = {e["sequence_id"] for e in too_short if e["participant_id"] in val_participants}
        if scored:
            break
    assert scored
    assert all(bool(e.get("scored")) == (e["sequence_id"] in scored) for e in too_short)
    assert not scored & set(meta["train"]["sequence_ids"])
    trainable = dict(zip(meta["val"]["sequence_ids"], data.val_trainable, strict=True))
    assert {s for s, t in trainable.items() if not t} == scored
    assert summary["val_too_short"] == len(scored)
    assert summary["val"] == summary["val_trainable"] + len(scored)
    for row, sequence_id in enumerate(meta["val"]["sequence_ids"]):
        np.testing.assert_array_equal(data.ragged_val[row], pp.clean_sequence(raws[sequence_id]))
    # Who is held out does not depend on which sequences are long enough to train on.
    keep_all = pp.run(dataclasses.replace(config, min_frames_per_char=0), progress=False)
    assert keep_all["val_too_short"] < summary["val_too_short"]  # handless ones stay out
    assert set(pp.load_processed(out).meta["val"]["participant_ids"]) == val_participants


def test_normalisation_is_over_the_ragged_hand_frames(dataset, tmp_path):
    root, raws = dataset
    data = pp.load_processed(pp.run(config_for(root, tmp_path / "o"), progress=False)["out"])
    cleaned = [pp.clean_sequence(raws[s]) for s in data.meta["train"]["sequence_ids"]]
    means, stds = pp.compute_normalisation(np.concatenate(cleaned))
    np.testing.assert_allclose(data.means, means, rtol=1e-5)
    np.testing.assert_allclose(data.stds, stds, rtol=1e-5)
    resized_means, _ = pp.compute_normalisation(np.asarray(data.X_train))
    assert not np.allclose(data.means, resized_means, rtol=1e-5)  # not the old statistics


def test_run_float16_and_train_on_all(dataset, tmp_path):
    root, raws = dataset
    out = tmp_path / "out16"
    summary = pp.run(config_for(root, out, dtype="float16", val_fraction=0.0), progress=False)
    data = pp.load_processed(out, mmap=False)
    assert summary["val"] == 0 and len(data.ragged_val) == 0 and data.X_val.shape == (0, 16, 164)
    assert data.ragged_train.dtype == np.float16 and data.y_val.dtype == np.int8
    assert np.load(out / "frames_train.npy").dtype == np.float16
    first = data.meta["train"]["sequence_ids"][0]
    stored = pp.clean_sequence(raws[first]).astype(np.float16)
    assert data.ragged_train[0].dtype == np.float32  # widened when read
    np.testing.assert_array_equal(data.ragged_train[0], stored)
    np.testing.assert_array_equal(data.X_train[0], pp.resize_frames(stored, 16))


def test_min_frames_per_char_zero_keeps_short_sequences(dataset, tmp_path):
    root, _ = dataset
    summary = pp.run(config_for(root, tmp_path / "o", min_frames_per_char=0), progress=False)
    assert summary["excluded_by_reason"] == {"no_hand_frames": 1, "phrase_too_long": 1}


def test_parallel_workers_match_one_process(dataset, tmp_path):
    root, _ = dataset
    pp.run(config_for(root, tmp_path / "one"), progress=False)
    pp.run(config_for(root, tmp_path / "two", workers=2), progress=False)
    for name in pp.ARRAY_FILES:
        np.testing.assert_array_equal(
            np.load(tmp_path / "one" / name), np.load(tmp_path / "two" / name)
        )
    one, two = pp.load_processed(tmp_path / "one"), pp.load_processed(tmp_path / "two")
    assert one.meta["train"] == two.meta["train"]


def parts_without_outputs(root, out, monkeypatch) -> None:
    """Preprocess ``root`` into ``out`` up to the finished parts; stop before assembling."""
    monkeypatch.setattr(pp, "assemble", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        pp.run(config_for(root, out), progress=False)
    monkeypatch.undo()


def test_killed_run_resumes_per_file(dataset, tmp_path, monkeypatch):
    root, _ = dataset
    out = tmp_path / "out"
    config = config_for(root, out)
    parts_without_outputs(root, out, monkeypatch)
    parts = sorted(p.name for p in (out / pp.PARTS_DIR).iterdir())
    assert parts == [f"train_landmarks__{i}.{ext}" for i in (11, 22, 33) for ext in ("json", "npy")]
    assert not (out / "frames_train.npy").exists()

    def must_not_run(task):
        raise AssertionError(f"{task.path} was processed again")

    monkeypatch.setattr(pp, "process_file", must_not_run)
    stale = out / ".frames_train.npy.k1ll3d.npy.tmp"  # what a SIGKILL during assembly leaves
    stale.write_bytes(b"half an array")
    summary = pp.run(config, progress=False)
    assert summary["files_reused"] == 3
    assert not stale.exists()
    monkeypatch.undo()
    reference = tmp_path / "reference"
    pp.run(config_for(root, reference), progress=False)
    assert output_bytes(out).keys() == output_bytes(reference).keys()
    for name in pp.ARRAY_FILES:
        np.testing.assert_array_equal(np.load(out / name), np.load(reference / name))


def test_stale_part_is_recomputed(dataset, tmp_path, monkeypatch):
    root, _ = dataset
    out = tmp_path / "out"
    parts_without_outputs(root, out, monkeypatch)
    summary = pp.run(config_for(root, out, mirror=False), progress=False)  # other settings
    assert summary["files_reused"] == 0
    assert pp.load_processed(out).meta["summary"]["mirrored"] == 0


def test_parts_do_not_depend_on_frames(dataset, tmp_path, monkeypatch):
    """Storage is unresized, so another model length reuses every finished part."""
    root, _ = dataset
    out = tmp_path / "out"
    parts_without_outputs(root, out, monkeypatch)
    summary = pp.run(config_for(root, out, frames=8), progress=False)
    assert summary["files_reused"] == 3
    data = pp.load_processed(out)
    assert data.meta["config"]["frames"] == 8 and data.X_train.shape[1:] == (8, 164)


def test_cli_main(dataset, tmp_path, capsys):
    root, _ = dataset
    out = tmp_path / "cli"
    argv = ["--data", str(root), "--out", str(out), "--frames", "12", "--workers", "1"]
    assert pp.main([*argv, "--no-mirror", "--quiet"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["mirrored"] == 0 and printed["train"] > 0
    assert pp.load_processed(out).meta["config"]["mirror"] is False
    assert pp.main(["--data", str(tmp_path / "nowhere"), "--out", str(out), "--quiet"]) == 1
    assert "train.csv" in capsys.readouterr().err


def test_load_processed_names_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="frames_train.npy"):
        pp.load_processed(tmp_path)


def write_old_layout(folder: Path) -> None:
    """What format 1 wrote: frames padded to a fixed length in X_*.npy."""
    folder.mkdir(parents=True, exist_ok=True)
    for split in ("train", "val"):
        np.save(folder / f"X_{split}.npy", np.zeros((2, 16, 164), np.float32))
        np.save(folder / f"y_{split}.npy", np.stack([vocab.encode("ab")] * 2).astype(np.int8))
    np.save(folder / "means.npy", np.zeros(164, np.float32))
    np.save(folder / "stds.npy", np.ones(164, np.float32))
    (folder / "meta.json").write_text(json.dumps({"format_version": 1}))


def test_old_layout_is_a_clear_error_and_a_new_run_replaces_it(dataset, tmp_path):
    root, _ = dataset
    out = tmp_path / "old"
    write_old_layout(out)
    with pytest.raises(FileNotFoundError) as raised:
        pp.load_processed(out)
    message = str(raised.value)
    assert "older aslfr preprocess" in message and f"aslfr preprocess --out {out}" in message
    pp.run(config_for(root, out), progress=False)
    assert not (out / "X_train.npy").exists() and not (out / "X_val.npy").exists()
    assert len(pp.load_processed(out).ragged_train) > 0


def test_load_processed_rejects_inconsistent_offsets(dataset, tmp_path):
    root, _ = dataset
    out = tmp_path / "o"
    pp.run(config_for(root, out), progress=False)
    offsets = np.load(out / "offsets_train.npy")
    offsets[-1] += 3  # more frames than frames_train.npy holds
    np.save(out / "offsets_train.npy", offsets)
    with pytest.raises(pp.PreprocessError, match=r"frames_train\.npy.*offsets_train\.npy"):
        pp.load_processed(out)


def test_supplemental_metadata_is_read_when_asked(dataset, tmp_path):
    root, _ = dataset
    rng = np.random.default_rng(5)
    extra = {7001: make_raw(rng, 60), 7002: make_raw(rng, 50, left_handed=True)}
    write_parquet(root / "supplemental_landmarks/5.parquet", extra)
    rows = [["supplemental_landmarks/5.parquet", 5, s, 900, "the cat"] for s in extra]
    pd.DataFrame(rows, columns=list(pp.CSV_COLUMNS)).to_csv(
        root / "supplemental_metadata.csv", index=False
    )
    without = pp.run(config_for(root, tmp_path / "a", val_fraction=0), progress=False)
    with_it = pp.run(
        config_for(root, tmp_path / "b", val_fraction=0, supplemental=True), progress=False
    )
    assert with_it["train"] == without["train"] + 2
    assert 7002 in pp.load_processed(tmp_path / "b").meta["train"]["sequence_ids"]


def test_unlisted_sequences_in_a_file_are_reported(tmp_path):
    rng = np.random.default_rng(6)
    root = tmp_path / "data"
    write_dataset(
        root,
        {
            1: [{"sequence_id": 1, "participant_id": 1, "phrase": "ab", "raw": make_raw(rng, 9)}],
        },
    )
    write_parquet(root / "train_landmarks/1.parquet", {1: make_raw(rng, 9), 2: make_raw(rng, 9)})
    summary = pp.run(config_for(root, tmp_path / "o", val_fraction=0), progress=False)
    assert summary["unlisted_sequences_in_files"] == 1 and summary["train"] == 1


# ----------------------------------------------------------------------------------------------
# Bad input: a clear error naming file and sequence id; a previous good output survives


@pytest.fixture
def good_run(dataset, tmp_path) -> tuple[Path, Path, dict[str, bytes]]:
    root, _ = dataset
    out = tmp_path / "out"
    pp.run(config_for(root, out), progress=False)
    return root, out, output_bytes(out)


def fails(root: Path, out: Path, before: dict[str, bytes], *patterns: str, **overrides) -> None:
    with pytest.raises(pp.PreprocessError) as raised:
        pp.run(config_for(root, out, **overrides), progress=False)
    for pattern in patterns:
        assert pattern in str(raised.value), str(raised.value)
    assert output_bytes(out) == before, "a failed run changed the previous outputs"


def test_corrupt_parquet(good_run):
    root, out, before = good_run
    (root / "train_landmarks/22.parquet").write_bytes(b"this is not parquet at all" * 10)
    fails(root, out, before, "train_landmarks/22.parquet", "1005", "parquet")


def test_truncated_parquet(good_run):
    root, out, before = good_run
    path = root / "train_landmarks/33.parquet"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    fails(root, out, before, "train_landmarks/33.parquet", "1009")


def test_missing_parquet_file(good_run):
    root, out, before = good_run
    (root / "train_landmarks/11.parquet").unlink()
    fails(root, out, before, "train_landmarks/11.parquet", "not found", "1001")


def test_missing_columns(good_run):
    root, out, before = good_run
    path = root / "train_landmarks/22.parquet"
    table = pd.read_parquet(path).drop(columns=["x_right_hand_3", "y_face_61"])
    table.to_parquet(path)
    fails(root, out, before, "train_landmarks/22.parquet", "x_right_hand_3", "y_face_61", "1005")


def test_duplicate_sequence_id_in_train_csv(good_run):
    root, out, before = good_run
    listed = pd.read_csv(root / "train.csv")
    pd.concat([listed, listed.iloc[[4]]]).to_csv(root / "train.csv", index=False)
    fails(root, out, before, "sequence id 1005", "listed 2 times", "train_landmarks/22.parquet")


def test_sequence_id_in_two_files(good_run):
    root, out, before = good_run
    rng = np.random.default_rng(8)
    path = root / "train_landmarks/33.parquet"
    write_parquet(path, {1009 + k: make_raw(rng, 40) for k in range(4)} | {1002: make_raw(rng, 9)})
    fails(root, out, before, "1002", "train_landmarks/11.parquet", "train_landmarks/33.parquet")


def test_listed_sequence_found_in_another_file(good_run):
    root, out, before = good_run
    listed = pd.read_csv(root / "train.csv")
    listed.loc[listed["sequence_id"] == 1002, ["path", "file_id"]] = [
        "train_landmarks/22.parquet",
        22,
    ]
    listed.to_csv(root / "train.csv", index=False)
    fails(root, out, before, "1002", "train_landmarks/22.parquet", "train_landmarks/11.parquet")


@pytest.mark.parametrize("content", ["", ",".join(pp.CSV_COLUMNS) + "\n"])
def test_empty_train_csv(good_run, content):
    root, out, before = good_run
    (root / "train.csv").write_text(content)
    fails(root, out, before, "train.csv")


def test_sequence_with_zero_rows(good_run, tmp_path):
    root, out, before = good_run
    listed = pd.read_csv(root / "train.csv")
    extra = pd.DataFrame(
        [["train_landmarks/22.parquet", 22, 4242, 101, "abc"]], columns=list(pp.CSV_COLUMNS)
    )
    pd.concat([listed, extra]).to_csv(root / "train.csv", index=False)
    fails(root, out, before, "train_landmarks/22.parquet", "4242", "no rows")
    summary = pp.run(config_for(root, tmp_path / "skip", skip_invalid=True), progress=False)
    assert summary["excluded_by_reason"]["zero_rows"] == 1


def test_unknown_characters(good_run, tmp_path):
    root, out, before = good_run
    listed = pd.read_csv(root / "train.csv", keep_default_na=False)
    listed.loc[listed["sequence_id"] == 1003, "phrase"] = "caf\u00e9"
    listed.to_csv(root / "train.csv", index=False)
    fails(root, out, before, "train_landmarks/11.parquet", "1003", "'\u00e9'")
    summary = pp.run(config_for(root, tmp_path / "skip", skip_invalid=True), progress=False)
    assert summary["excluded_by_reason"]["unknown_characters"] == 1
    meta = json.loads((tmp_path / "skip" / "meta.json").read_text())
    assert [
        e["sequence_id"] for e in meta["exclusions"] if e["reason"] == "unknown_characters"
    ] == [1003]


def test_phrase_that_pandas_would_read_as_missing_stays_text(tmp_path):
    rng = np.random.default_rng(9)
    root = tmp_path / "data"
    raw = make_raw(rng, 30)
    write_dataset(
        root, {1: [{"sequence_id": 5, "participant_id": 1, "phrase": "null", "raw": raw}]}
    )
    pp.run(config_for(root, tmp_path / "o", val_fraction=0), progress=False)
    assert vocab.decode(pp.load_processed(tmp_path / "o").y_train[0]) == "null"


def test_column_of_wrong_type(good_run):
    root, out, before = good_run
    path = root / "train_landmarks/11.parquet"
    table = pd.read_parquet(path)
    table["y_left_hand_7"] = "oops"
    table.to_parquet(path)
    fails(root, out, before, "train_landmarks/11.parquet", "y_left_hand_7", "1001")


# ----------------------------------------------------------------------------------------------
# Integration with the synthetic dataset generator


@pytest.mark.slow
def test_run_on_synthetic_dataset(tmp_path):
    synthetic = pytest.importorskip("aslfr_lib.synthetic")
    data = tmp_path / "synthetic"
    synthetic.generate(
        synthetic.SynthConfig(
            out=str(data), sequences=24, participants=4, seed=3, sequences_per_file=8
        ),
        progress=False,
    )
    summary = pp.run(config_for(data, tmp_path / "out", frames=32), progress=False)
    processed = pp.load_processed(tmp_path / "out")
    assert summary["files"] == 3
    assert summary["train"] + summary["val_trainable"] + summary["excluded"] == 24
    assert summary["train"] > 0 and summary["val"] > 0
    train, val = processed.meta["train"], processed.meta["val"]
    assert not set(train["participant_ids"]) & set(val["participant_ids"])

    # The projected read equals the whole file read with pandas, sequence by sequence.
    listed = pd.read_csv(data / "train.csv", keep_default_na=False).set_index("sequence_id")
    for row, sequence_id in enumerate(train["sequence_ids"][:6]):
        whole = pd.read_parquet(data / listed.loc[sequence_id, "path"])
        raw = whole.loc[[sequence_id], landmarks.SELECTED_COLUMNS].to_numpy(np.float32)
        np.testing.assert_array_equal(processed.ragged_train[row], pp.clean_sequence(raw))
        np.testing.assert_array_equal(processed.X_train[row], pp.preprocess_sequence(raw, 32))
        assert vocab.decode(processed.y_train[row]) == listed.loc[sequence_id, "phrase"]
    assert np.all(processed.stds > 0) and np.isfinite(processed.means).all()


def test_train_csv_with_bad_ids_or_empty_phrase(good_run, tmp_path):
    root, out, before = good_run
    listed = pd.read_csv(root / "train.csv", keep_default_na=False).astype({"sequence_id": object})
    listed.loc[3, "sequence_id"] = "12x"
    listed.to_csv(root / "train.csv", index=False)
    fails(root, out, before, "train.csv", "sequence_id", "'12x'", "row 5")

    listed.loc[3, "sequence_id"] = "1004.0"  # integral floats are fine
    listed.loc[listed["sequence_id"] == 1006, "phrase"] = ""
    listed.to_csv(root / "train.csv", index=False)
    fails(root, out, before, "train_landmarks/22.parquet", "1006", "empty")
