"""``jepa-flow simulate`` and ``demo``: the study of ``jepa_flow._reproduce._study`` as a job.

``run_study`` validates the study's inputs, checks its save points against the
memory and disk budgets (``_core._budget``) and ``out`` for writability, then
holds ``out``'s lock (``_core._lock``) while ``write_study`` computes and writes.
``inputs.json``, the study's inputs, is written first. A directory that holds
only a study's files with the same ``inputs.json`` is the same job: when every
file is there it is complete and left as it is; otherwise (a killed run) it is
recomputed in place, without ``force``, so rerunning a killed command finishes it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from .._core import _validate
from .._core._batch import bucket
from .._core._budget import check_budget
from .._core._io import check_job_out, remove_stale_tmp
from .._core._lock import LOCK_NAME, locked_dir
from .._reproduce._study import Features, study_inputs, write_study

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
    inputs = study_inputs(objectives, features, depths, eps, t_max, int(n_t))
    check_study_out(out, force, inputs)  # refuse a file, an unwritable or a used out
    try:
        with locked_dir(out):
            check_study_out(out, force, inputs)  # again, now that no other process writes here
            if not force and all((out / f).is_file() for f in STUDY_FILES):
                log(f"{out} already holds this study, complete (force recomputes it)")
                return json.loads((out / "summary.json").read_text())
            remove_stale_tmp(out)  # left by a killed run
            return write_study(out, objectives, features, depths, eps, t_max, int(n_t), log)
    except BaseException:
        # created for a run that failed before its results: leave no trace
        if not existed and out.is_dir():
            left = {p.name for p in out.iterdir()} - {LOCK_NAME, "inputs.json"}
            if not left:
                shutil.rmtree(out, ignore_errors=True)
        raise
