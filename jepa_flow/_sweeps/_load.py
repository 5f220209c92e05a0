"""Reading sweep results: ``load_sweep`` and the sub-grid reader for figures.

Pure numpy: no JAX computation, so loading needs neither x64 nor a device.
Rows follow the configuration order of ``_sweep_config`` (C-order product of
the axes, ``objective`` slowest); outputs come from the chunk files written by
``_sweep.run_sweep``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np

from ._config import STATIC, SweepConfig, parse_config
from ._result import SweepResult
from ._run import _chunk_path, _chunk_plan


def _load_manifest(path: Path) -> tuple[dict, SweepConfig]:
    try:
        manifest = json.loads((path / "manifest.json").read_text())
        config = parse_config((path / "config.toml").read_text(), budget=False)
    except FileNotFoundError:
        raise ValueError(f"{str(path)!r} is not a sweep directory (no manifest.json)") from None
    if manifest["fingerprint"] != config.fingerprint():
        raise ValueError(f"{str(path)!r}: config.toml does not match manifest.json")
    return manifest, config


def load_sweep(path) -> SweepResult:
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
    plus ``first`` and ``t_ratio``); see ``jepa_flow._sweeps._general``.

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
    path = Path(path)
    manifest, config = _load_manifest(path)
    _check_complete(path, config, manifest)
    n_chunks = len(_chunk_plan(config, manifest["chunk_size"]))
    result = SweepResult(path, config, config.size, n_chunks, 0, n_chunks, 0, 0.0)
    ok = read_columns(path, ("ok",))["ok"]  # only this column: a sweep can be large
    failed = int(ok.size - np.count_nonzero(ok))
    return dataclasses.replace(result, failed=failed, _cache=result._cache)


def read_columns(path, names=None) -> dict[str, np.ndarray]:
    """Columns of a finished sweep directory, one row per configuration.

    ``names`` (default: all) selects the columns; the chunk files are opened
    one at a time, so a sweep of any number of chunks can be read.
    """
    path = Path(path)
    manifest, config = _load_manifest(path)
    _check_complete(path, config, manifest)
    params = _parameters(config)
    outputs = [n for n in manifest["outputs"] if names is None or n in names]
    result = {k: v for k, v in params.items() if names is None or k in names}
    parts: dict[str, list] = {name: [] for name in outputs}
    for i, *_ in _chunk_plan(config, manifest["chunk_size"]):
        with np.load(_chunk_path(path, i)) as chunk:
            for name in outputs:
                parts[name].append(chunk[name])
    for name in outputs:
        result[name] = np.concatenate(parts[name])
    return result


def _check_complete(path: Path, config: SweepConfig, manifest: dict) -> None:
    plan = _chunk_plan(config, manifest["chunk_size"])
    missing = [i for i, *_ in plan if not _chunk_path(path, i).exists()]
    if missing:
        raise ValueError(
            f"{str(path)!r}: {len(missing)} of {len(plan)} chunks are missing "
            "(interrupted run: run the same sweep command again to finish it)"
        )


def _parameters(config: SweepConfig) -> dict[str, np.ndarray]:
    """Every axis and derived parameter, one row per configuration of ``config``."""
    if getattr(config, "flow", "balanced") in ("general", "train"):
        return config.parameters()
    m = config.group_size
    params = config.rows(0, m)
    n_groups = len(config.groups)
    result = {
        "objective": np.repeat([o for o, _ in config.groups], m),
        "method": np.repeat([meth for _, meth in config.groups], m),
    }
    result.update({k: np.tile(v, n_groups) for k, v in params.items()})
    return result


def load_sweep_slice(path, keep) -> tuple[SweepConfig, SweepConfig, dict[str, np.ndarray]]:
    """Results on a sub-grid, reading only the chunks it touches (memory ~ sub-grid).

    Every numeric axis not named in ``keep`` is held at its first value
    (``objective`` and ``method`` are always kept). Returns ``(full_config,
    sub_config, results)`` with ``results`` laid out like ``load_sweep`` for
    ``sub_config``. Used for the figures of sweeps too large to load whole.
    """
    path = Path(path)
    manifest, config = _load_manifest(path)
    if getattr(config, "flow", "balanced") in ("general", "train"):
        raise ValueError(f"{str(path)!r}: sub-grids of a {config.flow} sweep: use load_sweep")
    _check_complete(path, config, manifest)
    sub_axes = tuple((n, v if n in STATIC or n in keep else v[:1]) for n, v in config.axes)
    sub = SweepConfig(axes=sub_axes, pair=config.pair, text=config.text)
    index = np.indices(sub.shape).reshape(len(sub.shape), -1)
    flat = np.ravel_multi_index(index, config.shape)
    m, chunk_size = config.group_size, manifest["chunk_size"]
    per_group = math.ceil(m / chunk_size)
    chunk = (flat // m) * per_group + (flat % m) // chunk_size
    offset = (flat % m) % chunk_size
    result = _parameters(sub)
    outputs = {}
    for c in np.unique(chunk):
        sel = chunk == c
        with np.load(_chunk_path(path, int(c))) as part:
            for name in manifest["outputs"]:
                column = part[name]
                if name not in outputs:
                    outputs[name] = np.empty(len(flat), dtype=column.dtype)
                outputs[name][sel] = column[offset[sel]]
    result.update(outputs)
    return config, sub, result
