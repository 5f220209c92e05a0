"""Figures of training runs and of their comparison with the theory.

Features are named as everywhere else (A, B, ... in the feature basis,
``feature_names``). Both functions draw into a new figure, or into ``fig=``,
save it to ``path`` when given (atomically), and return it open: close it
with ``matplotlib.pyplot.close(fig)``.
"""

from __future__ import annotations

import os

import numpy as np
from matplotlib.figure import Figure

from .._core._io import save_figure_atomic
from .._training._compare import Comparison
from .._training._train import TrainResult
from ._dynamics import feature_colors, feature_names


def _panels(fig, n: int, width: float = 5.0):
    import matplotlib.pyplot as plt

    fig = fig or plt.figure(figsize=(width * n, 4.2))
    return fig, fig.subplots(1, n, squeeze=False)[0]


def _finish(fig, path):
    fig.tight_layout()
    if path is not None:
        save_figure_atomic(fig, path, dpi=120)
    return fig


def _style_legend(ax, names, colors, rho, has_full: bool):
    """Legend: one entry per feature (colour) and one per source (line style)."""
    from matplotlib.lines import Line2D

    full = "full-matrix flow" if has_full else "full-matrix flow: not needed (= theory)"
    handles = [
        Line2D([], [], color=c, lw=2, label=f"{n}: rho = {r:.2f}")
        for n, c, r in zip(names, colors, rho)
    ]
    handles += [
        Line2D([], [], color="0.2", lw=1.2, label="per-feature theory"),
        Line2D([], [], color="0.2", lw=5, alpha=0.3 if has_full else 0.0, label=full),
        Line2D([], [], color="0.2", marker="o", ls="none", ms=3, label="training"),
    ]
    ax.legend(handles=handles, fontsize=7, loc="lower right")


def plot_compare(
    comparison: Comparison, path: str | os.PathLike | None = None, fig: Figure | None = None
) -> Figure:
    """Theory (thin line), full-matrix flow (wide pale line) and training (dots), per depth.

    Shows member ``(seed 0, eta 0)`` of every depth of a ``Comparison``, one
    panel per depth; where the flow and the theory agree, the theory's line
    runs inside the flow's band (the flow is computed only where the
    per-feature theory is not exact, theory §10). Saved to ``path`` (atomically) when given;
    ``fig``: a figure to draw into. Returns the figure, open.

    Examples:
        >>> import jepa_flow as jf
        >>> cfg = jf.TrainConfig(objective="mae", depth=[1, 2], eta=0.01, t_max=30.0)
        >>> c = jf.compare(jf.train(jf.gaussian(Sxx=[2.0, 1.0], Syx=[1.0, 0.8]), cfg))
        >>> fig = jf.plot_compare(c)
        >>> len(fig.axes), fig.axes[0].get_ylabel()  # one panel per depth
        (2, '|Wbar e_j|')
    """
    c, r = comparison, comparison.result
    fig, axes = _panels(fig, len(r.depth))
    d = r.norm.shape[-1]
    colors, names = feature_colors(d), feature_names(d)
    for b, ax in enumerate(axes):
        t = r.t[0, b, 0]
        m = t > 0
        for j in range(d):
            ax.plot(t[m], c.curve_full[0, b, 0][m, j], "-", color=colors[j], lw=5, alpha=0.3)
            ax.plot(t[m], c.curve_theory[0, b, 0][m, j], "-", color=colors[j], lw=1.2)
            ax.plot(t[m], r.norm[0, b, 0][m, j], "o", color=colors[j], ms=2.5)
        ax.set_xscale("log")
        ax.set_yscale("log")
        t_star = c.t_star_theory[0, b, 0]
        t_star = t_star[np.isfinite(t_star) & (t_star > 0)]
        if t_star.size and m.any():
            ax.set_xlim(t_star.min() / 30, t[-1])
        ax.set_xlabel("flow time t = eta * step")
        ax.set_ylabel("|Wbar e_j|")
        ax.set_title(f"{c.config.objective.upper()}, depth {r.depth[b]}", fontsize=10)
    _style_legend(axes[0], names, colors, c.rho, np.isfinite(c.curve_full[0, :, 0]).any())
    return _finish(fig, path)


def plot_train(
    result: TrainResult, path: str | os.PathLike | None = None, fig: Figure | None = None
) -> Figure:
    """``|Wbar e_j|`` against flow time, one panel per depth (seed 0, first eta).

    Saved to ``path`` (atomically) when given; ``fig``: a figure to draw into.
    Returns the figure, open.

    Examples:
        >>> import jepa_flow as jf
        >>> cfg = jf.TrainConfig(objective="mae", eta=0.1, steps=200)
        >>> r = jf.train(jf.gaussian(Sxx=[2.0, 1.0], Syx=[1.0, 0.8]), cfg)
        >>> jf.plot_train(r).axes[0].get_ylabel()
        '|Wbar e_j|'
    """
    r = result
    fig, axes = _panels(fig, r.depth.size)
    d = r.norm.shape[-1]
    colors, names = feature_colors(d), feature_names(d)
    for b, ax in enumerate(axes):
        t = r.t[0, b, 0]
        m = t > 0
        for j in range(d):
            ax.plot(
                t[m], r.norm[0, b, 0][m, j], "o-", color=colors[j], ms=2, lw=0.8, label=names[j]
            )
        if m.any():
            ax.set_xscale("log")
        if m.any() and np.all(r.norm[0, b, 0][m] > 0):
            ax.set_yscale("log")
        ax.set_xlabel("flow time t = eta * step")
        ax.set_ylabel("|Wbar e_j|")
        title = f"{r.config.objective.upper()}, depth {r.depth[b]}, eta {r.eta[0]:g}"
        ax.set_title(title, fontsize=10)
    axes[0].legend(fontsize=7, title="feature", title_fontsize=7)
    return _finish(fig, path)
