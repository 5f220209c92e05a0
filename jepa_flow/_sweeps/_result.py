"""``SweepResult``: what ``run_sweep`` and ``load_sweep`` both return.

A sweep's rows live in chunk files on disk (a grid can hold 1e8 rows), so the
result is a handle: the directory, the configuration, the counts of the call
that produced it, and columns read on demand (``result["t_star"]``, cached).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from ._config import SweepConfig


@dataclasses.dataclass(frozen=True)
class SweepResult:
    r"""A sweep's results on disk.

    Attributes:
        path: the sweep directory.
        config: its ``SweepConfig``.
        n_configs: rows in the grid.
        n_chunks: chunk files in the grid.
        computed: rows computed by the call that returned this (0 for ``load_sweep``).
        skipped: chunks found already done by that call (all of them for ``load_sweep``).
        failed: rows with ``ok`` False (unsolved: stored as NaN), among those
            computed (``run_sweep``) or in the whole sweep (``load_sweep``).
        seconds: wall time of the call's computation (0 for ``load_sweep``).

    Columns: ``result[name]`` (or ``result.columns()`` for all of them, and
    ``result.names``) reads one row per configuration, in configuration order;
    the names are listed in ``load_sweep``'s docstring.

    Examples:
        >>> import tempfile, jepa_flow as jf
        >>> cfg = jf.parse_sweep_config(
        ...     '[sweep]\nobjective = "jepa"\ndepth = [1, 4]\nlam = [1.0, 0.8]\n'
        ...     'var = 1.0\neps = 1e-3'
        ... )
        >>> out = tempfile.mkdtemp()
        >>> res = jf.run_sweep(cfg, out)
        >>> res.n_configs, res.computed, res.failed
        (4, 4, 0)
        >>> jf.load_sweep(out)["depth"].tolist()
        [1.0, 1.0, 4.0, 4.0]
    """

    path: Path
    config: SweepConfig
    n_configs: int
    n_chunks: int
    computed: int
    skipped: int
    failed: int
    seconds: float
    _cache: dict = dataclasses.field(default_factory=dict, repr=False, compare=False)

    @property
    def configs_per_s(self) -> float:
        """Rows computed per second by the call (0 when nothing was computed)."""
        return self.computed / self.seconds if self.seconds > 0 else 0.0

    def columns(self) -> dict[str, np.ndarray]:
        """Every column, one row per configuration (read once, then cached)."""
        if not self._cache:
            from ._load import read_columns

            self._cache.update(read_columns(self.path))
        return dict(self._cache)

    @property
    def names(self) -> tuple[str, ...]:
        """The column names."""
        return tuple(self.columns())

    def __getitem__(self, name: str) -> np.ndarray:
        cols = self.columns()
        if name not in cols:
            raise KeyError(f"no column {name!r} in this sweep; columns: {sorted(cols)}")
        return cols[name]

    def __contains__(self, name: str) -> bool:
        return name in self.columns()

    def __iter__(self):
        return iter(self.names)

    def keys(self) -> tuple[str, ...]:
        """The column names (so ``dict(result)`` gives every column)."""
        return self.names
