"""The warmup + cosine learning-rate schedule against the reference's ``lrfn`` and its log."""

import itertools
import math

import keras
import numpy as np
import pytest
from helpers import BACKEND, TINY_ARCHITECTURE, run_on_other_backend, write_unreadable

from aslfr_lib.schedules import EpochWarmupCosine, learning_rate, schedule

# The learning rates the reference printed at the start of each of its 100 V6 epochs
# (epochs 100, warmup 10, lr_max 1e-3, exp warmup), formatted with ``:.2e``.
V6_LOG = """
9.77e-07 1.95e-06 3.91e-06 7.81e-06 1.56e-05 3.13e-05 6.25e-05 1.25e-04 2.50e-04 5.00e-04
1.00e-03 1.00e-03 9.99e-04 9.97e-04 9.95e-04 9.92e-04 9.89e-04 9.85e-04 9.81e-04 9.76e-04
9.70e-04 9.64e-04 9.57e-04 9.49e-04 9.41e-04 9.33e-04 9.24e-04 9.15e-04 9.05e-04 8.94e-04
8.83e-04 8.72e-04 8.60e-04 8.47e-04 8.35e-04 8.21e-04 8.08e-04 7.94e-04 7.80e-04 7.65e-04
7.50e-04 7.35e-04 7.19e-04 7.03e-04 6.87e-04 6.71e-04 6.55e-04 6.38e-04 6.21e-04 6.04e-04
5.87e-04 5.70e-04 5.52e-04 5.35e-04 5.17e-04 5.00e-04 4.83e-04 4.65e-04 4.48e-04 4.30e-04
4.13e-04 3.96e-04 3.79e-04 3.62e-04 3.45e-04 3.29e-04 3.13e-04 2.97e-04 2.81e-04 2.65e-04
2.50e-04 2.35e-04 2.20e-04 2.06e-04 1.92e-04 1.79e-04 1.65e-04 1.53e-04 1.40e-04 1.28e-04
1.17e-04 1.06e-04 9.55e-05 8.55e-05 7.60e-05 6.70e-05 5.85e-05 5.06e-05 4.32e-05 3.64e-05
3.02e-05 2.45e-05 1.94e-05 1.49e-05 1.09e-05 7.60e-06 4.87e-06 2.74e-06 1.22e-06 3.05e-07
"""
V6_PRINTED = V6_LOG.split()


def lrfn(current_step, num_warmup_steps, lr_max, warmup_method, num_cycles=0.50, total=100):
    """The reference notebook's lrfn, transcribed (WARMUP_METHOD made an argument)."""
    if current_step < num_warmup_steps:
        if warmup_method == "log":
            return lr_max * 0.10 ** (num_warmup_steps - current_step)
        else:
            return lr_max * 2 ** -(num_warmup_steps - current_step)
    else:
        progress = float(current_step - num_warmup_steps) / float(max(1, total - num_warmup_steps))
        return (
            max(0.0, 0.5 * (1.0 + math.cos(math.pi * float(num_cycles) * 2.0 * progress))) * lr_max
        )


def test_v6_schedule_reproduces_the_reference_log():
    values = schedule(epochs=100, warmup_epochs=10, lr_max=1e-3)
    assert [f"{value:.2e}" for value in values] == V6_PRINTED


@pytest.mark.parametrize("warmup_method", ["exp", "log"])
@pytest.mark.parametrize(
    ("epochs", "warmup_epochs", "lr_max", "num_cycles"),
    [
        (100, 10, 1e-3, 0.5),
        (7, 3, 0.02, 0.5),
        (5, 0, 1e-2, 0.5),
        (4, 4, 1e-3, 0.5),
        (9, 2, 1e-3, 1.0),
    ],
)
def test_values_equal_lrfn(warmup_method, epochs, warmup_epochs, lr_max, num_cycles):
    got = schedule(epochs, warmup_epochs, lr_max, warmup_method, num_cycles)
    want = [
        lrfn(e, warmup_epochs, lr_max, warmup_method, num_cycles, epochs) for e in range(epochs)
    ]
    assert got == want  # same arithmetic, so exactly the same floats
    assert got[0] == learning_rate(0, epochs, warmup_epochs, lr_max, warmup_method, num_cycles)


