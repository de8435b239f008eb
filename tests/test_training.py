"""Loss, metrics, data batches, sanity checks and the training run with resume (TF backend)."""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import TINY_ARCHITECTURE
from keras import ops

from aslfr_lib import training
from aslfr_lib.data import DataError, ShuffledBatches, load_training_data
from aslfr_lib.losses import MaskedCrossEntropy, masked_cross_entropy
from aslfr_lib.metrics import MaskedTopKAccuracy
from aslfr_lib.model import ModelConfig, build_model
from aslfr_lib.schedules import schedule
from aslfr_lib.training import TrainConfig, sanity_checks
from aslfr_lib.vocab import EOS, NUM_CLASSES, PAD, encode

PHRASES = ["abc", "hello", "12 main st", "x", "www.a.com"]


def write_processed(folder: Path, train=20, val=6, frames=16, features=6, seed=0) -> Path:
    """A tiny folder in the layout of ``aslfr preprocess`` (random frames, real targets)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    meta = {"format_version": 2, "storage": "ragged", "config": {"frames": frames}}
    for split, count, first_id in (("train", train, 1000), ("val", val, 2000)):
        full = rng.normal(0.5, 0.1, size=(count, frames, features)).astype(np.float32)
        stored = frames // 2  # each sequence: frames // 2 frames with landmarks
        targets = [encode(PHRASES[i % len(PHRASES)]) for i in range(count)]
        np.save(folder / f"frames_{split}.npy", full[:, :stored].reshape(-1, features))
        np.save(folder / f"offsets_{split}.npy", np.arange(count + 1, dtype=np.int64) * stored)
        np.save(folder / f"y_{split}.npy", np.array(targets, np.int8).reshape(count, 32))
        meta[split] = {"sequence_ids": list(range(first_id, first_id + count))}
    np.save(folder / "means.npy", np.full(features, 0.5, np.float32))
    np.save(folder / "stds.npy", np.full(features, 0.1, np.float32))
    (folder / "meta.json").write_text(json.dumps(meta))
    return folder


def test_masked_cross_entropy_matches_numpy():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 4, NUM_CLASSES)).astype(np.float32)
    targets = np.array([[3, 7, EOS, PAD], [5, EOS, PAD, PAD]])
    smoothing = 0.25
    log_probabilities = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    smoothed = np.eye(NUM_CLASSES)[targets] * (1 - smoothing) + smoothing / NUM_CLASSES
    per_token = -(smoothed * log_probabilities).sum(-1)
    expected = per_token[targets != PAD].mean()
    loss = ops.convert_to_numpy(masked_cross_entropy(targets, logits, smoothing))
    np.testing.assert_allclose(loss, expected, rtol=1e-5)
    np.testing.assert_allclose(ops.convert_to_numpy(MaskedCrossEntropy()(targets, logits)), loss)
    # PAD positions do not matter; a batch of PAD only is 0, not NaN.
    changed = logits.copy()
    changed[targets == PAD] = 100.0
    np.testing.assert_allclose(ops.convert_to_numpy(MaskedCrossEntropy()(targets, changed)), loss)
    all_pad = np.full((1, 4), PAD)
    assert float(ops.convert_to_numpy(masked_cross_entropy(all_pad, logits[:1]))) == 0.0
    config = MaskedCrossEntropy(0.1).get_config()
    assert MaskedCrossEntropy.from_config(config).label_smoothing == 0.1


def test_top_k_accuracy_ignores_pad_and_accumulates_over_batches():
    ranks = np.arange(NUM_CLASSES, dtype=np.float32) * 1e-3  # no ties: EOS (61) ranks high
    logits = np.tile(ranks, (1, 4, 1))
    logits[0, 0, 3] = 5.0  # correct
    logits[0, 1, 8] = 5.0  # wrong top-1, target 7 second
    logits[0, 1, 7] = 4.0
    logits[0, 2, 1] = 5.0  # EOS second
    logits[0, 3, 2] = 5.0  # PAD target: ignored
    targets = np.array([[3, 7, EOS, PAD]])
    top1, top5 = MaskedTopKAccuracy(1), MaskedTopKAccuracy(5)
    for metric in (top1, top5):
        metric.update_state(targets, logits)
    assert top1.name == "top1" and top5.name == "top5"
    assert float(top1.result()) == pytest.approx(1 / 3)
    assert float(top5.result()) == pytest.approx(1.0)
    second = np.tile(ranks, (1, 4, 1))
    second[0, :, 9] = 1.0
    top1.update_state(np.array([[9, EOS, PAD, PAD]]), second)  # one more right, one wrong
    assert float(top1.result()) == pytest.approx(2 / 5)
    top1.reset_state()
    assert float(top1.result()) == 0.0
    assert MaskedTopKAccuracy.from_config(top5.get_config()).k == 5


def test_shuffled_batches_are_epochs_of_full_batches():
    frames = np.arange(10, dtype=np.float16).reshape(10, 1, 1)
    targets = np.arange(10, dtype=np.int8)[:, None].repeat(32, axis=1)
    batches = ShuffledBatches(frames, targets, batch_size=4, seed=3)
    assert len(batches) == 3
    seen = []
    for index in range(len(batches)):
        inputs, y = batches[index]
        assert inputs["frames"].shape == (4, 1, 1) and inputs["frames"].dtype == np.float32
        assert y.dtype == np.int32 and np.array_equal(inputs["phrase"], y)
        np.testing.assert_array_equal(inputs["frames"][:, 0, 0], y[:, 0])  # rows stay paired
        seen.extend(y[:, 0].tolist())
    assert sorted(set(seen)) == list(range(10)) and len(seen) == 12  # all seen, 2 topped up
    first = batches.order.copy()
    batches.on_epoch_end()
    assert not np.array_equal(first, batches.order)
    # A resumed run starting at epoch 1 sees the same order as an uninterrupted one.
    resumed = ShuffledBatches(frames, targets, batch_size=4, seed=3, epoch=1)
    np.testing.assert_array_equal(resumed.order, batches.order)
    validation = ShuffledBatches(frames, targets, 4, shuffle=False, full_batches=False)
    assert [len(validation[i][1]) for i in range(3)] == [4, 4, 2]
    np.testing.assert_array_equal(validation[2][1][:, 0], [8, 9])


def test_load_training_data_names_file_and_sequence_on_bad_input(tmp_path):
    folder = write_processed(tmp_path / "p")
    data = load_training_data(folder)
    assert data.has_validation and data.X_train.shape == (20, 16, 6)
    assert data.sequence_ids("val")[0] == 2000
    targets = np.load(folder / "y_val.npy")
    targets[2] = PAD  # no EOS
    np.save(folder / "y_val.npy", targets)
    with pytest.raises(DataError, match=r"y_val\.npy: sequence 2002 \(row 2\).*one EOS"):
        load_training_data(folder)
    folder = write_processed(tmp_path / "q")
    values, offsets = np.load(folder / "frames_train.npy"), np.load(folder / "offsets_train.npy")
    values[offsets[5], 0] = np.nan
    np.save(folder / "frames_train.npy", values)
    with pytest.raises(DataError, match=r"frames_train\.npy: sequence 1005 \(row 5\).*NaN"):
        load_training_data(folder)
    folder = write_processed(tmp_path / "r")
    targets = np.load(folder / "y_train.npy")
    targets[1, 30] = 5  # a character after EOS
    np.save(folder / "y_train.npy", targets)
    with pytest.raises(DataError, match=r"sequence 1001 .*then PAD only"):
        load_training_data(folder)


def test_train_config_validation_and_backend_guard():
    with pytest.raises(ValueError, match="optimizer"):
        TrainConfig(optimizer="sgd")
    with pytest.raises(ValueError, match="warmup_epochs"):
        TrainConfig(epochs=5, warmup_epochs=6)
    with pytest.raises(ValueError, match="divisible"):
        TrainConfig(encoder_dim=30)
    with pytest.raises(training.BackendError, match="already imported"):
        training.import_keras("jax")  # this test process runs Keras on TensorFlow


@pytest.mark.parametrize(("setting", "compiled"), [(True, True), (False, False), (None, False)])
def test_jit_compile_setting_reaches_the_train_step(setting, compiled):
    # None is Keras' choice: no XLA on a machine without GPUs, like these test machines.
    config = TrainConfig(
        encoder_dim=32, decoder_dim=32, encoder_blocks=1, decoder_blocks=1, epochs=2,
        ctc_weight=0.5, jit_compile=setting,
    )  # fmt: skip
    model = build_model(ModelConfig.from_architecture(config, frames=8, features=164))
    training.compile_model(model, config, steps_per_epoch=1)
    assert model.jit_compile is compiled


def test_sanity_checks_report_the_reference_checks():
    model = build_model(ModelConfig(frames=16, features=6, **TINY_ARCHITECTURE))
    rng = np.random.default_rng(0)
    X = rng.normal(size=(8, 16, 6)).astype(np.float32)
    y = np.stack([encode(PHRASES[i % 5]) for i in range(8)])
    report = sanity_checks(model, X, y, batch_size=8)
    assert report["inference_deterministic"] is True
    assert report["training_changes_outputs"] > 0.99
    assert report["nan_predictions"] == 0
    assert report["pad_only_accuracy"] == pytest.approx(np.mean(y == PAD))
    assert 3.0 < report["untrained_loss"] < 8.0  # about log(62) = 4.1 for a fresh model
    assert 0.0 <= report["untrained_top1"] <= report["untrained_top5"] <= 1.0
    assert report["initial_logits"].shape == (8 * 32 * NUM_CLASSES,)


class _NoValidation:
    has_validation = False

    def __init__(self, X, y):
        self.X, self.y = X, y

    def split(self, name):
        return self.X, self.y


def test_epoch_end_without_validation_keeps_best_equal_to_last(tmp_path, capsys):
    config = TrainConfig(
        out=str(tmp_path), epochs=3, warmup_epochs=1, examples_every=1, **TINY_ARCHITECTURE
    )
    model = build_model(ModelConfig(frames=16, features=6, **TINY_ARCHITECTURE))
    X = np.zeros((2, 16, 6), np.float32)
    y = np.stack([encode("ab"), encode("c")])
    history, state = {}, {"best_score": None, "best_epoch": 0}
    epoch_end = training.EpochEnd(model, config, _NoValidation(X, y), history, state)
    epoch_end(0, {"loss": 4.0, "top1": 0.1, "top5": 0.2})
    epoch_end(1, {"loss": 3.0, "top1": 0.2, "top5": 0.3})
    best, last = (training.load_checkpoint(tmp_path / n) for n in ("best.keras", "last.keras"))
    for a, b in zip(best.get_weights(), last.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert state == {"best_score": None, "best_epoch": 2, "epochs_completed": 2}
    saved = json.loads((tmp_path / "history.json").read_text())
    assert saved["state"]["epochs_completed"] == 2 and saved["history"]["loss"] == [4.0, 3.0]
    assert history["lr"] == schedule(3, 1, 1e-3)[:2]
    assert "training examples (target | prediction)" in capsys.readouterr().out


def test_resume_needs_a_checkpoint_written_by_train(tmp_path):
    processed = write_processed(tmp_path / "processed")
    out = tmp_path / "run"
    config = TrainConfig(processed=str(processed), out=str(out), resume=True, **TINY_ARCHITECTURE)
    out.mkdir()
    (out / "config.json").write_text(json.dumps(training.to_dict(config)))
    build_model(ModelConfig(frames=16, features=6, **TINY_ARCHITECTURE)).save(out / "last.keras")
    with pytest.raises(ValueError, match="not written by aslfr train"):
        training.train(config)


class Killed(Exception):
    """Stands in for the process being killed right after an epoch's files are written."""


