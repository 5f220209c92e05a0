"""Experiment 4: noisy features (static noisy-views model, theory §5).

Features of equal signal ``s = 1`` and rising noise ``nu`` (``lam = 1``,
``rho = 1 / (1 + nu)``), plus one feature of high-variance noise shared by
both views (``s = 0``, noise ``nu_shared`` correlated across views by ``c``:
``lam = c nu``, ``rho = c``). Which features each objective has learned at a
fixed budget (the clean feature's critical time times ``budget_factor``, per
objective and depth), and the learned weights ``wbar* = rho^L`` (JEPA) against
``rho^(L/(L+1))`` (MAE), with trained models' final weights as markers.
"""

from __future__ import annotations

import numpy as np

from .. import critical_time, fixed_point, noisy_views
from ._common import (
    OBJECTIVE_LABEL,
    OBJECTIVES,
    choose_eta,
    claim,
    feature_colors,
    first_order,
    learned_fraction,
    plot_dynamics,
    rel_error,
    save,
    subplots,
    time_grid,
    train_run,
)

CLEAN = 0  # the feature without noise
NAME = "4_noisy_features"
TITLE = "Noisy features: JEPA suppresses them, MAE does not"

_BASE = {
    "s": [1.0, 1.0, 1.0, 1.0, 1.0, 0.0],
    "nu": [0.0, 0.25, 0.5, 1.0, 2.0, 3.0],
    "c": [0.0, 0.0, 0.0, 0.0, 0.0, 0.4],  # the last: shared pixel-like noise (lam 1.2)
    "eps": 1e-3,
    "budget_factor": 1.5,
    "train_t_factor": 6.0,  # train to this many times the latest critical time (converged)
    "train_steps": 40000,
}
PARAMS = {
    "full": {**_BASE, "depths": [1, 2, 3, 4, 5], "train_depths": [1, 2, 3], "n_t": 300},
    "quick": {**_BASE, "depths": [1, 3, 5], "train_depths": [1, 3], "n_t": 200},
    "tiny": {**_BASE, "depths": [1, 5], "train_depths": [1], "n_t": 60, "train_steps": 8000},
}


def features(p):
    s, nu, c = (np.asarray(p[k], float) for k in ("s", "nu", "c"))
    lam, var = s + c * nu, s + nu
    names = [
        f"nu={n:g}" if cc == 0 else f"shared noise (nu={n:g}, c={cc:g})" for n, cc in zip(nu, c)
    ]
    labels = [f"{nm}: λ={la:.3g}, ρ={la / va:.2f}" for nm, la, va in zip(names, lam, var)]
    return lam, var, names, labels


def _theory(obj, p, lam, var, names, depths) -> dict:
    """Critical times, fixed points, the budget and what is learned by it (one objective)."""
    eps = p["eps"]
    ts = np.asarray(critical_time(obj, lam, var, depths[:, None], eps))
    ws = np.asarray(fixed_point(obj, lam, var, depths[:, None]))
    budget = p["budget_factor"] * ts[:, CLEAN]
    frac = np.array(
        [learned_fraction(obj, lam, var, L, eps, np.array([b]))[0] for L, b in zip(depths, budget)]
    )
    return {
        "t_star": ts,
        "wbar_star": ws,
        "budget": budget,
        "fraction_at_budget": frac,
        "order": [first_order(row, names) for row in ts],
        "learned_at_budget": [[n for n, f in zip(names, row) if f >= 0.5] for row in frac],
    }


def _dynamics_figure(path, p, lam, var, labels, depths, num) -> None:
    fig, axes = subplots(2, len(depths), w=3.4, h=3.0)
    for r, obj in enumerate(OBJECTIVES):
        ts, budget = num[obj]["t_star"], num[obj]["budget"]
        for col, L in enumerate(depths):
            t = time_grid(ts[col], p["n_t"])
            ratio = learned_fraction(obj, lam, var, L, p["eps"], t)
            ax = axes[r, col]
            plot_dynamics(ax, t, ratio, labels, obj, L, t_star=ts[col], legend=False)
            ax.axvline(budget[col], color="k", ls="--", lw=1)
            ax.text(budget[col], 1.02, " budget", fontsize=7)
    h, lb = axes[0, 0].get_legend_handles_labels()
    fig.legend(h, lb, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.suptitle(
        f"Noisy views (s = signal, nu = noise), eps = {p['eps']:g}: fraction learned "
        f"(ticks: t*; dashed: budget = {p['budget_factor']:g} t* of the clean feature)",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0.1, 1, 0.96))
    save(fig, path)


def _trained_weights(obj, p, lam, var, depths, t_star) -> np.ndarray:
    """Trained models' final ``|Wbar e_j|`` per training depth ``[depth, feature]``."""
    rows = []
    for L in p["train_depths"]:
        t_last = float(np.max(t_star[list(depths).index(L)]))
        eta, t_max = choose_eta(
            obj, lam, var, L, p["eps"], p["train_steps"], t_max=p["train_t_factor"] * t_last
        )
        data = noisy_views(p["s"], p["nu"], p["c"])
        r = train_run(obj, data, L, p["eps"], eta, t_max)
        rows.append(r.sel(seed=0, depth=L, eta=eta).norm[-1])
    return np.array(rows)