@pytest.mark.parametrize("warmup_method", ["exp", "log"])
def test_shape_warmup_peak_and_final(warmup_method):
    values = np.array(schedule(30, 6, 2e-3, warmup_method))
    assert (np.diff(values[:7]) > 0).all()  # strictly rising to the peak
    assert values[6] == values.max() == 2e-3  # the peak is lr_max, at the first epoch after warmup
    assert (np.diff(values[6:]) <= 0).all()  # never rises again
    assert 0 < values[-1] < 0.01 * 2e-3  # ends close to zero
    factor = 0.5 if warmup_method == "exp" else 0.1
    np.testing.assert_allclose(values[1:6] / values[:5], 1 / factor)


def test_invalid_arguments_are_refused():
    with pytest.raises(ValueError, match="warmup_method"):
        learning_rate(0, 10, 2, 1e-3, "linear")
    with pytest.raises(ValueError, match="epoch must be in"):
        learning_rate(10, 10, 2, 1e-3)
    with pytest.raises(ValueError, match="warmup_epochs"):
        schedule(5, 6, 1e-3)
    with pytest.raises(ValueError, match="steps_per_epoch"):
        EpochWarmupCosine(0, 10, 2, 1e-3)


def compiled(schedule_):
    if BACKEND == "tensorflow":
        import tensorflow as tf

        return tf.function(schedule_)
    if BACKEND == "jax":
        import jax

        return jax.jit(schedule_)
    return schedule_


