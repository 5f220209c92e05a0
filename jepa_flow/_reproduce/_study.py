"""A study of a few features across depths: the job behind ``simulate`` and ``demo``.

``run_study`` integrates every (objective, depth, feature) with ``simulate``,
computes exact critical times and fixed points, and writes to ``out``:

- ``trajectory.npz``: ``t [T]``, ``wbar``/``u`` ``[T, n_objective, n_depth,
  n_feature]``, ``wbar_star``/``t_star`` ``[n_objective, n_depth, n_feature]``
  and the inputs (``objective``, ``depth``, ``lam``, ``var``, ``rho``, ``eps``);
- ``summary.json``: the inputs, fixed points, critical times, learning order
  per objective and depth, and the depth at which the order first differs
  from depth 1's (the flip depth);
- ``dynamics.png`` (``wbar / wbar*`` against ``t``) and ``critical_times.png``;
- ``inputs.json``: the study's inputs, written first. A directory that holds
  only a study's files with the same ``inputs.json`` is the same job: when
  every file is there it is complete and left as it is; otherwise (a killed
  run) it is recomputed in place, without ``force``, so rerunning a killed
  command finishes it.

Every file is written atomically. Before anything is computed, the save points
are checked against the memory and disk budgets (``_core._budget``) and
``out`` is probed for writability; the study then holds ``out``'s lock
(``_core._lock``) while it computes and writes.
"""

from __future__ import annotations

import json
import shutil
import string
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._core import _validate
from .._core._batch import bucket, float_dtype
from .._core._budget import check_budget
from .._core._io import (
    _to_jsonable,
    check_job_out,
    remove_stale_tmp,
    save_figure_atomic,
    write_bytes_atomic,
    write_json_atomic,
    write_npz_atomic,
)
from .._core._lock import LOCK_NAME, locked_dir
from .._theory import _order
from .._theory._critical_time import critical_time, fixed_point
from .._theory._simulate import simulate

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
    n = lam.size
    names = tuple(string.ascii_uppercase[i] if n <= 26 else f"f{i}" for i in range(n))
    return Features(np.array(lam, float), np.array(var_arr, float), names)


def learning_order(t_star_row, names) -> list[str]:
    """Names of the learned features (``0 < t* < inf``) in learning order (docs/theory.md §10)."""
    return [names[j] for j in _order.learned_order(t_star_row)]


def time_grid(t_star: np.ndarray, t_max=None, n_t: int = 800) -> np.ndarray:
    """Save times: 0, then log-spaced from 1e-3 of the earliest to ``t_max``.

    ``t_max`` defaults to 5 times the latest finite critical time.
    """
    finite = t_star[np.isfinite(t_star) & (t_star > 0)]
    if t_max is None:
        t_max = 5.0 * finite.max() if finite.size else 1.0
    t_lo = min(1e-3 * finite.min(), 1e-3 * t_max) if finite.size else 1e-6 * t_max
    return np.concatenate([[0.0], np.geomspace(t_lo, t_max, n_t - 1)])


# bytes of working memory per save time and member while simulating (log_u, wbar,
# u, v on device and host, the stacked outputs and the npz buffer); an upper estimate
SIM_BYTES = 8 * 8


def study_size(n_objectives: int, n_depths: int, n_features: int, n_t: int) -> tuple[int, int]:
    """Estimated ``(memory, disk)`` bytes of a study with these sizes."""
    members = n_depths * n_features
    memory = SIM_BYTES * bucket(n_t) * bucket(members) * n_objectives
    disk = 2 * 8 * n_t * members * n_objectives  # wbar and u, uncompressed at worst
    return memory, disk


STUDY_FILES = (
    "inputs.json",
    "trajectory.npz",
    "summary.json",
    "dynamics.png",
    "critical_times.png",
)


def _inputs_text(objectives, features, depths, eps, t_max, n_t) -> str:
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


def check_study_out(out, force, inputs_text, name="out", force_name="force=True") -> None:
    """Refuse an ``out`` that is a file, unwritable, or holds anything but the same study."""
    check_job_out(out, force, inputs_text, STUDY_FILES, name=name, force_name=force_name)


