"""Each plot returns a Figure with the expected panels and artists, leaks nothing, saves a PNG."""

import matplotlib

matplotlib.use("Agg")  # before pyplot: tests never need a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from aslfr_lib import plots  # noqa: E402
from aslfr_lib.landmarks import LEFT_HAND, RIGHT_HAND, SELECTED_COLUMNS  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def no_leaked_figures():
    before = set(plt.get_fignums())
    yield
    assert set(plt.get_fignums()) == before, "a plot function left a figure open in pyplot"


def check_saves(fig, tmp_path, name="figure.png"):
    path = plots.save_figure(fig, tmp_path / name)
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 1000
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temporary left behind


def test_lr_schedule(tmp_path):
    values = [1e-4, 2e-4, 4e-4, 1e-3, 7e-4, 3e-4, 1e-5]
    fig = plots.plot_lr_schedule(values)
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    curve, points = ax.lines
    np.testing.assert_array_equal(curve.get_xdata(), np.arange(1, 8))  # epochs count from 1
    np.testing.assert_allclose(curve.get_ydata(), values)
    assert len(points.get_xdata()) == len(ax.texts) == 7  # every epoch annotated up to 40
    assert ax.texts[3].get_text() == "1.0E-03"
    assert "max: 1.0E-03" in ax.get_title() and "final: 1.0E-05" in ax.get_title()
    check_saves(fig, tmp_path)


def test_lr_schedule_long_run_annotates_every_fifth_epoch():
    fig = plots.plot_lr_schedule(np.linspace(1e-3, 1e-6, 100))
    assert len(fig.axes[0].texts) == 21  # epochs 1, 6, ..., 96 and the last


def test_history_with_validation(tmp_path):
    history = {
        "loss": [3.0, 2.0, 1.5, 1.6],
        "top1acc": [0.1, 0.3, 0.4, 0.45],
        "top5acc": [0.3, 0.5, 0.6, 0.7],
        "val_loss": [3.2, 2.5, 2.2, 2.4],
        "val_top1acc": [0.1, 0.2, 0.3, 0.25],
        "val_top5acc": [0.2, 0.4, 0.5, 0.55],
    }
    fig = plots.plot_history(history)
    assert len(fig.axes) == 3
    loss_ax, top1_ax, _ = fig.axes
    assert [line.get_label() for line in loss_ax.lines] == ["train", "val"]
    best_train, best_val = loss_ax.collections  # best epochs: lowest loss (3rd epoch for both)
    np.testing.assert_allclose(best_train.get_offsets(), [[3, 1.5]])
    np.testing.assert_allclose(best_val.get_offsets(), [[3, 2.2]])
    np.testing.assert_allclose(top1_ax.collections[1].get_offsets(), [[3, 0.3]])  # highest acc
    assert top1_ax.get_ylim() == (0, 1)
    check_saves(fig, tmp_path)


def test_history_without_validation_and_with_learning_rate():
    fig = plots.plot_history({"loss": [2.0, 1.0, np.nan], "learning_rate": [1e-4, 1e-3, 5e-4]})
    assert len(fig.axes) == 2
    loss_ax, rate_ax = fig.axes
    assert len(loss_ax.lines) == 1
    np.testing.assert_allclose(loss_ax.collections[0].get_offsets(), [[2, 1.0]])  # NaN skipped
    assert rate_ax.get_yscale() == "log" and not rate_ax.collections


def test_history_refuses_ragged_lists():
    with pytest.raises(ValueError, match="val_loss"):
        plots.plot_history({"loss": [2.0, 1.0], "val_loss": [2.0]})


def test_distance_distribution(tmp_path):
    distances = [0, 0, 1, 3, 3, 3, 7]
    fig = plots.plot_distance_distribution(distances)
    ax = fig.axes[0]
    heights = [patch.get_height() for patch in ax.patches]
    assert heights == [2, 1, 0, 3, 0, 0, 0, 1]  # one bar per distance 0..max
    assert f"Mean: {np.mean(distances):.4f}" in ax.get_title()
    check_saves(fig, tmp_path)
    with pytest.raises(ValueError, match="non-negative integers"):
        plots.plot_distance_distribution([1, -1])


def test_latency_histogram(tmp_path):
    milliseconds = np.random.default_rng(0).gamma(4.0, 5.0, size=200)
    fig = plots.plot_latency_histogram(milliseconds, bins=20)
    ax = fig.axes[0]
    assert len(ax.patches) == 20
    p50, p95 = (line.get_xdata()[0] for line in ax.lines)
    np.testing.assert_allclose([p50, p95], np.percentile(milliseconds, [50, 95]))
    assert ax.get_legend().get_texts()[1].get_text() == f"p95 = {p95:.2f} ms"
    check_saves(fig, tmp_path)
    with pytest.raises(ValueError, match="non-finite"):
        plots.plot_latency_histogram([1.0, np.nan])


