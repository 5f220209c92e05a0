"""Figures of the per-feature dynamics (matplotlib; the backend is the caller's choice).

``plot_trajectory`` (public; ``dynamics.png`` of ``jepa-flow simulate``):
``wbar(t) / wbar*`` per feature, one panel per objective and depth, at most
``MAX_COLUMNS`` panels a row (more depths wrap onto further rows), so that the
text stays readable; ``dynamics_figure`` lays the panels out.
``critical_time_figure`` (``critical_times.png``): ``t*`` against depth, one
panel per objective. Both return an open figure; pass ``fig=`` to draw into
an existing one.
"""

from __future__ import annotations

import math
import os
import string
from collections.abc import Sequence

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from jaxtyping import ArrayLike, Float, Int
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .._core._io import save_figure_atomic
from .._theory._order import flip_depth, learned_order
from .._theory._simulate import Trajectory

OBJECTIVE_LABEL = {"jepa": "JEPA", "mae": "MAE"}
MAX_COLUMNS = 4  # panels per row of the dynamics figure
TIME_NOTE = " (gradient-flow time, log scale)"
TITLE = "Per-feature dynamics (dots: critical time t*, where wbar = wbar*/2)"


def feature_names(n: int) -> tuple[str, ...]:
    """The names the docs use for ``n`` features: A, B, ... (``f0, f1, ...`` beyond 26).

    Examples:
        >>> feature_names(3), feature_names(27)[-1]
        (('A', 'B', 'C'), 'f26')
    """
    return tuple(string.ascii_uppercase[i] if n <= 26 else f"f{i}" for i in range(n))


def feature_colors(n: int) -> list:
    """One colour per feature, the same in every panel and figure."""
    cmap = plt.get_cmap("tab10")
    return [cmap(i % 10) for i in range(n)]


def feature_label(name: str, lam: float, var: float) -> str:
    return f"{name}: λ={lam:.3g}, var={var:.3g}, ρ={lam / var:.3g}"


def plain_log_labels(axis) -> None:
    """Tick labels of a log axis as plain numbers (``0.2``, ``60``; not ``6 x 10^1``).

    Across less than two decades the minor ticks at 2 and 5 are labelled too;
    across more, only the powers of ten. A linear axis is left alone.
    """
    if axis.get_scale() != "log":
        return
    lo, hi = axis.get_view_interval()
    plain = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}")
    axis.set_major_formatter(plain)
    if 0 < lo and hi / lo < 100:
        axis.set_minor_locator(matplotlib.ticker.LogLocator(subs=(2.0, 5.0)))
        axis.set_minor_formatter(plain)
    else:
        axis.set_minor_formatter(matplotlib.ticker.NullFormatter())


def _dynamics_panel(ax, t, ratio, t_star, names, lam, var, title) -> None:
    """One objective at one depth: ``ratio [T, F]``, ``t_star [F]`` (None: not marked)."""
    colors = feature_colors(len(names))
    positive = t > 0
    for j, name in enumerate(names):
        label = name if lam is None else feature_label(name, lam[j], var[j])
        ax.plot(t[positive], ratio[positive, j], color=colors[j], lw=1.6, label=label)
        if t_star is not None and 0 < t_star[j] < np.inf:
            ax.plot([t_star[j]], [0.5], "o", color=colors[j], ms=5)
    ax.set_xscale("log")
    ax.set_ylim(-0.03, 1.08)
    ax.axhline(0.5, color="0.8", lw=0.8, zorder=0)
    ax.tick_params(labelsize=8)
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    if t_star is None:
        ax.set_title(title, fontsize=10)
        return
    span = t_star[np.isfinite(t_star) & (t_star > 0)]
    if span.size:  # zoom on this panel's rise
        ax.set_xlim(0.05 * span.min(), 3.0 * span.max())
    learned = learned_order(t_star)
    first = names[learned[0]] if learned.size else "none learned"
    ax.set_title(f"{title}\nfirst learned: {first}", fontsize=10)
    notes = [
        f"{what}: {', '.join(n for n, t in zip(names, t_star) if test(t))}"
        for what, test in (
            ("t* = 0, at its level from the start", lambda t: t == 0),
            ("never learned", lambda t: t == np.inf),
        )  # fmt: skip
        if any(test(t) for t in t_star)
    ]
    if notes:  # not ranked among the learned features (theory §10)
        ax.text(0.03, 0.95, "\n".join(notes), transform=ax.transAxes, va="top", fontsize=8)


def _panel_title(objective: str, depths, i: int) -> str:
    head = OBJECTIVE_LABEL[objective]
    if depths is None:
        return head
    return f"{head}, depth L = {int(depths[i])}"


