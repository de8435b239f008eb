"""RectifiedAdam, Lookahead and build_optimizer against numpy versions of the published rules.

The numpy references below are written from the papers (RAdam: Liu et al. 2019, Algorithm 2;
Lookahead: Zhang et al. 2019, Algorithm 1) with tfa's two implementation choices (threshold test
``rho_t >= sma_threshold``, epsilon added to the bias-corrected ``v_hat``) and the decoupled
decay ``w -= lr_t * ratio * w`` applied before the adaptive step, as Keras does. Every test runs
on the backend conftest picks; ``test_other_backend`` reruns this file on the other one.
"""

import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from helpers import BACKEND, run_on_other_backend

from aslfr_lib.optimizers import Lookahead, RectifiedAdam, build_optimizer
from aslfr_lib.schedules import EpochWarmupCosine, schedule

STEPS = 20  # crosses rho_t = 4 at step 5 and four Lookahead syncs (sync_period 5)
STEPS_PER_EPOCH = 3  # the scheduled learning rate changes every 3 steps
SCHEDULE = dict(steps_per_epoch=STEPS_PER_EPOCH, epochs=8, warmup_epochs=2, lr_max=1e-2)
WEIGHT_DECAY_RATIO = 0.5  # large, so that decay applied twice or never is far outside tolerance
SHAPES = [(3,), (2, 4), ()]


# ---------------------------------------------------------------- numpy references (the papers)
class NumpyRAdam:
    def __init__(self, dtype, beta_1=0.9, beta_2=0.999, epsilon=1e-7, sma_threshold=5.0, wd=0.0):
        self.cast = np.dtype(dtype).type
        self.beta_1, self.beta_2 = self.cast(beta_1), self.cast(beta_2)
        self.epsilon, self.sma_threshold, self.wd = map(self.cast, (epsilon, sma_threshold, wd))
        self.m = self.v = None

    def step(self, weights, grads, lr, t):
        """One step (t counts from 1); returns the new weights."""
        one, b1, b2 = self.cast(1), self.beta_1, self.beta_2
        if self.m is None:
            self.m = [np.zeros_like(w) for w in weights]
            self.v = [np.zeros_like(w) for w in weights]
        lr, t = self.cast(lr), self.cast(t)
        rho_inf = self.cast(2) / (one - b2) - one
        rho_t = rho_inf - self.cast(2) * t * b2**t / (one - b2**t)
        new = []
        for i, (w, g) in enumerate(zip(weights, grads, strict=True)):
            w = w - lr * self.wd * w  # decoupled decay (AdamW)
            self.m[i] = b1 * self.m[i] + (one - b1) * g
            self.v[i] = b2 * self.v[i] + (one - b2) * g * g
            m_hat = self.m[i] / (one - b1**t)
            if rho_t >= self.sma_threshold:
                v_hat = np.sqrt(self.v[i] / (one - b2**t))
                r_t = np.sqrt(
                    (rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)
                )
                w = w - lr * r_t * m_hat / (v_hat + self.epsilon)
            else:
                w = w - lr * m_hat  # un-adapted momentum while the variance is intractable
            new.append(w.astype(self.cast))
        return new


class NumpyLookahead:
    def __init__(self, inner, sync_period=5, alpha=0.5):
        self.inner, self.sync_period, self.alpha = inner, sync_period, inner.cast(alpha)
        self.slow = None

    def step(self, weights, grads, lr, t):
        if self.slow is None:
            self.slow = [w.copy() for w in weights]
        weights = self.inner.step(weights, grads, lr, t)
        if t % self.sync_period == 0:
            self.slow = [s + self.alpha * (w - s) for s, w in zip(self.slow, weights, strict=True)]
            weights = [s.copy() for s in self.slow]
        return weights


def gradient_sequence(dtype, steps=STEPS, seed=0):
    """Fixed gradients of different scales per variable, with sign changes."""
    rng = np.random.default_rng(seed)
    scales = [1.0, 0.01, 30.0]
    return [
        [
            (scale * rng.normal(size=shape)).astype(dtype)
            for shape, scale in zip(SHAPES, scales, strict=True)
        ]
        for _ in range(steps)
    ]


