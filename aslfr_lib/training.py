"""Training: ``aslfr train --processed DIR --out DIR`` and ``train(TrainConfig) -> TrainResult``.

One run folder holds everything a run needs to continue after a kill (``--resume``):

    last.keras     model + optimizer state after the last finished epoch, with the run state
                   (epochs done, best epoch and score, history) inside the same zip; the
                   learning rate schedule reads the saved optimizer's step counter, so a resumed
                   run continues at the right epoch and learning rate
    best.keras     best validation competition score so far (no validation split: = last),
                   without the optimizer state (V6: 16 MB; last.keras 96 MB)
    history.csv    one row per epoch: lr, loss, top1, top5, val_* and val_score (the score of
                   ``decoder``'s head; with both heads also val_attention_score, val_ctc_score;
                   with a CTC head also ctc_loss and attention_loss)
    history.json   the same as lists, plus the run state (epochs done, best epoch and score,
                   the CTC blank plateau and the epoch alignment began: ``aslfr_lib.alignment``)
    fallback.json  the phrase for inputs with too few hand frames (``aslfr_lib.fallback``)
    language_model.npz  a character n-gram model of the training phrases, for the beam search
                   (``aslfr_lib.language_model``)
    config.json    the TrainConfig of the run
    lr_schedule.png, loss.png, top1.png, top5.png, score.png, ctc_loss.png, attention_loss.png

The model: ``ctc_weight`` 0 is V6's encoder-decoder; above 0 a CTC head on the encoder trains
jointly (``loss = w * CTC + (1 - w) * cross-entropy``); 1 is CTC alone (no decoder). The
augmentation fields (``aslfr_lib.augmentation``) act in the training loader only.

Keras is imported inside ``train`` after ``KERAS_BACKEND`` is set from ``--backend``; this
module's import does not import Keras (the command line imports it first).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from aslfr_lib import atomic
from aslfr_lib.augmentation import AugmentationConfig
from aslfr_lib.backend import BackendError, import_keras  # noqa: F401 - BackendError: callers
from aslfr_lib.checkpoints import load_checkpoint, read_run_state, save_checkpoint
from aslfr_lib.config import param, stage_config, stage_parser, to_dict
from aslfr_lib.model import ArchitectureConfig, ModelConfig
from aslfr_lib.vocab import PAD

LAST_MODEL = "last.keras"
BEST_MODEL = "best.keras"
HISTORY_CSV = "history.csv"
HISTORY_JSON = "history.json"
CONFIG_JSON = "config.json"
EXAMPLES_SHOWN = 5
# Keras's log names for a model with a CTC head -> history columns.
LOG_NAMES = {"logits_loss": "attention_loss", "logits_top1": "top1", "logits_top5": "top5"}
DEFAULT_WARMUP_FRACTION = 0.1  # the reference: 10 warmup epochs of 100

CHOICES = {
    "warmup_method": ("exp", "log"),
    "optimizer": ("radam_lookahead", "radam", "adamw"),
    "backend": ("tensorflow", "jax"),
    "mixed_precision": ("none", "bfloat16", "float16"),
    "devices": ("one", "all"),
    "decoder": ("auto", "attention", "ctc"),
}
# Fields a resumed run must share with the run it continues (they shape the saved model, the
# optimizer state or the learning-rate schedule).
RESUME_FIXED = (
    *(f.name for f in dataclasses.fields(ArchitectureConfig)),
    "frames",
    "epochs",
    "batch_size",
    "lr_max",
    "warmup_epochs",
    "warmup_method",
    "lr_hold_epochs",  # the saved schedule holds them
    "lr_hold_until_aligned",  # a schedule, or a rate set each epoch
    "weight_decay_ratio",
    "optimizer",
    "sma_threshold",
    "lookahead_sync_period",
    "label_smoothing",
    "mixed_precision",
    "seed",
)


@dataclasses.dataclass(frozen=True)
class TrainConfig(AugmentationConfig, ArchitectureConfig):
    """The model's architecture and the augmentation fields (flat: ``--encoder-dim 192``,
    ``--affine-probability 0.5``) plus how to train.

    Features per frame come from the data; frames per sequence too, unless ``frames`` is set
    (the loader pads or resizes each stored sequence to it, so no new preprocessing).
    """

    processed: str = param("data/processed", "folder of preprocessed arrays (aslfr preprocess)")
    frames: int | None = param(None, "frames per sequence for the model (default: preprocessing's)")
    out: str = param("outputs/train", "run folder: checkpoints, history, plots")
    epochs: int = param(100, "epochs (one epoch = every training sequence once)")
    batch_size: int = param(64, "sequences per training step")
    lr_max: float = param(1e-3, "peak learning rate")
    warmup_epochs: int | None = param(
        None,
        "warmup epochs before the cosine decay (default: a tenth of epochs, as V6's 10 of 100)",
    )
    warmup_method: str = param("exp", "warmup shape: exp (halves per epoch) or log (tenths)")
    lr_hold_epochs: int = param(
        0, "epochs at the peak learning rate after warmup, before the cosine decay starts"
    )
    lr_hold_until_aligned: int = param(
        0,
        "hold the peak up to N more epochs while the CTC loss is still on the blank plateau; "
        "the decay then spans the epochs left (aslfr_lib.schedules.aligned_hold)",
    )
    weight_decay_ratio: float = param(0.05, "decoupled weight decay per step, as a ratio of lr")
    optimizer: str = param("radam_lookahead", "radam_lookahead (reference), radam or adamw")
    sma_threshold: float = param(4.0, "RAdam's rectification threshold")
    lookahead_sync_period: int = param(5, "Lookahead: fast steps between synchronisations")
    label_smoothing: float = param(0.25, "label smoothing of the cross-entropy")
    backend: str = param("tensorflow", "Keras backend: tensorflow or jax")
    mixed_precision: str = param("none", "none, bfloat16 or float16 compute")
    jit_compile: bool | None = param(
        None, "XLA-compile the train step (default: Keras' choice: on GPUs, not CPUs; JAX always)"
    )
    devices: str = param("one", "one device, or all (data parallel over every GPU)")
    seed: int = param(42, "seed of weights, dropout and epoch order")
    resume: bool = param(False, "continue the run in --out from its last finished epoch")
    examples_every: int = param(5, "print decoded validation phrases every N epochs (0: never)")
    score_every: int = param(1, "validation competition score every N epochs (and the last)")
    decode_batch_size: int = param(256, "sequences per batch when greedy decoding")
    decoder: str = param("auto", "head of the validation score: auto (CTC if any), attention, ctc")
    verbose: int = param(1, "Keras progress: 0 silent, 1 bar, 2 one line per epoch")
    ctc_blank_bias: float = param(
        0.0, "initial bias of the CTC head's blank logit (0: zeros, as every other class)"
    )
    augment_after_alignment: bool = param(
        False, "augment only once the CTC loss has left the blank plateau (aslfr_lib.alignment)"
    )
    stall_check_fraction: float = param(
        0.4, "share of the epochs after which a CTC loss still on the blank plateau is reported"
    )

    @property
    def warmup(self) -> int:
        """Warmup epochs in use: ``warmup_epochs``, or the reference's 10 % of the epochs."""
        if self.warmup_epochs is not None:
            return self.warmup_epochs
        return round(self.epochs * DEFAULT_WARMUP_FRACTION)

    @property
    def augmentation(self) -> AugmentationConfig:
        names = [f.name for f in dataclasses.fields(AugmentationConfig)]
        return AugmentationConfig(**{name: getattr(self, name) for name in names})

    def __post_init__(self) -> None:
        ArchitectureConfig.__post_init__(self)
        AugmentationConfig.__post_init__(self)
        if self.frames is not None and self.frames < 1:
            raise ValueError(f"frames must be at least 1, got {self.frames}")
        for name, allowed in CHOICES.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        for name in ("epochs", "batch_size", "decode_batch_size", "score_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.warmup_epochs is not None and not 0 <= self.warmup_epochs <= self.epochs:
            raise ValueError(
                f"warmup_epochs must be in 0..epochs ({self.epochs}), got {self.warmup_epochs}"
            )
        if self.lr_hold_epochs < 0 or self.warmup + self.lr_hold_epochs > self.epochs:
            raise ValueError(
                f"lr_hold_epochs must be in 0..epochs - warmup ({self.epochs - self.warmup}), "
                f"got {self.lr_hold_epochs}"
            )
        extra = self.lr_hold_until_aligned
        if extra < 0:
            raise ValueError(f"lr_hold_until_aligned must be >= 0, got {extra}")
        if extra and not self.has_ctc_head:
            raise ValueError(
                f"lr_hold_until_aligned waits for the CTC loss to align, but ctc_weight="
                f"{self.ctc_weight} builds no CTC head"
            )
        if not 0.0 < self.stall_check_fraction <= 1.0:
            raise ValueError(
                f"stall_check_fraction must be in (0, 1], got {self.stall_check_fraction}"
            )
        if (self.decoder == "attention" and not self.has_decoder) or (
            self.decoder == "ctc" and not self.has_ctc_head
        ):
            raise ValueError(
                f"decoder {self.decoder!r} needs its head; ctc_weight={self.ctc_weight} builds "
                f"{'a CTC head' if self.has_ctc_head else 'no CTC head'} and "
                f"{'a decoder' if self.has_decoder else 'no decoder'}"
            )
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")


@dataclasses.dataclass
class TrainResult:
    """What a run produced. ``history`` maps each column to one value per epoch."""

    out: Path
    model: Any
    history: dict[str, list[float]]
    epochs_completed: int
    best_epoch: int  # 1-based; 0 if none
    best_score: float | None  # validation competition score of best.keras (None: no val split)
    last_path: Path
    best_path: Path
    seconds: float
    replicas: int = 1  # data-parallel devices used
    plots: dict[str, Path] = dataclasses.field(default_factory=dict)
    alignment_epoch: int | None = None  # first epoch off the CTC blank plateau (CTC head only)
    stalled: bool = False  # the CTC loss was still on the plateau at the stall check


@contextlib.contextmanager
def dtype_policy(keras: Any, mixed_precision: str) -> Iterator[None]:
    """Set the global dtype policy for building the model; restore the previous one after."""
    previous = keras.config.dtype_policy()
    policy = "float32" if mixed_precision == "none" else f"mixed_{mixed_precision}"
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


@contextlib.contextmanager
def device_scope(keras: Any, devices: str) -> Iterator[int]:
    """Where to build and train; yields the number of data-parallel replicas.

    ``all``: JAX shards each batch over ``keras.distribution.list_devices()`` (the GPUs, else the
    CPUs) with ``DataParallel``; TensorFlow builds and trains under a ``MirroredStrategy`` over
    the GPUs (else every logical CPU device, which is how the tests run it).
    """
    if devices == "one":
        yield 1
        return
    if keras.backend.backend() == "jax":
        previous = keras.distribution.distribution()
        device_list = keras.distribution.list_devices()
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=device_list))
        try:
            yield len(device_list)
        finally:
            keras.distribution.set_distribution(previous)
        return
    import tensorflow as tf  # TF-specific: the strategy lives only here

    names = [d.name for d in tf.config.list_logical_devices("GPU")]
    names = names or [d.name for d in tf.config.list_logical_devices("CPU")]
    strategy = tf.distribute.MirroredStrategy(devices=names)
    with strategy.scope():
        yield strategy.num_replicas_in_sync


