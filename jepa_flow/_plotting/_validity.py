"""The validity map: how well each per-feature theory predicts the full-matrix flow (theory §11).

``plot_validity_map`` draws, per theory, two heat maps over ``theta x
depth``: Spearman's rank correlation of the predicted and the observed
learning order (top, -1 to 1) and the median relative error of the critical
times (bottom, log colour from 1e-4 to 10), each cell annotated with its
value. It takes the grids themselves (``[depth, theta]`` per theory), so any
caller can draw it: ``validity_figure`` draws a finished ``[validity]`` sweep
(``_sweeps._validity``) with it, one map per objective, each cell the median
over the axes it does not draw (``spectrum``, ``eps``, ``seed``: ``median_map``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .._sweeps._result import SweepResult

LABEL = {"jepa": "JEPA (stop-gradient)", "ema": "JEPA (EMA)", "mae": "MAE"}
SCORES = ("spearman", "median_error")  # what the map draws, top and bottom
ERROR_RANGE = (1e-4, 10.0)  # the error colour scale; smaller errors are drawn at its floor


def median_map(values, theta_rows, depth_rows, theta, depth) -> np.ndarray:
    """``[len(depth), len(theta)]``: the median of the finite ``values`` in each cell.

    ``values``, ``theta_rows``, ``depth_rows`` ``[n]``: one value per row and
    the row's ``theta`` and ``depth``. NaN where a cell has no finite value.

    Examples:
        >>> median_map([1.0, 3.0, np.nan, 5.0], [0, 0, 10, 10], [1, 1, 1, 2], [0, 10], [1, 2])
        array([[ 2., nan],
               [nan,  5.]])
    """
    values = np.asarray(values, float)
    theta_rows, depth_rows = np.asarray(theta_rows, float), np.asarray(depth_rows, float)
    out = np.full((len(depth), len(theta)), np.nan)
    for i, L in enumerate(depth):
        for j, th in enumerate(theta):
            cell = values[(depth_rows == L) & (theta_rows == th)]
            cell = cell[np.isfinite(cell)]
            if cell.size:
                out[i, j] = np.median(cell)
    return out


def _error_label(v: float) -> str:
    return "<1e-4" if v <= ERROR_RANGE[0] else (f"{v:.0e}" if v < 0.01 else f"{v:.2f}")


def _panel(ax, g, theta, depth, cmap, norm, fmt):
    im = ax.imshow(g, origin="lower", aspect="auto", cmap=cmap, norm=norm)
    for (i, j), v in np.ndenumerate(g):
        if np.isfinite(v):
            r, gr, b, _ = im.cmap(im.norm(v))
            ink = "w" if 0.299 * r + 0.587 * gr + 0.114 * b < 0.45 else "k"  # legible on the cell
            ax.text(j, i, fmt(v), ha="center", va="center", fontsize=5.5, color=ink)
    ax.set_xticks(range(len(theta)), [f"{t:g}" for t in theta], fontsize=7)
    ax.set_yticks(range(len(depth)), [str(int(L)) for L in depth], fontsize=7)
    return im


def plot_validity_map(
    spearman: Mapping[str, np.ndarray],
    error: Mapping[str, np.ndarray],
    theta,
    depth,
    *,
    title: str = "",
    fig=None,
):
    """Spearman (top) and median relative time error (bottom) of each theory over theta x depth.

    Args:
        spearman, error: theory -> ``[len(depth), len(theta)]`` grid (NaN: no
            value); one column of panels per theory, in ``spearman``'s order.
        theta: the columns' angles (degrees); depth: the rows' depths.
        title: the figure's title.
        fig: a Figure (or SubFigure) to draw into; default a new one.

    Returns the figure (open), or ``fig``.

    Examples:
        >>> import numpy as np
        >>> g = {"pca": np.array([[1.0, 0.4]]), "gen-dual": np.array([[1.0, 0.8]])}
        >>> e = {"pca": np.array([[0.0, 0.5]]), "gen-dual": np.array([[0.0, 0.1]])}
        >>> fig = plot_validity_map(g, e, [0, 20], [2])
        >>> [ax.get_title() for ax in fig.axes[:2]], len(fig.axes)  # 4 panels, 2 colour bars
        (['pca', 'gen-dual'], 6)
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm, Normalize

    theories = list(spearman)
    if not theories or set(error) != set(theories):
        raise ValueError("spearman, error: the same theories, at least one")
    if fig is None:
        fig = plt.figure(figsize=(2.2 * len(theories) + 0.6, 2 * 2.3 + 0.9))
        fig.set_layout_engine("constrained")
    axes = fig.subplots(2, len(theories), squeeze=False)
    norms = (Normalize(-1, 1), LogNorm(*ERROR_RANGE))
    for c, th in enumerate(theories):
        s = np.asarray(spearman[th], float)
        im0 = _panel(axes[0, c], s, theta, depth, "RdBu", norms[0], lambda v: f"{v:.2f}")
        err = np.maximum(np.asarray(error[th], float), ERROR_RANGE[0])
        im1 = _panel(axes[1, c], err, theta, depth, "viridis", norms[1], _error_label)
        axes[0, c].set_title(th, fontsize=9)
        axes[1, c].set_xlabel("theta (degrees)", fontsize=8)
    axes[0, 0].set_ylabel("Spearman\ndepth L", fontsize=8)
    axes[1, 0].set_ylabel("median rel. time error\ndepth L", fontsize=8)
    fig.colorbar(im0, ax=axes[0, :].tolist(), shrink=0.85, pad=0.01)
    fig.colorbar(im1, ax=axes[1, :].tolist(), shrink=0.85, pad=0.01)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def validity_figure(result: SweepResult, at: Mapping | None = None, fig=None):
    """``validity.png`` of a finished ``[validity]`` sweep: one validity map per objective.

    ``at``: ``{axis: value}`` keeps only the rows at that value of an axis
    (``objective``, ``eps``, ``seed``, ...); every cell is the median over
    the rows left. A theory with no value for an objective (``cited`` for
    MAE) is left out of that objective's map.
    """
    import matplotlib.pyplot as plt

    config = result.config
    grid = config.grid
    at = dict(at or {})
    unknown = sorted(set(at) - set(grid.names))
    if unknown:
        raise ValueError(f"at: no axis {unknown[0]!r}; the axes: {', '.join(grid.names)}")
    cols = result.sel(**at) if at else result.columns()
    theta = [float(x) for x in np.unique(cols["theta"])]
    depth = [int(x) for x in np.unique(cols["depth"])]
    objectives = [o for o in config.axis("objective") if (cols["objective"] == o).any()]
    width = 2.2 * len(config.theories) + 0.6
    fig = fig or plt.figure(figsize=(width, (2 * 2.3 + 0.9) * len(objectives)))
    fig.set_layout_engine("constrained")
    parts = fig.subfigures(len(objectives), 1, squeeze=False)[:, 0]
    held = ", ".join(f"{k} = {v}" for k, v in at.items() if k != "objective")
    over = [n for n in ("spectrum", "eps", "seed") if n not in at and len(config.axis(n)) > 1]
    for part, objective in zip(parts, objectives):
        mine = cols["objective"] == objective
        th, L = cols["theta"][mine], cols["depth"][mine]
        maps = {
            name: tuple(median_map(cols[s][mine, t], th, L, theta, depth) for s in SCORES)
            for t, name in enumerate(config.theories)
        }
        drawn = [n for n, m in maps.items() if any(np.isfinite(g).any() for g in m)] or list(maps)
        spearman = {n: maps[n][0] for n in drawn}
        error = {n: maps[n][1] for n in drawn}
        title = f"{LABEL[objective]}: each theory against the full-matrix flow"
        title += f" (median over {' and '.join(over)})" if over else ""
        title += f", {held}" if held else ""
        plot_validity_map(spearman, error, theta, depth, title=title, fig=part)
    return fig
