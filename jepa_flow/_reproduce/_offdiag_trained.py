"""Experiment 10's second reference: trained linear models and MLP encoders on real data.

Linear models: gradient descent on the population loss of a data set (the
mean over its rows), from the balanced start, scored like the full-matrix
flow (``score_run``: learned directions of the run's own end state, matched
to each theory's features). MLP encoders: ``train_nonlinear`` on minibatches
of rows, whose per-feature times (the response ``|E[f(x) v_i^T x]| / var_i``
reaching half its end value) are measured in each theory's own basis and
ranked against the theory's critical times of the same features.

Both run to the trained models' *horizon*: ``T_FACTOR x`` the last time at
which the full-matrix flow of the same configuration learned a direction
(the preregistered ``t_end``, 10 x the largest predicted time, is up to 1e8
for these configurations, beyond any gradient-descent budget; every
direction the flow learns is learned well before the horizon).
"""

from __future__ import annotations

import numpy as np

from .._theory._order import learning_order
from .._theory._validity import THEORIES, order_scores
from .._training._config import TrainConfig
from .._training._nonlinear import train_nonlinear
from .._training._real import from_samples
from .._training._train import train
from .._training._validity import predictions, score_run
from ._common import choose_eta
from ._offdiag_measure import LOADERS, OBJECTIVES, SCORES, horizon

# the MLP's responses are measured along these direction sets; a theory uses its basis's
_MLP_DIRECTIONS = {"pca": "pca", "gen": "gen-dual", "lam": "lam", "mae": "mae"}
_MLP_OF_THEORY = {"pca": "pca", "lam": "lam", "mae": "mae"}  # others: "gen"


def _flow_row(rows, **match):
    for r in rows:
        if all(r.get(k) == v for k, v in match.items()):
            return r
    raise KeyError(f"no flow row {match}")


def _eta(objective, bases, depth, eps, steps, t_max):
    """The step: ``choose_eta`` on the stiffest features of the PCA and generalized bases."""
    lam = np.concatenate([bases["pca"].lam, bases["gen-dual"].lam])
    var = np.concatenate([bases["pca"].var, bases["gen-dual"].var])
    keep = lam > 0
    return choose_eta(objective, lam[keep], var[keep], depth, eps, steps, t_max)[0]


def _linear_one(data, label, bases, t_star, flow, p):
    objective, target = OBJECTIVES[label]
    t_max = horizon(flow)
    eta = _eta(objective, bases, p["depth"], p["eps"], p["steps"], t_max)
    config = TrainConfig(
        objective=objective,
        target=target,
        depth=p["depth"],
        eta=eta,
        eps=p["eps"],
        t_max=t_max,
        n_t=p["n_t"],
        keep_latent=True,
    )
    r = train(data, config)
    U = np.asarray(data.U)
    t, W = r.t[0, 0, 0], U @ np.asarray(r.latent[0, 0, 0]) @ U.T
    ld, scored = score_run(t, W, bases, t_star, p["k"])
    obs = np.asarray(flow["observation"]["time"], float)
    both = np.isfinite(obs) & np.isfinite(ld.time)
    return {
        "set": flow["set"],
        "objective": label,
        "eta": eta,
        "t_max": t_max,
        "steps": config.n_steps,
        "n_learned": int(np.isfinite(ld.time).sum()),
        "max_error_vs_flow": float(np.max(np.abs(ld.time[both] / obs[both] - 1.0)))
        if both.any()
        else np.nan,
        "scores": {n: {s: getattr(v[3], s) for s in SCORES} for n, v in scored.items()},
    }


