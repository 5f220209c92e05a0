"""Values of a sweep's TOML tables: grids, range checks, budgets and tolerances.

Every sweep kind reads its parameters through these functions, so the same
spelling (a value, a list, ``{linspace = [start, stop, n]}`` or
``{logspace = [start_exp, stop_exp, n]}``) and the same one-line messages
hold for all of them. Messages name the key as ``where`` gives it (``sweep.lam``,
``pair.rho_b``, ``train.eta``).
"""

from __future__ import annotations

import numpy as np

from .._core import _budget, _validate

MAX_GRID = 10**12
STATIC = ("objective", "method")  # string-valued axes of the critical-time sweeps
BUDGET_KEYS = ("memory", "disk")


def count_values(where: str, value) -> int:
    """How many values a parameter takes, without generating them."""
    if isinstance(value, dict):
        spec = next(iter(value.values()), None) if len(value) == 1 else None
        if isinstance(spec, list) and len(spec) == 3:
            n = spec[2]
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                kind = next(iter(value))
                raise ValueError(f"{where}: {kind} count n must be an integer >= 1; got {n!r}")
            return n
        return 1  # malformed: grid_values says why
    return len(value) if isinstance(value, list) else 1


def _generated(where: str, value: dict) -> np.ndarray:
    """A ``{linspace = [start, stop, n]}`` or ``{logspace = [...]}`` table's values."""
    if len(value) != 1 or next(iter(value)) not in ("linspace", "logspace"):
        raise ValueError(
            f"{where}: a table must be {{linspace = [start, stop, n]}} or "
            f"{{logspace = [start_exp, stop_exp, n]}}; got {value!r}"
        )
    ((kind, spec),) = value.items()
    if not (isinstance(spec, list) and len(spec) == 3):
        raise ValueError(f"{where}: {kind} needs [start, stop, n]; got {spec!r}")
    start, stop, n = spec
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"{where}: {kind} count n must be an integer >= 1; got {n!r}")
    if n > MAX_GRID:
        raise ValueError(f"{where}: {kind} count n = {n} is larger than {MAX_GRID}")
    start, stop = (_validate.as_real(where, x) for x in (start, stop))
    return np.linspace(start, stop, n) if kind == "linspace" else np.logspace(start, stop, n)


def grid_values(where: str, key: str, value) -> np.ndarray | tuple:
    """One parameter's values: a scalar, a list, or a linspace/logspace table.

    ``STATIC`` keys give a tuple of distinct strings, the others a 1-D float64 array.
    """
    if isinstance(value, dict):
        return _generated(where, value)
    values = value if isinstance(value, list) else [value]
    if not values:
        raise ValueError(f"{where}: empty grid (give at least one value)")
    if key in STATIC:
        bad = [v for v in values if not isinstance(v, str)]
        if bad:
            raise ValueError(f"{where}: values must be strings; got {bad[0]!r}")
        if len(set(values)) != len(values):
            raise ValueError(f"{where}: repeated values in {values!r}")
        return tuple(values)
    bad = [v for v in values if isinstance(v, (bool, str, list, dict)) or v is None]
    if bad:
        raise ValueError(f"{where}: values must be numbers; got {bad[0]!r}")
    return np.asarray(values, dtype=np.float64)


def _check_range(key: str, grid) -> None:
    """Range checks per key (``_validate`` does the work and names ``key``)."""
    if key == "objective":
        for o in grid:
            _validate.check_objective(o)
    elif key == "method":
        for m in grid:
            _validate.check_method(m)
    elif key == "depth":
        _validate.as_depth(grid)
    elif key == "fraction":
        _validate.as_fraction(grid)
    elif key.startswith(("eps", "rho", "var")) or key.endswith("_ratio"):
        _validate.as_positive(key, grid)
    else:
        _validate.as_real(key, grid)


def check_values(where: str, key: str, grid) -> None:
    """``_check_range`` with the message prefixed by ``where``."""
    try:
        _check_range(key, grid)
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None


def one_of(table: dict, keys: tuple[str, ...], where: str, required: bool) -> str | None:
    """The one key of ``keys`` present in ``table`` (None if none and not ``required``)."""
    present = [k for k in keys if k in table]
    if len(present) > 1:
        raise ValueError(f"{where}: give only one of {', '.join(present)}")
    if required and not present:
        raise ValueError(f"{where}: one of {', '.join(keys)} is required")
    return present[0] if present else None


def budget_of(doc: dict, max_memory, max_disk) -> tuple[int, int]:
    """``(max_memory, max_disk)``: the arguments, else the ``[budget]`` table, else defaults."""
    table = doc.get("budget", {})
    if not isinstance(table, dict):
        raise ValueError("budget must be a table: [budget]")
    for key in table:
        if key not in BUDGET_KEYS:
            raise ValueError(f"unknown key budget.{key}; allowed: {', '.join(BUDGET_KEYS)}")
    mem = _budget.parse_size("budget.memory", table["memory"]) if "memory" in table else None
    disk = _budget.parse_size("budget.disk", table["disk"]) if "disk" in table else None
    return _budget.resolve(
        max_memory if max_memory is not None else mem, max_disk if max_disk is not None else disk
    )


def rtol_of(value) -> float | None:
    """``sweep.rtol``: one number in [16 float64 epsilons, 0.1].

    A float32 sweep needs at least 16 float32 epsilons; ``run_sweep`` checks
    that before it writes anything (the precision is chosen when it runs).
    """
    if value is None:
        return None
    if isinstance(value, (bool, str, list, dict)):
        raise ValueError(f"sweep.rtol must be one number; got {value!r}")
    lowest = 16 * float(np.finfo(np.float64).eps)
    try:
        return _validate.check_rtol(value, lowest, "float64")
    except ValueError as err:
        raise ValueError(f"sweep.{err}") from None
