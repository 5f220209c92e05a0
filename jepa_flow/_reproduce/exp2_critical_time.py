"""Experiment 2: critical time against depth, rho and lam; four ways (theory §3-§4).

Per objective one figure: the exact critical time (closed form / hypergeometric,
lines), the ODE solve (dashed), the small-eps asymptotic series (dotted) and
trained deep linear models (markers: population-loss gradient descent, float64,
balanced start, training time ``eta * step`` at the first crossing of
``wbar*/2``), against depth, ``rho`` and ``lam``; and a fourth panel with the
series' relative error shrinking as ``eps -> 0``.
"""

from __future__ import annotations

import numpy as np
from matplotlib.ticker import NullFormatter

from .. import critical_time
from ._common import (
    OBJECTIVE_LABEL,
    OBJECTIVES,
    choose_eta,
    claim,
    feature_colors,
    features_data,
    rel_error,
    save,
    subplots,
    train_run,
)

NAME = "2_critical_time"
TITLE = "Critical time against depth, rho and lam: exact, ODE, series, training"

_BASE = {
    "eps": 1e-3,
    "lam": 1.0,  # fixed lam for the depth and rho panels
    "rho_depth_panel": [0.5, 0.8],  # two features against depth
    "depth_fixed": 3,  # the rho and lam panels
    "rho_fixed": 0.5,  # the lam panel
    "rho_range": (0.3, 3.0),
    # trained up to rho = 1: beyond, the learned state's rate var rho^(2L) forces a step
    # so small that the plateau (t* ~ eps^(-(2L-1)/L) / lam) needs 1e7 steps and more
    "rho_train_range": (0.3, 1.0),
    "lam_range": (0.1, 10.0),
    "series_eps": [1e-2, 1e-3, 1e-4, 1e-6, 1e-8, 1e-10, 1e-12],
    "series_depths": [1, 2, 3, 4],
    "train_steps": 20000,
}
PARAMS = {
    "full": {
        **_BASE,
        "depths": list(range(1, 9)),
        "n_grid": 60,
        "train_depths": [1, 2, 3, 4, 6, 8],
        "n_train": 6,
    },
    "quick": {
        **_BASE,
        "depths": list(range(1, 9)),
        "n_grid": 30,
        "train_depths": [1, 2, 4],
        "n_train": 4,
    },
    "tiny": {
        **_BASE,
        "depths": [1, 2, 3],
        "n_grid": 8,
        "train_depths": [1],
        "n_train": 0,
        "series_eps": [1e-2, 1e-4, 1e-8],
        "series_depths": [1, 2],
    },
}


def _train(objective, lam, var, depth, eps, steps):
    eta, t_max = choose_eta(objective, lam, var, depth, eps, steps)
    run = train_run(objective, features_data(lam, var), depth, eps, eta, t_max)
    return run.sel(seed=0, depth=int(depth), eta=eta).t_star


def _grids(p) -> dict:
    """The x grids: depth, rho and lam for the theory, rho and lam for training, the series'."""
    return {
        "depths": np.asarray(p["depths"], float),
        "rho": np.geomspace(*p["rho_range"], p["n_grid"]),
        "lam": np.geomspace(*p["lam_range"], p["n_grid"]),
        "rho_train": np.geomspace(*p["rho_train_range"], p["n_train"]),
        "lam_train": np.geomspace(*p["lam_range"], p["n_train"]),
        "rho_depth": np.asarray(p["rho_depth_panel"]),
        "series_eps": np.asarray(p["series_eps"]),
        "series_depth": np.asarray(p["series_depths"], float),
    }


def _theory(obj, p, g):
    """Panels ``name: (x, lam, var, depth)`` and their times by each method."""
    lam0, L0 = p["lam"], p["depth_fixed"]
    panels = {  # broadcast over the x grid
        "depth": (g["depths"], lam0, lam0 / g["rho_depth"][None, :], g["depths"][:, None]),
        "rho": (g["rho"], lam0, lam0 / g["rho"], L0),
        "lam": (g["lam"], g["lam"], g["lam"] / p["rho_fixed"], L0),
    }
    t = {
        k: {
            m: np.asarray(critical_time(obj, la, va, dd, p["eps"], method=m))
            for m in ("exact", "ode", "series")
        }
        for k, (_, la, va, dd) in panels.items()
    }
    return panels, t


