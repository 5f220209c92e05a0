"""The public figures: ``plot_trajectory`` and ``plot_sweep`` draw the results' own numbers."""

import matplotlib

matplotlib.use("Agg")  # the tests draw off-screen (the library never switches backends)

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import jepa_flow as jf  # noqa: E402

LAM, VAR, EPS = np.array([1.0, 0.8]), np.array([2.0, 1.0]), 1e-3
T = np.array([0.0, 1.0, 10.0, 100.0, 1e3, 1e4, 1e5])


def _is_open(fig) -> bool:
    return fig.number in plt.get_fignums()


@pytest.fixture(scope="module")
def study():
    """JEPA and MAE at depths 1 and 3: trajectories ``[T, 2, 2]`` and critical times."""
    depth = np.array([[1], [3]])
    trajs = [jf.simulate(o, LAM, VAR, depth, EPS, T) for o in ("jepa", "mae")]
    stars = [np.asarray(jf.critical_time(o, LAM, VAR, depth, EPS)) for o in ("jepa", "mae")]
    return trajs, stars


def _lines(ax):
    """The feature curves of a panel (solid lines, not the dots or the half level)."""
    return [ln for ln in ax.get_lines() if ln.get_linestyle() == "-" and len(ln.get_xdata()) > 2]


def test_plot_trajectory_draws_wbar_over_its_fixed_point(study):
    trajs, stars = study
    fig = jf.plot_trajectory(trajs, t_star=stars, depth=[1, 3], lam=LAM, var=VAR)
    try:
        assert _is_open(fig)
        axes = [ax for ax in fig.axes if ax.get_visible()]
        assert len(axes) == 4  # 2 objectives x 2 depths
        wbar, wbar_star = np.asarray(trajs[1].wbar), np.asarray(trajs[1].wbar_star)
        mae_depth3 = axes[3]
        assert mae_depth3.get_title().startswith("MAE, depth L = 3")
        for j, line in enumerate(_lines(mae_depth3)):
            np.testing.assert_array_equal(line.get_xdata(), T[1:])  # t > 0 on a log axis
            np.testing.assert_allclose(line.get_ydata(), wbar[1:, 1, j] / wbar_star[1, j])
        assert [ln.get_label() for ln in _lines(axes[0])][0].startswith("A: λ=1")
        # the critical times are dots on the half level
        dots = [ln for ln in mae_depth3.get_lines() if ln.get_marker() == "o"]
        np.testing.assert_allclose([d.get_xdata()[0] for d in dots], stars[1][1])
        assert all(d.get_ydata()[0] == 0.5 for d in dots)
        first = "A" if stars[1][1, 0] < stars[1][1, 1] else "B"
        assert mae_depth3.get_title().endswith(f"first learned: {first}")
    finally:
        plt.close(fig)


def test_plot_trajectory_into_an_ax_returns_its_figure():
    traj = jf.simulate("jepa", LAM, VAR, 2, EPS, T)
    fig, ax = plt.subplots()
    try:
        assert jf.plot_trajectory(traj, ax=ax) is fig
        assert _is_open(fig)
        lines = _lines(ax)
        assert len(lines) == 2 and ax.get_title() == "JEPA"  # no t_star: no order claimed
        np.testing.assert_allclose(
            lines[0].get_ydata(), np.asarray(traj.wbar)[1:, 0] / np.asarray(traj.wbar_star)[0]
        )
        with pytest.raises(ValueError, match="ax: draws one panel"):
            jf.plot_trajectory(jf.simulate("jepa", LAM, VAR, [[1], [2]], EPS, T), ax=ax)
    finally:
        plt.close(fig)


def test_plot_trajectory_saves_to_path(tmp_path):
    traj = jf.simulate("mae", LAM, VAR, 1, EPS, T)
    fig = jf.plot_trajectory(traj, path=tmp_path / "d.png")
    plt.close(fig)
    assert (tmp_path / "d.png").read_bytes()[:4] == b"\x89PNG"
