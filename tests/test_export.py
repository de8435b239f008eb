"""TFLite export: the converted file (always run in LiteRT) decodes what the Keras model decodes.

The model is tiny, with random weights chosen so that phrases differ between sequences and end
(EOS) at different steps; the data is a small synthetic dataset in the competition's layout,
preprocessed with a large validation split.
"""

from __future__ import annotations

import dataclasses
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
import keras  # noqa: E402
from ai_edge_litert.interpreter import Interpreter  # noqa: E402
from helpers import tiny_config  # noqa: E402

from aslfr_lib import ensemble, export, landmarks, language_model, pipeline, vocab  # noqa: E402
from aslfr_lib.decoding import decode, greedy_decode, ids_to_phrases  # noqa: E402
from aslfr_lib.export import inference, reference, stage, tflite  # noqa: E402
from aslfr_lib.export.preprocessing import preprocess_tf  # noqa: E402
from aslfr_lib.layers import has_landmarks  # noqa: E402
from aslfr_lib.model import ModelConfig, build_model, decoder_of, encoder_of  # noqa: E402
from aslfr_lib.preprocess import PreprocessConfig, load_processed, preprocess_sequence  # noqa: E402
from aslfr_lib.preprocess import run as run_preprocess  # noqa: E402
from aslfr_lib.runner import HarnessRunner, read_sequences  # noqa: E402
from aslfr_lib.synthetic import SynthConfig, generate  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
FRAMES = 64
NUM_FEATURES = landmarks.NUM_FEATURES
TINY = tiny_config(decoder_dim=32, decoder_blocks=1, frames=FRAMES, features=NUM_FEATURES)