def _claims(p, lam, var, names, depths, num, err_w) -> list:
    rho = lam / var
    noisiest, shared = int(np.argmin(np.where(p["c"], np.inf, rho))), len(lam) - 1
    deep = len(depths) - 1
    fj = num["jepa"]["fraction_at_budget"][deep]
    fm = num["mae"]["fraction_at_budget"][deep]
    noisy = [j for j in range(len(lam) - 1) if rho[j] <= 0.5] + [shared]
    ratio_j = num["jepa"]["wbar_star"][:, noisiest] / num["jepa"]["wbar_star"][:, CLEAN]
    ratio_m = num["mae"]["wbar_star"][:, noisiest] / num["mae"]["wbar_star"][:, CLEAN]
    return [
        claim(
            "4.jepa_suppresses_noisy_at_budget",
            f"at depth {int(depths[deep])} and the budget, "
            "JEPA has learned the clean feature but none with rho <= 0.5 nor the shared noise",
            fj[CLEAN] >= 0.5 and all(fj[j] < 0.5 for j in noisy),
            fraction_learned=dict(zip(names, fj)),
            budget=num["jepa"]["budget"][deep],
        ),
        claim(
            "4.mae_learns_noise_first",
            "MAE learns the shared-noise feature (largest lam) first "
            "at every depth, and at the budget has learned every feature",
            all(o[0] == names[shared] for o in num["mae"]["order"])
            and bool(np.all(num["mae"]["fraction_at_budget"] >= 0.5)),
            first=[o[0] for o in num["mae"]["order"]],
            fraction_learned_deepest=dict(zip(names, fm)),
        ),
        claim(
            "4.final_weights",
            "learned weight of the noisiest feature relative to the clean "
            "one: rho^L for JEPA (falls exponentially with depth) against rho^(L/(L+1)) for MAE "
            "(stays above rho)",
            bool(np.all(np.diff(ratio_j) < 0) and np.all(ratio_m >= rho[noisiest] - 1e-12)),
            depth=depths,
            rho_noisiest=rho[noisiest],
            jepa=ratio_j,
            mae=ratio_m,
        ),
        claim(
            "4.trained_weights_match",
            "trained models' final |Wbar e_j| match wbar* to 3 %",
            err_w < 0.03,
            max_rel_error=err_w,
            depth=p["train_depths"],
        ),
    ]


def run(out, p) -> dict:
    lam, var, names, labels = features(p)
    depths = np.asarray(p["depths"], float)
    num = {"lam": lam, "var": var, "rho": lam / var, "names": names, "eps": p["eps"]}
    num["depth"] = depths
    for obj in OBJECTIVES:
        num[obj] = _theory(obj, p, lam, var, names, depths)
    _dynamics_figure(out / "dynamics.png", p, lam, var, labels, depths, num)
    # final weights: theory against trained models
    train_depths = np.asarray(p["train_depths"], float)[:, None]
    trained = {o: _trained_weights(o, p, lam, var, depths, num[o]["t_star"]) for o in OBJECTIVES}
    ws_tr = {o: np.asarray(fixed_point(o, lam, var, train_depths)) for o in OBJECTIVES}
    err_w = max(float(rel_error(trained[o], ws_tr[o]).max()) for o in OBJECTIVES)
    num["trained_final_weights"] = {
        o: {"depth": p["train_depths"], "wbar": trained[o], "wbar_star": ws_tr[o]}
        for o in OBJECTIVES
    }
    claims = _claims(p, lam, var, names, depths, num, err_w)
    _weights_figure(out / "budget_and_weights.png", p, lam, var, depths, num, trained)
    return {"figures": ["dynamics.png", "budget_and_weights.png"], **num, "claims": claims}


def _weights_figure(path, p, lam, var, depths, num, trained) -> None:
    rho, deep = lam / var, len(depths) - 1
    fig, axes = subplots(1, 3, w=4.0, h=3.4)
    cols = feature_colors(len(lam))
    x = np.arange(len(lam))
    for k, obj in enumerate(OBJECTIVES):
        ax = axes[0, k]
        ax.bar(x, num[obj]["fraction_at_budget"][deep], color=cols)
        ax.axhline(0.5, color="k", lw=0.8, ls="--")
        ax.set_xticks(x, [f"ρ={r_:.2f}\nλ={la:.2g}" for r_, la in zip(rho, lam)], fontsize=7)
        ax.set_ylabel("wbar / wbar* at the budget")
        ax.set_ylim(0, 1.05)
        ax.set_title(
            f"{OBJECTIVE_LABEL[obj]}, depth L = {int(depths[deep])}: learned at budget "
            f"t = {num[obj]['budget'][deep]:.3g}",
            fontsize=9,
        )
    ax = axes[0, 2]
    rr = np.linspace(rho.min(), 1, 50)
    for L, ls in zip(p["train_depths"], ("-", "--", ":", "-.")):
        for o, color, lab in (
            ("jepa", "tab:blue", "JEPA rho^L"),
            ("mae", "tab:red", "MAE rho^(L/(L+1))"),
        ):
            ax.plot(rr, fixed_point(o, rr, 1.0, L), ls, color=color, label=f"{lab}, L={L}")
    for o, mk in (("jepa", "o"), ("mae", "s")):
        for i in range(len(p["train_depths"])):
            ax.scatter(
                rho,
                trained[o][i],
                c=cols,
                marker=mk,
                s=22,
                zorder=3,
                label=f"trained {OBJECTIVE_LABEL[o]}" if i == 0 else None,
            )
    ax.set_xlabel("rho = s / (s + nu) (influence)")
    ax.set_ylabel("final weight |Wbar e_j|")
    ax.set_title(
        f"JEPA and MAE, depths {p['train_depths']}: learned weights\n"
        "(lines: theory, markers: trained, colour: feature)",
        fontsize=9,
    )
    ax.legend(fontsize=6)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save(fig, path)