def trained_linear(p_tr, flow_rows, k, log=print) -> list[dict]:
    """Linear models by gradient descent on each data set's population loss (module docs)."""
    out = []
    for name in p_tr["sets"]:
        x, y = LOADERS[name]()
        data = from_samples(
            x, y, n_features=p_tr["n_features"], power=p_tr["power"], normalize="max"
        )
        Sxx, Syx = np.asarray(data.Sxx), np.asarray(data.Syx)
        for label in p_tr["objectives"]:
            objective, target = OBJECTIVES[label]
            bases, t_star = predictions(Sxx, Syx, objective, p_tr["depth"], p_tr["eps"])
            try:
                flow = _flow_row(
                    flow_rows,
                    set=name,
                    n_features=p_tr["n_features"],
                    power=p_tr["power"],
                    objective=label,
                    depth=p_tr["depth"],
                    eps=p_tr["eps"],
                )
            except KeyError:  # the flow was not computed (a run stopped short): nothing to score
                log(f"    trained linear {name} {label}: no flow to compare with, skipped")
                continue
            if not flow["ok"]:  # no end state, no horizon: nothing to train towards
                log(f"    trained linear {name} {label}: the flow did not settle, skipped")
                continue
            row = _linear_one(data, label, bases, t_star, flow, {**p_tr, "k": k})
            log(f"    trained linear {name} {label}: {row['steps']} steps")
            out.append(row)
    return out


def _mean(v) -> float:
    v = np.asarray(v, float)
    return float(v[np.isfinite(v)].mean()) if np.isfinite(v).any() else float("nan")


def _unit(v):
    return v / np.linalg.norm(v, axis=0)


def trained_mlp(p_mlp, flow_rows, log=print) -> list[dict]:
    """MLP encoders on digits: each theory's Spearman against the encoders' per-feature times."""
    x, y = LOADERS[p_mlp["set"]]()
    kw = {"n_features": p_mlp["n_features"], "power": p_mlp["power"], "normalize": "max"}
    pop, rows = from_samples(x, y, **kw), from_samples(x, y, batch=p_mlp["batch"], **kw)
    Sxx, Syx = np.asarray(pop.Sxx), np.asarray(pop.Syx)
    out = []
    for label in p_mlp["objectives"]:
        objective, target = OBJECTIVES[label]
        bases, t_star = predictions(Sxx, Syx, objective, p_mlp["depth"], p_mlp["eps"])
        flow = _flow_row(
            flow_rows,
            set=p_mlp["set"],
            n_features=p_mlp["n_features"],
            power=p_mlp["power"],
            objective=label,
            depth=p_mlp["depth"],
            eps=p_mlp["eps"],
        )
        t_max = horizon(flow)
        eta = _eta(objective, bases, p_mlp["depth"], p_mlp["eps"], p_mlp["steps"], t_max)
        eta = min(eta, p_mlp["eta_max"])
        cfg = TrainConfig(
            objective=objective,
            target=target,
            depth=p_mlp["mlp_depth"],
            eta=eta,
            seed=p_mlp["seeds"],
            eps=p_mlp["eps"],
            t_max=t_max,
            n_t=p_mlp["n_t"],
        )
        dirs = [_unit(bases[b].vectors) for b in _MLP_DIRECTIONS.values()]
        nl = train_nonlinear(
            rows, cfg, activation=p_mlp["activation"], batch=p_mlp["batch"], basis=np.hstack(dirs)
        )
        d = pop.d
        times = {key: nl.time[:, i * d : (i + 1) * d] for i, key in enumerate(_MLP_DIRECTIONS)}
        spearman = {}
        for name in THEORIES:
            t_mlp = times[_MLP_OF_THEORY.get(name, "gen")]
            spearman[name] = [order_scores(t_star[name], t, 1).spearman for t in t_mlp]
        log(f"    MLP {p_mlp['set']} {label}: {cfg.n_steps} steps x {len(p_mlp['seeds'])} seeds")
        out.append(
            {
                "set": p_mlp["set"],
                "objective": label,
                "eta": eta,
                "t_max": t_max,
                "steps": cfg.n_steps,
                "diverged_seeds": int(np.isnan(nl.response).any(axis=(1, 2)).sum()),
                "spearman": spearman,
                "spearman_mean": {n: _mean(v) for n, v in spearman.items()},
                "order_mlp_seed0": {k: learning_order(v[0]) for k, v in times.items()},
            }
        )
    return out


__all__ = ["trained_linear", "trained_mlp"]