def _training(obj, p, g):
    """Trained critical times per panel and the exact ones at the same points.

    The features of one panel are trained together (a diagonal start stays diagonal).
    """
    lam0, L0, eps, steps = p["lam"], p["depth_fixed"], p["eps"], p["train_steps"]
    rho_d, rho_tr, lam_tr = g["rho_depth"], g["rho_train"], g["lam_train"]
    tr = {
        "depth": np.array(
            [
                _train(obj, np.full(rho_d.size, lam0), lam0 / rho_d, L, eps, steps)
                for L in p["train_depths"]
            ]
        ),
        "rho": _train(obj, np.full(rho_tr.size, lam0), lam0 / rho_tr, L0, eps, steps)
        if rho_tr.size
        else np.zeros(0),
        "lam": _train(obj, lam_tr, lam_tr / p["rho_fixed"], L0, eps, steps)
        if lam_tr.size
        else np.zeros(0),
    }
    train_depths = np.asarray(p["train_depths"], float)[:, None]
    ref = {
        "depth": np.asarray(critical_time(obj, lam0, lam0 / rho_d[None, :], train_depths, eps)),
        "rho": np.asarray(critical_time(obj, lam0, lam0 / rho_tr, L0, eps)),
        "lam": np.asarray(critical_time(obj, lam_tr, lam_tr / p["rho_fixed"], L0, eps)),
    }
    return tr, ref


def _series_error(obj, p, g):
    """The series' relative error against the exact time ``[series depth, series eps]``."""
    var, depth, eps = p["lam"] / p["rho_fixed"], g["series_depth"][:, None], g["series_eps"]
    ex = np.asarray(critical_time(obj, p["lam"], var, depth, eps))
    se = np.asarray(critical_time(obj, p["lam"], var, depth, eps, method="series"))
    return rel_error(se, ex)


def _series_claim(obj, p, g, s_err):
    return claim(
        f"2.series_converges_{obj}",
        f"{OBJECTIVE_LABEL[obj]}: the asymptotic series' relative "
        f"error (rho = {p['rho_fixed']}) falls monotonically as eps -> 0 at every depth "
        "(until "
        "float64 rounding, 1e-12)",
        bool(np.all((np.diff(s_err, axis=1) < 0) | (s_err[:, 1:] < 1e-12))),
        depth=g["series_depth"],
        eps=g["series_eps"],
        rel_error=s_err,
        at_largest_eps=s_err[:, 0],
        at_smallest_eps=s_err[:, -1],
    )


def _objective(out, obj, p, g):
    """One objective's numbers, its series claim, its figure; and its worst errors."""
    panels, t = _theory(obj, p, g)
    tr, ref = _training(obj, p, g)
    err_ode = max(float(rel_error(t[k]["ode"], t[k]["exact"]).max()) for k in t)
    err_tr = {k: rel_error(tr[k], ref[k]) for k in tr}
    worst_train = max(float(e.max()) for e in err_tr.values() if e.size)
    s_err = _series_error(obj, p, g)
    numbers = {
        "t_star": {k: v["exact"] for k, v in t.items()},
        "max_rel_error_ode": err_ode,
        "training": {
            k: {"t_star_training": tr[k], "t_star_exact": ref[k], "rel_error": err_tr[k]}
            for k in tr
        },
        "series_rel_error": {
            "eps": g["series_eps"],
            "depth": g["series_depth"],
            "rel_error": s_err,
        },
    }
    _figure(out / f"critical_time_{obj}.png", obj, p, panels, t, tr, g, s_err)
    return numbers, _series_claim(obj, p, g, s_err), err_ode, worst_train


