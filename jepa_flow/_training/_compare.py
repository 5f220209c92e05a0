"""Theory versus training (theory §3, §4, §6, §7).

``compare`` trains a grid of members and, for each, integrates

- the balanced per-feature flow (``simulate`` / ``critical_time`` of the core,
  theory §3-§4), exact where the start is balanced and diagonal in ``U``;
- the full-matrix flow (theory §6) with diffrax, started from the member's own
  initial state, which stays exact when a converged channel recruits a
  higher-influence feature (capture, theory §7), for any target and start.

Capture is *predicted* for feature ``j`` when some feature ``i`` with lower
influence (``rho_i < rho_j``) is learned first in the per-feature theory and
the off-diagonal entry mapping ``j`` into channel ``i``, seeded at a relative
size ``delta0``, can grow to ``CAPTURE_LEVEL`` before ``j`` is learned:
``gamma_ij (t*_j - t*_i) >= max(1, log(CAPTURE_LEVEL / delta0))`` with
``gamma_ij = var_j rho_i^(2L-1) (rho_j - rho_i)`` (JEPA only). The seed
``delta0`` is the largest of: the initial noise ``scale``, the minibatch noise
``sqrt(eta / batch)``, and float64 rounding (1e-16) when ``U`` is not the
identity; in the exact eigenbasis with no noise it is 0 (the diagonal set is
invariant) and nothing is predicted. A capture is
*seen* when ``|e_i^T Wbar e_j|`` (``i != j``) rises above
``CAPTURE_LEVEL * wbar*_j`` after channel ``i``'s own feature was learned and
before feature ``j``'s per-feature critical time (reported with the first time
it does).

The reference for a feature's critical time is the per-feature theory, except
where capture is predicted, the target is EMA or frozen, the start is not
balanced, or the covariances are not diagonal in ``U``: there it is the
full-matrix flow.
"""

from __future__ import annotations

import numpy as np

from .._theory._critical_time import critical_time
from .._theory._fullflow import full_flow
from .._theory._simulate import simulate
from ._train import TrainResult, train

CAPTURE_GAIN_MIN = 1.0
CAPTURE_LEVEL = 0.1
ROUNDING = 1e-16


def perturbation_seed(data, scale: float, eta: float) -> float:
    """Relative size ``delta0`` of the off-diagonal seed of a run (0: none)."""
    seeds = [float(scale), 0.0]
    if data.batch is not None:
        seeds.append(float(np.sqrt(eta / data.batch)))
    if not np.array_equal(np.asarray(data.U), np.eye(data.d)):
        seeds.append(ROUNDING)
    return max(seeds)


def predicted_captures(gain, seed: float) -> list[dict]:
    """Pairs ``(channel i, feature j)`` whose gain reaches ``log(CAPTURE_LEVEL / seed)``."""
    if seed <= 0:
        return []
    needed = max(CAPTURE_GAIN_MIN, float(np.log(CAPTURE_LEVEL / seed)))
    return [
        {"channel": int(i), "feature": int(j), "gain": float(gain[i, j]), "needed": needed}
        for i, j in zip(*np.nonzero(gain >= needed))
    ]


def capture_gain(lam, var, depth, t_star) -> np.ndarray:
    """``G[i, j] = gamma_ij (t*_j - t*_i)`` where ``rho_i < rho_j`` and ``t*_i < t*_j``, else 0."""
    rho = lam / var
    gamma = var[None, :] * rho[:, None] ** (2 * depth - 1) * (rho[None, :] - rho[:, None])
    dt = t_star[None, :] - t_star[:, None]
    ok = (rho[:, None] < rho[None, :]) & (dt > 0) & np.isfinite(dt) & (rho[:, None] > 0)
    return np.where(ok, gamma * np.where(ok, dt, 0.0), 0.0)


