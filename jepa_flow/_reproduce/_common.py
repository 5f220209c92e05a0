"""Shared helpers of the reproduction: levels, claims, training runs, figures, IO.

Every experiment module defines ``NAME`` (its directory under the output),
``TITLE``, ``PARAMS = {"full": {...}, "quick": {...}, "tiny": {...}}`` (all its
parameters, at the top of the module) and ``run(out, p) -> dict``. ``run``
writes its figures into ``out`` and returns its numbers, with a ``"claims"``
list made by ``claim``; the runner (``jepa_flow._reproduce``) writes them
atomically to ``out/numbers.json``.

Time convention everywhere: gradient-flow time ``t`` (unit rate on every
parameter; gradient descent with step ``eta`` is at ``t = eta * step``; the
paper's time is ``depth * t``). Theory runs in float64; training uses the
engine's float64 population-loss gradient descent unless an experiment says
otherwise.
"""

from __future__ import annotations

import numpy as np

from .._core._io import save_figure_atomic
from .._plotting._dynamics import (
    OBJECTIVE_LABEL,
    feature_colors,
    feature_label,
    plain_log_labels,
    plt,
)
from .._theory._critical_time import critical_time
from .._theory._order import rel_error
from .._theory._stability import convergence_rate
from ._study import learning_order as first_order

LEVELS = ("full", "quick", "tiny")
T_LABEL = "gradient-flow time t (log scale)"
OBJECTIVES = ("jepa", "mae")

__all__ = [
    "LEVELS",
    "OBJECTIVES",
    "OBJECTIVE_LABEL",
    "T_LABEL",
    "claim",
    "feature_colors",
    "feature_label",
    "first_order",
    "member",
    "plain_log_labels",
    "plt",
    "rel_error",
    "save",
    "subplots",
    "train_run",
]


def claim(cid: str, statement: str, held, **values) -> dict:
    """One checked statement: its id, words, whether it held, and the numbers behind it."""
    return {"id": cid, "statement": statement, "held": bool(held), "values": values}


def subplots(n_rows, n_cols, w=3.6, h=3.0, **kw):
    fig, axes = plt.subplots(
        n_rows, n_cols, figsize=(w * n_cols + 0.6, h * n_rows + 0.9), squeeze=False, **kw
    )
    return fig, axes


def save(fig, path, dpi=100) -> None:
    """Save atomically and close."""
    save_figure_atomic(fig, path, dpi=dpi)
    plt.close(fig)


def train_run(objective, data, depth, eps, eta, t_max, n_t=160, start=None, teacher=None, **kw):
    """One member (one depth, one rate) trained from the balanced start, or from ``start``.

    Population loss unless ``data`` has a batch; ``kw`` are further
    ``TrainConfig`` fields. Returns the ``TrainResult``; ``compare`` it for
    the theory.
    """
    from .._training._config import TrainConfig
    from .._training._train import train

    config = TrainConfig(
        objective=objective,
        depth=int(depth),
        eta=float(eta),
        eps=float(eps),
        t_max=float(t_max),
        n_t=n_t,
        t_extra=kw.pop("t_extra", ()),
        init="given" if start is not None else kw.pop("init", "balanced"),
        keep_latent=kw.pop("keep_latent", False),
        **kw,
    )
    return train(data, config, start=start, teacher=teacher)


def member(result):
    """The only member of a one-member ``TrainResult`` or ``Comparison``, selected by name."""
    cfg = result.config
    return result.sel(seed=cfg.seed[0], depth=cfg.depth[0], eta=cfg.eta[0])


def choose_eta(objective, lam, var, depth, eps, steps=20000, t_max=None):
    """Step size and end time for a training run of the features ``(lam, var)``.

    About ``steps`` steps to ``t_max`` (default 1.5 times the latest critical
    time), capped at half the stability limit of the learned state (the
    linearized rate there: ``L var rho^(2L)`` for JEPA, ``(L + 1) var
    rho^(2L/(L+1))`` for MAE, docs/theory.md §7). Gradient descent lags the flow
    by O(eta); experiment 6 measures the resulting errors (results/README.md).
    """
    lam, var = np.asarray(lam, float), np.asarray(var, float)
    if t_max is None:
        t = np.asarray(critical_time(objective, lam, var, depth, eps), float)
        t_max = 1.5 * float(t[np.isfinite(t)].max())
    stiff = convergence_rate(objective, lam, var, float(depth))
    eta = min(t_max / steps, 0.5 / max(float(stiff.max()), 1e-12))
    return eta, t_max


def features_data(lam, var, **kw):
    """Gaussian views with diagonal ``Syx = lam``, ``Sxx = var`` and ``Syy`` large enough
    for any ``rho`` (``Syy >= lam^2 / var``; it does not enter the losses' gradients)."""
    from .._training._data import gaussian

    lam, var = np.asarray(lam, float), np.asarray(var, float)
    return gaussian(Sxx=var, Syx=lam, Syy=np.maximum(var, lam**2 / var), **kw)


def time_grid(t_star, n=300, lo=1e-2, hi=3.0):
    """Log-spaced save times from ``lo`` times the earliest to ``hi`` times the latest t*."""
    t = np.asarray(t_star, float)
    t = t[np.isfinite(t) & (t > 0)]
    return np.geomspace(lo * t.min(), hi * t.max(), n)


def learned_fraction(objective, lam, var, depth, eps, t):
    """``wbar(t) / wbar*`` per time and feature, ``[T, *batch]`` (the per-feature flow)."""
    from .._theory._critical_time import fixed_point
    from .._theory._simulate import simulate

    w = np.asarray(simulate(objective, lam, var, depth, eps, t).wbar)
    ws = np.asarray(fixed_point(objective, lam, var, depth))
    return w / np.where(ws > 0, ws, 1.0)


def plot_dynamics(
    ax, t, ratio, labels, objective, depth, t_tr=None, ratio_tr=None, t_star=None, legend=True
):
    """``wbar / wbar*`` against log time: theory lines, training markers, one colour per feature."""
    cols = feature_colors(ratio.shape[-1])
    for j, lab in enumerate(labels):
        ax.plot(t, ratio[:, j], "-", color=cols[j], lw=1.6, label=lab)
        if ratio_tr is not None:
            m = t_tr > 0
            ax.plot(
                t_tr[m],
                ratio_tr[m, j],
                "o",
                color=cols[j],
                ms=3.0,
                mfc="none",
                mew=1.0,
                label="trained (GD)" if j == 0 else None,
            )
        if t_star is not None and np.isfinite(t_star[j]):
            ax.plot([t_star[j]], [0.5], "|", color=cols[j], ms=10, mew=2)
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(plt.NullFormatter())
    ax.set_ylim(-0.03, 1.1)
    ax.axhline(0.5, color="0.8", lw=0.8, zorder=0)
    ax.set_xlabel(T_LABEL, fontsize=8)
    ax.set_ylabel("wbar / wbar*  (fraction learned)", fontsize=8)
    ax.set_title(f"{OBJECTIVE_LABEL[objective]}, depth L = {int(depth)}", fontsize=9)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.25, which="major")
    if legend:
        ax.legend(fontsize=6, loc="upper left")