def run(out, p) -> dict:
    g = _grids(p)
    num = {"eps": p["eps"], "depth": g["depths"], "rho_grid": g["rho"], "lam_grid": g["lam"]}
    series_claims, worst_ode, worst_train = [], 0.0, 0.0
    for obj in OBJECTIVES:
        num[obj], series, err_ode, err_train = _objective(out, obj, p, g)
        series_claims.append(series)
        worst_ode, worst_train = max(worst_ode, err_ode), max(worst_train, err_train)
    claims = [
        claim(
            "2.ode_matches_exact",
            "ODE critical times agree with the exact ones to 1e-8 relative over every panel",
            worst_ode < 1e-8,
            max_rel_error=worst_ode,
        ),
        claim(
            "2.training_matches_theory",
            "trained models' critical times agree "
            "with the exact ones to 1 % (float64 population GD, about "
            f"{p['train_steps']} steps per run)",
            worst_train < 1e-2,
            max_rel_error=worst_train,
        ),
        *series_claims,
    ]
    return {"figures": [f"critical_time_{o}.png" for o in OBJECTIVES], **num, "claims": claims}


def _figure(path, obj, p, panels, t, tr, g, s_err):
    s_eps, s_depth, rho_tr, lam_tr = (
        g[k] for k in ("series_eps", "series_depth", "rho_train", "lam_train")
    )
    fig, axes = subplots(1, 4, w=3.7, h=3.4)
    lab = OBJECTIVE_LABEL[obj]
    cols = feature_colors(max(len(p["rho_depth_panel"]), len(s_depth)))
    L0, eps = p["depth_fixed"], p["eps"]
    x_tr = {"depth": np.asarray(p["train_depths"]), "rho": rho_tr, "lam": lam_tr}
    titles = {
        "depth": f"{lab}: t* against depth\n(lam = {p['lam']:g}, eps = {eps:g})",
        "rho": f"{lab}, depth L = {L0}: t* against rho\n(lam = {p['lam']:g}, eps = {eps:g})",
        "lam": f"{lab}, depth L = {L0}: t* against lam\n(rho = {p['rho_fixed']:g}, eps = {eps:g})",
    }
    xl = {"depth": "depth L", "rho": "rho = lam / var (influence)", "lam": "lam (view covariance)"}
    for ax, (k, (x, *_)) in zip(axes[0], panels.items()):
        ex, od, se = (np.atleast_2d(t[k][m].T).T for m in ("exact", "ode", "series"))
        trk = np.atleast_2d(np.asarray(tr[k]).T).T
        for j in range(ex.shape[1]):
            c = cols[j] if k == "depth" else "k"
            name = f"rho = {p['rho_depth_panel'][j]}" if k == "depth" else "exact"
            ax.plot(
                x, ex[:, j], "-", color=c, lw=1.8, label=f"exact, {name}" if k == "depth" else name
            )
            ax.plot(
                x,
                od[:, j],
                "--",
                color="k",
                lw=0.8,
                dashes=(3, 3),
                label="ODE (on the exact line)" if j == 0 else None,
            )
            ax.plot(x, se[:, j], ":", color=c, lw=1.5, label="series" if j == 0 else None)
            ax.plot(
                x_tr[k],
                trk[:, j],
                "o",
                color=c,
                mfc="none",
                mew=1.5,
                ms=6,
                label="trained (GD)" if j == 0 else None,
            )
        ax.set_yscale("log")
        if k != "depth":
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(xl[k])
        ax.set_ylabel("critical time t* (gradient-flow time)")
        ax.set_title(titles[k], fontsize=9)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    ax = axes[0, 3]
    for i, L in enumerate(s_depth):
        ax.plot(s_eps, s_err[i], "o-", color=cols[i], label=f"L = {int(L)}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.invert_xaxis()
    ax.set_xlabel("eps (initial scale; smaller to the right)")
    ax.set_ylabel("|t*_series - t*_exact| / t*_exact")
    ax.set_title(
        f"{lab}: series error as eps -> 0\n(lam = {p['lam']:g}, rho = {p['rho_fixed']:g})",
        fontsize=9,
    )
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    fig.tight_layout()
    save(fig, path, dpi=100)