@pytest.mark.parametrize("warmup_method", ["exp", "log"])
def test_step_schedule_is_the_epoch_value(warmup_method):
    steps_per_epoch, epochs = 3, 7
    schedule_ = EpochWarmupCosine(steps_per_epoch, epochs, 2, 0.01, warmup_method)
    per_epoch = np.float32(schedule(epochs, 2, 0.01, warmup_method))
    step_fn = compiled(schedule_)
    for step in range(steps_per_epoch * epochs + 4):  # 4 steps past the end hold the last value
        want = per_epoch[min(step // steps_per_epoch, epochs - 1)]
        counter = keras.ops.convert_to_tensor(step, dtype="int32" if step % 2 else "int64")
        assert float(step_fn(counter)) == want, step
        assert float(schedule_(step)) == want, step


def test_schedule_reads_the_optimizer_counter():
    """A resumed optimizer (restored iteration counter) continues at the right epoch's rate."""
    schedule_ = EpochWarmupCosine(steps_per_epoch=4, epochs=10, warmup_epochs=2, lr_max=1e-2)
    optimizer = keras.optimizers.SGD(schedule_)
    optimizer.iterations.assign(4 * 6 + 1)  # epoch 6
    assert float(optimizer.learning_rate) == pytest.approx(learning_rate(6, 10, 2, 1e-2), rel=1e-6)


def test_config_round_trip():
    schedule_ = EpochWarmupCosine(5, 12, 3, 2e-3, "log", 0.5)
    config = keras.saving.serialize_keras_object(schedule_)
    assert config["registered_name"] == "aslfr>EpochWarmupCosine"
    restored = keras.saving.deserialize_keras_object(config)
    assert type(restored) is EpochWarmupCosine
    assert restored.get_config() == schedule_.get_config()
    assert restored.values == schedule_.values


@pytest.mark.slow
def test_other_backend():
    run_on_other_backend(__file__)


def test_hold_keeps_the_peak_then_decays_over_the_remaining_epochs():
    held = schedule(10, 2, 1e-3, hold_epochs=3)
    assert held[:2] == schedule(10, 2, 1e-3)[:2]
    assert held[2:5] == [1e-3] * 3
    assert held[5:] == pytest.approx(schedule(7, 2, 1e-3)[2:])  # the cosine over 5 epochs
    assert EpochWarmupCosine(4, 10, 2, 1e-3, hold_epochs=3).get_config()["hold_epochs"] == 3
    with pytest.raises(ValueError, match="hold_epochs"):
        schedule(10, 2, 1e-3, hold_epochs=9)


def test_aligned_hold_waits_for_alignment_within_its_extra_epochs():
    from aslfr_lib.schedules import aligned_hold

    assert aligned_hold(2, 4, 1, None) == 6  # on the plateau: the longest hold
    assert aligned_hold(2, 4, 1, 2) == 2  # aligned early: the fixed hold
    assert aligned_hold(2, 4, 1, 5) == 4  # aligned at epoch 5: decay from epoch 6 on
    assert aligned_hold(2, 4, 1, 9) == 6  # too late: never more than the extra epochs
    assert aligned_hold(0, 0, 1, 7) == 0
    with pytest.raises(ValueError, match="extra"):
        aligned_hold(0, -1, 1, None)


@pytest.mark.parametrize("aligned_at", [1, 2, 3, 4, 5, 6, 7, 8, 9])
def test_waiting_schedule_never_rewrites_the_epochs_already_trained(aligned_at):
    from aslfr_lib.training import TrainConfig, learning_rates

    config = TrainConfig(epochs=9, warmup_epochs=1, lr_hold_epochs=1, lr_hold_until_aligned=4,
                         ctc_weight=1.0)  # fmt: skip
    waiting, known = learning_rates(config), learning_rates(config, aligned_at)
    assert known[:aligned_at] == waiting[:aligned_at]  # what ran before alignment was seen
    peak_until = 1 + max(1, min(aligned_at - 1, 5))  # warmup + the hold in use
    assert known[1 : peak_until + 1] == [config.lr_max] * peak_until  # then the cosine's first
    assert all(a > b for a, b in itertools.pairwise(known[peak_until:]))
    fixed = TrainConfig(epochs=9, warmup_epochs=1, lr_hold_epochs=1, ctc_weight=1.0)
    if aligned_at <= 2:  # aligned within the fixed hold: the fixed schedule
        assert known == learning_rates(fixed)


def test_waiting_schedule_needs_a_ctc_head_and_fits_any_length():
    from aslfr_lib.training import TrainConfig, learning_rates

    with pytest.raises(ValueError, match="no CTC head"):
        TrainConfig(epochs=9, lr_hold_until_aligned=2, ctc_weight=0.0)
    with pytest.raises(ValueError, match="lr_hold_until_aligned must be >= 0"):
        TrainConfig(epochs=9, lr_hold_until_aligned=-1, ctc_weight=1.0)
    # "Up to N": a run too short for the whole wait holds the peak to its end, then decays.
    short = TrainConfig(epochs=4, warmup_epochs=1, lr_hold_epochs=1, lr_hold_until_aligned=9,
                        ctc_weight=1.0)  # fmt: skip
    assert learning_rates(short)[1:] == [short.lr_max] * 3


@pytest.mark.slow
def test_a_run_on_the_plateau_keeps_the_peak_and_the_optimizer_gets_each_rate(tmp_path):
    """Backend-specific: the rate is an optimizer variable set before each epoch (this file
    also runs on the other backend). What this checks is that the variable holds each epoch's
    rate; that Keras' JAX trainer reads optimizer variables into its state every epoch is the
    mechanism keras.callbacks.LearningRateScheduler relies on too, not tested here."""
    from aslfr_lib.training import TrainConfig, learning_rates, train

    config = TrainConfig(
        processed=str(write_unreadable(tmp_path / "processed")),
        out=str(tmp_path / "run"),
        backend=BACKEND,
        epochs=4,
        warmup_epochs=0,
        lr_hold_epochs=0,
        lr_hold_until_aligned=2,
        lr_max=1e-6,  # noise to read: stays on the plateau
        optimizer="adamw",
        batch_size=8,
        ctc_weight=1.0,
        examples_every=0,
        verbose=0,
        **TINY_ARCHITECTURE,
    )
    result = train(config)
    assert result.alignment_epoch is None and result.stalled
    expected = learning_rates(config)
    assert expected[:3] == [1e-6] * 3 and expected[3] == pytest.approx(0.5e-6)
    assert result.history["lr"] == pytest.approx(expected)
    used = float(keras.ops.convert_to_numpy(result.model.optimizer.learning_rate))
    assert used == pytest.approx(expected[-1])