def initial_weights(dtype, seed=1):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=shape).astype(dtype) for shape in SHAPES]


def scheduled_rates(steps=STEPS):
    """The learning rate at each step, as the float32 schedule hands it to the optimizer."""
    values = schedule(SCHEDULE["epochs"], SCHEDULE["warmup_epochs"], SCHEDULE["lr_max"])
    return [float(np.float32(values[step // STEPS_PER_EPOCH])) for step in range(steps)]


def run_reference(reference, weights, gradients):
    for t, (grads, lr) in enumerate(
        zip(gradients, scheduled_rates(len(gradients)), strict=True), start=1
    ):
        weights = reference.step(weights, grads, lr, t)
    return weights


# ------------------------------------------------------------------- running the Keras optimizers
def run_keras(optimizer, weights, gradients, mode):
    """Apply ``gradients`` step by step, eagerly or compiled (tf.function / jax.jit)."""
    variables = [keras.Variable(w, dtype=w.dtype) for w in weights]
    if mode == "eager":
        for grads in gradients:
            optimizer.apply(grads, variables)
        return [np.asarray(v.numpy()) for v in variables]
    optimizer.build(variables)
    if BACKEND == "tensorflow":
        import tensorflow as tf

        step = tf.function(lambda grads: optimizer.apply(grads, variables))
        for grads in gradients:
            step(grads)
        return [np.asarray(v.numpy()) for v in variables]
    if BACKEND == "jax":
        import jax

        # The path keras' JAX trainer takes: a jitted stateless_apply over the state values.
        step = jax.jit(optimizer.stateless_apply)
        model_values = [v.value for v in variables]
        optimizer_values = [v.value for v in optimizer.variables]
        for grads in gradients:
            model_values, optimizer_values = step(optimizer_values, grads, model_values)
        for variable, value in zip(optimizer.variables, optimizer_values, strict=True):
            variable.assign(value)
        return [np.asarray(value) for value in model_values]
    pytest.skip(f"no compiled mode for backend {BACKEND}")


def float64_available():
    if BACKEND != "jax":
        return True
    import jax

    return bool(jax.config.jax_enable_x64)


TOLERANCE = {"float32": 1e-6, "float64": 1e-12}


def check_dtype(dtype):
    if dtype == "float64" and not float64_available():
        pytest.skip("JAX runs float64 only with JAX_ENABLE_X64=1")


@pytest.mark.parametrize("mode", ["eager", "compiled"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_radam_matches_the_paper(dtype, mode):
    check_dtype(dtype)
    weights, gradients = initial_weights(dtype), gradient_sequence(dtype)
    optimizer = RectifiedAdam(
        EpochWarmupCosine(**SCHEDULE), sma_threshold=4.0, weight_decay=WEIGHT_DECAY_RATIO
    )
    got = run_keras(optimizer, weights, gradients, mode)
    reference = NumpyRAdam(dtype, sma_threshold=4.0, wd=WEIGHT_DECAY_RATIO)
    want = run_reference(reference, weights, gradients)
    for g, w in zip(got, want, strict=True):
        assert g.dtype == np.dtype(dtype)
        np.testing.assert_allclose(g, w, rtol=0, atol=TOLERANCE[dtype])
    assert int(optimizer.iterations) == STEPS


def test_radam_threshold_switches_from_momentum_to_adaptive_steps():
    """Before rho_t >= threshold the step is lr * m_hat, whatever the gradient's scale."""
    optimizer = RectifiedAdam(0.1, sma_threshold=5.0)
    variable = keras.Variable(np.zeros(1, "float32"))
    # rho_t is 1.0, 2.0, 3.0, 4.0, 5.0 (minus a little) at steps 1..5, so five momentum steps.
    for _ in range(5):
        optimizer.apply([np.array([1000.0], "float32")], [variable])
    assert float(variable.numpy()[0]) == pytest.approx(-0.1 * 1000.0 * 5, rel=1e-5)
    before = float(variable.numpy()[0])
    optimizer.apply([np.array([1000.0], "float32")], [variable])  # step 6: rho_t = 6.0 >= 5
    adaptive_step = before - float(variable.numpy()[0])
    assert 0 < adaptive_step < 0.1 * 1.01  # r_t * m_hat / v_hat <= 1 for a constant gradient


@pytest.mark.parametrize("mode", ["eager", "compiled"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_lookahead_radam_matches_the_papers(dtype, mode):
    check_dtype(dtype)
    weights, gradients = initial_weights(dtype), gradient_sequence(dtype)
    optimizer = build_optimizer(
        "radam_lookahead", EpochWarmupCosine(**SCHEDULE), WEIGHT_DECAY_RATIO, sync_period=5
    )
    got = run_keras(optimizer, weights, gradients, mode)
    inner = NumpyRAdam(dtype, sma_threshold=4.0, wd=WEIGHT_DECAY_RATIO)
    want = run_reference(NumpyLookahead(inner, sync_period=5), weights, gradients)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=0, atol=TOLERANCE[dtype])
    # Both counters advanced once per step, and the schedule read the inner one.
    assert int(optimizer.iterations) == int(optimizer.inner_optimizer.iterations) == STEPS
    assert float(optimizer.learning_rate) == pytest.approx(scheduled_rates(STEPS + 1)[STEPS])


def test_lookahead_off_by_one_step_is_not_a_sync():
    """After 4 steps (no sync yet) the weights are the inner optimizer's alone."""
    weights, gradients = initial_weights("float32"), gradient_sequence("float32", steps=4)
    wrapped = run_keras(Lookahead(RectifiedAdam(0.01), sync_period=5), weights, gradients, "eager")
    alone = run_keras(RectifiedAdam(0.01), weights, gradients, "eager")
    for a, b in zip(wrapped, alone, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ["radam", "adamw", "radam_lookahead"])
def test_weight_decay_is_learning_rate_times_ratio_once(name):
    """With zero gradients only decay moves weights: w *= (1 - lr_t * ratio) each step."""
    steps, ratio = 10, 0.5
    rates = scheduled_rates(steps)
    optimizer = build_optimizer(name, EpochWarmupCosine(**SCHEDULE), ratio)
    variable = keras.Variable(np.full(4, 2.0, "float32"))
    slow = fast = 2.0
    for step, lr in enumerate(rates, start=1):
        optimizer.apply([np.zeros(4, "float32")], [variable])
        fast *= 1.0 - lr * ratio
        if name == "radam_lookahead" and step % 5 == 0:
            slow = fast = slow + 0.5 * (fast - slow)
    np.testing.assert_allclose(variable.numpy(), fast, rtol=1e-6)
    assert fast < 2.0 * 0.99  # the decay is far larger than the tolerance


def test_zero_ratio_means_no_decay():
    optimizer = build_optimizer("radam_lookahead", 0.01, 0.0)
    assert optimizer.inner_optimizer.weight_decay is None and optimizer.weight_decay is None
    variable = keras.Variable(np.full(3, 2.0, "float32"))
    optimizer.apply([np.zeros(3, "float32")], [variable])
    np.testing.assert_array_equal(variable.numpy(), 2.0)


def test_lookahead_exposes_the_inner_learning_rate_and_decay():
    inner = RectifiedAdam(0.01, weight_decay=0.05)
    optimizer = Lookahead(inner)
    assert float(optimizer.learning_rate) == pytest.approx(0.01)
    optimizer.learning_rate = 0.003  # what keras.callbacks.LearningRateScheduler does
    assert float(inner.learning_rate) == pytest.approx(0.003)
    assert optimizer.weight_decay == 0.05
    with pytest.raises(AttributeError, match="inner optimizer"):
        optimizer.weight_decay = 1e-4  # the reference's callback did this, silently in tfa
    assert not any("learning_rate" in v.path for v in optimizer.variables if "lookahead" in v.path)


def test_build_optimizer_choices():
    lookahead = build_optimizer("radam_lookahead", 1, 0.05, sma_threshold=4.5, sync_period=7)
    assert isinstance(lookahead, Lookahead) and lookahead.sync_period == 7
    assert isinstance(lookahead.inner_optimizer, RectifiedAdam)
    assert lookahead.inner_optimizer.sma_threshold == 4.5
    assert lookahead.inner_optimizer.weight_decay == 0.05
    radam = build_optimizer("radam", np.float32(1e-3), 0.05)
    assert type(radam) is RectifiedAdam and radam.sma_threshold == 4.0
    adamw = build_optimizer("adamw", 1e-3, 0.05)
    assert isinstance(adamw, keras.optimizers.AdamW) and adamw.weight_decay == 0.05
    with pytest.raises(ValueError, match="radam_lookahead"):
        build_optimizer("sgd", 1e-3, 0.05)
    with pytest.raises(ValueError, match="weight_decay_ratio"):
        build_optimizer("radam", 1e-3, -0.1)


def test_invalid_arguments_are_refused():
    with pytest.raises(ValueError, match="sma_threshold"):
        RectifiedAdam(sma_threshold=3.0)
    with pytest.raises(ValueError, match="beta_2"):
        RectifiedAdam(beta_2=1.0)
    with pytest.raises(ValueError, match="sync_period"):
        Lookahead(RectifiedAdam(), sync_period=0)
    with pytest.raises(ValueError, match="slow_step_size"):
        Lookahead(RectifiedAdam(), slow_step_size=0.0)
    with pytest.raises(TypeError, match="inner_optimizer"):
        Lookahead("adam")
    with pytest.raises(ValueError, match="gradient_accumulation_steps"):
        Lookahead(RectifiedAdam(gradient_accumulation_steps=2))


# ----------------------------------------------------------------------------- serialization
def test_config_round_trip():
    optimizer = build_optimizer("radam_lookahead", EpochWarmupCosine(**SCHEDULE), 0.05)
    config = keras.saving.serialize_keras_object(optimizer)
    restored = keras.saving.deserialize_keras_object(config)
    assert type(restored) is Lookahead and type(restored.inner_optimizer) is RectifiedAdam
    assert keras.saving.serialize_keras_object(restored) == config
    assert restored.get_config() == optimizer.get_config()
    inner = restored.inner_optimizer
    assert (inner.sma_threshold, inner.weight_decay, restored.sync_period) == (4.0, 0.05, 5)
    assert isinstance(inner._learning_rate, EpochWarmupCosine)
    assert RectifiedAdam.from_config(optimizer.inner_optimizer.get_config()).get_config() == (
        optimizer.inner_optimizer.get_config()
    )


def tiny_model(seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(1)]
    )


def regression_data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype("float32")
    y = (x @ np.array([[1.0], [-2.0], [0.5], [3.0]], "float32") + 0.5).astype("float32")
    return x, y


@pytest.mark.slow
def test_saved_model_resumes_with_identical_optimizer_state(tmp_path):
    x, y = regression_data()
    model = tiny_model()
    schedule_ = EpochWarmupCosine(steps_per_epoch=4, epochs=10, warmup_epochs=2, lr_max=0.05)
    model.compile(optimizer=build_optimizer("radam_lookahead", schedule_, 0.05), loss="mse")
    model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)  # 8 steps: mid-cycle
    optimizer = model.optimizer
    slow = optimizer._slow_weights[0].numpy()
    assert not np.allclose(slow, model.trainable_variables[0].numpy())  # state worth saving

    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    restored_optimizer = restored.optimizer
    assert type(restored_optimizer) is Lookahead
    assert int(restored_optimizer.iterations) == int(optimizer.iterations) == 8
    assert int(restored_optimizer.inner_optimizer.iterations) == 8
    assert float(restored_optimizer.learning_rate) == float(optimizer.learning_rate)
    # Same state in the same order (paths differ only by the auto-numbered model name).
    kinds = [v.path.rsplit("_", 1)[-1] for v in optimizer.variables]
    assert [v.path.rsplit("_", 1)[-1] for v in restored_optimizer.variables] == kinds
    assert kinds.count("slow") == len(model.trainable_variables)
    for before, after in zip(optimizer.variables, restored_optimizer.variables, strict=True):
        np.testing.assert_array_equal(after.numpy(), before.numpy(), err_msg=before.path)

    # Both continue identically, across the sync at step 10.
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    restored.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(model.get_weights(), restored.get_weights(), strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-7)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["radam_lookahead", "adamw"])
def test_tiny_model_trains(name):
    x, y = regression_data()
    model = tiny_model()
    # RAdam's rectification keeps early steps small (r_t ~ sqrt(t / 2000)), hence 320 steps.
    schedule_ = EpochWarmupCosine(steps_per_epoch=8, epochs=40, warmup_epochs=3, lr_max=0.1)
    model.compile(optimizer=build_optimizer(name, schedule_, 0.05), loss="mse")
    history = model.fit(x, y, batch_size=8, epochs=40, shuffle=False, verbose=0).history
    assert history["loss"][-1] < 0.1 * history["loss"][0], history["loss"]


def test_learning_rate_scheduler_callback_drives_the_wrapper():
    """A per-epoch callback (the reference's way) sets the inner rate through the wrapper."""
    x, y = regression_data(n=32)
    model = tiny_model()
    model.compile(optimizer=build_optimizer("radam_lookahead", 1e-3, 0.05), loss="mse")
    rates = schedule(epochs=3, warmup_epochs=1, lr_max=1e-2)
    callback = keras.callbacks.LearningRateScheduler(lambda epoch: rates[epoch])
    history = model.fit(x, y, batch_size=16, epochs=3, verbose=0, callbacks=[callback]).history
    np.testing.assert_allclose(history["learning_rate"], rates, rtol=1e-6)
    assert float(model.optimizer.inner_optimizer.learning_rate) == pytest.approx(rates[-1])


DATA_PARALLEL_SCRIPT = """
import contextlib, os, sys
import numpy as np, keras
from aslfr_lib.optimizers import build_optimizer
from aslfr_lib.schedules import EpochWarmupCosine

if keras.backend.backend() == "tensorflow":
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    names = [d.name for d in tf.config.list_logical_devices("CPU")]
    parallel = lambda: tf.distribute.MirroredStrategy(devices=names).scope()
else:
    def parallel():
        devices = keras.distribution.list_devices()
        assert len(devices) == 2, devices
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
        return contextlib.nullcontext()
rng = np.random.default_rng(0)
x = rng.normal(size=(64, 4)).astype("float32")
y = x.sum(1, keepdims=True)
weights = {}
for mode in ("single", "parallel"):
    keras.utils.set_random_seed(0)
    with parallel() if mode == "parallel" else contextlib.nullcontext():
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="tanh"),
                                  keras.layers.Dense(1)])
        optimizer = build_optimizer("radam_lookahead", EpochWarmupCosine(4, 6, 1, 1e-2), 0.05)
        model.compile(optimizer=optimizer, loss="mse")
    model.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0)  # 12 steps, 2 syncs
    assert int(np.asarray(optimizer.iterations.numpy())) == 12
    weights[mode] = model.get_weights()
difference = max(np.abs(a - b).max() for a, b in zip(weights["single"], weights["parallel"]))
print("max difference", difference)
sys.exit(0 if difference < 1e-5 else 1)
"""


@pytest.mark.slow
def test_data_parallel_training_matches_one_device(tmp_path):
    """The training code's multi-device modes (TF MirroredStrategy, JAX DataParallel) over two
    CPU devices train exactly as one device does; run in a fresh process to split the CPU."""
    script = tmp_path / "data_parallel.py"
    script.write_text(DATA_PARALLEL_SCRIPT)
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2")
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "max difference" in result.stdout


# ------------------------------------------------------------------------------ other backend
@pytest.mark.slow
def test_other_backend():
    run_on_other_backend(__file__)