def dynamics_figure(panels, names, lam, var, time_note="", fig=None):
    """Grid of ``wbar(t) / wbar*`` panels: per objective, one panel per depth, 4 a row.

    Args:
        panels: ``[(objective, t [T], ratio [T, D, F], t_star [D, F] or None,
            depths [D] or None)]``, one block of panels per entry.
        names, lam, var: per-feature names and parameters (legend; ``lam``
            None: names only).
        time_note: extra text for the x label (the time convention).
        fig: a figure to draw into (default: a new one, sized to the grid).

    Returns:
        The (open) figure.
    """
    n_depths = max(p[2].shape[1] for p in panels)
    n_cols = min(n_depths, MAX_COLUMNS)
    per_objective = math.ceil(n_depths / n_cols)
    n_rows = per_objective * len(panels)
    width = max(3.3 * n_cols + 0.8, 7.0)  # wide enough for the title and legend
    fig = fig or plt.figure(figsize=(width, 2.9 * n_rows + 1.4))
    axes = fig.subplots(n_rows, n_cols, squeeze=False, sharey=True)
    for k, (objective, t, ratio, t_star, depths) in enumerate(panels):
        n = ratio.shape[1]
        for i in range(per_objective * n_cols):
            ax = axes[k * per_objective + i // n_cols, i % n_cols]
            if i >= n:
                ax.set_visible(False)
                continue
            title = _panel_title(objective, depths, i)
            t_row = None if t_star is None else t_star[i]
            _dynamics_panel(ax, t, ratio[:, i], t_row, names, lam, var, title)
            if i % n_cols == 0:
                ax.set_ylabel("wbar / wbar*", fontsize=10)
            if i + n_cols >= n:  # the last panel of its column in this block
                ax.set_xlabel(f"time t{time_note}", fontsize=9)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    ncol = min(len(names), max(1, int(width // 3.3)))
    fig.legend(handles, labels, loc="lower center", ncol=ncol, fontsize=10, frameon=False)
    fig.suptitle(TITLE if width >= 9 else TITLE.replace(" (", "\n("), fontsize=12)
    legend_rows = math.ceil(len(names) / ncol)
    bottom = (0.3 * legend_rows + 0.1) / fig.get_figheight()  # inches -> figure fraction
    fig.tight_layout(rect=(0, min(0.3, bottom), 1, 0.97))
    return fig


def _trajectory_panels(trajs, stars, depth) -> list:
    """``dynamics_figure``'s panels of trajectories of batch shape ``[F]`` or ``[D, F]``."""
    if len(stars) != len(trajs):
        raise ValueError(f"t_star: give one per trajectory ({len(trajs)}); got {len(stars)}")
    panels = []
    for traj, star in zip(trajs, stars):
        wbar, wbar_star = np.asarray(traj.wbar), np.asarray(traj.wbar_star)
        if wbar.ndim > 3:
            raise ValueError(
                f"traj: batch shape {wbar.shape[1:]} has more than two axes; "
                "plot [feature] or [depth, feature] (index the trajectory's arrays first)"
            )
        shape = (1,) * (3 - wbar.ndim) + wbar.shape[1:]  # [D, F]
        ratio = (wbar / np.where(wbar_star > 0, wbar_star, 1.0)).reshape(len(wbar), *shape)
        star = None if star is None else np.broadcast_to(np.asarray(star, float), wbar.shape[1:])
        star = None if star is None else star.reshape(shape)
        depths = None if depth is None else np.broadcast_to(np.asarray(depth), shape[:1])
        panels.append((traj.objective, np.asarray(traj.t), ratio, star, depths))
    return panels


def plot_trajectory(
    traj: Trajectory | Sequence[Trajectory],
    *,
    t_star: Float[ArrayLike, "..."] | Sequence[Float[ArrayLike, "..."]] | None = None,
    depth: Int[ArrayLike, " D"] | None = None,
    lam: Float[ArrayLike, " F"] | None = None,
    var: Float[ArrayLike, " F"] | None = None,
    ax: Axes | None = None,
    fig: Figure | None = None,
    path: str | os.PathLike | None = None,
) -> Figure:
    """``wbar(t) / wbar*`` per feature against time, critical times marked (theory §3-§4).

    The dynamics figure of ``jepa-flow simulate``. A trajectory of batch shape
    ``[F]`` (features) is one panel; ``[D, F]`` (depths, features) one panel
    per depth, at most 4 a row; several trajectories (for example JEPA and
    MAE) one block of panels each. Features are named A, B, ...

    Args:
        traj: a ``Trajectory`` (``jf.simulate``) or a sequence of them.
        t_star: critical times (``jf.critical_time``, ``fraction=0.5``) that
            broadcast to the batch shape, drawn as dots on the half level;
            with a sequence of trajectories, a sequence of them (one per
            trajectory); None draws none.
        depth: the depths ``[D]`` of the leading batch axis (panel titles).
        lam, var: per-feature parameters ``[F]`` for the legend.
        ax: an Axes to draw into (one panel only); fig: a Figure to draw into.
        path: where to save the figure (atomically), when given.

    Returns:
        The figure, open (close it with ``matplotlib.pyplot.close(fig)``).

    Examples:
        >>> import jepa_flow as jf
        >>> kw = dict(lam=[1.0, 0.8], var=[2.0, 1.0], depth=[[1], [3]], eps=1e-3)
        >>> traj = jf.simulate("jepa", **kw, t=[0.0, 1.0, 10.0, 1e3, 1e5])
        >>> fig = jf.plot_trajectory(traj, t_star=jf.critical_time("jepa", **kw), depth=[1, 3])
        >>> [ax.get_title().splitlines()[0] for ax in fig.axes]
        ['JEPA, depth L = 1', 'JEPA, depth L = 3']
        >>> fig.axes[0].get_ylabel()
        'wbar / wbar*'
    """
    several = isinstance(traj, (list, tuple))
    trajs = list(traj) if several else [traj]
    stars = list(t_star) if several and t_star is not None else [t_star] * len(trajs)
    panels = _trajectory_panels(trajs, stars, depth)
    names = feature_names(panels[0][2].shape[-1])
    lam_, var_ = None, None
    if lam is not None and var is not None:
        lam_, var_ = (np.broadcast_to(np.asarray(x, float), (len(names),)) for x in (lam, var))
    if ax is not None:
        if len(panels) != 1 or panels[0][2].shape[1] != 1:
            raise ValueError("ax: draws one panel (one trajectory of batch shape [F]); use fig=")
        objective, t, ratio, star, depths = panels[0]
        star = None if star is None else star[0]
        title = _panel_title(objective, depths, 0)
        _dynamics_panel(ax, t, ratio[:, 0], star, names, lam_, var_, title)
        ax.set_ylabel("wbar / wbar*")
        ax.set_xlabel(f"time t{TIME_NOTE}")
        ax.legend(fontsize=8)
        fig = ax.figure
    else:
        fig = dynamics_figure(panels, names, lam_, var_, time_note=TIME_NOTE, fig=fig)
    if path is not None:
        save_figure_atomic(fig, path, dpi=110)
    return fig


def _not_drawn(depths, t_star) -> str:
    """Legend note for the depths where a feature's ``t*`` is 0 or inf (off a log axis)."""
    notes = [
        f"{what} at L = {', '.join(str(int(d)) for d in depths[mask])}"
        for what, mask in (("t* = 0", t_star == 0), ("never learned", t_star == np.inf))
        if mask.any()
    ]
    return f" ({'; '.join(notes)})" if notes else ""


def critical_time_figure(t_star, depths, names, lam, var, eps, fig=None):
    """Critical time against depth, one panel per objective (``t_star[obj]: [D, F]``).

    Depths are integer ticks (each depth computed is one). ``fig``: a figure
    to draw into (default a new one). Returns the (open) figure.
    """
    fig = fig or plt.figure(figsize=(5.2 * len(t_star), 4.2))
    axes = fig.subplots(1, len(t_star), squeeze=False)
    colors = feature_colors(len(names))
    depths = np.asarray(depths)
    for ax, (objective, ts) in zip(axes[0], t_star.items()):
        for j, name in enumerate(names):
            label = feature_label(name, lam[j], var[j]) + _not_drawn(depths, ts[:, j])
            ax.plot(depths, ts[:, j], "o-", color=colors[j], label=label)
        flip = flip_depth(depths, ts)
        if flip is not None:
            ax.axvline(flip - 0.5, color="0.5", ls="--", lw=1)
            ax.text(
                flip - 0.45,
                0.04,
                f"order flips at L={int(flip)}",
                transform=ax.get_xaxis_transform(),
                fontsize=8,
                color="0.3",
            )
        ax.set_yscale("log")
        if depths.size <= 16:
            ax.set_xticks(depths)
        else:
            ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True, nbins=12))
        ax.set_xlim(depths.min() - 0.5, depths.max() + 0.5)
        ax.set_xlabel("depth L")
        ax.set_ylabel("critical time t* (gradient-flow time)")
        ax.set_title(f"{OBJECTIVE_LABEL[objective]}, eps={eps:g}")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
        plain_log_labels(ax.yaxis)
    fig.tight_layout()
    return fig


def close(fig) -> None:
    plt.close(fig)
