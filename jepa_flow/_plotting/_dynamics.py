"""Figures of the per-feature dynamics (matplotlib; the backend is the caller's choice)."""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import numpy as np

from .._theory._order import flip_depth, learned_order

OBJECTIVE_LABEL = {"jepa": "JEPA", "mae": "MAE"}


def feature_colors(n: int) -> list:
    """One colour per feature, the same in every panel and figure."""
    cmap = plt.get_cmap("tab10")
    return [cmap(i % 10) for i in range(n)]


def feature_label(name: str, lam: float, var: float) -> str:
    return f"{name}: λ={lam:.3g}, var={var:.3g}, ρ={lam / var:.3g}"


def dynamics_figure(panels, names, lam, var, time_note=""):
    """Grid of ``wbar(t) / wbar*`` panels, one row per objective, one column per depth.

    Args:
        panels: ``{objective: (t [T], ratio [T, D, F], t_star [D, F], depths [D])}``.
        names, lam, var: per-feature names and parameters (legend).
        time_note: extra text for the x label (the time convention).
    """
    n_rows = len(panels)
    n_cols = max(len(p[3]) for p in panels.values())
    fig, axes = plt.subplots(
        n_rows,
        n_cols,
        figsize=(2.6 * n_cols + 1.0, 2.5 * n_rows + 1.0),
        squeeze=False,
        sharey=True,
    )  # x ranges differ per panel: each zooms on its own rise
    colors = feature_colors(len(names))
    for row, (objective, (t, ratio, t_star, depths)) in enumerate(panels.items()):
        positive = t > 0
        for col in range(n_cols):
            ax = axes[row, col]
            if col >= len(depths):
                ax.set_visible(False)
                continue
            for j, name in enumerate(names):
                ax.plot(
                    t[positive],
                    ratio[positive, col, j],
                    color=colors[j],
                    lw=1.6,
                    label=feature_label(name, lam[j], var[j]),
                )
                ts = t_star[col, j]
                if np.isfinite(ts) and ts > 0:
                    ax.plot([ts], [0.5], "o", color=colors[j], ms=4)
            learned = learned_order(t_star[col])
            ax.set_xscale("log")
            span = t_star[col][np.isfinite(t_star[col]) & (t_star[col] > 0)]
            if span.size:  # zoom on this panel's rise
                ax.set_xlim(0.05 * span.min(), 3.0 * span.max())
            ax.set_ylim(-0.03, 1.08)
            ax.axhline(0.5, color="0.8", lw=0.8, zorder=0)
            ax.set_title(
                f"{OBJECTIVE_LABEL[objective]}, L={int(depths[col])}\n"
                f"first: {names[learned[0]] if learned.size else '-'}",
                fontsize=9,
            )
            ax.tick_params(labelsize=7)
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            if col == 0:
                ax.set_ylabel("wbar / wbar*", fontsize=9)
            if row == n_rows - 1:
                ax.set_xlabel(f"time t{time_note}", fontsize=8)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(
        handles, labels, loc="lower center", ncol=min(len(names), 4), fontsize=9, frameon=False
    )
    fig.suptitle("Per-feature dynamics (dots: critical time, wbar = wbar*/2)", fontsize=11)
    fig.tight_layout(rect=(0, 0.07, 1, 0.97))
    return fig


def critical_time_figure(t_star, depths, names, lam, var, eps):
    """Critical time against depth, one panel per objective (``t_star[obj]: [D, F]``)."""
    fig, axes = plt.subplots(1, len(t_star), figsize=(5.2 * len(t_star), 4.2), squeeze=False)
    colors = feature_colors(len(names))
    for ax, (objective, ts) in zip(axes[0], t_star.items()):
        for j, name in enumerate(names):
            ax.plot(
                depths, ts[:, j], "o-", color=colors[j], label=feature_label(name, lam[j], var[j])
            )
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
        ax.set_xlabel("depth L")
        ax.set_ylabel("critical time t* (gradient-flow time)")
        ax.set_title(f"{OBJECTIVE_LABEL[objective]}, eps={eps:g}")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def close(fig) -> None:
    plt.close(fig)
