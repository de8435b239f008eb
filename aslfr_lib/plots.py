"""Figures for notebooks and reports; every function returns a matplotlib ``Figure``.

Each figure is made with pyplot and closed before it is returned: pyplot's registry never holds
it (no figures pile up in loops or long runs, no double display in Jupyter), while a returned
figure still renders inline in a notebook and saves with ``save_figure``. Nothing here calls
``plt.show`` or changes global rcParams, so it runs on the Agg backend in scripts and tests.
Imports neither TensorFlow nor Keras (the inference path plots latencies too).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from aslfr_lib.atomic import atomic_path

# MediaPipe hand topology (21 points): wrist 0, then thumb, index, middle, ring, pinky chains.
HAND_CONNECTIONS = (
    [(0, 1), (1, 2), (2, 3), (3, 4)]
    + [(0, 5), (5, 6), (6, 7), (7, 8)]
    + [(5, 9), (9, 10), (10, 11), (11, 12)]
    + [(9, 13), (13, 14), (14, 15), (15, 16)]
    + [(13, 17), (0, 17), (17, 18), (18, 19), (19, 20)]
)
HAND_POINTS = 21
_COLUMN = re.compile(r"^(?P<axis>[xyz])_(?P<part>[a-z_]+?)_(?P<index>\d+)$")


def _new_figure(figsize=(12, 6), **subplots) -> tuple[Figure, np.ndarray]:
    fig, axes = plt.subplots(figsize=figsize, squeeze=False, **subplots)
    plt.close(fig)  # out of pyplot's registry; the Figure itself stays usable
    return fig, axes


def _values(values, name: str, *, ndim: int = 1) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} is empty")
    return array


def _finite(values, name: str) -> np.ndarray:
    array = _values(values, name)
    if not np.isfinite(array).all():
        raise ValueError(f"{name} has {int((~np.isfinite(array)).sum())} non-finite values")
    return array


def plot_lr_schedule(values: Sequence[float], title: str = "Learning rate schedule") -> Figure:
    """Learning rate per epoch (epoch 1 first), with the values annotated as the reference did:
    every epoch up to 40 epochs, else every 5th epoch and the last."""
    values = _finite(values, "learning-rate values")
    epochs = len(values)
    fig, ((ax,),) = _new_figure()
    x = np.arange(1, epochs + 1)
    ax.plot(x, values, color="tab:blue")
    marked = [e for e in range(epochs) if epochs <= 40 or e % 5 == 0 or e == epochs - 1]
    ax.plot(x[marked], values[marked], "o", color="black")
    offset = (values.max() - values.min()) * 0.02
    for e in marked:
        rising = e > 0 and values[e - 1] < values[e]
        ax.annotate(
            f"{values[e]:.1E}",
            xy=(e + 1, values[e] + offset),
            size=8,
            ha="right" if rising or e == 0 else "left",
        )
    ax.set_xlim(0.5, epochs + 0.5)
    ax.set_ylim(0, values.max() * 1.1)
    ax.set_title(
        f"{title}, start: {values[0]:.1E}, max: {values.max():.1E}, final: {values[-1]:.1E}"
    )
    ax.set_xlabel("Epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("Learning rate")
    ax.grid(True)
    return fig


def _is_rate(metric: str) -> bool:
    return metric in ("lr", "learning_rate")


def plot_history(history: Mapping[str, Sequence[float]], train_label: str = "train") -> Figure:
    """One panel per metric (``loss``, ``top1acc``, ``top5acc``...; ``val_<metric>`` is drawn in
    the same panel), epochs on x, the best epoch of each curve marked (lowest for losses,
    highest otherwise; none for the learning rate, drawn on a log axis)."""
    metrics = [key for key in history if not key.startswith("val_")]
    if not metrics:
        raise ValueError(f"history has no training metrics, only {sorted(history)}")
    epochs = len(history[metrics[0]])
    for key, values in history.items():
        if len(values) != epochs or epochs == 0:
            raise ValueError(
                f"history[{key!r}] has {len(values)} values, {metrics[0]!r} has {epochs}; "
                "plot_history needs one value per epoch for every key"
            )
    fig, axes = _new_figure(figsize=(12, 3.5 * len(metrics)), nrows=len(metrics), sharex=True)
    x = np.arange(1, epochs + 1)
    for ax, metric in zip(axes[:, 0], metrics, strict=True):
        lowest_is_best = "loss" in metric
        for prefix, colour in (("", "tab:blue"), ("val_", "tab:orange")):
            if prefix + metric not in history:
                continue
            values = np.asarray(history[prefix + metric], dtype=np.float64)
            label = "val" if prefix else train_label
            finite = np.isfinite(values)  # a score computed every N epochs: NaN in between
            sparse = not finite.all()
            ax.plot(
                x[finite], values[finite], color=colour, label=label, marker="o" if sparse else None
            )
            if not _is_rate(metric) and finite.any():  # a diverged (NaN) epoch is never best
                worst = np.inf if lowest_is_best else -np.inf
                ranked = np.where(finite, values, worst)
                i = int(np.argmin(ranked) if lowest_is_best else np.argmax(ranked))
                ax.scatter(x[i], values[i], color=colour, s=60, zorder=3, label=f"{label} best")
        if _is_rate(metric):
            ax.set_yscale("log")
        elif "acc" in metric or "top" in metric:
            ax.set_ylim(0, 1)
        ax.set_title(f"Model {metric}")
        ax.set_ylabel(metric)
        ax.legend(fontsize=8)
        ax.grid(True)
    axes[-1, 0].set_xlabel("epoch")
    axes[-1, 0].xaxis.set_major_locator(MaxNLocator(integer=True))  # no epoch 2.5
    fig.tight_layout()
    return fig


def plot_distance_distribution(
    distances: Sequence[int], title: str = "Levenshtein distance distribution"
) -> Figure:
    """Bar of the number of sequences at each Levenshtein distance 0..max, mean in the title."""
    values = _finite(distances, "distances")
    if (values < 0).any() or (values != np.round(values)).any():
        raise ValueError("distances must be non-negative integers")
    counts = np.bincount(values.astype(np.int64))
    fig, ((ax,),) = _new_figure()
    ax.bar(np.arange(len(counts)), counts, width=1, edgecolor="white")
    ax.set_title(f"{title} | Mean: {values.mean():.4f}")
    ax.set_xlabel("Levenshtein distance")
    ax.set_ylabel("Sample count")
    ax.set_xlim(-0.5, len(counts) - 0.5)
    ax.grid(axis="y")
    return fig


def plot_latency_histogram(milliseconds: Sequence[float], bins: int = 50) -> Figure:
    """Histogram of per-sequence latency with the median (p50) and p95 marked."""
    values = _finite(milliseconds, "latencies")
    p50, p95 = np.percentile(values, [50, 95])
    fig, ((ax,),) = _new_figure()
    ax.hist(values, bins=bins, color="tab:blue", alpha=0.8)
    ax.axvline(p50, color="black", linestyle="--", label=f"p50 = {p50:.2f} ms")
    ax.axvline(p95, color="tab:red", linestyle="--", label=f"p95 = {p95:.2f} ms")
    ax.set_title(f"Latency per sequence (n = {len(values)}, mean = {values.mean():.2f} ms)")
    ax.set_xlabel("milliseconds")
    ax.set_ylabel("sequences")
    ax.legend()
    ax.grid(axis="y")
    return fig


def plot_frames_histogram(before: Sequence[int], after: Sequence[int], bins: int = 50) -> Figure:
    """Frames per sequence before and after filtering, overlaid on the same bins."""
    before = _finite(before, "frames before filtering")
    after = _finite(after, "frames after filtering")
    edges = np.histogram_bin_edges(np.concatenate([before, after]), bins=bins)
    fig, ((ax,),) = _new_figure()
    for values, label, colour in ((before, "before", "tab:gray"), (after, "after", "tab:blue")):
        ax.hist(
            values,
            bins=edges,
            alpha=0.6,
            color=colour,
            label=f"{label} filtering (n = {len(values)}, mean = {values.mean():.1f})",
        )
    ax.set_title("Frames per sequence")
    ax.set_xlabel("frames")
    ax.set_ylabel("sequences")
    ax.legend()
    ax.grid(axis="y")
    return fig


def _hand_indices(columns: Sequence[str], hand: str) -> tuple[list[int], list[int]]:
    position = {name: i for i, name in enumerate(columns)}
    wanted = [f"{axis}_{hand}_hand_{i}" for axis in "xy" for i in range(HAND_POINTS)]
    missing = [name for name in wanted if name not in position]
    if missing:
        raise ValueError(f"columns lack the {hand} hand's x/y points, e.g. {missing[:3]}")
    return [position[n] for n in wanted[:HAND_POINTS]], [position[n] for n in wanted[HAND_POINTS:]]


def plot_hand_over_time(
    frames: np.ndarray, columns: Sequence[str], hand: str | None = None, title: str = ""
) -> Figure:
    """One sequence ``[T, F]`` drawn as hand landmarks over time.

    Top: the x/y points (and bones) of one hand in every frame where it was detected, coloured
    by frame index, y pointing down as in the image. Bottom: which hand is present per frame.
    A hand counts as present in a frame when its points are finite and not all zero (the
    preprocessing fills missing hands with NaN or 0). ``hand`` is ``"left"`` or ``"right"``;
    by default the one present in more frames.
    """
    frames = _values(frames, "frames", ndim=2)
    if frames.shape[1] != len(columns):
        raise ValueError(f"frames have {frames.shape[1]} features but {len(columns)} columns")
    indices = {side: _hand_indices(columns, side) for side in ("left", "right")}
    presence = {}
    for side, (xs, ys) in indices.items():
        points = frames[:, xs + ys]
        presence[side] = np.isfinite(points).all(axis=1) & (np.nan_to_num(points) != 0).any(axis=1)
    if hand is None:
        hand = max(("right", "left"), key=lambda side: presence[side].sum())
    if hand not in indices:
        raise ValueError(f"hand must be 'left' or 'right', got {hand!r}")

    fig, axes = _new_figure(figsize=(8, 9), nrows=2, height_ratios=[5, 1])
    ax, presence_ax = axes[:, 0]
    xs, ys = indices[hand]
    shown = np.flatnonzero(presence[hand])
    if len(shown):
        x, y = frames[shown][:, xs], frames[shown][:, ys]  # (N, 21) each
        norm = plt.Normalize(0, max(len(frames) - 1, 1))
        bones = [np.stack([x[:, [a, b]], y[:, [a, b]]], axis=-1) for a, b in HAND_CONNECTIONS]
        bones = np.concatenate(bones)  # (N * connections, 2, 2)
        bone_frames = np.tile(shown, len(HAND_CONNECTIONS))
        lines = LineCollection(bones, cmap="viridis", norm=norm, linewidths=0.6, alpha=0.5)
        lines.set_array(bone_frames)
        ax.add_collection(lines)
        points = ax.scatter(
            x.ravel(), y.ravel(), c=np.repeat(shown, HAND_POINTS), cmap="viridis", norm=norm, s=8
        )
        fig.colorbar(points, ax=ax, label="frame")
        ax.autoscale_view()
    else:
        ax.text(0.5, 0.5, f"no {hand} hand in any frame", ha="center", transform=ax.transAxes)
    ax.invert_yaxis()
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title(title or f"{hand} hand over {len(frames)} frames ({len(shown)} with the hand)")

    presence_ax.imshow(
        np.stack([presence["left"], presence["right"]]).astype(float),
        aspect="auto",
        cmap="Greys",
        vmin=0,
        vmax=1,
        interpolation="nearest",
    )
    presence_ax.set_yticks([0, 1], ["left", "right"])
    presence_ax.set_xlabel("frame")
    presence_ax.set_title("hand present", fontsize=10)
    fig.tight_layout()
    return fig


def _column_group(name: str) -> str:
    match = _COLUMN.match(name)
    if match is None:
        return name
    part = "lips" if match["part"] == "face" else match["part"].replace("_", " ")
    return f"{match['axis']} {part}"


def plot_normalisation(
    means: Sequence[float], stds: Sequence[float], columns: Sequence[str]
) -> Figure:
    """Per-column mean (top) and standard deviation (bottom), columns grouped by axis and part
    (e.g. ``x left hand``, ``y lips``) with a separator between groups."""
    means = _values(means, "means")
    stds = _values(stds, "stds")
    if not len(means) == len(stds) == len(columns):
        raise ValueError(
            f"means ({len(means)}), stds ({len(stds)}) and columns ({len(columns)}) "
            "differ in length"
        )
    groups = [_column_group(name) for name in columns]
    starts = [i for i in range(len(groups)) if i == 0 or groups[i] != groups[i - 1]]
    ends = starts[1:] + [len(groups)]
    fig, axes = _new_figure(figsize=(14, 7), nrows=2, sharex=True)
    for ax, values, label in zip(axes[:, 0], (means, stds), ("mean", "std"), strict=True):
        ax.bar(np.arange(len(values)), values, width=1.0, color="tab:blue")
        for start in starts[1:]:
            ax.axvline(start - 0.5, color="black", linewidth=0.8)
        ax.set_ylabel(label)
        ax.grid(axis="y")
    axes[0, 0].set_title(f"Normalisation statistics of {len(columns)} columns")
    axes[-1, 0].set_xticks(
        [(start + end - 1) / 2 for start, end in zip(starts, ends, strict=True)],
        [groups[start] for start in starts],
        rotation=30,
        ha="right",
    )
    axes[-1, 0].set_xlim(-0.5, len(columns) - 0.5)
    fig.tight_layout()
    return fig


def plot_logits_histogram(logits: np.ndarray, bins: int = 128) -> Figure:
    """Histogram of all logits (e.g. of an initialised model: should be centred near 0 and
    narrow); non-finite values are counted in the title, not drawn."""
    values = np.asarray(logits, dtype=np.float64).ravel()
    if values.size == 0:
        raise ValueError("logits are empty")
    finite = np.isfinite(values)
    fig, ((ax,),) = _new_figure()
    ax.hist(values[finite], bins=bins, color="tab:blue")
    ax.set_title(
        f"Logits ({values.size} values, NaN: {int(np.isnan(values).sum())}, "
        f"inf: {int(np.isinf(values).sum())})"
    )
    ax.set_xlabel("logit")
    ax.set_ylabel("count")
    ax.grid(True)
    return fig


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` as a PNG atomically, then close it; returns the path."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"save_figure writes PNG; give a .png path, got {path}")
    try:
        with atomic_path(path, suffix=".png") as temporary:
            fig.savefig(temporary, format="png", dpi=100, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path


def plot_architecture(model, path: str | Path) -> Path | None:
    """Keras' architecture diagram as a PNG, or ``None`` with a printed reason when pydot or
    graphviz is missing (the diagram is optional; nothing else depends on it)."""
    import keras

    path = Path(path)
    try:
        keras.utils.plot_model(model, to_file=str(path), show_shapes=True, expand_nested=True)
    except (ImportError, OSError) as error:
        print(f"architecture diagram skipped: {error} (install pydot and graphviz to draw it)")
        return None
    return path