# ----------------------------------------------------------------------------------------------
# Model, optimizer and checkpoints


def learning_rates(config: TrainConfig, alignment_epoch: int | None = None) -> list[float]:
    """The learning rate of each epoch. With ``lr_hold_until_aligned`` it depends on the epoch
    CTC aligned at (None: not yet, so the longest hold); the rates of the epochs up to it do not."""
    from aslfr_lib.schedules import aligned_hold, schedule

    # "Up to N": never past the last epoch (a short run of a long recipe, --epochs 3, stays valid).
    room = config.epochs - config.warmup - config.lr_hold_epochs
    extra = min(config.lr_hold_until_aligned, room)
    hold = aligned_hold(config.lr_hold_epochs, extra, config.warmup, alignment_epoch)
    return schedule(
        config.epochs, config.warmup, config.lr_max, config.warmup_method, hold_epochs=hold
    )


def compile_model(model: Any, config: TrainConfig, steps_per_epoch: int) -> None:
    """Optimizer (per-epoch warmup + cosine schedule), masked loss, top-1/top-5 metrics.

    With ``lr_hold_until_aligned`` the optimizer's rate is a plain variable that ``EpochEnd``
    sets before every epoch (the schedule waits for CTC alignment, which only the run knows)."""
    from aslfr_lib.losses import CTCLoss, MaskedCrossEntropy
    from aslfr_lib.metrics import character_metrics
    from aslfr_lib.model import CTC_OUTPUT, LOGITS_OUTPUT
    from aslfr_lib.model import has_ctc_head as model_has_ctc_head
    from aslfr_lib.model import has_decoder as model_has_decoder
    from aslfr_lib.optimizers import build_optimizer
    from aslfr_lib.schedules import EpochWarmupCosine

    if config.lr_hold_until_aligned:  # the rates depend on the run: set per epoch (EpochEnd)
        rate = learning_rates(config)[0]
    else:
        rate = EpochWarmupCosine(
            steps_per_epoch,
            config.epochs,
            config.warmup,
            config.lr_max,
            config.warmup_method,
            hold_epochs=config.lr_hold_epochs,
        )
    optimizer = build_optimizer(
        config.optimizer,
        rate,
        config.weight_decay_ratio,
        sma_threshold=config.sma_threshold,
        sync_period=config.lookahead_sync_period,
    )
    jit = "auto" if config.jit_compile is None else config.jit_compile
    if not model_has_ctc_head(model):  # V6: one output
        model.compile(
            optimizer=optimizer,
            loss=MaskedCrossEntropy(config.label_smoothing),
            metrics=character_metrics(),
            jit_compile=jit,
        )
        return
    losses = {CTC_OUTPUT: CTCLoss()}
    weights = {CTC_OUTPUT: config.ctc_weight}
    metrics = {}
    if model_has_decoder(model):
        losses[LOGITS_OUTPUT] = MaskedCrossEntropy(config.label_smoothing)
        weights[LOGITS_OUTPUT] = 1.0 - config.ctc_weight
        metrics[LOGITS_OUTPUT] = character_metrics()
    model.compile(
        optimizer=optimizer, loss=losses, loss_weights=weights, metrics=metrics, jit_compile=jit
    )


