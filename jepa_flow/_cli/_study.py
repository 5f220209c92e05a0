"""``jepa-flow simulate`` and ``demo``: the study of ``jepa_flow._reproduce._study`` as a job.

``run_study`` validates the study's inputs (and refuses fixed points, critical
times and save times that overflow), checks its save points against the memory
and disk budgets (``_core._budget``) and ``out`` for writability, then holds
``out``'s lock (``_core._lock``) while ``write_study`` computes and writes.
``inputs.json``, the study's inputs, is written first. A directory that holds
only a study's files with the same ``inputs.json`` is the same job: when every
file is there it is complete and left as it is; otherwise (a killed run) it is
recomputed in place, without ``force``, so rerunning a killed command finishes it.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np

from .._core import _validate
from .._core._batch import bucket, float_dtype
from .._core._budget import check_budget
from .._core._io import check_job_out, remove_stale_tmp
from .._core._lock import LOCK_NAME, locked_dir
from .._reproduce._study import Features, study_arrays, study_inputs, write_study

# bytes of working memory per save time and member while simulating (log_u, wbar,
# u, v on device and host, the stacked outputs and the npz buffer); an upper estimate
SIM_BYTES = 8 * 8
# an upper estimate of the bytes of the two figures, summary.json and inputs.json
STUDY_FILES_BYTES = 2**20


def study_size(n_objectives: int, n_depths: int, n_features: int, n_t: int) -> tuple[int, int]:
    """Estimated ``(memory, disk)`` bytes of a study with these sizes."""
    members = n_depths * n_features
    memory = SIM_BYTES * bucket(n_t) * bucket(members) * n_objectives
    disk = 2 * 8 * n_t * members * n_objectives  # wbar and u, uncompressed at worst
    return memory, disk + STUDY_FILES_BYTES


STUDY_FILES = (
    "inputs.json",
    "trajectory.npz",
    "summary.json",
    "dynamics.png",
    "critical_times.png",
)


def check_study_out(out, force, inputs_text, name="out", force_name="force=True") -> None:
    """Refuse an ``out`` that is a file, unwritable, or holds anything but the same study."""
    check_job_out(out, force, inputs_text, STUDY_FILES, name=name, force_name=force_name)


def max_time() -> float:
    """The largest save time a study accepts: ``finfo.max ** 0.8`` of the working dtype
    (about 1e246 in float64, 1e30 in float32), leaving room for the figures' log axes."""
    return float(np.finfo(float_dtype()).max) ** 0.8


def _refuse_overflow(quantity, values, objectives, features, depths, cause) -> None:
    """Name the first (objective, depth, feature) where ``values`` is not finite."""
    o, i, j = (int(k[0]) for k in np.nonzero(~np.isfinite(values)))
    f = features.names[j]
    raise ValueError(
        f"{quantity} of feature {f} (lam = {features.lam[j]:g}, var = {features.var[j]:g}) "
        f"at depth {int(depths[i])} ({objectives[o].upper()}) is not representable in "
        f"{np.dtype(float_dtype()).name}; {cause}"
    )


def check_derived(t_star, wbar_star, objectives, features, depths) -> None:
    """Refuse fixed points that overflow, and critical times that overflow or failed.

    ``t_star``, ``wbar_star``: ``[objective, depth, feature]``. A feature with
    ``lam <= 0`` has ``t* = inf`` by definition (never learned); any other
    non-finite value is refused, naming the feature, depth and objective.
    """
    args = (objectives, features, depths)
    if not np.isfinite(wbar_star).all():
        _refuse_overflow("wbar* (the fixed point)", wbar_star, *args, "rescale lam and var")
    learnable = np.broadcast_to(features.lam > 0, t_star.shape)
    if np.isnan(t_star).any() or np.isinf(t_star[learnable]).any():
        bad = np.where(learnable | np.isnan(t_star), t_star, 0.0)
        _refuse_overflow("the critical time", bad, *args, "use a larger eps or rescale lam, var")


def derived_quantities(objectives, features, depths, eps, t_max):
    """``(t_star, wbar_star, t_max)`` of a study, refused where they overflow (theory §3-§4).

    Checked before anything is written: every fixed point ``wbar*`` finite,
    every learned feature's critical time finite, and the last save time
    (``t_max``, or 5 times the latest critical time) at most ``max_time()``.
    """
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a NaN is refused below, with its cause
        t_star, wbar_star = study_arrays(objectives, features, depths, eps)
    check_derived(t_star, wbar_star, objectives, features, depths)
    latest = t_star[np.isfinite(t_star)]
    last = t_max if t_max is not None else 5.0 * latest.max() if latest.size else 1.0
    if last > max_time():
        flag = "t_max" if t_max is not None else "5 x the latest critical time (default t_max)"
        raise ValueError(f"{flag} = {last:g} is beyond the largest save time {max_time():.3g}")
    return t_star, wbar_star


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
    derived = derived_quantities(objectives, features, depths, eps, t_max)
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
    inputs = study_inputs(objectives, features, depths, eps, t_max, int(n_t))
    check_study_out(out, force, inputs)  # refuse a file, an unwritable or a used out
    try:
        with locked_dir(out):
            check_study_out(out, force, inputs)  # again, now that no other process writes here
            if not force and all((out / f).is_file() for f in STUDY_FILES):
                log(f"{out} already holds this study, complete (force recomputes it)")
                return json.loads((out / "summary.json").read_text())
            remove_stale_tmp(out)  # left by a killed run
            return write_study(
                out, objectives, features, depths, eps, t_max, int(n_t), log, derived
            )
    except BaseException:
        # created for a run that failed before its results: leave no trace
        if not existed and out.is_dir():
            left = {p.name for p in out.iterdir()} - {LOCK_NAME, "inputs.json"}
            if not left:
                shutil.rmtree(out, ignore_errors=True)
        raise
