"""The study behind ``jepa-flow simulate``/``demo`` and experiment 1: a few features across depths.

``write_study`` integrates every (objective, depth, feature) with ``simulate``,
computes exact critical times and fixed points, and writes to ``out``:

- ``inputs.json``: the study's inputs (written first);
- ``trajectory.npz``: ``t [T]``, ``wbar``/``u`` ``[T, n_objective, n_depth,
  n_feature]``, ``wbar_star``/``t_star`` ``[n_objective, n_depth, n_feature]``
  and the inputs (``objective``, ``depth``, ``lam``, ``var``, ``rho``, ``eps``);
- ``summary.json``: the inputs, fixed points, critical times, learning order
  per objective and depth, and the depth at which the order first differs
  from depth 1's (the flip depth);
- ``dynamics.png`` (``wbar / wbar*`` against ``t``) and ``critical_times.png``.

Every file is written atomically. The command-line job around it (inputs and
their overflow checks, budgets, the output directory's checks and lock,
resuming) is ``jepa_flow._cli._study.run_study``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from .. import critical_time, fixed_point, flip_depth, learned_order, simulate
from .._core import _validate
from .._core._batch import float_dtype
from .._core._io import (
    _to_jsonable,
    save_figure_atomic,
    write_bytes_atomic,
    write_json_atomic,
    write_npz_atomic,
)
from .._plotting._dynamics import close, critical_time_figure, feature_names, plot_trajectory

TIME_CONVENTION = (
    "gradient-flow time t with unit rate on every parameter (gradient descent with step eta "
    "is at t = eta * step); the paper's time is depth * t"
)


@dataclass(frozen=True)
class Features:
    """Named features ``(lam, var)`` of one study."""

    lam: np.ndarray
    var: np.ndarray
    names: tuple[str, ...]

    @property
    def rho(self) -> np.ndarray:
        return self.lam / self.var


def make_features(lam, var=None, rho=None) -> Features:
    """Features from ``lam`` and either ``var`` or ``rho`` (``var = lam / rho``).

    Lists of equal length pair up; a single value is repeated.
    """
    lam = _validate.as_real("lam", np.atleast_1d(lam))
    if (var is None) == (rho is None):
        raise ValueError("give exactly one of var and rho")
    if var is not None:
        other = _validate.as_positive("var", np.atleast_1d(var))
    else:
        rho = _validate.as_positive("rho", np.atleast_1d(rho))
        if np.any(lam <= 0):
            raise ValueError("lam must be > 0 when features are given by rho (var = lam / rho)")
        other = None
    second = other if other is not None else rho
    if lam.ndim != 1 or second.ndim != 1:
        raise ValueError("lam, var and rho must be lists of numbers")
    if lam.size != second.size and 1 not in (lam.size, second.size):
        raise ValueError(
            f"lam has {lam.size} values and {'var' if var is not None else 'rho'} has "
            f"{second.size}; give the same number (one per feature) or a single value"
        )
    lam, second = np.broadcast_arrays(lam, second)
    with np.errstate(over="ignore", under="ignore"):
        var_arr = second if var is not None else lam / second
        rho_arr = lam / var_arr
    if not np.all(np.isfinite(var_arr) & (var_arr > 0)):
        raise ValueError("var = lam / rho must be finite and > 0 (over- or underflow)")
    if not np.all(np.isfinite(rho_arr)):
        raise ValueError("rho = lam / var must be finite (lam too large for var)")
    names = feature_names(lam.size)
    return Features(np.array(lam, float), np.array(var_arr, float), names)


def learning_order(t_star_row, names) -> list[str]:
    """Names of the learned features (``0 < t* < inf``) in learning order (docs/theory.md §10)."""
    return [names[j] for j in learned_order(t_star_row)]


def time_grid(t_star: np.ndarray, t_max=None, n_t: int = 800) -> np.ndarray:
    """Save times: 0, then log-spaced from 1e-3 of the earliest to ``t_max``.

    ``t_max`` defaults to 5 times the latest finite critical time.
    """
    finite = t_star[np.isfinite(t_star) & (t_star > 0)]
    if t_max is None:
        t_max = 5.0 * finite.max() if finite.size else 1.0
    t_lo = min(1e-3 * finite.min(), 1e-3 * t_max) if finite.size else 1e-6 * t_max
    return np.concatenate([[0.0], np.geomspace(t_lo, t_max, n_t - 1)])


def study_inputs(objectives, features, depths, eps, t_max, n_t) -> str:
    """The study's inputs as the text of its ``inputs.json`` (the job's identity)."""
    inputs = {
        "objective": list(objectives),
        "lam": features.lam,
        "var": features.var,
        "depth": depths,
        "eps": eps,
        "t_max": t_max,
        "n_t": n_t,
        "precision": np.dtype(float_dtype()).name,  # a float32 job is another job
    }
    return json.dumps(_to_jsonable(inputs), indent=2, allow_nan=False) + "\n"


def study_arrays(objectives, features, depths, eps):
    """``(t_star, wbar_star)`` ``[objective, depth, feature]``: exact critical times and
    fixed points (theory §3-§4)."""
    d_col = np.asarray(depths, float)[:, None]
    t_star = np.stack(
        [np.asarray(critical_time(o, features.lam, features.var, d_col, eps)) for o in objectives]
    )
    wbar_star = np.stack(
        [np.asarray(fixed_point(o, features.lam, features.var, d_col)) for o in objectives]
    )
    return t_star, wbar_star


def write_study(out, objectives, features, depths, eps, t_max, n_t, log, derived=None) -> dict:
    """Write ``inputs.json``, then compute the study and write its files; the summary.

    The inputs are taken as valid (``jepa_flow._cli._study.run_study`` checks
    them): ``objectives`` a list, ``depths`` integers, ``eps`` a float;
    ``derived``: ``study_arrays``' result when the caller has it already.
    """
    inputs = study_inputs(objectives, features, depths, eps, t_max, n_t)
    write_bytes_atomic(out / "inputs.json", inputs.encode())
    d_col = depths[:, None].astype(float)
    t_star, wbar_star = (
        study_arrays(objectives, features, depths, eps) if derived is None else derived
    )
    t = time_grid(t_star, t_max, n_t)
    trajs = [simulate(o, features.lam, features.var, d_col, eps, t) for o in objectives]
    wbar = np.stack([np.asarray(tr.wbar) for tr in trajs], axis=1)
    u = np.stack([np.asarray(tr.u) for tr in trajs], axis=1)

    write_npz_atomic(
        out / "trajectory.npz",
        t=t,
        wbar=wbar,
        u=u,
        wbar_star=wbar_star,
        t_star=t_star,
        objective=np.array(objectives),
        depth=depths,
        lam=features.lam,
        var=features.var,
        rho=features.rho,
        eps=eps,
    )

    summary = {
        "time_convention": TIME_CONVENTION,
        "eps": eps,
        "fraction": 0.5,
        "features": [
            {"name": n, "lam": la, "var": va, "rho": la / va}
            for n, la, va in zip(features.names, features.lam, features.var)
        ],
        "depth": depths,
        "objectives": {},
    }
    for k, o in enumerate(objectives):
        orders = [learning_order(t_star[k, i], features.names) for i in range(len(depths))]
        flip = flip_depth(depths, t_star[k])
        summary["objectives"][o] = {
            "wbar_star": {n: wbar_star[k, :, j] for j, n in enumerate(features.names)},
            "t_star": {n: t_star[k, :, j] for j, n in enumerate(features.names)},
            "learning_order": {int(d): od for d, od in zip(depths, orders)},
            "flip_depth": flip,
        }
    write_json_atomic(out / "summary.json", summary)

    fig = plot_trajectory(
        trajs,
        t_star=list(t_star),
        depth=depths,
        lam=features.lam,
        var=features.var,
        path=out / "dynamics.png",
    )
    close(fig)
    fig = critical_time_figure(
        {o: t_star[k] for k, o in enumerate(objectives)},
        depths,
        features.names,
        features.lam,
        features.var,
        eps,
    )
    save_figure_atomic(fig, out / "critical_times.png", dpi=110)
    close(fig)
    log(format_table(summary, features.names))
    log(f"wrote {out}/trajectory.npz, summary.json, dynamics.png, critical_times.png, inputs.json")
    return summary


def _unranked(block, names, i) -> str:
    """The features left out of row ``i``'s order: ``t* = 0`` (learned at the start) and inf."""
    t = {n: block["t_star"][n][i] for n in names}
    at_start = [n for n in names if t[n] == 0]
    never = [n for n in names if t[n] == np.inf]
    parts = [f"at start: {', '.join(at_start)}"] * bool(at_start)
    parts += [f"never: {', '.join(never)}"] * bool(never)
    return f"  ({'; '.join(parts)})" if parts else ""


def format_table(summary, names) -> str:
    """Plain-text table of critical times and learning order per depth.

    The order lists the learned features (``0 < t* < inf``, theory §10); those
    learned at the start (``t* = 0``) or never are named after it.
    """
    lines = []
    for o, block in summary["objectives"].items():
        header = f"{o.upper():>5} depth " + " ".join(f"{'t*_' + n:>13}" for n in names) + "  order"
        lines.append(header)
        for i, d in enumerate(summary["depth"]):
            ts = " ".join(f"{block['t_star'][n][i]:>13.6g}" for n in names)
            order = " < ".join(block["learning_order"][int(d)]) or "-"
            lines.append(f"{'':>5} {int(d):>5} {ts}  {order}{_unranked(block, names, i)}")
        flip = block["flip_depth"]
        lines.append(f"{'':>5} order flips at depth: {flip if flip is not None else 'never'}")
    return "\n".join(lines)
