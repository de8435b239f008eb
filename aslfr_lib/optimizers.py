"""Optimizers: Rectified Adam, the Lookahead wrapper, and ``build_optimizer`` to pick one.

The reference trained with ``tfa.optimizers.Lookahead(tfa.optimizers.RectifiedAdam(
sma_threshold=4), sync_period=5)``; tensorflow-addons does not import on Keras 3, so both are
written here with ``keras.ops`` only and run on the TensorFlow and JAX backends.

Weight decay (decoupled, AdamW style, Loshchilov & Hutter, arXiv 1711.05101)
---------------------------------------------------------------------------
Every step, before the adaptive update and independent of the gradient::

    w <- w - lr_t * weight_decay_ratio * w

where ``lr_t`` is the learning rate at that step (read from the schedule). Keras 3's base
optimizer already does exactly this when built with ``weight_decay=...``
(``BaseOptimizer._apply_weight_decay``: ``w -= w * weight_decay * learning_rate``), so our
optimizers are constructed with ``weight_decay=weight_decay_ratio`` and reuse it.

Why this is what the reference meant: it called ``weight_decay_ratio`` "Weight Decay Ratio as
Ratio of Learning Rate" and set ``weight_decay = lr * WD_RATIO`` at each epoch, i.e. it wanted a
per-step decay of ``lr * ratio * w``, the AdamW rule. What its code did instead: tfa's RAdam adds
``weight_decay * w`` to the update *before* multiplying by ``lr``, so ``weight_decay = lr * ratio``
would have decayed by ``lr**2 * ratio * w`` (1,000 times too little at lr 1e-3). In fact even that
never happened: the callback assigned ``weight_decay`` on the Lookahead wrapper, which has no such
hyperparameter (the attribute is stored and printed but never read), and tfa's RAdam enables its
decay term only if the ``weight_decay`` given at construction is positive (it was 0). So the
published V6 numbers were trained without weight decay; ``weight_decay_ratio=0`` reproduces that.

Because Keras multiplies by the *current* learning rate inside the compiled step, the decay
follows the schedule automatically; it must not be changed per epoch from a callback (a traced
train step would not see the new Python value anyway).
"""

from __future__ import annotations

import copy

import keras
from keras import ops

OPTIMIZER_NAMES = ("radam_lookahead", "radam", "adamw")


@keras.saving.register_keras_serializable(package="aslfr")
class RectifiedAdam(keras.optimizers.Optimizer):
    """Rectified Adam (Liu et al. 2019, arXiv 1908.03265), numerically like tfa's.

    Adam's adaptive step has a huge variance in the first steps, when the second-moment
    estimate averages only a few gradients. RAdam estimates the length of that average,
    ``rho_t = rho_inf - 2 t beta_2^t / (1 - beta_2^t)`` with ``rho_inf = 2 / (1 - beta_2) - 1``,
    and while ``rho_t < sma_threshold`` takes a plain momentum step ``lr * m_hat``; afterwards
    it takes Adam's step ``lr * r_t * m_hat / (v_hat + epsilon)``, damped by the rectification
    term ``r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))``
    (about ``sqrt(t / 2000)`` early on with beta_2 = 0.999, tending to 1).
    ``m_hat`` and ``v_hat = sqrt(v / (1 - beta_2^t))`` are the bias-corrected moments; the
    comparison is ``rho_t >= sma_threshold`` and epsilon is added to ``v_hat``, as in tfa.

    Args:
        learning_rate: float or ``LearningRateSchedule``.
        beta_1: decay of the first-moment (momentum) average.
        beta_2: decay of the second-moment average.
        epsilon: added to ``v_hat`` for numerical stability.
        sma_threshold: ``rho_t`` from which the adaptive step is used (tfa default 5, the
            reference used 4). Must be at least 4: below that ``r_t`` is not a real number.
        weight_decay: decoupled decay ratio (see the module docstring), ``None`` for none.
        **kwargs: the other ``keras.optimizers.Optimizer`` arguments (``clipnorm``, ``name``...).
    """

    def __init__(
        self,
        learning_rate=0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        sma_threshold: float = 5.0,
        weight_decay: float | None = None,
        **kwargs,
    ):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, **kwargs)
        for name, beta in (("beta_1", beta_1), ("beta_2", beta_2)):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {beta}")
        if sma_threshold < 4.0:
            raise ValueError(
                f"sma_threshold must be at least 4 (the rectification term needs rho_t >= 4), "
                f"got {sma_threshold}"
            )
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.sma_threshold = sma_threshold

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._momentums, self._velocities = self.add_optimizer_variables(
            var_list, ["momentum", "velocity"]
        )

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        lr = ops.cast(learning_rate, dtype)
        gradient = ops.cast(gradient, dtype)
        # convert_to_tensor(python float, dtype), not cast: cast would round through float32.
        beta_1 = ops.convert_to_tensor(self.beta_1, dtype=dtype)
        beta_2 = ops.convert_to_tensor(self.beta_2, dtype=dtype)
        step = ops.cast(self.iterations + 1, dtype)
        beta_1_power = ops.power(beta_1, step)
        beta_2_power = ops.power(beta_2, step)

        index = self._get_variable_index(variable)
        m = self._momentums[index]
        v = self._velocities[index]
        self.assign(m, beta_1 * m + (1.0 - beta_1) * gradient)
        self.assign(v, beta_2 * v + (1.0 - beta_2) * ops.square(gradient))
        m_hat = m / (1.0 - beta_1_power)
        v_hat = ops.sqrt(v / (1.0 - beta_2_power))

        rho_inf = 2.0 / (1.0 - beta_2) - 1.0
        rho_t = rho_inf - 2.0 * step * beta_2_power / (1.0 - beta_2_power)
        # Clamped at 0 only so that the branch ``where`` discards (rho_t < 4) is not NaN.
        r_t = ops.sqrt(
            ops.maximum(
                (rho_t - 4.0) / (rho_inf - 4.0) * (rho_t - 2.0) / (rho_inf - 2.0) * rho_inf / rho_t,
                0.0,
            )
        )
        adaptive = r_t * m_hat / (v_hat + ops.convert_to_tensor(self.epsilon, dtype=dtype))
        threshold = ops.convert_to_tensor(self.sma_threshold, dtype=dtype)
        direction = ops.where(rho_t >= threshold, adaptive, m_hat)
        self.assign_sub(variable, lr * direction)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "beta_1": self.beta_1,
                "beta_2": self.beta_2,
                "epsilon": self.epsilon,
                "sma_threshold": self.sma_threshold,
            }
        )
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        # Keras's base from_config replaces the learning-rate entry in place; copy so that the
        # caller's config (e.g. a Lookahead's, or one compared after a round trip) is untouched.
        return super().from_config(copy.deepcopy(config), custom_objects=custom_objects)


