"""Figures of training runs and of their comparison with the theory."""

from __future__ import annotations

import numpy as np

from .._core._io import save_figure_atomic


def _save(fig, path):
    import matplotlib.pyplot as plt

    if path is not None:
        save_figure_atomic(fig, path, dpi=120)
    plt.close(fig)
    return fig


def plot_compare(comparison, path=None):
    """Theory (lines), full-matrix flow (dashed) and training (markers), one panel per depth.

    Shows member ``(seed 0, eta 0)`` of every depth of a ``Comparison``;
    saved to ``path`` (atomically) when given. Returns the figure (closed).

    Examples:
        >>> import jepa_flow as jf
        >>> cfg = jf.TrainConfig(objective="mae", depth=[1, 2], eta=0.01, t_max=30.0)
        >>> c = jf.compare(jf.train(jf.gaussian(Sxx=[2.0, 1.0], Syx=[1.0, 0.8]), cfg))
        >>> len(jf.plot_compare(c).axes)  # one panel per depth
        2
    """
    import matplotlib.pyplot as plt

    c, r = comparison, comparison.result
    depths = r.depth
    fig, axes = plt.subplots(1, len(depths), figsize=(5 * len(depths), 4), squeeze=False)
    d = r.norm.shape[-1]
    colors = plt.cm.viridis(np.linspace(0, 0.9, d))
    for b, ax in enumerate(axes[0]):
        t = r.t[0, b, 0]
        m = t > 0
        for j in range(d):
            ax.plot(
                t[m],
                c.curve_theory[0, b, 0][m, j],
                "-",
                color=colors[j],
                lw=1.2,
                label=f"e{j} rho={c.rho[j]:.2f}",
            )
            ax.plot(t[m], c.curve_full[0, b, 0][m, j], "--", color=colors[j], lw=0.8)
            ax.plot(t[m], r.norm[0, b, 0][m, j], "o", color=colors[j], ms=2.5)
        ax.set_xscale("log")
        ax.set_yscale("log")
        t_star = c.t_star_theory[0, b, 0]
        t_star = t_star[np.isfinite(t_star) & (t_star > 0)]
        if t_star.size:
            ax.set_xlim(t_star.min() / 30, t[-1])
        ax.set_xlabel("flow time t = eta * step")
        ax.set_ylabel("|Wbar e_j|")
        ax.set_title(
            f"{c.config.objective.upper()} depth {depths[b]}: "
            "theory (-), full flow (--), training (o)",
            fontsize=9,
        )
    axes[0][0].legend(fontsize=6)
    fig.tight_layout()
    return _save(fig, path)


def plot_train(result, path=None):
    """``|Wbar e_j|`` against flow time, one panel per depth (seed 0, first eta).

    Examples:
        >>> import jepa_flow as jf
        >>> cfg = jf.TrainConfig(objective="mae", eta=0.1, steps=200)
        >>> r = jf.train(jf.gaussian(Sxx=[2.0, 1.0], Syx=[1.0, 0.8]), cfg)
        >>> jf.plot_train(r).axes[0].get_ylabel()
        '|Wbar e_j|'
    """
    import matplotlib.pyplot as plt

    r = result
    D = r.depth.size
    fig, axes = plt.subplots(1, D, figsize=(5 * D, 4), squeeze=False)
    for b, ax in enumerate(axes[0]):
        t = r.t[0, b, 0]
        m = t > 0
        for j in range(r.norm.shape[-1]):
            ax.plot(t[m], r.norm[0, b, 0][m, j], "o-", ms=2, lw=0.8, label=f"e{j}")
        ax.set_xscale("log")
        if np.all(r.norm[0, b, 0][m] > 0):
            ax.set_yscale("log")
        ax.set_xlabel("flow time t = eta * step")
        ax.set_ylabel("|Wbar e_j|")
        ax.set_title(
            f"{r.config.objective.upper()} depth {r.depth[b]}, eta {r.eta[0]:g}", fontsize=9
        )
    axes[0][0].legend(fontsize=6)
    fig.tight_layout()
    return _save(fig, path)