def save_best(model: Any, out: Path, run_state: dict) -> None:
    """``best.keras``: weights and architecture without the optimizer state (V6: 16 MB instead
    of 96 MB), which is all that evaluation, export and fine-tuning read."""
    save_checkpoint(model, out / BEST_MODEL, run_state, include_optimizer=False)


def _json_value(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def plain_history(history: dict[str, list[float]]) -> dict[str, list[float | None]]:
    """JSON-safe history: NaN (an epoch without a score) becomes null."""
    return {key: [_json_value(v) for v in values] for key, values in history.items()}


def parse_history(plain: dict[str, list[float | None]]) -> dict[str, list[float]]:
    return {
        key: [math.nan if v is None else float(v) for v in values] for key, values in plain.items()
    }


def write_history(out: Path, history: dict[str, list[float]], state: dict[str, Any]) -> None:
    """``history.csv`` and ``history.json`` (readable copies of what the checkpoint holds)."""
    import pandas as pd

    atomic.write_text(out / HISTORY_CSV, pd.DataFrame(history).to_csv(index=False))
    atomic.write_json(out / HISTORY_JSON, {"state": state, "history": plain_history(history)})


def check_resumable(config: TrainConfig, out: Path) -> None:
    """A resumed run must keep the settings that its saved model and optimizer depend on."""
    path = out / CONFIG_JSON
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: cannot check what the run was trained with")
    saved = json.loads(path.read_text(encoding="utf-8"))
    current = to_dict(config)
    changed = [name for name in RESUME_FIXED if saved.get(name) != current[name]]
    if changed:
        details = ", ".join(f"{n}: {saved.get(n)!r} -> {current[n]!r}" for n in changed)
        raise ValueError(
            f"--resume of {out} with different settings ({details}); use the run's own settings "
            "or a new --out"
        )


# ----------------------------------------------------------------------------------------------
# Sanity checks (the reference's sections 25, 26, 29 and 30 as one function)


def sanity_checks(
    model: Any,
    X: np.ndarray,
    y: np.ndarray,
    batch_size: int = 64,
    repeats: int = 3,
    label_smoothing: float = 0.25,
) -> dict[str, Any]:
    """Checks of an (untrained) model on up to ``batch_size`` sequences.

    Returns ``inference_deterministic`` (same logits every ``training=False`` call),
    ``training_changes_outputs`` (share of logits that dropout changes with ``training=True``;
    the reference asserted > 0.99), ``nan_predictions`` (count of non-finite logits),
    ``pad_only_accuracy`` (share of PAD targets: the accuracy of always predicting PAD, the
    reference's "baseline"), ``untrained_loss``, ``untrained_top1``/``untrained_top5`` and
    ``initial_logits`` (the flat logits, for ``plots.plot_logits_histogram``).
    """
    from keras import ops

    from aslfr_lib.losses import CTCLoss, masked_cross_entropy
    from aslfr_lib.metrics import MaskedTopKAccuracy
    from aslfr_lib.model import CTC_OUTPUT, LOGITS_OUTPUT, has_decoder

    frames = np.asarray(X[:batch_size], dtype=np.float32)
    targets = np.asarray(y[:batch_size], dtype=np.int32)
    inputs = {"frames": frames, "phrase": targets}

    def head_logits(training: bool) -> np.ndarray:
        """The decoder's logits, or a CTC-only model's per-frame logits."""
        outputs = model(inputs, training=training)
        if isinstance(outputs, dict):
            outputs = outputs.get(LOGITS_OUTPUT, outputs.get(CTC_OUTPUT))
        return ops.convert_to_numpy(outputs)

    attention = has_decoder(model)
    logits = head_logits(False)
    deterministic = all(np.array_equal(logits, head_logits(False)) for _ in range(repeats))
    changed = min(float(np.mean(logits != head_logits(True))) for _ in range(repeats))
    accuracies = {1: math.nan, 5: math.nan}  # CTC-only models have no per-position accuracy
    if attention:
        for k in (1, 5):
            metric = MaskedTopKAccuracy(k)
            metric.update_state(targets, logits)
            accuracies[k] = float(ops.convert_to_numpy(metric.result()))
        loss = masked_cross_entropy(targets, logits, label_smoothing)
    else:
        loss = CTCLoss()(targets, logits)
        logits = logits[..., :-1]  # without the appended frame mask
    return {
        "inference_deterministic": bool(deterministic),
        "training_changes_outputs": changed,
        "nan_predictions": int(np.count_nonzero(~np.isfinite(logits))),
        "pad_only_accuracy": float(np.mean(np.asarray(y) == PAD)),
        "untrained_loss": float(ops.convert_to_numpy(loss)),
        "untrained_top1": accuracies[1],
        "untrained_top5": accuracies[5],
        "initial_logits": logits.reshape(-1),
    }


# ----------------------------------------------------------------------------------------------
# The end of every epoch: score, checkpoints, history, examples


class EpochEnd:
    """Runs after every epoch (through a ``LambdaCallback``): no Keras import at module level.

    ``last.keras`` carries the run state (epochs done, best epoch and score, history) inside it,
    so a kill at any moment leaves a checkpoint that knows its own epoch; ``best.keras`` is
    the same model without its optimizer, then ``history.csv``/``history.json`` are refreshed.
    A resumed run reads the state from ``last.keras`` (and redoes a ``best.keras`` that a kill
    may have cut off).
    """

    def __init__(
        self,
        model: Any,
        config: TrainConfig,
        data: Any,
        history: dict[str, list[float]],
        state: dict[str, Any],
        fallback: Any = None,
        watch: Any = None,
        train_batches: Any = None,
    ):
        self.model = model
        self.config = config
        self.data = data
        self.history = history
        self.state = state
        self.fallback = fallback  # fallback.Fallback for inputs without hand frames, or None
        self.watch = watch  # alignment.AlignmentWatch of a model with a CTC head, or None
        self.train_batches = train_batches  # the ShuffledBatches whose augmentation waits
        self.best_predictions: list[str] | None = None
        self.out = Path(config.out)
        from aslfr_lib.decoding import model_heads

        self.heads = model_heads(model)
        self.X_val = self.val_phrases = None  # resized and decoded once per run, when scored

    def rate(self, epoch: int) -> float:
        """Epoch ``epoch``'s (0-based) learning rate, as far as the run knows it now."""
        aligned = self.watch.alignment_epoch if self.watch is not None else None
        return learning_rates(self.config, aligned)[epoch]

    def begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Before an epoch: with ``lr_hold_until_aligned``, the optimizer's rate for it."""
        if self.config.lr_hold_until_aligned:
            self.model.optimizer.learning_rate = self.rate(epoch)

    def _score(self, epoch: int) -> tuple[float, list[str], list[str], dict] | None:
        """(score of ``config.decoder``, targets, its predictions, {head: score}) or None."""
        from aslfr_lib.decoding import decode, ids_to_phrases, resolve_decoder
        from aslfr_lib.scoring import competition_score

        last = epoch + 1 == self.config.epochs
        if not self.data.has_validation or not (last or (epoch + 1) % self.config.score_every == 0):
            return None
        chosen = resolve_decoder(self.model, self.config.decoder)
        if self.X_val is None:  # the stored frames are ragged: resize them once per run
            self.X_val = np.asarray(self.data.X_val, dtype=np.float32)
            self.val_phrases = ids_to_phrases(self.data.y_val)
        targets = self.val_phrases
        predictions, scores = {}, {}
        hand_frames = self.data.ragged_val.lengths
        for head in self.heads:
            ids = decode(self.model, self.X_val, head, self.config.decode_batch_size)
            predictions[head] = ids_to_phrases(ids)
            if self.fallback is not None:  # every held-out sequence counts, handless ones too
                predictions[head] = self.fallback.apply(predictions[head], hand_frames)
            scores[head] = competition_score(targets, predictions[head])
        return scores[chosen], targets, predictions[chosen], scores

    def _examples(self, epoch: int, scored) -> None:
        every = self.config.examples_every
        if every <= 0 or (epoch + 1) % every:
            return
        from aslfr_lib.decoding import decode, ids_to_phrases

        if scored is not None:
            targets, predictions = scored[1][:EXAMPLES_SHOWN], scored[2][:EXAMPLES_SHOWN]
        else:
            X, y = self.data.split("val" if self.data.has_validation else "train")
            targets = ids_to_phrases(y[:EXAMPLES_SHOWN])
            X = np.asarray(X[:EXAMPLES_SHOWN])
            predictions = ids_to_phrases(decode(self.model, X, self.config.decoder))
        split = "validation" if self.data.has_validation else "training"
        lines = [f"epoch {epoch + 1}: {split} examples (target | prediction)"]
        lines += [f"  {t!r:36} | {p!r}" for t, p in zip(targets, predictions, strict=True)]
        print("\n".join(lines), flush=True)

    def _watch_alignment(self, epoch: int, logs: dict[str, Any]) -> None:
        # A CTC-only model (no decoder) logs its one loss as "loss".
        name = "ctc_loss" if "ctc_loss" in logs else "loss"
        if self.watch is None or name not in logs:
            return
        message = self.watch.update(epoch + 1, float(logs[name]))
        self.state.update(self.watch.state())
        if message:
            print(message, flush=True)
        batches = self.train_batches
        waiting = batches is not None and batches.augmentation is None
        if self.watch.alignment_epoch is not None and waiting and self.config.augmentation.enabled:
            batches.augmentation = self.config.augmentation
            print(f"aslfr train: augmentation on from epoch {epoch + 2}", flush=True)

    def __call__(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = dict(logs or {})
        self._watch_alignment(epoch, logs)
        scored = self._score(epoch)
        record = {"epoch": epoch + 1, "lr": self.rate(epoch)}
        for key, value in logs.items():
            prefix = "val_" if key.startswith("val_") else ""
            name = key.removeprefix("val_")
            record[prefix + LOG_NAMES.get(name, name)] = float(value)
        if self.data.has_validation:
            record["val_score"] = math.nan if scored is None else float(scored[0])
            if len(self.heads) > 1:  # each head's own score, beside the chosen one
                for head in ("attention", "ctc"):
                    record[f"val_{head}_score"] = math.nan if scored is None else scored[3][head]
        for key, value in record.items():
            self.history.setdefault(key, []).append(value)

        improved = scored is not None and (
            self.state["best_score"] is None or scored[0] > self.state["best_score"]
        )
        if improved or not self.data.has_validation:
            self.state["best_epoch"] = epoch + 1
            if scored is not None:
                self.state["best_score"] = float(scored[0])
                self.best_predictions = scored[2]
        self.state["epochs_completed"] = epoch + 1
        run_state = {"state": self.state, "history": plain_history(self.history)}
        save_checkpoint(self.model, self.out / LAST_MODEL, run_state)
        if self.state["best_epoch"] == epoch + 1:
            save_best(self.model, self.out, run_state)
        write_history(self.out, self.history, self.state)
        if scored is not None:
            best = self.state["best_score"]
            print(
                f"epoch {epoch + 1}: validation score {scored[0]:.4f} (best {best:.4f} at epoch "
                f"{self.state['best_epoch']})",
                flush=True,
            )
        self._examples(epoch, scored)


# ----------------------------------------------------------------------------------------------
# The run


def new_model(config: TrainConfig, data: Any = None) -> Any:
    """An untrained model for ``config``, compiled as ``train`` compiles it.

    Its input shape and normalisation statistics come from ``data`` (``data.TrainingData``;
    loaded from ``config.processed`` when None). For looking at a model before training
    (summary, ``sanity_checks``); ``train`` builds its own the same way. Builds under the
    global dtype policy and device scope in force (``train`` sets both).
    """
    import_keras(config.backend)
    from aslfr_lib.data import load_training_data
    from aslfr_lib.model import build_model

    data = load_training_data(config.processed, frames=config.frames) if data is None else data
    model_config = ModelConfig.from_architecture(
        config, frames=data.X_train.shape[1], features=data.X_train.shape[2]
    )
    model = build_model(model_config, means=data.means, stds=data.stds)
    if config.ctc_blank_bias and model_config.has_ctc_head:
        # Start where CTC first goes anyway (blank almost everywhere), not from uniform logits.
        from aslfr_lib.model import CTC_BLANK, ctc_classifier_of

        bias = ctc_classifier_of(model).bias
        values = np.zeros(bias.shape, dtype="float32")
        values[CTC_BLANK] = config.ctc_blank_bias
        bias.assign(values)
    compile_model(model, config, math.ceil(len(data.X_train) / config.batch_size))
    return model


def output_names(model: Any) -> list[str]:
    """Names of a dict-output model's outputs ([] for the V6 single output)."""
    return list(model.output) if isinstance(model.output, dict) else []


def TargetsPerOutput(batches: Any, names: list[str]) -> Any:  # noqa: N802 - a class factory
    """``batches`` with each batch's targets given once per output name (Keras wants a dict
    of targets for a dict of outputs). A factory so that this module imports no Keras."""
    import keras

    class _TargetsPerOutput(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.batches = batches

        def __len__(self) -> int:
            return len(self.batches)

        def __getitem__(self, index: int):
            inputs, targets = self.batches[index]
            return inputs, {name: targets for name in names}

        def on_epoch_end(self) -> None:
            self.batches.on_epoch_end()

    return _TargetsPerOutput()


def report_unalignable(data: Any) -> int:
    """Count the training sequences whose characters CTC cannot align and say so.

    A phrase needs one frame per character and a blank between equal neighbours; with fewer
    frames with landmarks (after the resize to the model's frames) the CTC loss is masked for
    that sequence (``losses.ctc_loss_per_sequence``) instead of becoming inf or NaN. The
    attention loss still trains on it.
    """
    from keras import ops

    from aslfr_lib.losses import ctc_targets  # the loss's own count of frames needed

    y = np.asarray(data.y_train)
    needed = ops.convert_to_numpy(ctc_targets(y)[2])
    unalignable = int(np.count_nonzero(needed > np.asarray(data.train_lengths)))
    if unalignable:
        print(
            f"aslfr train: {unalignable} of {len(y)} training sequences have more characters "
            "(+ repeats) than frames; CTC skips them (masked from the CTC loss)",
            flush=True,
        )
    return unalignable


def _save_plots(
    out: Path, config: TrainConfig, history: dict[str, list[float]], alignment_epoch: int | None
) -> dict:
    from aslfr_lib import plots

    paths = {"lr_schedule": out / "lr_schedule.png"}
    rates = learning_rates(config, alignment_epoch)
    plots.save_figure(plots.plot_lr_schedule(rates), paths["lr_schedule"])
    for metric in ("loss", "top1", "top5", "attention_loss", "ctc_loss"):
        curves = {k: history[k] for k in (metric, f"val_{metric}") if k in history}
        if metric in curves and len(curves[metric]):
            paths[metric] = out / f"{metric}.png"
            plots.save_figure(plots.plot_history(curves), paths[metric])
    names = ("val_score", "val_attention_score", "val_ctc_score")
    scores = {
        k.removeprefix("val_"): history[k]
        for k in names
        if k in history and np.isfinite(history[k]).any()
    }
    if scores:  # one panel per head: the chosen head's score, then each head's own
        paths["score"] = out / "score.png"
        plots.save_figure(plots.plot_history(scores, "validation"), paths["score"])
    return paths


def alignment_watch(model: Any, config: TrainConfig, data: Any, state: dict) -> Any:
    """An ``AlignmentWatch`` for a model with a CTC head (None without one); a resumed run
    keeps the plateau and alignment epoch its state recorded."""
    from aslfr_lib.alignment import AlignmentWatch, plateau_loss
    from aslfr_lib.model import has_ctc_head

    if not has_ctc_head(model):
        return None
    plateau = state.get("ctc_plateau")
    if plateau is None:
        plateau = plateau_loss(data.y_train, data.train_lengths, data.frames)
    watch = AlignmentWatch(plateau, config.epochs, config.stall_check_fraction)
    watch.alignment_epoch = state.get("alignment_epoch")
    state.update(watch.state())
    return watch


def choose_fallback(data: Any) -> Any:
    """The phrase closest to the training phrases (``aslfr_lib.fallback``); during training it
    stands in for held-out inputs without any hand frame."""
    from aslfr_lib import fallback
    from aslfr_lib.decoding import ids_to_phrases

    phrase, score = fallback.choose_phrase(ids_to_phrases(data.y_train))
    return fallback.Fallback(phrase=phrase, min_hand_frames=1, train_score=round(score, 4))


def save_language_model(data: Any, out: Path) -> None:
    """``language_model.npz``: the training phrases' character n-gram model, which the beam
    search can fuse (``aslfr export/evaluate --lm-weight``); written before training, so a
    stopped run has it too."""
    from aslfr_lib import language_model

    path = language_model.save(language_model.fit(data.y_train), out)
    print(f"aslfr train: character language model of the training phrases ({path})", flush=True)


def save_fallback(chosen: Any, data: Any, predictions: list[str] | None, out: Path) -> None:
    """``fallback.json``: the phrase, and the hand-frame count below which it beats the best
    model on the validation sequences (1 when there are none)."""
    from aslfr_lib import fallback
    from aslfr_lib.decoding import ids_to_phrases

    threshold = 1
    if predictions is not None and data.has_validation:
        threshold = fallback.choose_min_hand_frames(
            chosen.phrase, ids_to_phrases(data.y_val), predictions, data.ragged_val.lengths
        )
    saved = dataclasses.replace(chosen, min_hand_frames=threshold)
    fallback.save(saved, out)
    print(
        f"aslfr train: fallback {saved.phrase!r} for inputs with fewer than {threshold} hand "
        f"frames ({out / fallback.FALLBACK_FILE})",
        flush=True,
    )


def train(config: TrainConfig) -> TrainResult:
    """Train (or, with ``resume``, continue) a run; see the module docstring for its files."""
    started = time.perf_counter()
    keras = import_keras(config.backend)
    from aslfr_lib.data import ShuffledBatches, load_training_data
    from aslfr_lib.preprocess import RaggedFrames

    out = Path(config.out)
    data = load_training_data(config.processed, frames=config.frames)
    resuming = config.resume and (out / LAST_MODEL).exists()
    if config.resume and not resuming:
        print(f"aslfr train: nothing to resume in {out}; starting a new run", flush=True)
    if resuming:
        check_resumable(config, out)
    elif (out / LAST_MODEL).exists():
        print(f"aslfr train: {out} holds a previous run; starting over", flush=True)
        for name in (LAST_MODEL, BEST_MODEL, HISTORY_CSV, HISTORY_JSON):
            (out / name).unlink(missing_ok=True)  # no stale best.keras until the first score
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(config.seed)

    from aslfr_lib import runtime

    where = runtime.describe(config.backend, config.mixed_precision, config.jit_compile)
    print(runtime.summary_line(where), flush=True)
    if where["warning"]:
        print(f"aslfr train: WARNING: {where['warning']}", flush=True)
    with dtype_policy(keras, config.mixed_precision), device_scope(keras, config.devices) as n:
        if config.batch_size % n:
            raise ValueError(f"batch_size {config.batch_size} must be divisible by {n} devices")
        if resuming:
            run_state = read_run_state(out / LAST_MODEL)
            model = load_checkpoint(out / LAST_MODEL, compile=True)
            state = run_state["state"]
            history = parse_history(run_state["history"])
            initial_epoch = state["epochs_completed"]
            if state["best_epoch"] == initial_epoch:  # the save a kill may have cut off
                save_best(model, out, run_state)
            print(f"aslfr train: resuming {out} at epoch {initial_epoch + 1}", flush=True)
        else:
            model = new_model(config, data)
            initial_epoch, history = 0, {}
            state = {"best_score": None, "best_epoch": 0, "epochs_completed": 0}
            atomic.write_json(out / CONFIG_JSON, to_dict(config))
        state["runtime"] = where  # history.json: where this run (or its last resume) trained
        watch = alignment_watch(model, config, data, state)
        waiting = config.augment_after_alignment and watch is not None
        train_batches = ShuffledBatches(
            data.ragged_train,
            data.y_train,
            config.batch_size,
            seed=config.seed,
            epoch=initial_epoch,
            length=data.frames,
            augmentation=config.augmentation,
        )
        augmented_batches = train_batches
        if waiting and watch.alignment_epoch is None:
            train_batches.augmentation = None  # EpochEnd turns it on once aligned
        val_batches = None
        # The loss over the sequences training could use; the score over all of them.
        trainable = np.flatnonzero(data.val_trainable) if data.has_validation else []
        if len(trainable):
            val_batches = ShuffledBatches(
                RaggedFrames.from_sequences([data.ragged_val[i] for i in trainable]),
                np.asarray(data.y_val)[trainable],
                config.batch_size,
                shuffle=False,
                full_batches=n > 1,  # replicas need equal shares; 1 device: no repeats
                length=data.frames,
            )
        names = output_names(model)
        if names:  # a model with a CTC head: one copy of the targets per output
            train_batches = TargetsPerOutput(train_batches, names)
            val_batches = val_batches and TargetsPerOutput(val_batches, names)
            report_unalignable(data)
        fallback = choose_fallback(data)
        save_language_model(data, out)
        epoch_end = EpochEnd(
            model, config, data, history, state, fallback, watch, augmented_batches
        )
        if initial_epoch < config.epochs:
            model.fit(
                train_batches,
                epochs=config.epochs,
                initial_epoch=initial_epoch,
                validation_data=val_batches,
                callbacks=[
                    keras.callbacks.LambdaCallback(
                        on_epoch_begin=epoch_end.begin, on_epoch_end=epoch_end
                    )
                ],
                verbose=config.verbose,
            )
    if fallback is not None:
        save_fallback(fallback, data, epoch_end.best_predictions, out)
    plots = _save_plots(out, config, history, state.get("alignment_epoch"))
    return TrainResult(
        out=out,
        model=model,
        history=history,
        epochs_completed=state["epochs_completed"],
        best_epoch=state["best_epoch"],
        best_score=state["best_score"],
        last_path=out / LAST_MODEL,
        best_path=out / BEST_MODEL,
        seconds=time.perf_counter() - started,
        replicas=n,
        plots=plots,
        alignment_epoch=state.get("alignment_epoch"),
        stalled=bool(state.get("stalled", False)),
    )


def seed_runs(config: TrainConfig, seeds: str) -> list[TrainConfig]:
    """``--seeds 42,43,44``: one config per seed, writing ``OUT/seed42``, ``OUT/seed43``, ...
    (ensemble members: ``aslfr export --model OUT/seed42 --model OUT/seed43 ...``)."""
    try:
        values = [int(seed) for seed in seeds.split(",")]
    except ValueError:
        raise ValueError(f"--seeds must be integers separated by commas, got {seeds!r}") from None
    if len(set(values)) != len(values):
        raise ValueError(f"--seeds repeats a seed: {seeds!r}")
    out = Path(config.out)
    return [dataclasses.replace(config, seed=s, out=str(out / f"seed{s}")) for s in values]


def main(argv: list[str]) -> int:
    parser = stage_parser(TrainConfig, "aslfr train", __doc__.split("\n")[0])
    parser.add_argument(
        "--seeds",
        help="train one model per seed, e.g. 42,43,44, into OUT/seed42, OUT/seed43, ... "
        "(one after another; ensemble members for aslfr export --model ... --model ...)",
    )
    args = parser.parse_args(argv)
    try:
        config = stage_config(TrainConfig, args, "train")
        runs = seed_runs(config, args.seeds) if args.seeds else [config]
        for run_config in runs:
            result = train(run_config)
            best = "n/a" if result.best_score is None else f"{result.best_score:.4f}"
            print(
                f"aslfr train: {result.epochs_completed} epochs in {result.seconds:.0f} s; best "
                f"validation score {best} (epoch {result.best_epoch}); models in {result.out}"
            )
    except (ValueError, FileNotFoundError, BackendError) as error:  # CheckpointError: ValueError
        print(f"aslfr train: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
