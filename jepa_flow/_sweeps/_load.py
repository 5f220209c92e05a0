"""Reading sweep results: ``load_sweep`` and the sub-grid reader for figures.

Pure numpy: no JAX computation, so loading needs neither x64 nor a device.
Rows follow the configuration order of the sweep's kind (``_kind``: C-order
product of the axes, ``objective`` slowest); the files are read through
``_store``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ._kind import SweepKind
from ._result import SweepResult
from ._store import Store


def load_sweep(path: str | os.PathLike) -> SweepResult:
    """The ``SweepResult`` of a finished sweep directory (the type ``run_sweep`` returns).

    Columns (``result[name]``), one row per configuration, in configuration
    order (C-order product of the axes in ``config.toml``, ``objective``
    slowest): every axis (``objective`` and ``method`` as strings), the
    derived feature parameters (``lam, rho, var``, or ``lam_a, rho_a, var_a,
    lam_b, rho_b, var_b`` for pairs) and the outputs: ``t_star, wbar_star,
    ok`` or, for pairs, ``t_star_a, t_star_b, wbar_star_a, wbar_star_b,
    t_ratio`` (``t_star_b / t_star_a``), ``first`` (int8: 0 when A is learned
    first, 1 when B is, 2 for equal times) and ``ok`` (False where an ODE
    solve failed; its times are NaN). A ``flow = "general"`` sweep has
    ``target`` and ``init_ratio`` (``tau``, ``c``: NaN where they do not apply)
    and the outputs ``t_star, wbar_final, collapsed, ok`` (pairs: per feature,
    plus ``first`` and ``t_ratio``); see ``jepa_flow._sweeps._general``. A
    ``[validity]`` sweep has per-theory scores (``jepa_flow._sweeps._validity``).

    Pure numpy (no JAX computation). Raises ``ValueError`` when chunks are
    missing (the run was interrupted: run the same command again).

    Examples:
        Critical times of features A and B of theory §4 for both objectives
        at depth 4, one row per configuration (``objective`` slowest):

        >>> import tempfile
        >>> import numpy as np
        >>> import jepa_flow as jf
        >>> config = jf.parse_sweep_config('''
        ... [sweep]
        ... objective = ["jepa", "mae"]
        ... depth = 4
        ... lam = [1.0, 0.8]
        ... rho = [0.5, 0.8]
        ... eps = 1e-3
        ... ''')
        >>> tmp = tempfile.TemporaryDirectory()
        >>> _ = jf.run_sweep(config, tmp.name + "/grid")
        >>> result = jf.load_sweep(tmp.name + "/grid")
        >>> print(result["objective"])
        ['jepa' 'jepa' 'jepa' 'jepa' 'mae' 'mae' 'mae' 'mae']
        >>> print(result["lam"], result["rho"])
        [1.  1.  0.8 0.8 1.  1.  0.8 0.8] [0.5 0.8 0.5 0.8 0.5 0.8 0.5 0.8]
        >>> t = result["t_star"].reshape(2, 2, 2)  # [objective, lam, rho]
        >>> print("A:", t[:, 0, 0].round(2), "B:", t[:, 1, 1].round(2))  # [jepa, mae]
        A: [43985.88    59.02] B: [43056.37    73.86]
        >>> bool(result["ok"].all())
        True
        >>> tmp.cleanup()
    """
    store = Store(path)
    store.check_complete()
    config, n_chunks = store.config, len(store.plan)
    ok = store.column("ok")  # only this column: a sweep can be large
    failed = int(ok.size - np.count_nonzero(ok))
    counts = dict(computed=0, skipped=n_chunks, failed=failed, seconds=0.0)
    return SweepResult(
        Path(path), config, config.size, n_chunks, **counts, _cache={"ok": ok},
        _opened={"store": store},
    )  # fmt: skip


def read_columns(path, names=None) -> dict[str, np.ndarray]:
    """Columns of a finished sweep directory, one row per configuration.

    ``names`` (default: all) selects the columns; they are read one at a time.
    """
    result = load_sweep(path)
    return {name: result[name] for name in result.names if names is None or name in names}


def load_sweep_slice(path, keep) -> tuple[SweepKind, SweepKind, dict[str, np.ndarray]]:
    """Results on a sub-grid, reading only the chunks it touches (memory ~ sub-grid).

    Every numeric axis not named in ``keep`` is held at its first value
    (``objective`` and ``method`` are always kept; ``SweepKind.subgrid``).
    Returns ``(full_config, sub_config, results)`` with ``results`` laid out
    like ``load_sweep`` for ``sub_config``. Used for the figures of sweeps
    too large to load whole.
    """
    store = Store(path)
    config = store.config
    sub = config.subgrid(keep)
    store.check_complete()
    full, part = config.grid, sub.grid
    selection = {n: np.arange(len(part.values(n))) for n in full.names}  # held: the first
    rows = full.rows(selection)
    result = sub.parameters()
    for name in store.outputs:
        result[name] = store.rows(name, rows)
    return config, sub, result