def seen_captures(t, latent, wbar_star, t_learned=None, t_own=None) -> list[dict]:
    """Off-diagonal entries ``|M_ij|`` rising above ``CAPTURE_LEVEL * wbar*_j`` from below.

    ``t``: ``[T]``, ``latent``: ``U^T Wbar U`` ``[T, d, d]``, ``wbar_star``: ``[d]``.
    The time is interpolated linearly in log t between the two samples. With
    ``t_learned`` (when each channel's own feature was learned) and ``t_own``
    (each feature's per-feature critical time), only captures proper are kept:
    channel ``i`` already learned (``t >= t_learned[i]``) recruits feature ``j``
    before its own time (``t < t_own[j]``); later mixing of learned channels is
    not a capture.
    """
    out = []
    A = np.abs(latent)
    d = A.shape[-1]
    for i in range(d):
        for j in range(d):
            lvl = CAPTURE_LEVEL * wbar_star[j]
            if i == j or not np.isfinite(lvl) or lvl <= 0 or A[0, i, j] >= lvl:
                continue
            above = np.nonzero(A[:, i, j] >= lvl)[0]
            if above.size == 0:
                continue
            k = above[0]
            a0, a1 = A[k - 1, i, j], A[k, i, j]
            t0, t1 = max(t[k - 1], 1e-300), t[k]
            f = (lvl - a0) / (a1 - a0)
            tc = float(np.exp(np.log(t0) + f * (np.log(t1) - np.log(t0)))) if t0 > 0 else t1
            if t_learned is not None and not (t_learned[i] <= tc < t_own[j]):
                continue
            out.append(
                {
                    "channel": i,
                    "feature": j,
                    "t": tc,
                    "size": float(A[:, i, j].max() / wbar_star[j]),
                }
            )
    return out


def _dense_times(objective, data, depth, eps, fraction, n=100) -> np.ndarray:
    """Linear grids over each depth's expected rises (0.5 x first to 1.5 x last theory time)."""
    try:
        t = np.asarray(
            critical_time(
                objective,
                np.asarray(data.lam),
                np.asarray(data.var),
                np.atleast_1d(depth)[:, None],
                eps,
                fraction,
            )
        )
    except (AttributeError, ValueError):  # bad input: train() reports it
        return np.zeros(0)
    grids = []
    for row in t:
        row = row[np.isfinite(row) & (row > 0)]
        if row.size:
            grids.append(np.linspace(0.5 * row.min(), 1.5 * row.max(), n))
    return np.concatenate(grids) if grids else np.zeros(0)


def _order(t_star) -> list[int]:
    t = np.where(np.isfinite(t_star), t_star, np.inf)
    return [int(j) for j in np.argsort(t, kind="stable")]


def _rel(a, b):
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.abs(a - b) / np.abs(b)
    return np.where(np.isfinite(a) & np.isfinite(b), r, np.where(a == b, 0.0, np.inf))


