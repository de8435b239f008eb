"""The synthetic dataset: Kaggle's exact layout, realistic statistics, learnable only via hands."""

import dataclasses
import hashlib
import re
import subprocess
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from synthetic_reference import environment, reference_hashes

from aslfr_lib import config, landmarks, synthetic, vocab
from aslfr_lib.synthetic import SynthConfig

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def _generate(out: Path, **overrides) -> dict:
    values = {"out": str(out), "sequences": 40, "participants": 6, "sequences_per_file": 16}
    return synthetic.generate(SynthConfig(**(values | overrides)), progress=False)


@pytest.fixture(scope="module")
def dataset(module_tmp_path) -> Path:
    out = module_tmp_path / "synthetic"
    _generate(out, supplemental_sequences=8)
    return out


def _hashes(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_metadata_has_kaggle_columns_and_ids(dataset):
    train = pd.read_csv(dataset / "train.csv")
    assert list(train.columns) == ["path", "file_id", "sequence_id", "participant_id", "phrase"]
    assert len(train) == 40
    assert train["sequence_id"].is_unique
    assert train["sequence_id"].between(10**9, 2**31 - 1).all()
    assert train["file_id"].between(10**6, 2**31 - 1).all()
    assert train["file_id"].nunique() == 3  # 40 sequences, 16 per file
    assert (train["path"] == "train_landmarks/" + train["file_id"].astype(str) + ".parquet").all()
    assert train["participant_id"].nunique() <= 6
    for phrase in train["phrase"]:
        assert 1 <= len(phrase) <= vocab.MAX_PHRASE_LENGTH
        vocab.encode(phrase)  # raises on characters outside the map


def test_parquet_schema_and_contiguous_sequences(dataset):
    train = pd.read_csv(dataset / "train.csv")
    for path, rows in train.groupby("path"):
        frame = pd.read_parquet(dataset / path)
        assert frame.index.name == "sequence_id"
        assert frame.index.dtype == np.int64
        assert list(frame.columns) == landmarks.ALL_COLUMNS
        assert frame["frame"].dtype == np.int16
        assert (frame[landmarks.LANDMARK_COLUMNS].dtypes == np.float32).all()
        ids = frame.index.to_numpy()
        run_starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
        assert sorted(ids[run_starts]) == sorted(rows["sequence_id"])  # each sequence once
        for sequence_id in rows["sequence_id"]:
            frames = frame.loc[[sequence_id], "frame"].to_numpy()
            np.testing.assert_array_equal(frames, np.arange(len(frames)))


def test_character_map_is_a_byte_identical_copy(dataset):
    package = resources.files("aslfr_lib").joinpath("resources", vocab.CHARACTER_MAP_FILE)
    written = (dataset / vocab.CHARACTER_MAP_FILE).read_bytes()
    assert written == package.read_bytes()
    assert written == (FIXTURES / vocab.CHARACTER_MAP_FILE).read_bytes()


def test_reads_like_the_kaggle_harness(dataset):
    """``pd.read_parquet(path, columns=SELECTED_COLUMNS)``: float32, NaN for undetected hands."""
    train = pd.read_csv(dataset / "train.csv")
    sequence = pd.read_parquet(dataset / train["path"][0], columns=landmarks.SELECTED_COLUMNS)
    values = sequence.to_numpy()
    assert values.dtype == np.float32
    assert values.shape[1] == landmarks.NUM_FEATURES
    left = np.isnan(values[:, landmarks.LEFT_HAND])
    right = np.isnan(values[:, landmarks.RIGHT_HAND])
    # A hand is detected whole or not at all, and both happen.
    assert (left.all(1) | ~left.any(1)).all()
    assert (right.all(1) | ~right.any(1)).all()
    assert right.all(1).any() and (~right.any(1)).any()
    lips = values[:, landmarks.LIPS]
    assert np.isnan(lips).all(1).mean() < 0.05  # the face is found in nearly every frame
    detected = values[~right.any(1)][:, landmarks.RIGHT_HAND]
    assert 0.0 < np.nanmean(detected) < 1.0  # MediaPipe-normalised image coordinates


def test_files_are_atomic_and_complete(dataset):
    leftovers = [path for path in dataset.rglob("*") if path.name.startswith(".")]
    assert leftovers == []
    parquet = sorted(p.relative_to(dataset) for p in dataset.glob("*_landmarks/*.parquet"))
    listed = pd.concat(
        [pd.read_csv(dataset / "train.csv"), pd.read_csv(dataset / "supplemental_metadata.csv")]
    )
    assert parquet == sorted(Path(path) for path in listed["path"].unique())


def test_supplemental_set_repeats_sentences(dataset):
    supplemental = pd.read_csv(dataset / "supplemental_metadata.csv")
    assert list(supplemental.columns) == synthetic.METADATA_COLUMNS
    assert len(supplemental) == 8
    assert supplemental["path"].str.startswith("supplemental_landmarks/").all()
    train = pd.read_csv(dataset / "train.csv")
    assert not set(supplemental["sequence_id"]) & set(train["sequence_id"])
    pool = synthetic.make_sentence_pool(np.random.default_rng(0))
    assert len(pool) == len(set(pool)) == 500
    assert all(len(sentence) <= vocab.MAX_PHRASE_LENGTH for sentence in pool)
    summary = synthetic.summarize(dataset, "supplemental")
    assert summary["sequences"] == 8


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    small = {"sequences": 6, "participants": 3, "sequences_per_file": 4}
    _generate(tmp_path / "a", **small)
    _generate(tmp_path / "b", **small)
    _generate(tmp_path / "c", seed=1, **small)
    first, again, other = (_hashes(tmp_path / name) for name in "abc")
    assert first == again
    assert first["train.csv"] != other["train.csv"]
    parquet = {name for name in first if name.endswith(".parquet")}
    assert parquet and not parquet & {name for name in other if name.endswith(".parquet")}


def test_letter_shapes_do_not_depend_on_the_seed():
    alphabet, _ = synthetic._build_alphabet()
    np.testing.assert_array_equal(alphabet, synthetic.ALPHABET)
    assert alphabet.shape == (vocab.NUM_CHARACTERS + 1, synthetic.NUM_SHAPE_PARAMETERS)
    images = synthetic._image_shape(alphabet[: vocab.NUM_CHARACTERS])
    distance = np.linalg.norm(images[:, None] - images[None], axis=-1).mean(-1)
    np.fill_diagonal(distance, np.inf)
    j, i = vocab.CHAR_TO_ID["j"], vocab.CHAR_TO_ID["i"]
    distance[i, j] = distance[j, i] = np.inf  # "j" is "i" plus a movement, by design
    assert distance.min() >= synthetic.MIN_SHAPE_DISTANCE


def test_statistics_close_to_the_real_data(tmp_path):
    """Real (fixtures README): length 17.8 +- 5.7, ~9 frames/char, ~41 % no hand, left missing
    ~89 %, right ~52 %, some left-handed signers. Tolerances cover the spread between seeds."""
    summary = _generate(tmp_path, sequences=240, participants=20, sequences_per_file=1000)
    assert summary["sequences"] == 240 and summary["files"] == 1
    assert 16.3 <= summary["phrase_length"]["mean"] <= 19.3
    assert 4.3 <= summary["phrase_length"]["std"] <= 7.0
    assert summary["phrase_length"]["max"] <= 31
    assert 7.0 <= summary["frames_per_character"] <= 11.0
    assert 120 <= summary["frames"]["mean"] <= 200
    assert 33 <= summary["no_hand_frames_pct"] <= 50
    assert 84 <= summary["left_hand_missing_pct"] <= 95
    assert 44 <= summary["right_hand_missing_pct"] <= 60
    assert 1 <= summary["left_handed_signers"] <= 5


def test_phrases_look_like_the_competitions():
    rng = np.random.default_rng(0)
    phrases = [synthetic.make_phrase(rng) for _ in range(3000)]
    assert not vocab.unknown_characters("".join(phrases))
    assert set("".join(phrases)) == set(vocab.CHAR_TO_ID)  # every character occurs
    kinds = {
        "phone": r"^\+?[\d\-\.\(\) ]{10,}$",
        "url": r"(^www\.|\.(com|org|net|io)\b|@)",
        "address": r"^\d+ [a-z]",
        "name": r"^([dm]rs?\.|ms\.)? ?[a-z]+ ([a-z]+ )?[a-z]+(-[a-z]+)?$",
    }
    for kind, pattern in kinds.items():
        share = np.mean([bool(re.search(pattern, phrase)) for phrase in phrases])
        assert share > 0.05, kind


def _normalised(points: np.ndarray) -> np.ndarray:
    """(N, n, 2) -> position- and scale-free shape vectors."""
    centred = points - points.mean(1, keepdims=True)
    radius = np.sqrt((centred**2).sum((1, 2), keepdims=True) / points.shape[1])
    return (centred / radius).reshape(len(points), -1)


def _held_letters(signers, seed: int, difficulty: float):
    """Hand and lip shapes of frames where a letter is held, with the letter's id."""
    hands, lips, labels = [], [], []
    characters = np.array(list(vocab.CHAR_TO_ID))
    for index, signer in enumerate(signers):
        rng = np.random.default_rng([seed, index])
        phrase = "".join(rng.permutation(characters))  # every letter once
        rendered = synthetic.render_sequence(phrase, signer, rng, difficulty)
        hand = synthetic.hand_from_block(rendered.landmarks, "right_hand")[..., :2]
        keep = (rendered.holding >= 0) & ~np.isnan(hand).any((1, 2))
        face = synthetic.hand_from_block(rendered.landmarks, "face")[..., :2]
        hands.append(_normalised(hand[keep]))
        lips.append(_normalised(face[keep][:, landmarks.LIPS_LANDMARKS]))
        labels.append(np.array([vocab.CHAR_TO_ID[phrase[k]] for k in rendered.holding[keep]]))
    return np.concatenate(hands), np.concatenate(lips), np.concatenate(labels)


def _nearest_centroid_accuracy(train, train_labels, test, test_labels) -> float:
    classes = np.unique(train_labels)
    centroids = np.stack([train[train_labels == c].mean(0) for c in classes])
    nearest = classes[np.argmin(((test[:, None] - centroids[None]) ** 2).sum(-1), 1)]
    return float((nearest == test_labels).mean())


@pytest.mark.parametrize(("difficulty", "least"), [(0.0, 0.95), (0.6, 0.5)])
def test_letters_readable_from_hands_of_unseen_signers_not_from_lips(difficulty, least):
    signers = [
        synthetic.sample_signer(np.random.default_rng([5, i]), i, False, difficulty)
        for i in range(11)
    ]
    hands, lips, labels = _held_letters(signers[:8], 1, difficulty)
    new_hands, new_lips, new_labels = _held_letters(signers[8:], 2, difficulty)
    assert len(np.unique(labels)) > 50 and len(new_labels) > 100
    chance = 1 / vocab.NUM_CHARACTERS
    assert _nearest_centroid_accuracy(hands, labels, new_hands, new_labels) > least
    assert _nearest_centroid_accuracy(lips, labels, new_lips, new_labels) < 3 * chance


def test_harder_is_harder():
    accuracies = []
    for difficulty in (0.2, 1.0):
        signers = [
            synthetic.sample_signer(np.random.default_rng([6, i]), i, False, difficulty)
            for i in range(8)
        ]
        hands, _, labels = _held_letters(signers[:6], 1, difficulty)
        new_hands, _, new_labels = _held_letters(signers[6:], 2, difficulty)
        accuracies.append(_nearest_centroid_accuracy(hands, labels, new_hands, new_labels))
    assert accuracies[0] > accuracies[1] + 0.2


def _signer(**changes) -> synthetic.Signer:
    signer = synthetic.sample_signer(np.random.default_rng(7), 1, False, 0.0)
    return dataclasses.replace(signer, **changes)


@pytest.mark.parametrize("mark", ["slide", "bounce", "none"])
def test_doubled_letters_move(mark):
    """ "ll" is not a long "l": the hand slides aside or bounces between the two, unless the
    signer does not mark doubled letters at all (then it is held in place)."""
    signer = _signer(doubled_letters=mark, dropout=0.0, point_noise=0.0, frame_jitter=0.0)
    rendered = synthetic.render_sequence("all", signer, np.random.default_rng(0), 0.0)
    wrist = synthetic.hand_from_block(rendered.landmarks, "right_hand")[:, 0, :2]
    first_l, second_l = (wrist[rendered.holding == k].mean(0) for k in (1, 2))
    between = (rendered.letter == 2) & (rendered.holding == -1)
    unit = signer.hand_length
    sideways = abs(second_l[0] - first_l[0]) / (unit * signer.aspect)
    dip = (wrist[between, 1].max() - first_l[1]) / unit
    assert {"slide": sideways > 0.3, "bounce": dip > 0.2, "none": True}[mark]
    if mark != "slide":
        assert sideways < 0.1
    if mark != "bounce":
        assert dip < 0.1


def test_j_and_z_move_during_their_letter():
    signer = _signer(dropout=0.0, point_noise=0.0, frame_jitter=0.0)
    for still, moving in (("i", "j"), ("d", "z")):
        travel = []
        for phrase in (f"a{still}a", f"a{moving}a"):
            rendered = synthetic.render_sequence(phrase, signer, np.random.default_rng(0), 0.0)
            wrist = synthetic.hand_from_block(rendered.landmarks, "right_hand")[:, 0, :2]
            path = wrist[rendered.letter == 1]
            travel.append(np.linalg.norm(np.diff(path, axis=0), axis=1).sum())
        assert travel[1] > travel[0] + 0.3 * signer.hand_length, (still, moving)


def test_left_handed_signers_sign_with_the_left_hand():
    signer = synthetic.sample_signer(np.random.default_rng(3), 1, True, 0.6)
    rendered = synthetic.render_sequence("left handed", signer, np.random.default_rng(0), 0.6)
    left = ~np.isnan(rendered.landmarks[:, synthetic._columns("left_hand", 0)]).any(1)
    right = ~np.isnan(rendered.landmarks[:, synthetic._columns("right_hand", 0)]).any(1)
    assert left.sum() > 3 * right.sum()
    wrist_x = synthetic.hand_from_block(rendered.landmarks, "left_hand")[left, 0, 0]
    assert np.mean(wrist_x) > 0.5  # the person's left hand is on the image's right


def test_render_rejects_characters_outside_the_map():
    signer = synthetic.sample_signer(np.random.default_rng(0), 1, False, 0.6)
    with pytest.raises(vocab.VocabularyError, match="not in the map"):
        synthetic.render_sequence("Hello", signer, np.random.default_rng(0), 0.6)


def test_bad_config_is_refused(tmp_path):
    with pytest.raises(ValueError, match="difficulty must be in"):
        _generate(tmp_path, difficulty=1.5)
    with pytest.raises(ValueError, match="sequences must be >= 1"):
        _generate(tmp_path, sequences=0)
    assert not (tmp_path / "train.csv").exists()


def test_summarize_names_the_file_and_sequence_that_are_wrong(tmp_path):
    _generate(tmp_path, sequences=4, participants=2, sequences_per_file=4)
    train = pd.read_csv(tmp_path / "train.csv")
    extra = train.iloc[[0]].assign(sequence_id=123)
    extra.pipe(lambda frame: pd.concat([train, frame])).to_csv(tmp_path / "train.csv", index=False)
    with pytest.raises(ValueError, match=rf"{train['path'][0]}.*sequence 123"):
        synthetic.summarize(tmp_path)
    train.assign(path="train_landmarks/1.parquet").to_csv(tmp_path / "train.csv", index=False)
    with pytest.raises(FileNotFoundError, match="1.parquet"):
        synthetic.summarize(tmp_path)
    with pytest.raises(FileNotFoundError, match="supplemental_metadata.csv"):
        synthetic.summarize(tmp_path, "supplemental")


def test_main_writes_and_prints_the_summary(tmp_path, capsys):
    out = tmp_path / "data"
    code = synthetic.main(
        ["--out", str(out), "--sequences", "5", "--participants", "2", "--seed", "3"]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "train: 5 sequences in 1 files, 2 participants" in printed
    for line in ("phrase length", "frames per character", "frames with no hand", "left hand"):
        assert line in printed
    assert len(pd.read_csv(out / "train.csv")) == 5
    with pytest.raises(SystemExit):
        synthetic.main(["--out", str(out), "--difficulty", "2"])


def test_character_visibility_follows_the_frames_that_show_a_hand():
    config = SynthConfig(sequences=1, participants=1, difficulty=0.0)
    signer = synthetic.sample_signers(config)[0]
    phrase = "hello world"
    rendered = synthetic.render_sequence(phrase, signer, np.random.default_rng(5), 0.0)
    block = rendered.landmarks.copy()
    hands = [
        synthetic._columns(hand, axis) for hand in ("left_hand", "right_hand") for axis in (0, 1, 2)
    ]

    def lose(frames: np.ndarray) -> None:
        for columns in hands:
            block[frames, columns] = np.nan

    lose(rendered.letter == 2)  # the first "l": the hand is lost for its whole slot
    lose(rendered.holding == 6)  # "w": lost while held, seen while moving in and out
    seen = synthetic.character_visibility(
        dataclasses.replace(rendered, landmarks=block), len(phrase)
    )
    assert seen[2] == synthetic.HIDDEN
    assert seen[6] == synthetic.SEEN_MOVING
    assert (np.delete(seen, [2, 6]) == synthetic.SEEN_HELD).sum() >= len(phrase) - 4  # easy data
    lose(slice(None))
    gone = synthetic.character_visibility(
        dataclasses.replace(rendered, landmarks=block), len(phrase)
    )
    assert (gone == synthetic.HIDDEN).all()


def test_dataset_visibility_renders_the_dataset_again(tmp_path):
    config = SynthConfig(out=str(tmp_path), sequences=6, participants=2, seed=4)
    table = synthetic.plan_metadata(config, synthetic.sample_signers(config))["train"]
    visibility = synthetic.dataset_visibility(config, table["sequence_id"])
    assert [len(visibility[i]) for i in table["sequence_id"]] == [len(p) for p in table["phrase"]]
    assert all(
        set(v) <= {synthetic.HIDDEN, synthetic.SEEN_MOVING, synthetic.SEEN_HELD}
        for v in visibility.values()
    )
    with pytest.raises(ValueError, match="not in the dataset"):
        synthetic.dataset_visibility(dataclasses.replace(config, seed=5), table["sequence_id"])


def test_readability_benchmark_charges_each_edit_to_the_character_it_touches():
    from helpers import load_benchmark

    readability = load_benchmark("readability")
    held, moving, hidden = synthetic.SEEN_HELD, synthetic.SEEN_MOVING, synthetic.HIDDEN
    counts = readability.attribute_edits(
        ["abcd", "xy"],
        ["acdz", "xq"],  # b deleted, z inserted; y replaced
        [np.array([held, hidden, held, moving]), np.array([held, moving])],
    )
    assert counts["insertions"] == 1
    assert (counts[f"characters_{held}"], counts[f"wrong_{held}"]) == (3, 0)
    assert (counts[f"characters_{moving}"], counts[f"wrong_{moving}"]) == (2, 1)
    assert (counts[f"characters_{hidden}"], counts[f"wrong_{hidden}"]) == (1, 1)
    table = readability.format_table(counts, score=0.5)
    assert "hidden" in table and "0.8333" in table  # 1 - 1 hidden miss / 6 characters


# sha256 of every file of the reference datasets (tests/synthetic_reference.py), written by the
# generator before styles existed: style="default" must reproduce them byte for byte.
REFERENCE_ENVIRONMENT = {
    "machine": "x86_64",
    "numpy": "2.4.6",
    "pandas": "3.1.1",
    "pyarrow": "26.0.1",
    "avx512_skx": True,
}
REFERENCE_HASHES = {
    "difficulty_0.0/character_to_prediction_index.json": (
        "2663d4d48db9f8c0df8c2bfe851b2774621d5224b9922bb26122a744e1b5666f"
    ),
    "difficulty_0.0/supplemental_landmarks/917067472.parquet": (
        "74785ab78f05869b1c116b566a282437b2720e2603f2f38b763e9c41b3befb7d"
    ),
    "difficulty_0.0/supplemental_metadata.csv": (
        "0e631a021ed75b44e164dd42b371501d5e21fb08adb5f221da7c3f1f8d1dc863"
    ),
    "difficulty_0.0/train.csv": (
        "ddd7dff4c0d5bee5aa5fa9a014833cfe87c5682303c774921904a33cfd930c12"
    ),
    "difficulty_0.0/train_landmarks/1453907275.parquet": (
        "1ee0532f9afce0f55e6b7bdf4914ce84171b9d80dc6c8fb228703da0256e0f31"
    ),
    "difficulty_0.0/train_landmarks/1835864125.parquet": (
        "e713b02f4d48710b3f1779609020f0c9a7cf60a00744c43a8ec31a170bf2fe5d"
    ),
    "difficulty_0.0/train_landmarks/954753189.parquet": (
        "9e96b6baf668a48f212dd7ae060ef0469c6f9c6434e40c58569e02f2ddd74a8d"
    ),
    "difficulty_0.6/character_to_prediction_index.json": (
        "2663d4d48db9f8c0df8c2bfe851b2774621d5224b9922bb26122a744e1b5666f"
    ),
    "difficulty_0.6/supplemental_landmarks/917067472.parquet": (
        "78f2a6d30830ae5c98a83ddb3da9fed55184be8e6511007633f8d612a74c2539"
    ),
    "difficulty_0.6/supplemental_metadata.csv": (
        "0e631a021ed75b44e164dd42b371501d5e21fb08adb5f221da7c3f1f8d1dc863"
    ),
    "difficulty_0.6/train.csv": (
        "ddd7dff4c0d5bee5aa5fa9a014833cfe87c5682303c774921904a33cfd930c12"
    ),
    "difficulty_0.6/train_landmarks/1453907275.parquet": (
        "64e441763b135f4d1b78d42df957d3199e51fbaa0ec4724061971db9e1f706d3"
    ),
    "difficulty_0.6/train_landmarks/1835864125.parquet": (
        "511fabd7a23deb575348c9c7925b24300adb6db9240b7b81220b39b66281d039"
    ),
    "difficulty_0.6/train_landmarks/954753189.parquet": (
        "feaa7a2010ce91d89ef8d9ad3b4bca2466a3d6d8257e560a1b12c86e5e55561e"
    ),
    "difficulty_1.0/character_to_prediction_index.json": (
        "2663d4d48db9f8c0df8c2bfe851b2774621d5224b9922bb26122a744e1b5666f"
    ),
    "difficulty_1.0/supplemental_landmarks/917067472.parquet": (
        "b08b44da96d263cef9c70060fd5e371d6af8c17ff9800ea7874be1b23284b3e1"
    ),
    "difficulty_1.0/supplemental_metadata.csv": (
        "0e631a021ed75b44e164dd42b371501d5e21fb08adb5f221da7c3f1f8d1dc863"
    ),
    "difficulty_1.0/train.csv": (
        "ddd7dff4c0d5bee5aa5fa9a014833cfe87c5682303c774921904a33cfd930c12"
    ),
    "difficulty_1.0/train_landmarks/1453907275.parquet": (
        "d6d25918181ec10abb9036ec997fc8fff8e704765139a18994658bc7718f2526"
    ),
    "difficulty_1.0/train_landmarks/1835864125.parquet": (
        "d6f83e481a086ccb12bd87a0a9853d9e6bf6aaa0290a046c33a8b3bddb7a5f44"
    ),
    "difficulty_1.0/train_landmarks/954753189.parquet": (
        "7eebe77e87f308adae621c4ea9d5ed411f880ed94c01bb4138eca51578ccca07"
    ),
}


def test_default_style_writes_the_reference_bytes(tmp_path):
    """The published numbers were measured on these datasets: the default must not drift."""
    here = environment()
    if here != REFERENCE_ENVIRONMENT:
        pytest.skip(f"hashes pinned on {REFERENCE_ENVIRONMENT}; this machine has {here}")
    hashes = reference_hashes(tmp_path)
    changed = sorted(
        name for name in REFERENCE_HASHES if hashes.get(name) != REFERENCE_HASHES[name]
    )
    assert set(hashes) == set(REFERENCE_HASHES)
    assert changed == [], f"default-style output changed: {changed}"


# --------------------------------------------------------------------------------------------
# Styles (aslfr synth --style).


@pytest.fixture(scope="module")
def style_table(module_tmp_path) -> pd.DataFrame:
    """``style_statistics`` of a tiny dataset per style (same seed, default difficulty)."""
    rows = []
    for style in ("default", "fluent", "deliberate", "dropout", "two_hands"):
        out = module_tmp_path / style
        config = SynthConfig(out=str(out), sequences=16, participants=4, seed=2, style=style)
        synthetic.generate(config, progress=False)
        rows.append(synthetic.style_statistics(config))
    return pd.concat(rows)


def test_styles_change_what_they_claim(style_table):
    default, fluent, deliberate, dropout, two_hands = (
        style_table.loc[name]
        for name in ("default", "fluent", "deliberate", "dropout", "two_hands")
    )
    assert fluent["frames_per_character"] < 0.75 * default["frames_per_character"]
    assert deliberate["frames_per_character"] > 1.4 * default["frames_per_character"]
    assert dropout["mean_lost_run"] > 2.5 * default["mean_lost_run"]
    assert dropout["hand_frames_pct"] < default["hand_frames_pct"] - 5
    assert two_hands["other_slot_pct"] > default["other_slot_pct"] + 8
    assert deliberate["none"] >= 1 and default["none"] == 0  # unmarked doubled letters
    assert (style_table[["slide", "bounce", "none"]].sum(axis=1) == style_table["signers"]).all()


def test_idiolect_gives_each_signer_its_own_letters():
    def spread(style: str) -> float:
        config = SynthConfig(participants=8, seed=3, style=style)
        shapes = np.stack([signer.shapes for signer in synthetic.sample_signers(config)])
        return float((shapes - shapes.mean(0)).std())

    assert spread("idiolect") > 2 * spread("default")
    assert synthetic.knobs(0.6, synthetic.STYLES["idiolect"]).letter_variation == 0.4


def test_default_style_is_the_difficulty_alone():
    for difficulty in (0.0, 0.6, 1.0):
        default = synthetic.knobs(difficulty, synthetic.STYLES["default"])
        assert default == synthetic.knobs(difficulty)
    fluent = synthetic.knobs(0.6, synthetic.STYLES["fluent"])
    assert (fluent.frames_per_character, fluent.hold) == (4.0, 0.12)
    assert fluent.frame_jitter == synthetic.knobs(0.6).frame_jitter  # difficulty's, still


def test_mix_draws_a_style_per_signer_and_nothing_else_changes():
    default = synthetic.sample_signers(SynthConfig(participants=30, seed=4))
    mixed = synthetic.sample_signers(SynthConfig(participants=30, seed=4, style="mix"))
    styles = [signer.style for signer in mixed]
    assert set(styles) <= set(synthetic.STYLES) and len(set(styles)) >= 4
    assert [s.participant_id for s in mixed] == [s.participant_id for s in default]
    assert [s.left_handed for s in mixed] == [s.left_handed for s in default]
    for before, after in zip(default, mixed, strict=True):
        assert before.hand_length == after.hand_length  # the same draws, other values
        if after.style == "default":
            np.testing.assert_array_equal(before.shapes, after.shapes)
    again = synthetic.sample_signers(SynthConfig(participants=30, seed=4, style="mix"))
    assert [signer.style for signer in again] == styles


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"frames_per_character": 20.0}, r"frames_per_character must be in \[3.0, 12.0\]"),
        ({"hold": 0.95}, r"hold must be in \[0.05, 0.8\] \(got 0.95\)"),
        ({"double_slide": 0.8, "double_bounce": 0.4}, "double_slide \\+ double_bounce must be"),
        ({"dropout_length": (5.0, 2.0)}, "dropout_length must be"),
        ({"other_hand_frames": (10, 10)}, "other_hand_frames must have low < high"),
        ({"idiolect": -0.1}, "idiolect must be in"),
    ],
)
def test_invalid_style_values_are_refused(values, message):
    with pytest.raises(ValueError, match=message):
        synthetic.Style(**values)


