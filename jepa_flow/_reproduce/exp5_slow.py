"""Experiment 5: slow features (linear-dynamics model, theory §5).

Temporal views ``x = x_t``, ``y = x_(t+1) = a x_t + noise``: per feature
``rho = a`` (autocorrelation, slowness) and ``lam = a var``. The slow features
are given the *smallest* variance, so covariance and slowness disagree. JEPA
learns the slow ones first once it is deep enough, whatever their variance;
MAE learns the high-variance ones first at every depth. The order is measured
by Spearman's rank correlation of the critical times with ``-a`` and ``-var``.
"""

from __future__ import annotations

import numpy as np

from .. import critical_time
from .. import rank_correlation as spearman
from ._common import (
    OBJECTIVE_LABEL,
    OBJECTIVES,
    claim,
    first_order,
    learned_fraction,
    plot_dynamics,
    plt,
    save,
    subplots,
    time_grid,
)

NAME = "5_slow_features"
TITLE = "Slow features: JEPA learns slow ones first, MAE high-variance ones"

_BASE = {
    "a": [0.9, 0.8, 0.7, 0.6, 0.5],  # autocorrelation = rho
    "var": [1.0, 1.25, 1.6, 2.0, 2.5],  # slow features have the least variance (and lam)
    "eps": 1e-3,
}
PARAMS = {
    "full": {**_BASE, "depths": [1, 2, 3, 4, 5, 6, 7, 8], "show": [1, 4, 8], "n_t": 300},
    "quick": {**_BASE, "depths": [1, 2, 3, 4, 5, 6, 7, 8], "show": [1, 4, 8], "n_t": 200},
    "tiny": {**_BASE, "depths": [1, 8], "show": [1, 8], "n_t": 60},
}


def _theory(obj, p, lam, var, a, depths, names) -> dict:
    ts = np.asarray(critical_time(obj, lam, var, depths[:, None], p["eps"]))
    return {
        "t_star": ts,
        "order": [first_order(row, names) for row in ts],
        "slow_first": [spearman(row, -a) for row in ts],
        "high_variance_first": [spearman(row, -var) for row in ts],
    }


def _correlation_panel(ax, obj, depths, corr) -> None:
    ax.plot(depths, corr["slow_first"], "o-", color="k", label="with slowness (-a)")
    ax.plot(depths, corr["high_variance_first"], "s--", color="0.5", label="with variance (-var)")
    ax.set_ylim(-1.1, 1.1)
    ax.set_xlabel("depth L")
    ax.set_ylabel("rank correlation of t* order")
    ax.set_title(
        f"{OBJECTIVE_LABEL[obj]}, depths {int(depths[0])}-{int(depths[-1])}: "
        "learning order\n(+1: slow first / high variance first)",
        fontsize=8,
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def _figure(path, p, lam, var, labels, depths, num) -> None:
    fig, axes = subplots(2, len(p["show"]) + 1, w=3.5, h=3.0)
    for r, obj in enumerate(OBJECTIVES):
        for col, L in enumerate(p["show"]):
            ts = num[obj]["t_star"][list(depths).index(L)]
            t = time_grid(ts, p["n_t"])
            ratio = learned_fraction(obj, lam, var, L, p["eps"], t)
            plot_dynamics(axes[r, col], t, ratio, labels, obj, L, t_star=ts, legend=False)
        _correlation_panel(axes[r, -1], obj, depths, num[obj])
    h, lb = axes[0, 0].get_legend_handles_labels()
    fig.legend(h, lb, loc="lower center", ncol=5, fontsize=8, frameon=False)
    fig.suptitle(
        f"Linear dynamics x_(t+1) = a x_t + noise, eps = {p['eps']:g}: fraction learned "
        "(ticks: t*)",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0.06, 1, 0.96))
    save(fig, path)


def run(out, p) -> dict:
    a, var = np.asarray(p["a"], float), np.asarray(p["var"], float)
    lam = a * var
    depths = np.asarray(p["depths"], float)
    names = [f"a={x:g}" for x in a]
    labels = [f"a={x:g}, var={v:g} (λ={la:.3g})" for x, v, la in zip(a, var, lam)]
    num = {"a": a, "var": var, "lam": lam, "eps": p["eps"], "depth": depths}
    for obj in OBJECTIVES:
        num[obj] = _theory(obj, p, lam, var, a, depths, names)
    _figure(out / "dynamics.png", p, lam, var, labels, depths, num)
    corr = {o: num[o] for o in OBJECTIVES}
    cj, cm = corr["jepa"]["slow_first"], corr["mae"]["high_variance_first"]
    claims = [
        claim(
            "5.jepa_slow_first",
            f"at depth {int(depths[-1])} JEPA learns the features in order "
            "of slowness a (rank correlation 1), whatever their variance",
            cj[-1] > 0.999,
            depth=depths,
            rank_corr_slow_first=cj,
            order_deepest=num["jepa"]["order"][-1],
        ),
        claim(
            "5.mae_high_variance_first",
            "MAE learns the features in order of variance at every depth (rank correlation 1)",
            bool(np.all(np.asarray(cm) > 0.999)),
            depth=depths,
            rank_corr_high_variance_first=cm,
        ),
        claim(
            "5.jepa_shallow_like_mae",
            "at depth 1 JEPA, like MAE, learns high-variance (high lam) features first",
            corr["jepa"]["high_variance_first"][0] > 0.999,
            rank_corr_high_variance_first=corr["jepa"]["high_variance_first"][0],
        ),
    ]
    plt.close("all")
    return {"figures": ["dynamics.png"], **num, "claims": claims}