@keras.saving.register_keras_serializable(package="aslfr")
class Lookahead(keras.optimizers.Optimizer):
    """Lookahead (Zhang et al. 2019, arXiv 1907.08610): k steps forward, 1 step back.

    The inner optimizer updates the model's ("fast") weights every step, including its own
    clipping and weight decay, exactly once. The wrapper keeps a "slow" copy, taken at the first
    step; every ``sync_period`` steps it moves the slow weights ``slow_step_size`` (alpha) of the
    way to the fast ones and resets the fast weights onto them::

        slow <- slow + alpha * (fast - slow);  fast <- slow

    ``learning_rate`` reads and sets the inner optimizer's (so a schedule given to the inner
    optimizer drives training, and callbacks and history see it through the wrapper), and
    ``weight_decay`` reads the inner one's: the wrapper has no learning rate or decay of its own.
    ``variables`` lists the wrapper's (iteration counter, slow weights) then the inner
    optimizer's, so ``.keras`` saving and JAX's stateless training carry the whole state.

    Args:
        inner_optimizer: the ``keras.optimizers.Optimizer`` that takes the fast steps.
        sync_period: k, the number of fast steps between synchronisations.
        slow_step_size: alpha in (0, 1]; 1 makes Lookahead a no-op.
        name: optimizer name.
    """

    def __init__(
        self,
        inner_optimizer: keras.optimizers.Optimizer,
        sync_period: int = 5,
        slow_step_size: float = 0.5,
        name: str | None = None,
    ):
        # The wrapper's own learning rate is never used (the property below reads the inner
        # one); a callable avoids creating an unused, saved learning-rate variable.
        super().__init__(learning_rate=self._inner_learning_rate, name=name)
        if not isinstance(inner_optimizer, keras.optimizers.Optimizer):
            raise TypeError(
                f"inner_optimizer must be a keras.optimizers.Optimizer, got {inner_optimizer!r}"
            )
        if inner_optimizer.gradient_accumulation_steps:
            raise ValueError(
                "Lookahead counts every apply() as a fast step; an inner optimizer with "
                "gradient_accumulation_steps would desynchronise it"
            )
        if int(sync_period) != sync_period or sync_period < 1:
            raise ValueError(f"sync_period must be a positive integer, got {sync_period}")
        if not 0.0 < slow_step_size <= 1.0:
            raise ValueError(f"slow_step_size must be in (0, 1], got {slow_step_size}")
        self.inner_optimizer = inner_optimizer
        self.sync_period = int(sync_period)
        self.slow_step_size = slow_step_size

    def _inner_learning_rate(self):
        return self.inner_optimizer.learning_rate

    @property
    def learning_rate(self):
        return self.inner_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, learning_rate):
        self.inner_optimizer.learning_rate = learning_rate

    @property
    def weight_decay(self):
        inner = getattr(self, "inner_optimizer", None)
        return None if inner is None else inner.weight_decay

    @weight_decay.setter
    def weight_decay(self, value):
        if value is None and getattr(self, "inner_optimizer", None) is None:
            return  # the base constructor's ``self.weight_decay = None``
        # The reference's callback set weight decay on its Lookahead wrapper, where tfa silently
        # ignored it; refuse loudly instead.
        raise AttributeError(
            "Lookahead has no weight decay of its own: give weight_decay to the inner optimizer "
            "when constructing it (it is multiplied by the scheduled learning rate every step)"
        )

    def exclude_from_weight_decay(self, var_list=None, var_names=None):
        self.inner_optimizer.exclude_from_weight_decay(var_list=var_list, var_names=var_names)

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._slow_weights = self.add_optimizer_variables(var_list, "slow")
        self.inner_optimizer.build(var_list)

    @property
    def variables(self):
        return self._variables[:] + self.inner_optimizer.variables

    def apply(self, grads, trainable_variables=None):
        if trainable_variables is None:
            if not self.built:
                raise ValueError(
                    "Lookahead.apply(grads) without variables needs a built optimizer: "
                    "call build(trainable_variables) first"
                )
            variables = self._trainable_variables
        else:
            variables = list(trainable_variables)
            if not self.built:
                self.build(variables)
            self._check_variables_are_known(variables)
        slow_weights = [self._slow_weights[self._get_variable_index(v)] for v in variables]
        pairs = [
            (v, slow) for v, slow in zip(variables, slow_weights, strict=True) if slow is not None
        ]

        # Take the slow copy at the first step rather than at build time, so weights loaded
        # between build and the first step (e.g. a warm start) are the starting point.
        # (Variables are read with convert_to_tensor: JAX's ``where`` will not take them raw.)
        first_step = ops.equal(self._iterations, 0)
        for variable, slow in pairs:
            fast, slow_value = ops.convert_to_tensor(variable), ops.convert_to_tensor(slow)
            self.assign(slow, ops.where(first_step, fast, slow_value))

        self.inner_optimizer.apply(grads, trainable_variables)

        synchronise = ops.equal(ops.mod(self._iterations + 1, self.sync_period), 0)
        for variable, slow in pairs:
            fast, slow_value = ops.convert_to_tensor(variable), ops.convert_to_tensor(slow)
            alpha = ops.convert_to_tensor(self.slow_step_size, dtype=fast.dtype)
            pulled_back = slow_value + alpha * (fast - slow_value)
            self.assign(slow, ops.where(synchronise, pulled_back, slow_value))
            self.assign(variable, ops.where(synchronise, pulled_back, fast))
        self._iterations.assign_add(1)

    def finalize_variable_values(self, var_list):
        self.inner_optimizer.finalize_variable_values(var_list)

    def get_config(self) -> dict:
        return {
            "name": self.name,
            "inner_optimizer": keras.saving.serialize_keras_object(self.inner_optimizer),
            "sync_period": self.sync_period,
            "slow_step_size": self.slow_step_size,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = copy.deepcopy(config)
        inner_optimizer = keras.saving.deserialize_keras_object(
            config.pop("inner_optimizer"), custom_objects=custom_objects
        )
        return cls(inner_optimizer, **config)


def build_optimizer(
    name: str,
    learning_rate,
    weight_decay_ratio: float,
    sma_threshold: float = 4.0,
    sync_period: int = 5,
) -> keras.optimizers.Optimizer:
    """The training optimizer by name, with decoupled weight decay ``lr_t * ratio * w``.

    Args:
        name: ``"radam_lookahead"`` (the reference: RAdam inside Lookahead), ``"radam"`` or
            ``"adamw"`` (Keras's AdamW, the same decay rule around plain Adam).
        learning_rate: float or ``LearningRateSchedule`` (e.g. ``schedules.EpochWarmupCosine``);
            it always drives the optimizer that takes the steps.
        weight_decay_ratio: decay per step as a fraction of the learning rate; 0 for none.
        sma_threshold: RAdam's rho_t threshold (the reference used 4).
        sync_period: Lookahead's k (the reference used 5).
    """
    if weight_decay_ratio < 0:
        raise ValueError(f"weight_decay_ratio must be >= 0, got {weight_decay_ratio}")
    if not callable(learning_rate):
        learning_rate = float(learning_rate)  # Keras rejects ints and numpy scalars
    weight_decay = float(weight_decay_ratio) or None
    if name == "radam_lookahead":
        inner = RectifiedAdam(learning_rate, sma_threshold=sma_threshold, weight_decay=weight_decay)
        return Lookahead(inner, sync_period=sync_period)
    if name == "radam":
        return RectifiedAdam(learning_rate, sma_threshold=sma_threshold, weight_decay=weight_decay)
    if name == "adamw":
        return keras.optimizers.AdamW(learning_rate, weight_decay=float(weight_decay_ratio))
    raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZER_NAMES)}")