def test_unknown_style_is_refused_with_the_valid_names(tmp_path):
    valid = "default, fluent, deliberate, idiolect, dropout, two_hands, mix"
    with pytest.raises(ValueError, match=f"unknown style 'nope'; valid styles: {valid}"):
        _generate(tmp_path, style="nope")
    assert not (tmp_path / "train.csv").exists()
    assert synthetic.style_names() == valid.split(", ")
    with pytest.raises(ValueError, match="drawn per signer"):
        synthetic.get_style("mix")
    # A pipeline YAML's synth: section builds SynthConfig with config.make, style included.
    assert config.make(SynthConfig, {"style": "two_hands", "sequences": 4}).style == "two_hands"


def test_style_statistics_refuse_another_datasets_settings(tmp_path):
    config = SynthConfig(out=str(tmp_path), sequences=3, participants=2, seed=5)
    synthetic.generate(config, progress=False)
    with pytest.raises(ValueError, match="is not a signer of"):
        synthetic.style_statistics(dataclasses.replace(config, seed=6))


def test_aslfr_synth_style_through_the_installed_command(tmp_path):
    aslfr = Path(sys.executable).with_name("aslfr")
    assert aslfr.exists(), f"{aslfr}: the package's entry point is not installed"
    out = tmp_path / "fluent"
    arguments = ["--sequences", "3", "--participants", "2", "--seed", "1"]
    done = subprocess.run(
        [aslfr, "synth", "--out", out, "--style", "fluent", *arguments],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert len(pd.read_csv(out / "train.csv")) == 3
    assert re.search(r"^  fluent +2 +3 ", done.stdout, flags=re.M), done.stdout
    refused = subprocess.run(
        [aslfr, "synth", "--out", tmp_path / "bad", "--style", "nope", *arguments],
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode == 2
    assert "unknown style 'nope'; valid styles: default, fluent" in refused.stderr
    assert not (tmp_path / "bad" / "train.csv").exists()
    helped = subprocess.run([aslfr, "synth", "--help"], capture_output=True, text=True, check=True)
    assert "two_hands" in " ".join(helped.stdout.split())


def test_styles_at_the_ends_of_their_documented_ranges_write_a_dataset(tmp_path, monkeypatch):
    from aslfr_lib.synthetic import styles

    # dropout 0 used to crash: a signer's Beta draw near 1e-300 made a geometric draw with p = 0
    edges = {
        "no_dropout": synthetic.Style(dropout=0.0, other_hand_probability=0.0),
        "extremes": synthetic.Style(
            frames_per_character=12.0, hold=0.8, coarticulation=0.6, lead_in=60.0,
            lead_out=2.0, idiolect=0.5, dropout=0.9, dropout_length=(60.0, 60.0),
            other_hand_probability=1.0, other_hand_frames=(1, 400),
        ),
    }  # fmt: skip
    for name, style in edges.items():
        monkeypatch.setitem(styles.STYLES, name, style)
        summary = _generate(tmp_path / name, style=name, sequences=12, participants=3)
        assert summary["sequences"] == 12

    def visible(style: str) -> float:
        settings = SynthConfig(out=str(tmp_path / style), sequences=12, participants=3,
                               sequences_per_file=16, style=style)  # fmt: skip
        if style == "default":
            _generate(tmp_path / style, style=style, sequences=12, participants=3)
        ids = pd.read_csv(tmp_path / style / "train.csv")["sequence_id"]
        shown = np.concatenate(list(synthetic.dataset_visibility(settings, ids).values()))
        return float(np.mean(shown != synthetic.HIDDEN))

    # the same signers and phrases without drop-out: only cut-short recordings hide letters
    assert visible("default") < visible("no_dropout")