@pytest.mark.slow
def test_training_run_resumes_after_a_kill_at_the_right_epoch_and_learning_rate(
    tmp_path, monkeypatch, capsys
):
    processed = write_processed(tmp_path / "processed")
    out = tmp_path / "run"
    original = training.EpochEnd.__call__

    def killed_after_first_epoch(self, epoch, logs=None):
        original(self, epoch, logs)
        if epoch == 0:
            raise Killed

    monkeypatch.setattr(training.EpochEnd, "__call__", killed_after_first_epoch)
    argv = ["--processed", str(processed), "--out", str(out), "--epochs", "3"]
    argv += ["--warmup-epochs", "1", "--batch-size", "8", "--examples-every", "2"]
    argv += ["--verbose", "0", "--encoder-dim", "16", "--decoder-dim", "16", "--num-heads", "2"]
    argv += ["--encoder-blocks", "1", "--decoder-blocks", "1"]
    with pytest.raises(Killed):
        training.main(argv)
    monkeypatch.setattr(training.EpochEnd, "__call__", original)
    steps = 3  # ceil(20 / 8)
    rates = schedule(3, 1, 1e-3)

    after_kill = training.load_checkpoint(out / "last.keras", compile=True)
    assert int(after_kill.optimizer.iterations.numpy()) == steps
    # The saved optimizer continues with epoch 2's learning rate.
    assert float(ops.convert_to_numpy(after_kill.optimizer.learning_rate)) == pytest.approx(
        rates[1]
    )

    config = TrainConfig(
        processed=str(processed),
        out=str(out),
        epochs=3,
        warmup_epochs=1,
        batch_size=8,
        examples_every=2,
        verbose=0,
        resume=True,
        **TINY_ARCHITECTURE,
    )
    result = training.train(config)
    printed = capsys.readouterr().out
    assert "resuming" in printed and "at epoch 2" in printed
    assert "validation examples (target | prediction)" in printed
    assert result.epochs_completed == 3
    assert int(result.model.optimizer.iterations.numpy()) == 3 * steps
    history = pd.read_csv(out / "history.csv")
    assert history["epoch"].tolist() == [1, 2, 3]
    np.testing.assert_allclose(history["lr"], rates)
    for column in ("loss", "top1", "top5", "val_loss", "val_top1", "val_top5", "val_score"):
        assert history[column].notna().all(), column
    assert 1 <= result.best_epoch <= 3 and result.best_score == history["val_score"].max()
    for name in ("last.keras", "best.keras", "history.json", "config.json"):
        assert (out / name).is_file(), name
    for name in ("lr_schedule", "loss", "top1", "top5"):
        assert result.plots[name].is_file() and result.plots[name].stat().st_size > 1000

    # Changing what the saved optimizer depends on is refused.
    with pytest.raises(ValueError, match=r"epochs: 3 -> 4"):
        training.train(dataclasses.replace(config, epochs=4))
    with pytest.raises(ValueError, match=r"lr_hold_epochs: 0 -> 1"):
        training.train(dataclasses.replace(config, lr_hold_epochs=1))