def compare(
    objective,
    data,
    *,
    depth=1,
    eta=1e-2,
    seed=0,
    t_max=None,
    steps=None,
    eps=1e-3,
    init="balanced",
    scale=0.0,
    target="stopgrad",
    tau=0.0,
    teacher=None,
    optimizer="sgd",
    momentum=0.9,
    fraction=0.5,
    n_records=120,
    progress=False,
    result=None,
) -> dict:
    """Train (or take ``result``) and compare every member with the theory.

    Arguments as in ``train``. Returns a dict with, per member (leading axes
    ``[seed, depth, eta]``) and feature ``j``: ``t_star_theory`` (per-feature
    theory), ``t_star_full`` (full-matrix flow), ``t_star_training``,
    ``reference`` (which of the two applies), ``rel_error`` (training against
    the reference), ``rel_error_theory``, ``rel_error_full``, ``max_dev_theory``
    and ``max_dev_full`` (max over records of ``| |Wbar e_j| - reference |``),
    ``order_theory``/``order_training``/``order_agrees``, ``capture_predicted``
    and ``capture`` (lists of ``{channel, feature, t, ...}``), plus ``curves``
    (arrays for plotting, not JSON).
    """
    r: TrainResult = (
        result
        if result is not None
        else train(
            objective,
            data,
            depth=depth,
            eta=eta,
            seed=seed,
            t_max=t_max,
            steps=steps,
            eps=eps,
            init=init,
            scale=scale,
            target=target,
            tau=tau,
            teacher=teacher,
            optimizer=optimizer,
            momentum=momentum,
            fraction=fraction,
            n_records=n_records,
            t_records=_dense_times(objective, data, depth, eps, fraction),
            keep_latent=True,
            progress=progress,
        )
    )
    d = r.data.d
    lam, var = np.asarray(r.data.lam), np.asarray(r.data.var)
    balanced = init == "balanced"
    ema = r.target == "ema" and r.tau > 0
    S, D, E = r.t_cross.shape[:3]
    wstar = r.threshold / r.fraction
    keys = (
        "t_star_theory",
        "t_star_full",
        "t_star_training",
        "rel_error",
        "rel_error_theory",
        "rel_error_full",
        "max_dev_theory",
        "max_dev_full",
        "reference",
        "order_theory",
        "order_training",
        "order_agrees",
        "capture_predicted",
        "capture",
        "capture_full",
    )
    out = {k: np.empty((S, D, E), dtype=object) for k in keys}
    curves = {
        "t": r.t,
        "training": r.norm,
        "theory": np.empty_like(r.norm),
        "full": np.empty_like(r.norm),
    }
    for b in range(D):
        L = int(r.depth[b])
        t_th = np.asarray(critical_time(objective, lam, var, L, eps, fraction))
        gain = capture_gain(lam, var, L, t_th) if objective == "jepa" else np.zeros((d, d))
        for s in range(S):
            for e in range(E):
                seed = perturbation_seed(r.data, scale if init == "balanced" else 1.0, r.eta[e])
                predicted = predicted_captures(gain, seed)
                cap_j = np.zeros(d, bool)
                cap_j[[p["feature"] for p in predicted]] = True
                t = r.t[s, b, e]
                th = np.asarray(simulate(objective, lam, var, L, eps, t).wbar)
                ff = full_flow(
                    objective,
                    r.data,
                    r.W0[s, b, e],
                    r.V0[s, b, e],
                    L,
                    t,
                    r.threshold[b],
                    target=r.target,
                    tau=r.tau,
                    teacher=r.teacher,
                )
                full_norm, t_full = np.asarray(ff.norm), np.asarray(ff.t_cross)
                if not bool(ff.ok):
                    t_full = np.full(d, np.nan)
                curves["theory"][s, b, e], curves["full"][s, b, e] = th, full_norm
                use_full = (
                    cap_j | ema | (r.target == "frozen") | (not balanced) | (not r.data.diagonal)
                )
                t_tr = r.t_cross[s, b, e]
                ref = np.where(use_full, t_full, t_th)
                row = {
                    "t_star_theory": t_th,
                    "t_star_full": t_full,
                    "t_star_training": t_tr,
                    "rel_error": _rel(t_tr, ref),
                    "rel_error_theory": _rel(t_tr, t_th),
                    "rel_error_full": _rel(t_tr, t_full),
                    "max_dev_theory": np.abs(r.norm[s, b, e] - th).max(axis=0),
                    "max_dev_full": np.abs(r.norm[s, b, e] - full_norm).max(axis=0),
                    "reference": [
                        "full_flow" if u else "per_feature" for u in np.broadcast_to(use_full, (d,))
                    ],
                    "order_theory": _order(np.where(use_full, t_full, t_th)),
                    "order_training": _order(t_tr),
                    "capture_predicted": predicted,
                    "capture": seen_captures(t, r.latent[s, b, e], wstar[b], t_tr, t_th),
                    "capture_full": seen_captures(t, np.asarray(ff.latent), wstar[b], t_full, t_th),
                }
                row["order_agrees"] = row["order_theory"] == row["order_training"]
                for k, v in row.items():
                    out[k][s, b, e] = v
    events = ("capture_predicted", "capture", "capture_full")
    report = {
        k: (v[0, 0, 0] if v.size == 1 else v.tolist()) for k, v in out.items() if k not in events
    }
    for k in events:  # flat lists of events, tagged with their member when there are several
        report[k] = [
            ev
            if out[k].size == 1
            else {**ev, "seed": int(r.seed[s]), "depth": int(r.depth[b]), "eta": float(r.eta[e])}
            for (s, b, e), evs in np.ndenumerate(out[k])
            for ev in evs
        ]
    report.update(
        objective=objective,
        target=r.target,
        optimizer=r.optimizer,
        depth=r.depth,
        eta=r.eta,
        seed=r.seed,
        eps=eps,
        fraction=fraction,
        lam=lam,
        var=var,
        rho=lam / var,
        n_steps=r.n_steps,
        model=r.data.model,
        batch=r.data.batch,
        curves=curves,
        result=r,
    )
    return report
