"""Learning curves: seed statistics (mean, standard error) on a common grid, figures."""

from __future__ import annotations

import math

import imageio.v3 as iio
import numpy as np

from torchrl_psp.figures.curves import aggregate_seeds, learning_curve_figure, save_figure

# Three seeds on different step grids; the common grid is [0, 20] (seed B runs longer),
# with the union of the steps inside it: 0, 5, 10, 20.
SEED_A = (np.array([0, 10, 20]), np.array([0.0, 10.0, 20.0]))
SEED_B = (np.array([0, 10, 10, 20, 30]), np.array([2.0, 99.0, 14.0, 26.0, 100.0]))  # 10 twice
SEED_C = (np.array([0, 5, 20]), np.array([1.0, 3.0, 30.0]))
# By hand: at 5, A = 5, B = 8 (between 2 and 14), C = 3; at 10, C = 3 + 27 / 3 = 12.
GRID = [0.0, 5.0, 10.0, 20.0]
VALUES = np.array([[0, 5, 10, 20], [2, 8, 14, 26], [1, 3, 12, 30]], dtype=float)
MEAN = [1.0, 16 / 3, 12.0, 76 / 3]
STD = [1.0, math.sqrt(19 / 3), 2.0, math.sqrt(76 / 3)]  # sample std (ddof=1)
SEM = [s / math.sqrt(3) for s in STD]


def test_aggregate_seeds_by_hand():
    stats = aggregate_seeds([SEED_A, SEED_B, SEED_C])
    assert stats.num_seeds == 3
    assert stats.steps.tolist() == GRID
    assert np.allclose(stats.mean, MEAN)
    assert np.allclose(stats.mean, VALUES.mean(0))
    assert np.allclose(stats.std, STD)
    assert np.allclose(stats.sem, SEM)
    single = aggregate_seeds([SEED_A])
    assert single.mean.tolist() == [0.0, 10.0, 20.0] and not single.sem.any()
    assert aggregate_seeds([]).steps.size == 0
    disjoint = [(np.array([0, 1]), np.array([0, 1])), (np.array([5]), [2.0])]
    assert aggregate_seeds(disjoint).steps.size == 0  # no step where all seeds have data


def test_learning_curve_figure_plots_mean_and_standard_error_band():
    fig = learning_curve_figure(
        {"psp": [SEED_A, SEED_B, SEED_C], "dreamer": [SEED_A]}, title="cheetah-run"
    )
    ax = fig.axes[0]
    assert len(ax.lines) == 2
    assert ax.lines[0].get_xdata().tolist() == GRID
    assert np.allclose(ax.lines[0].get_ydata(), MEAN)
    assert np.allclose(ax.lines[1].get_ydata(), [0.0, 10.0, 20.0])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["psp (n=3)", "dreamer (n=1)"]
    assert ax.get_title() == "cheetah-run" and ax.get_xlabel() == "environment steps"
    assert len(ax.collections) == 1  # a band for psp only (one seed has no spread)
    band = ax.collections[0].get_paths()[0].vertices
    for step, mean, sem in zip(GRID, MEAN, SEM):
        at = band[np.isclose(band[:, 0], step), 1]
        assert np.isclose(at.min(), mean - sem) and np.isclose(at.max(), mean + sem)
    std_fig = learning_curve_figure({"psp": [SEED_A, SEED_B, SEED_C]}, band="std")
    band = std_fig.axes[0].collections[0].get_paths()[0].vertices
    assert np.isclose(band[np.isclose(band[:, 0], 10.0), 1].max(), 12.0 + 2.0)


def test_save_figure_png_and_pdf(tmp_path):
    fig = learning_curve_figure({"psp": [SEED_A, SEED_C]})
    written = save_figure(fig, tmp_path / "sub" / "curves.pdf")
    assert written == [tmp_path / "sub" / "curves.png", tmp_path / "sub" / "curves.pdf"]
    assert iio.imread(written[0]).ndim == 3
    assert written[1].read_bytes().startswith(b"%PDF")
    assert save_figure(fig, tmp_path / "only.png") == [tmp_path / "only.png"]
