"""Experiment 7's figures: ``beyond.png`` (panels a-e) and ``phase_general.png`` (f)."""

from __future__ import annotations

import numpy as np
from matplotlib.ticker import NullFormatter

from ._common import OBJECTIVE_LABEL, feature_colors, plain_log_labels, save, subplots


def phase_figure(out, depths, ratio, t_ratio, t_ab, col, ema) -> None:
    fig, axes = subplots(1, 2, w=4.2, h=3.4)
    cmap = [f"C{i}" for i in range(len(depths))]
    ax = axes[0, 0]
    for i, L in enumerate(depths):
        at_start = (t_ab[i] == 0).any(-1)  # t* = 0: not ranked (theory §10)
        live = ~col[i].any(-1) & ~at_start
        ax.plot(ratio[live], t_ratio[i][live], "o-", color=cmap[i], ms=3, label=f"L = {L}")
        gone = col[i].any(-1)
        if gone.any():
            ax.plot(ratio[gone], np.ones(gone.sum()), "x", color=cmap[i], ms=6)
        if at_start.any():  # along the bottom edge, one row per depth
            y = np.full(at_start.sum(), 0.03 + 0.04 * i)
            ax.plot(
                ratio[at_start], y, "^", color=cmap[i], ms=6, transform=ax.get_xaxis_transform()
            )
    ax.axhline(1.0, color="k", lw=0.8)
    ax.axvline(1.0, color="0.6", lw=0.8, ls=":")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("init_ratio = v0 / w0 (1: balanced start)")
    ax.set_ylabel("t*_B / t*_A  (< 1: B learned first)")
    ax.set_title(
        "f. JEPA, stop-gradient: start imbalance\n"
        "(x: a feature collapses; ^ at the bottom: one starts at its level, t* = 0)",
        fontsize=9,
    )
    ax.legend(fontsize=7)
    ax = axes[0, 1]
    if ema is None:
        ax.text(0.5, 0.5, "EMA sweep: quick and full levels", ha="center", transform=ax.transAxes)
    else:
        tau = ema["tau"].reshape(len(depths), -1)[0]
        tr = ema["t_ratio"].reshape(len(depths), -1)
        for i, L in enumerate(depths):
            ax.plot(tau, tr[i], "o-", color=cmap[i], ms=3, label=f"L = {L}")
        ax.legend(fontsize=7)
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("EMA time constant tau (flow time)")
    ax.set_ylabel("t*_B / t*_A  (< 1: B learned first)")
    ax.set_title("f. JEPA, EMA target, balanced start", fontsize=9)
    for a in axes[0]:
        a.grid(alpha=0.3)
        plain_log_labels(a.yaxis)
    fig.tight_layout()
    save(fig, out / "phase_general.png")


def _panel_imbalance(ax, panels, L, cols) -> None:
    k, shift = panels["a"]
    for obj, mk in (("jepa", "o-"), ("mae", "s--")):
        for j, nm in enumerate("AB"):
            ax.plot(k, shift[obj][:, j], mk, color=cols[j], label=f"{OBJECTIVE_LABEL[obj]} {nm}")
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xticks(k, [f"{x:g}" for x in k])
    ax.set_xlabel("imbalance k (V0 = k u0 I, W_a0 = k^(-1/L) u0 I)")
    ax.set_ylabel("t*_trained / t*_balanced theory - 1")
    ax.set_title(f"a. JEPA and MAE, depth L = {L}:\nunbalanced start", fontsize=9)
    ax.legend(fontsize=6)


def _panel_rotation(ax, panels, cols) -> None:
    dep, sr = panels["b"]
    for j, nm in enumerate("AB"):
        ax.plot(dep, 100 * sr[:, j], "o-", color=cols[j], label=f"feature {nm}")
    ax.set_xlabel("depth L")
    ax.set_ylabel("t* shift under rotation (%)")
    ax.set_title("b. JEPA, depths %s:\nrandom rotation U" % list(dep), fontsize=9)
    ax.legend(fontsize=7)


def _panel_non_commuting(ax, panels, L) -> None:
    nc = panels["c"]
    for obj, mk in (("jepa", "o-"), ("mae", "s--")):
        ax.plot(
            nc["delta"],
            nc[obj]["drift_diagonal_theory"],
            mk,
            color="k",
            label=f"{OBJECTIVE_LABEL[obj]}: diagonal theory",
        )
        ax.plot(
            nc["delta"],
            np.maximum(nc[obj]["rel_error_full_flow"], 1e-8),
            mk,
            color="0.6",
            label=f"{OBJECTIVE_LABEL[obj]}: full-matrix flow",
        )
    ax.set_yscale("log")
    ax.set_xlabel("delta (off-diagonal part of Syx)")
    ax.set_ylabel("max relative t* error vs training")
    ax.set_title(f"c. JEPA and MAE, depth L = {L}:\nnon-commuting covariances", fontsize=9)
    ax.legend(fontsize=6)


def _panel_ema(ax, panels, L, cols) -> None:
    ema = panels["d"]
    tr, ff = np.array(ema["training"]), np.array(ema["full_flow"])
    for j, nm in enumerate("AB"):
        ax.plot(ema["tau"], ff[:, j], "-", color=cols[j], label=f"{nm}: EMA full flow")
        ax.plot(ema["tau"], tr[:, j], "o", color=cols[j], label=f"{nm}: trained")
    ax.set_xscale("log")
    ax.set_xlabel("EMA time constant tau (flow time)")
    ax.set_ylabel("critical time t* (gradient-flow time)")
    ax.set_title(f"d. JEPA, depth L = {L}: EMA target", fontsize=9)
    ax.legend(fontsize=6)


def _panel_teachers(ax, p, panels, cols) -> None:
    teach = panels["e"]
    ticks, names = [], []
    for i, (name, v) in enumerate(teach.items()):
        x = np.array([0.0, 0.8]) + 2.2 * i
        ax.bar(
            x,
            v["t_star_theory"],
            0.7,
            color=cols,
            edgecolor="k",
            label="theory: MAE flow, lam -> c lam" if i == 0 else None,
        )
        ax.plot(x, v["t_star_training"], "kx", ms=9, mew=2, label="trained" if i == 0 else None)
        ticks += list(x)
        names += [f"{name.replace('_', ' ')}\nteacher: {f}" for f in "AB"]
    ax.set_xticks(ticks, names, fontsize=6)
    ax.set_ylabel("student critical time t* (flow time)")
    ax.set_title(
        f"e. JEPA student, depth L = {p['student_depth']}:\nfrozen teachers "
        f"(JEPA teacher depth {p['teacher_depth']})",
        fontsize=9,
    )
    ax.legend(fontsize=6)


def beyond_figure(out, p, panels, L):
    fig, axes = subplots(1, 5, w=3.4, h=3.4)
    cols = feature_colors(2)
    _panel_imbalance(axes[0, 0], panels, L, cols)
    _panel_rotation(axes[0, 1], panels, cols)
    _panel_non_commuting(axes[0, 2], panels, L)
    _panel_ema(axes[0, 3], panels, L, cols)
    _panel_teachers(axes[0, 4], p, panels, cols)
    for a in axes[0]:
        a.grid(alpha=0.3)
    fig.tight_layout()
    save(fig, out / "beyond.png")