def test_frames_histogram(tmp_path):
    before, after = [10, 40, 160, 300, 800], [40, 160, 300]
    fig = plots.plot_frames_histogram(before, after, bins=10)
    ax = fig.axes[0]
    assert len(ax.containers) == 2
    counts = [sum(patch.get_height() for patch in container) for container in ax.containers]
    assert counts == [5, 3]
    check_saves(fig, tmp_path)


def hand_sequence(frames=12):
    """A [T, 164] sequence: right hand in frames 2..9 moving right, left hand never, lips 0.5."""
    data = np.full((frames, len(SELECTED_COLUMNS)), np.nan, dtype=np.float32)
    data[:, 84:] = 0.5
    for t in range(2, 10):
        block = np.zeros(42, dtype=np.float32)
        block[:21] = 0.3 + 0.02 * t + np.linspace(0, 0.1, 21)  # x
        block[21:] = 0.6 - np.linspace(0, 0.2, 21)  # y
        data[t, RIGHT_HAND] = block
    data[:, LEFT_HAND][0] = 0.0  # a zero-filled (absent) left hand is not "present"
    return data


def test_hand_over_time(tmp_path):
    fig = plots.plot_hand_over_time(hand_sequence(), SELECTED_COLUMNS)
    assert len(fig.axes) == 3  # landmarks, presence strip, colour bar
    ax, presence_ax, _ = fig.axes
    (points,) = ax.collections[1:]
    assert len(points.get_offsets()) == 8 * 21  # the right hand was chosen, 8 frames shown
    np.testing.assert_array_equal(np.unique(points.get_array()), np.arange(2, 10))
    assert isinstance(ax.collections[0], LineCollection)
    assert len(ax.collections[0].get_segments()) == 8 * len(plots.HAND_CONNECTIONS)
    assert ax.yaxis_inverted()
    strip = presence_ax.images[0].get_array()
    np.testing.assert_array_equal(strip[0], 0)  # left never present
    np.testing.assert_array_equal(np.flatnonzero(strip[1]), np.arange(2, 10))
    check_saves(fig, tmp_path)


def test_hand_over_time_absent_hand_and_bad_columns():
    fig = plots.plot_hand_over_time(hand_sequence(), SELECTED_COLUMNS, hand="left")
    assert "no left hand" in fig.axes[0].texts[0].get_text()
    with pytest.raises(ValueError, match="164 features but 3 columns"):
        plots.plot_hand_over_time(hand_sequence(), SELECTED_COLUMNS[:3])


def test_normalisation(tmp_path):
    rng = np.random.default_rng(0)
    means, stds = rng.normal(size=164), rng.uniform(0.1, 1, size=164)
    fig = plots.plot_normalisation(means, stds, SELECTED_COLUMNS)
    mean_ax, std_ax = fig.axes
    np.testing.assert_allclose([p.get_height() for p in mean_ax.patches], means)
    np.testing.assert_allclose([p.get_height() for p in std_ax.patches], stds)
    labels = [label.get_text() for label in std_ax.get_xticklabels()]
    assert labels == [
        "x left hand",
        "y left hand",
        "x right hand",
        "y right hand",
        "x lips",
        "y lips",
    ]
    assert len(mean_ax.lines) == 5  # separators between the six groups
    check_saves(fig, tmp_path)
    with pytest.raises(ValueError, match="differ in length"):
        plots.plot_normalisation(means[:3], stds, SELECTED_COLUMNS)


def test_logits_histogram(tmp_path):
    logits = np.random.default_rng(0).normal(size=(2, 32, 62))
    logits[0, 0, 0] = np.nan
    fig = plots.plot_logits_histogram(logits, bins=16)
    ax = fig.axes[0]
    assert len(ax.patches) == 16
    assert sum(p.get_height() for p in ax.patches) == logits.size - 1
    assert "NaN: 1" in ax.get_title()
    check_saves(fig, tmp_path)


def test_save_figure_closes_a_pyplot_figure_and_wants_png(tmp_path):
    fig = plt.figure()
    fig.add_subplot().plot([0, 1], [1, 0])
    assert fig.number in plt.get_fignums()
    check_saves(fig, tmp_path)
    assert fig.number not in plt.get_fignums()
    with pytest.raises(ValueError, match="png"):
        plots.save_figure(plots.plot_logits_histogram([0.0]), tmp_path / "figure.jpg")