def run_study(
    out,
    objectives,
    features: Features,
    depths,
    eps,
    *,
    t_max=None,
    n_t=800,
    force=False,
    log=print,
    max_memory=None,
    max_disk=None,
) -> dict:
    """Simulate, summarize and plot; returns the summary written to ``summary.json``.

    ``max_memory``/``max_disk`` (bytes or sizes such as ``"16G"``) raise the
    budgets (``_core._budget``: 4 GiB and 20 GiB by default) that the number of
    save times ``n_t`` x objectives x depths x features is checked against.
    """
    if isinstance(objectives, str):
        objectives = [objectives]
    objectives = [_validate.check_objective(o) for o in objectives]
    depths = _validate.as_depth(np.atleast_1d(depths)).astype(int)
    if depths.ndim != 1:
        raise ValueError(f"depths must be a list of integers; got shape {depths.shape}")
    eps = float(_validate.as_positive("eps", eps))
    if isinstance(n_t, bool) or not isinstance(n_t, (int, np.integer)) or n_t < 2:
        raise ValueError(f"n_t must be an integer >= 2; got {n_t!r}")
    if t_max is not None:
        t_max = float(_validate.as_positive("t_max", t_max))
    _validate.feature_params(features.lam, features.var, depths[:, None], eps)  # before any write
    memory, disk = study_size(len(objectives), depths.size, len(features.names), int(n_t))
    check_budget(
        f"{n_t:,} save times x {len(objectives)} objective(s) x {depths.size} depth(s) x "
        f"{len(features.names)} feature(s)",
        memory=memory,
        disk=disk,
        max_memory=max_memory,
        max_disk=max_disk,
    )
    out = Path(out)
    existed = out.exists()
    inputs = _inputs_text(objectives, features, depths, eps, t_max, int(n_t))
    check_study_out(out, force, inputs)  # refuse a file, an unwritable or a used out
    try:
        with locked_dir(out):
            check_study_out(out, force, inputs)  # again, now that no other process writes here
            if not force and all((out / f).is_file() for f in STUDY_FILES):
                log(f"{out} already holds this study, complete (force recomputes it)")
                return json.loads((out / "summary.json").read_text())
            remove_stale_tmp(out)  # left by a killed run
            write_bytes_atomic(out / "inputs.json", inputs.encode())
            return _run_study(out, objectives, features, depths, eps, t_max, int(n_t), log)
    except BaseException:
        # created for a run that failed before its results: leave no trace
        if not existed and out.is_dir():
            left = {p.name for p in out.iterdir()} - {LOCK_NAME, "inputs.json"}
            if not left:
                shutil.rmtree(out, ignore_errors=True)
        raise


def _run_study(out, objectives, features, depths, eps, t_max, n_t, log) -> dict:
    from .._plotting._dynamics import close, critical_time_figure, dynamics_figure

    d_col = depths[:, None].astype(float)
    t_star = np.stack(
        [np.asarray(critical_time(o, features.lam, features.var, d_col, eps)) for o in objectives]
    )
    wbar_star = np.stack(
        [np.asarray(fixed_point(o, features.lam, features.var, d_col)) for o in objectives]
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
        flip = _order.flip_depth(depths, t_star[k])
        summary["objectives"][o] = {
            "wbar_star": {n: wbar_star[k, :, j] for j, n in enumerate(features.names)},
            "t_star": {n: t_star[k, :, j] for j, n in enumerate(features.names)},
            "learning_order": {int(d): od for d, od in zip(depths, orders)},
            "flip_depth": flip,
        }
    write_json_atomic(out / "summary.json", summary)

    ratio = wbar / np.where(wbar_star > 0, wbar_star, 1.0)[None]
    panels = {o: (t, ratio[:, k], t_star[k], depths) for k, o in enumerate(objectives)}
    fig = dynamics_figure(
        panels,
        features.names,
        features.lam,
        features.var,
        time_note=" (gradient-flow time, log scale)",
    )
    save_figure_atomic(fig, out / "dynamics.png", dpi=110)
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