def randomize(model, seed: int = 0, calibration_frames: np.ndarray | None = None) -> None:
    """Random embeddings (zeros at init would make every phrase the same) and a raised EOS logit
    (through the last layer norm's bias), so that phrases differ and stop at different steps.

    With ``calibration_frames``, the EOS boost that gives the most varied phrase lengths on them.
    """
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        if "embedding" in weight.path:
            weight.assign(rng.normal(0, 1.0, weight.shape).astype("float32"))
    decoder = decoder_of(model)
    last_norm = inference.layers_named(decoder, "decoder_block_")[-1].mlp_norm
    bias = rng.normal(0, 1, last_norm.beta.shape).astype("float32")
    last_norm.beta.assign(bias)
    classifier = decoder.get_layer("classifier").kernel
    kernel = classifier.numpy()

    def boost_eos(boost: float) -> None:
        boosted = kernel.copy()
        boosted[:, vocab.EOS] += boost * bias / (bias @ bias)  # adds ~boost to the EOS logit
        classifier.assign(boosted)

    boosts = [2.0] if calibration_frames is None else [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    early_share = {}
    for boost in boosts:
        boost_eos(boost)
        if calibration_frames is not None:
            phrases = ids_to_phrases(greedy_decode(model, calibration_frames))
            early_share[boost] = np.mean([len(p) < vocab.TARGET_LENGTH for p in phrases])
    # About half the phrases ending at EOS exercises both ways a decoding loop ends.
    boost_eos(min(boosts, key=lambda b: abs(early_share.get(b, 0.5) - 0.5)))


def tiny_model(means=None, stds=None, config=TINY, seed: int = 0, calibration_frames=None):
    keras.utils.set_random_seed(seed)  # the dense layers' initial weights too
    model = build_model(config, means=means, stds=stds)
    randomize(model, seed, calibration_frames)
    return model


def run_flatbuffer(flatbuffer: bytes, frames: np.ndarray) -> np.ndarray:
    runner = Interpreter(model_content=flatbuffer, num_threads=1).get_signature_runner()
    return runner(inputs=np.asarray(frames, np.float32))["outputs"]


def harness_phrase(outputs: np.ndarray) -> str:
    return vocab.decode_like_harness(np.argmax(outputs, axis=1))


@pytest.fixture(scope="module")
def dataset(module_tmp_path):
    """(data dir, processed dir): 240 synthetic sequences, ~200 of them in the validation split."""
    root = module_tmp_path / "export_data"
    data, processed = root / "data", root / "processed"
    generate(
        SynthConfig(out=str(data), sequences=240, participants=12, sequences_per_file=80, seed=3),
        progress=False,
    )
    run_preprocess(
        PreprocessConfig(
            data=str(data),
            out=str(processed),
            frames=FRAMES,
            val_fraction=0.85,
            min_frames_per_char=0,
            workers=1,
        ),
        progress=False,
    )
    return data, processed


@pytest.fixture(scope="module")
def processed_data(dataset):
    return load_processed(dataset[1], mmap=False)


@pytest.fixture(scope="module")
def raw_sequences(dataset):
    """{sequence_id: raw [n, 164] frames} of every sequence, read as the harness reads them."""
    data, _ = dataset
    found = {}
    for path in sorted((data / "train_landmarks").glob("*.parquet")):
        found.update(read_sequences(path, landmarks.SELECTED_COLUMNS))
    return found


@pytest.fixture(scope="module")
def model(processed_data):
    data = processed_data
    return tiny_model(data.means, data.stds, calibration_frames=data.X_val[:100])


@pytest.fixture(scope="module")
def exported(model, module_tmp_path):
    return export.export_model(model, module_tmp_path / "submission")


@pytest.fixture(scope="module")
def harness(exported):
    return HarnessRunner(exported.paths.zip)


def sample_raw(raw_sequences, count: int) -> list[np.ndarray]:
    return [raw_sequences[s] for s in sorted(raw_sequences)[:count]]


# ----------------------------------------------------------------------------------------------
# The submission files


def test_export_writes_model_args_and_a_zip_of_exactly_those_two(exported):
    paths = exported.paths
    assert paths.model.read_bytes()[4:8] == b"TFL3"  # a TFLite flatbuffer
    assert json.loads(paths.inference_args.read_text()) == {
        "selected_columns": landmarks.SELECTED_COLUMNS
    }
    with zipfile.ZipFile(paths.zip) as archive:
        assert sorted(archive.namelist()) == ["inference_args.json", "model.tflite"]
        assert archive.read("model.tflite") == paths.model.read_bytes()
        assert archive.read("inference_args.json") == paths.inference_args.read_bytes()
    assert exported.model_bytes == paths.model.stat().st_size
    leftovers = [p.name for p in paths.model.parent.iterdir() if p.name.startswith(".")]
    assert leftovers == []  # no temporary files of the atomic writes

    table = export.submission_files(paths.model.parent)
    assert set(table["file"]) == {"model.tflite", "inference_args.json", "submission.zip"}
    assert table.loc[table["in"] == "submission.zip", "file"].tolist() == [
        "model.tflite",
        "inference_args.json",
    ]


def test_signature_is_what_the_harness_calls(exported):
    interpreter = Interpreter(model_content=exported.paths.model.read_bytes())
    assert interpreter.get_signature_list() == {
        "serving_default": {"inputs": ["inputs"], "outputs": ["outputs"]}
    }
    runner = interpreter.get_signature_runner("serving_default")
    (details,) = runner.get_input_details().values()
    assert list(details["shape_signature"]) == [-1, NUM_FEATURES]
    assert details["dtype"] == np.float32
    outputs = runner(inputs=np.zeros((3, NUM_FEATURES), np.float32))["outputs"]
    assert outputs.shape == (vocab.TARGET_LENGTH, vocab.NUM_CLASSES)
    assert outputs.dtype == np.float32


# ----------------------------------------------------------------------------------------------
# Same phrases as Keras


@pytest.mark.slow
def test_tflite_phrases_equal_keras_greedy_decode_on_200_validation_sequences(
    model, exported, dataset
):
    data, processed = dataset
    for cached in (True, False):  # False: the full decoder, independent of decode_step
        table = export.compare_predictions(
            model, exported.paths.zip, data, processed, split="val", cached=cached
        )
        assert len(table) >= 200
        mismatches = table[~table["match"]]
        assert mismatches.empty, mismatches.head().to_string()
    # The fixture model is meant to make this comparison meaningful: varied phrases, some
    # stopping early at EOS and some running the full 32 steps.
    lengths = table["tflite"].str.len()
    assert table["tflite"].nunique() > len(table) // 4
    assert (lengths < vocab.TARGET_LENGTH - 8).sum() >= 5
    assert (lengths == vocab.TARGET_LENGTH).sum() >= 5


def test_cached_step_logits_equal_the_full_decoder(model, raw_sequences):
    """Each decoded step's logits from the .tflite within 1e-4 of the full Keras decoder fed
    the same tokens (teacher forcing with the greedy prediction)."""
    flatbuffer = tflite.convert(inference.InferenceModule(model, outputs="logits"))
    encoder, decoder = encoder_of(model), decoder_of(model)
    steps_seen = set()
    for raw in sample_raw(raw_sequences, 24):
        logits = run_flatbuffer(flatbuffer, raw)  # (32, 62), zeros after the last step
        predicted = np.argmax(logits, axis=1)
        eos = np.flatnonzero(predicted == vocab.EOS)
        steps = int(eos[0]) + 1 if eos.size else vocab.TARGET_LENGTH
        steps_seen.add(steps)
        tokens = np.full((1, vocab.TARGET_LENGTH), vocab.PAD, np.int32)
        tokens[0, 0] = vocab.SOS
        tokens[0, 1:steps] = predicted[: steps - 1]
        # The graph's own preprocessing, so that only decoding differs (the numpy twin agrees to
        # 1e-5, which normalisation by small standard deviations can magnify).
        frames = tf.reshape(preprocess_tf(tf.constant(raw), frames=FRAMES), [1, FRAMES, -1])
        inputs = {"encoded": encoder(frames), "frame_mask": has_landmarks(frames)}
        full = decoder({**inputs, "tokens": tf.constant(tokens)}).numpy()[0]
        np.testing.assert_allclose(logits[:steps], full[:steps], atol=1e-4, rtol=0)
        assert not logits[steps:].any()
    assert len(steps_seen) > 1  # EOS at different steps


def test_encoder_over_frames_with_landmarks_equals_the_full_encoder(model, raw_sequences):
    encoder = encoder_of(model)
    short = min(raw_sequences.values(), key=len)  # fewer hand frames than FRAMES: empty rows
    cases = [preprocess_sequence(short, frames=FRAMES), np.zeros((FRAMES, NUM_FEATURES))]
    for frames in cases:
        frames = frames[None].astype(np.float32)
        mask = has_landmarks(frames).numpy()[0]
        full = encoder(frames).numpy()[0]
        compact, compact_mask = inference.encode_frames_with_landmarks(model, tf.constant(frames))
        rows = np.flatnonzero(mask) if mask.any() else np.arange(FRAMES)
        assert compact.shape[1] == len(rows)
        np.testing.assert_array_equal(compact_mask.numpy()[0], mask[rows])
        np.testing.assert_allclose(compact.numpy()[0], full[rows], atol=1e-5, rtol=0)
    assert 0 < has_landmarks(cases[0][None]).numpy().sum() < FRAMES


def test_plain_encoder_export_gives_the_same_phrases(model, raw_sequences, harness):
    flatbuffer = tflite.convert(inference.InferenceModule(model, skip_empty_frames=False))
    for raw in sample_raw(raw_sequences, 12):
        assert harness_phrase(run_flatbuffer(flatbuffer, raw)) == harness.predict_phrase(raw)


def test_reference_style_export_gives_the_same_phrases(model, raw_sequences, harness):
    twin = reference.reference_positions_twin(model, TINY)
    flatbuffer = tflite.convert(reference.ReferenceInferenceModule(twin))
    for raw in sample_raw(raw_sequences, 12):
        assert harness_phrase(run_flatbuffer(flatbuffer, raw)) == harness.predict_phrase(raw)


# ----------------------------------------------------------------------------------------------
# Outputs the harness decodes, and inputs it may send


def test_rows_from_eos_on_decode_to_nothing(harness, raw_sequences):
    for raw in sample_raw(raw_sequences, 24):
        outputs = harness.outputs(raw)
        ids = np.argmax(outputs, axis=1)
        np.testing.assert_array_equal(outputs, np.eye(vocab.NUM_CLASSES)[ids])  # one-hot rows
        eos = np.flatnonzero(ids == vocab.EOS)
        if eos.size:
            assert (ids[eos[0] + 1 :] == vocab.PAD).all()
        assert vocab.decode_like_harness(ids) == vocab.decode(ids)


def edge_inputs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(5)
    no_hand = rng.uniform(0.2, 0.8, (40, NUM_FEATURES)).astype(np.float32)
    no_hand[:, landmarks.HANDS] = np.nan
    long = rng.uniform(0.2, 0.8, (1200, NUM_FEATURES)).astype(np.float32)
    long[::4, landmarks.RIGHT_HAND] = np.nan
    return {
        "0 frames": np.zeros((0, NUM_FEATURES), np.float32),
        "1 frame": rng.uniform(0.2, 0.8, (1, NUM_FEATURES)).astype(np.float32),
        "all NaN": np.full((30, NUM_FEATURES), np.nan, np.float32),
        "no hand": no_hand,
        "1200 frames": long,
    }


@pytest.mark.parametrize("case", list(edge_inputs()))
def test_edge_inputs_give_defined_outputs_equal_to_keras(case, exported, model):
    raw = edge_inputs()[case]
    outputs = run_flatbuffer(exported.paths.model.read_bytes(), raw)
    assert outputs.shape == (vocab.TARGET_LENGTH, vocab.NUM_CLASSES)
    assert np.isfinite(outputs).all()
    frames = preprocess_sequence(raw, frames=FRAMES)[None]
    (expected,) = ids_to_phrases(greedy_decode(model, frames))
    assert harness_phrase(outputs) == expected


# ----------------------------------------------------------------------------------------------
# Known traps of TF 2.21 / Keras 3.15 conversion


class UntrackedWeights(inference.InferenceModule):
    """The trap: the Keras model as the only attribute that holds the weights."""

    def __init__(self, model):
        super().__init__(model)
        del self.model_variables


def test_untracked_keras_weights_convert_but_fail_at_run_time(model, exported):
    """Trap (a): why InferenceModule tracks the tf.Variables itself."""
    empty = tflite.convert(UntrackedWeights(model))
    with pytest.raises(RuntimeError, match="READ_VARIABLE|variable != nullptr"):
        run_flatbuffer(empty, np.zeros((2, NUM_FEATURES), np.float32))
    weight_bytes = sum(int(np.prod(w.shape)) * 4 for w in model.weights)
    assert len(empty) < weight_bytes < exported.model_bytes  # ours carries the weights


class BicubicResize(tf.Module):
    """A plausible preprocessing choice whose op (ResizeBicubic) has no TFLite builtin."""

    @tf.function(input_signature=[tf.TensorSpec([None, NUM_FEATURES], tf.float32, name="inputs")])
    def serve(self, inputs):
        image = tf.reshape(inputs, [1, 1, -1, NUM_FEATURES])
        resized = tf.image.resize(image, [1, FRAMES], method="bicubic")
        return {"outputs": tf.reshape(resized, [FRAMES, NUM_FEATURES])}


def test_graphs_that_need_flex_fail_to_convert_naming_the_op(exported):
    """Trap (b): Kaggle has no Flex delegate, so the export allows builtin ops only and a graph
    that needs a TensorFlow op fails here, not on Kaggle. (``x[None]`` on a dynamic length, the
    reference's way, converts to a builtin STRIDED_SLICE with TF 2.21 in our tries; the graph
    reshapes anyway.)"""
    with pytest.raises(tflite.ConversionError, match="builtin ops only.*ResizeBicubic"):
        tflite.convert(BicubicResize())
    assert b"Flex" not in exported.paths.model.read_bytes()  # Flex ops are named Flex<Op>


def test_converted_files_run_in_litert_not_the_deprecated_tf_lite_interpreter():
    """Trap (c): tf.lite.Interpreter is deprecated; everything runs through ai_edge_litert."""
    sources = [*(REPO / "aslfr_lib").rglob("*.py"), *(REPO / "benchmarks").glob("*.py")]
    users = [str(p.relative_to(REPO)) for p in sources if "tf.lite.Interpreter" in p.read_text()]
    assert users == []


# ----------------------------------------------------------------------------------------------
# Weights and size


def test_size_limit_refuses_and_writes_nothing(model, tmp_path):
    out = tmp_path / "too_large"
    with pytest.raises(tflite.ModelTooLargeError, match=r"over the 0.01 MB limit"):
        export.export_model(model, out, max_size_mb=0.01)
    assert not out.exists() or not any(out.iterdir())


def test_fp16_and_dynamic_range_weights_shrink_the_file_and_run(model, exported, raw_sequences):
    raw = sample_raw(raw_sequences, 1)[0]
    module = inference.InferenceModule(model)
    for quantization in ("fp16", "dynamic_range"):
        flatbuffer = tflite.convert(module, quantization)
        assert len(flatbuffer) < 0.75 * exported.model_bytes, quantization  # tiny model: small
        # tensors (< 1024 values) stay float32
        outputs = run_flatbuffer(flatbuffer, raw)
        ids = np.argmax(outputs, axis=1)
        np.testing.assert_array_equal(outputs, np.eye(vocab.NUM_CLASSES)[ids])


@pytest.mark.slow
def test_default_size_model_converts_under_the_limit(tmp_path, raw_sequences):
    config = ModelConfig()  # the reference's V6 width and depth
    model = build_model(config)
    randomize(model)
    result = export.export_model(model, tmp_path)
    weight_bytes = sum(int(np.prod(w.shape)) * 4 for w in model.weights)
    assert weight_bytes < result.model_bytes < tflite.MAX_MODEL_MB * tflite.BYTES_PER_MB
    raw = sample_raw(raw_sequences, 1)[0]
    frames = preprocess_sequence(raw, frames=config.frames)[None]
    (expected,) = ids_to_phrases(greedy_decode(model, frames))
    assert HarnessRunner(result.paths.zip).predict_phrase(raw) == expected


def test_mixed_precision_models_export_in_float32(tmp_path, raw_sequences):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        mixed = tiny_model(seed=1)
    finally:
        keras.config.set_dtype_policy(previous)
    assert decoder_of(mixed).get_layer("self_attention").compute_dtype == "bfloat16"
    float32 = stage.float32_model(mixed)
    assert decoder_of(float32).get_layer("self_attention").compute_dtype == "float32"
    for a, b in zip(mixed.weights, float32.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    result = export.export_model(mixed, tmp_path)
    raw = sample_raw(raw_sequences, 1)[0]
    (expected,) = ids_to_phrases(greedy_decode(float32, preprocess_sequence(raw, FRAMES)[None]))
    assert HarnessRunner(result.paths.zip).predict_phrase(raw) == expected


# ----------------------------------------------------------------------------------------------
# The command line and the stage


@pytest.mark.slow
def test_export_command_writes_the_submission_and_stage_metrics(model, dataset, tmp_path, capsys):
    data, processed = dataset
    model_dir, out = tmp_path / "model", tmp_path / "submission"
    model_dir.mkdir()
    model.save(model_dir / "best.keras")
    argv = ["--model", str(model_dir), "--out", str(out), "--processed", str(processed)]
    code = export.main(
        [*argv, "--data", str(data), "--limit", "30", "--quiet", "--no-dynamic-range"]
    )
    assert code == 0, capsys.readouterr().err
    assert {"model.tflite", "inference_args.json", "submission.zip"} <= {
        p.name for p in out.iterdir()
    }
    metrics = json.loads((out / pipeline.STAGE_METRICS).read_text())
    assert metrics["keras_tflite_match"] == 1.0
    assert metrics["keras_tflite_compared"] == 30
    assert metrics["check"]["sequences"] == 30
    assert metrics["check"]["selection"].startswith("val split")
    assert -5 < metrics["score"] <= 1
    assert metrics["export"]["checkpoint"].endswith("best.keras")
    assert json.loads(capsys.readouterr().out)["score"] == metrics["score"]


def test_export_command_fails_clearly_without_a_model(tmp_path, capsys):
    code = export.main(["--model", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")])
    assert code == 1
    error = capsys.readouterr().err
    assert "nowhere/best.keras: no such model file" in error
    assert not (tmp_path / "out").exists()


def test_export_config_fields_are_the_notebook_parameters():
    names = {field.name for field in dataclasses.fields(export.ExportConfig)}
    assert {"model", "out", "fp16", "checkpoint", "processed", "data", "limit"} <= names
    # int8 by default: the same score measured (docs/recipes-default-style.md).
    assert export.ExportConfig().quantization == "dynamic_range"
    assert export.ExportConfig(fp16=True).quantization == "fp16"
    assert export.ExportConfig(dynamic_range=False).quantization == "float32"
    with pytest.raises(ValueError, match="checkpoint"):
        export.ExportConfig(checkpoint="final")


def test_mirror_follows_the_processed_data(dataset, tmp_path):
    _, processed = dataset
    assert stage.resolve_mirror(export.ExportConfig(processed=str(processed))) is True
    meta = json.loads((processed / "meta.json").read_text())
    meta["config"]["mirror"] = False
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    assert stage.resolve_mirror(export.ExportConfig(processed=str(tmp_path))) is False
    assert stage.resolve_mirror(export.ExportConfig(processed=str(tmp_path), mirror=True))


def test_max_steps_stops_decoding_early(model, raw_sequences, harness):
    """The benchmark's fixed phrase length: the first steps as usual, PAD after them."""
    raw = max(sample_raw(raw_sequences, 24), key=lambda r: len(harness.predict_phrase(r)))
    full = np.argmax(harness.outputs(raw), axis=1)
    assert (full[:3] < vocab.NUM_CHARACTERS).all()  # three characters before any EOS
    stopped = inference.InferenceModule(model, max_steps=3)(raw)["outputs"].numpy()
    ids = np.argmax(stopped, axis=1)
    np.testing.assert_array_equal(ids[:3], full[:3])
    assert (ids[3:] == vocab.PAD).all()


# ----------------------------------------------------------------------------------------------
# Ensembles and the search decoders (beam_search): the same phrases as Keras


JOINT = dataclasses.replace(TINY, ctc_weight=0.5)


@pytest.fixture(scope="module")
def joint_models(processed_data):
    """Two members with both heads, different seeds and the data's normalisation."""
    data = processed_data
    return [
        tiny_model(data.means, data.stds, JOINT, seed, calibration_frames=data.X_val[:100])
        for seed in (0, 1)
    ]


def keras_phrases(models, raws, decoder, beam=None, lm=None) -> list[str]:
    frames = np.stack([preprocess_sequence(raw, frames=FRAMES) for raw in raws])
    return ids_to_phrases(decode(models, frames, decoder, beam=beam, language_model=lm))


SEARCH_CASES = {
    "ctc_beam": (1, "ctc_beam", 3),
    "joint, 2 members": (2, "joint", 3),
    "joint greedy": pytest.param((1, "joint", 1), marks=pytest.mark.slow),
    "attention beam": pytest.param((1, "attention", 2), marks=pytest.mark.slow),
    "ctc, 2 members": pytest.param((2, "ctc", None), marks=pytest.mark.slow),
    "attention, 2 members": pytest.param((2, "attention", None), marks=pytest.mark.slow),
}


@pytest.mark.parametrize("case", list(SEARCH_CASES.values()), ids=list(SEARCH_CASES))
def test_search_and_ensemble_exports_give_the_keras_phrases(case, joint_models, raw_sequences):
    """Builtin ops only, and the phrases of ``decoding.decode`` on the same sequences (float32
    weights), edge inputs included."""
    count, decoder, beam = case
    models = joint_models[:count]
    module = inference.InferenceModule(models, decoder=decoder, beam=beam)
    flatbuffer = tflite.convert(module)
    assert b"Flex" not in flatbuffer
    raws = [*sample_raw(raw_sequences, 24), *edge_inputs().values()]
    tflite_phrases = [harness_phrase(run_flatbuffer(flatbuffer, raw)) for raw in raws]
    assert tflite_phrases == keras_phrases(models, raws, decoder, beam)
    assert len(set(tflite_phrases)) > 5


@pytest.mark.slow
def test_ensemble_export_command_writes_one_model_that_equals_keras(
    joint_models, dataset, tmp_path, capsys
):
    data, processed = dataset
    members = []
    for index, model in enumerate(joint_models):
        folder = tmp_path / f"seed{index}"
        folder.mkdir()
        model.save(folder / "best.keras")
        members += ["--model", str(folder)]
    out = tmp_path / "submission"
    code = export.main(
        [
            *members,
            *["--out", str(out), "--processed", str(processed), "--data", str(data)],
            *["--decoder", "joint", "--beam", "2", "--limit", "20", "--quiet"],
            "--no-dynamic-range",
        ]
    )
    assert code == 0, capsys.readouterr().err
    metrics = json.loads((out / pipeline.STAGE_METRICS).read_text())
    assert metrics["export"]["members"] == [
        str(tmp_path / "seed0" / "best.keras"),
        str(tmp_path / "seed1" / "best.keras"),
    ]
    assert (metrics["export"]["decoder"], metrics["export"]["beam"]) == ("joint", 2)
    assert metrics["keras_tflite_match"] == 1.0
    assert metrics["keras_tflite_compared"] == 20


def test_members_must_share_frames_naming_both_checkpoints(joint_models, tmp_path):
    shorter = build_model(dataclasses.replace(JOINT, frames=32))
    with pytest.raises(ensemble.EnsembleError, match=r"a.keras and b.keras differ in frames"):
        export.export_model([joint_models[0], shorter], tmp_path, members=["a.keras", "b.keras"])
    narrower = build_model(dataclasses.replace(JOINT, features=6))
    with pytest.raises(ensemble.EnsembleError, match=r"member 1 and member 2 differ in features"):
        export.export_model([joint_models[0], narrower], tmp_path)
    assert not any(tmp_path.iterdir())


def test_too_large_ensembles_say_which_members_to_drop(joint_models, tmp_path):
    with pytest.raises(tflite.ModelTooLargeError, match="ensemble of 2: no member fits alone"):
        export.export_model(joint_models, tmp_path, max_size_mb=0.01, members=["a", "b"])
    advice = ensemble.drop_advice(30_000_000, 25_000_000, [1, 1, 1], ["s42", "s43", "s44"])
    assert advice == "drop 1 member(s) to fit: s44 (~10.0 MB)"
    advice = ensemble.drop_advice(30_000_000, 12_000_000, [1, 1, 1], ["s42", "s43", "s44"])
    assert advice.startswith("drop 2 member(s) to fit: s43 (~10.0 MB), s44")


@pytest.mark.parametrize("decoder", ["ctc_beam", pytest.param("joint", marks=pytest.mark.slow)])
def test_language_model_exports_give_the_keras_phrases(
    decoder, joint_models, raw_sequences, processed_data
):
    """The fused search in TFLite: Keras's phrases, which the language model changed, and its
    table still int16 after int8 weight quantization (which would otherwise take it too)."""
    fused = language_model.fit(processed_data.y_train).fused(0.5, 1.0)
    module = inference.InferenceModule(
        joint_models[:1], decoder=decoder, beam=3, language_model=fused
    )
    raws = [*sample_raw(raw_sequences, 24), *edge_inputs().values()]
    flatbuffer = tflite.convert(module)
    tflite_phrases = [harness_phrase(run_flatbuffer(flatbuffer, raw)) for raw in raws]
    assert tflite_phrases == keras_phrases(joint_models[:1], raws, decoder, 3, fused)
    assert tflite_phrases != keras_phrases(joint_models[:1], raws, decoder, 3)
    quantized = Interpreter(model_content=tflite.convert(module, "dynamic_range"))
    tables = [
        t for t in quantized.get_tensor_details() if tuple(t["shape"]) == fused.log_probs.shape
    ]
    assert [t["dtype"] for t in tables] == [np.int16]


@pytest.mark.slow
def test_export_command_fuses_the_run_folders_language_model(
    joint_models, dataset, tmp_path, capsys
):
    data, processed = dataset
    folder = tmp_path / "run"
    folder.mkdir()
    joint_models[0].save(folder / "best.keras")
    common = [
        *["--model", str(folder), "--processed", str(processed), "--data", str(data)],
        *["--decoder", "ctc_beam", "--lm-weight", "0.5", "--lm-bonus", "1.0", "--limit", "20"],
        *["--quiet", "--no-dynamic-range"],
    ]
    assert export.main([*common, "--out", str(tmp_path / "none")]) == 1
    assert "run/language_model.npz: no language model" in capsys.readouterr().err
    language_model.save(language_model.fit_processed(processed), folder)
    assert export.main([*common, "--out", str(tmp_path / "out")]) == 0, capsys.readouterr().err
    metrics = json.loads((tmp_path / "out" / pipeline.STAGE_METRICS).read_text())
    assert (metrics["export"]["lm_weight"], metrics["export"]["lm_bonus"]) == (0.5, 1.0)
    assert metrics["export"]["lm_order"] == language_model.DEFAULT_ORDER
    assert metrics["keras_tflite_match"] == 1.0
    capsys.readouterr()
    greedy = [*common[:6], "--decoder", "ctc", "--lm-weight", "0.5", "--out", str(tmp_path / "g")]
    assert export.main([*greedy, "--quiet"]) == 1
    assert "needs a search decoder (ctc_beam or joint), not greedy ctc" in capsys.readouterr().err


def test_export_command_takes_repeated_models_and_search_options(tmp_path, capsys):
    code = export.main(["--model", str(tmp_path / "a"), "--model", str(tmp_path / "b")])
    assert code == 1
    assert "a/best.keras: no such model file" in capsys.readouterr().err
    config = export.ExportConfig(model=["a", "b"], decoder="joint", beam=3)
    assert config.models == ("a", "b")
    assert export.ExportConfig(model=("a",)).model == "a"  # one model stays a string
    with pytest.raises(ValueError, match="beam"):
        export.ExportConfig(beam=0)
    from aslfr_lib.decoding import DECODERS

    assert export.command.DECODERS == DECODERS
