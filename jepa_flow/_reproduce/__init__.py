"""``jepa-flow reproduce``: every figure and checked claim of the paper, and beyond.

``EXPERIMENTS`` is the registry, number -> module. Each module (see
``_common``) has its parameters at the top for three levels: ``full`` (the
committed ``results/``), ``quick`` (coarser grids, a few minutes on two
cores) and ``tiny`` (the tests). ``reproduce`` runs the selected experiments
in order, each into ``out/<NAME>/``, skips those whose outputs exist at the
same level (resume; ``force`` recomputes), and writes ``out/claims.json``:
every claim of every experiment, with its numbers and whether it held.
``out`` is probed for writability before anything runs and locked
(``_core._lock``) while the experiments run. Between experiments the
compilation caches and figures are dropped (``_core._memory``), so the run's
memory stays that of its largest experiment instead of their sum.
"""

from __future__ import annotations

import importlib
import json
import time
from pathlib import Path

import numpy as np

from .._core._batch import float_dtype
from .._core._io import check_writable, remove_stale_tmp, write_json_atomic
from .._core._lock import locked_dir
from .._core._memory import release_memory
from ._common import LEVELS

# number -> (module, output directory); each module's NAME equals its directory here
EXPERIMENTS = {
    1: ("exp1_order", "1_order_reversal"),
    2: ("exp2_critical_time", "2_critical_time"),
    3: ("exp3_phase", "3_phase_diagrams"),
    4: ("exp4_noisy", "4_noisy_features"),
    5: ("exp5_slow", "5_slow_features"),
    6: ("exp6_training", "6_theory_vs_training"),
    7: ("exp7_beyond", "7_beyond_assumptions"),
    8: ("exp8_capture", "8_capture_collapse"),
    9: ("exp9_real", "9_real_data"),
    10: ("exp10_offdiagonal", "10_off_diagonal"),
}
NUMBERS = "numbers.json"


def experiment(number: int):
    return importlib.import_module(f"jepa_flow._reproduce.{EXPERIMENTS[number][0]}")


def _done(exp_dir: Path, level: str) -> dict | None:
    """The stored numbers when the experiment finished at this level with all its figures."""
    path = exp_dir / NUMBERS
    if not path.exists():
        return None
    numbers = json.loads(path.read_text())
    figures = numbers.get("figures", [])
    if numbers.get("level") != level or not all((exp_dir / f).exists() for f in figures):
        return None
    if numbers.get("precision", "float64") != _precision():  # float64 before it was recorded
        return None
    return numbers


def _precision() -> str:
    """The working dtype's name (``"float64"`` when ``jax_enable_x64`` is on)."""
    return np.dtype(float_dtype()).name


def reproduce(out="results", *, level="full", only=None, force=False, log=print) -> dict:
    """Run the experiments ``only`` (default all) at ``level`` into ``out``; returns claims.json.

    Experiments whose outputs exist at this level and precision are skipped
    unless ``force``; the returned dict lists them under ``"skipped"``. The
    experiments run in the working dtype (float64 when ``jax_enable_x64`` is
    on; the tolerances of their claims are set for float64), recorded as
    ``"precision"`` in each ``numbers.json`` and in ``claims.json``.

    Raises ``ValueError`` for an unknown level or experiment number, an
    unwritable ``out`` or one in use by another process.
    """
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}; got {level!r}")
    if only is not None and (isinstance(only, (str, bytes)) or not hasattr(only, "__iter__")):
        only = [only]
    if only is not None and not all(
        isinstance(n, (int, np.integer)) and not isinstance(n, bool) for n in only
    ):
        raise ValueError(f"only must be a list of experiment numbers; got {only!r}")
    numbers_wanted = sorted(EXPERIMENTS) if not only else sorted(set(int(n) for n in only))
    bad = [n for n in numbers_wanted if n not in EXPERIMENTS]
    if bad:
        raise ValueError(f"only: no experiment {bad}; choose from {sorted(EXPERIMENTS)}")
    out = check_writable(out)
    with locked_dir(out):
        return _reproduce(out, level, numbers_wanted, force, log)


def _reproduce(out: Path, level: str, numbers_wanted, force: bool, log) -> dict:
    remove_stale_tmp(out)  # a killed run's half-written files (we hold the lock)
    for name in (d for _, d in EXPERIMENTS.values()):
        if (out / name).is_dir():
            remove_stale_tmp(out / name)
    start = time.perf_counter()
    seconds = {}
    skipped = []
    for n in numbers_wanted:
        mod = experiment(n)
        exp_dir = out / mod.NAME
        if not force and _done(exp_dir, level) is not None:
            log(
                f"[{n}] {mod.TITLE}: outputs exist in {exp_dir} at level {level} "
                f"({_precision()}), skipped"
            )
            skipped.append(n)
            continue
        exp_dir.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        log(f"[{n}] {mod.TITLE} ...")
        numbers = mod.run(exp_dir, mod.PARAMS[level])
        release_memory()  # the next experiment compiles its own (docs/precision.md, Memory)
        seconds[n] = time.perf_counter() - t0
        numbers = {
            "experiment": n,
            "title": mod.TITLE,
            "level": level,
            "precision": _precision(),
            "seconds": round(seconds[n], 1),
            **numbers,
        }
        write_json_atomic(exp_dir / NUMBERS, numbers)
        held = sum(c["held"] for c in numbers["claims"])
        log(
            f"[{n}] done in {seconds[n]:.1f} s ({held}/{len(numbers['claims'])} claims held; "
            f"total {time.perf_counter() - start:.0f} s)"
        )
    report = write_claims(out, level, time.perf_counter() - start)
    return {**report, "skipped": skipped}


def write_claims(out: Path, level: str, seconds: float) -> dict:
    """Collect every finished experiment's claims into ``out/claims.json``."""
    claims, per_exp = [], {}
    for n in sorted(EXPERIMENTS):
        name = EXPERIMENTS[n][1]
        numbers = _done(out / name, level)
        if numbers is None:
            continue
        per_exp[str(n)] = {
            "name": name,
            "title": numbers["title"],
            "seconds": numbers["seconds"],
            "figures": [f"{name}/{f}" for f in numbers["figures"]],
        }
        claims += [{"experiment": n, **c} for c in numbers["claims"]]
    report = {
        "level": level,
        "precision": _precision(),
        "seconds_this_run": round(seconds, 1),
        "seconds_all_experiments": round(sum(e["seconds"] for e in per_exp.values()), 1),
        "n_claims": len(claims),
        "n_held": sum(c["held"] for c in claims),
        "experiments": per_exp,
        "claims": claims,
    }
    write_json_atomic(out / "claims.json", report)
    return report