DATA_PARALLEL_SCRIPT = """
import json, sys
backend, processed, out = sys.argv[1], sys.argv[2], sys.argv[3]
if backend == "tensorflow":
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from aslfr_lib.training import TrainConfig, train

results = {}
for devices in ("one", "all"):
    config = TrainConfig(
        processed=processed, out=f"{out}/{devices}", epochs=1, warmup_epochs=0, batch_size=8,
        backend=backend, devices=devices, verbose=0, examples_every=0, encoder_dim=16,
        decoder_dim=16, encoder_blocks=1, decoder_blocks=1, num_heads=2, mlp_dropout=0.0,
        attention_dropout=0.0, classifier_dropout=0.0,
    )
    result = train(config)
    results[devices] = {key: result.history[key][0] for key in ("loss", "top1")}
    results[devices]["replicas"] = result.replicas
print("RESULT " + json.dumps(results))
"""


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "tensorflow"])
def test_data_parallel_epoch_matches_one_device(tmp_path, backend):
    """Two virtual CPU devices (JAX: DataParallel; TF: MirroredStrategy) vs one.

    JAX computes each step on the whole (sharded) batch, so it matches one device up to float
    reduction order. TF's replicas each average the loss over their own non-PAD tokens and the
    gradients of those means are averaged, which differs slightly from the token mean over the
    whole batch (0.2 % in the epoch's loss here), hence the wider tolerance.
    """
    processed = write_processed(tmp_path / "processed", train=24, val=0)  # val: no new insight
    env = {
        **os.environ,
        "KERAS_BACKEND": backend,
        "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
        "JAX_PLATFORMS": "cpu",
    }
    result = subprocess.run(
        [sys.executable, "-c", DATA_PARALLEL_SCRIPT, backend, str(processed), str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    line = next(x for x in result.stdout.splitlines() if x.startswith("RESULT "))
    results = json.loads(line[len("RESULT ") :])
    assert (results["one"]["replicas"], results["all"]["replicas"]) == (1, 2)
    tolerance = 1e-3 if backend == "jax" else 1e-2
    one, two = results["one"]["loss"], results["all"]["loss"]
    assert two == pytest.approx(one, rel=tolerance), (one, two)
    # Top-1 of a barely trained model: a token or two may flip (155 tokens here).
    assert results["all"]["top1"] == pytest.approx(results["one"]["top1"], abs=0.02)
