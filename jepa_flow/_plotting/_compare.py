"""Figure of a theory-versus-training comparison."""

from __future__ import annotations

import numpy as np

from .._core._io import save_figure_atomic


def plot_compare(report, path=None):
    """Theory (lines), full-matrix flow (dashed) and training (markers) per feature and depth."""
    import matplotlib.pyplot as plt

    c = report["curves"]
    depths = np.atleast_1d(report["depth"])
    fig, axes = plt.subplots(1, len(depths), figsize=(5 * len(depths), 4), squeeze=False)
    d = c["training"].shape[-1]
    colors = plt.cm.viridis(np.linspace(0, 0.9, d))
    for b, ax in enumerate(axes[0]):
        t = c["t"][0, b, 0]
        m = t > 0
        for j in range(d):
            ax.plot(
                t[m],
                c["theory"][0, b, 0][m, j],
                "-",
                color=colors[j],
                lw=1.2,
                label=f"e{j} rho={report['rho'][j]:.2f}",
            )
            ax.plot(t[m], c["full"][0, b, 0][m, j], "--", color=colors[j], lw=0.8)
            ax.plot(t[m], c["training"][0, b, 0][m, j], "o", color=colors[j], ms=2.5)
        ax.set_xscale("log")
        ax.set_yscale("log")
        t_star = np.asarray(report["t_star_theory"], float).reshape(-1, d)
        t_star = t_star[np.isfinite(t_star) & (t_star > 0)]
        if t_star.size:
            ax.set_xlim(t_star.min() / 30, t[-1])
        ax.set_xlabel("flow time t = eta * step")
        ax.set_ylabel("|Wbar e_j|")
        ax.set_title(
            f"{report['objective'].upper()} depth {depths[b]}: "
            "theory (-), full flow (--), training (o)",
            fontsize=9,
        )
    axes[0][0].legend(fontsize=6)
    fig.tight_layout()
    if path is not None:
        save_figure_atomic(fig, path, dpi=120)
    plt.close(fig)
    return fig
