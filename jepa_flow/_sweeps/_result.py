"""``SweepResult``: what ``run_sweep`` and ``load_sweep`` both return.

A sweep's rows live on disk (a grid can hold 1e8 rows), so the result is a
handle: the directory, the configuration, the counts of the call that
produced it, and a read-only mapping of column name -> numpy array whose
columns are read on demand, one at a time (and then cached). ``sel`` picks
rows by axis values; ``to_xarray`` lays the columns out over the grid's axes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np

from ._kind import SweepKind
from ._store import Store

XARRAY_MISSING = (
    "SweepResult.to_xarray needs xarray, an optional dependency: "
    "pip install 'jepa_flow[xarray]' (or pip install xarray)"
)


@dataclasses.dataclass(frozen=True)
class SweepResult(Mapping):
    r"""A sweep's results on disk: a read-only mapping of column name -> numpy array.

    Attributes:
        path: the sweep directory.
        config: its configuration (a ``SweepKind``).
        n_configs: rows in the grid.
        n_chunks: chunks in the grid.
        computed: rows computed by the call that returned this (0 for ``load_sweep``).
        skipped: chunks found already done by that call (all of them for ``load_sweep``).
        failed: rows with ``ok`` False (unsolved: stored as NaN), among those
            computed (``run_sweep``) or in the whole sweep (``load_sweep``).
        seconds: wall time of the call's computation (0 for ``load_sweep``).

    Columns: ``result[name]`` reads one column, one row per configuration in
    configuration order (the names are listed in ``load_sweep``'s
    docstring); ``len(result)``, ``list(result)``, ``result.items()`` and
    ``dict(result)`` work as for any mapping (``items`` reads every column,
    one at a time; ``result.columns()`` reads them all at once).

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
        >>> len(res), "t_star" in res, list(res)[-3:]
        (11, True, ['t_star', 'wbar_star', 'ok'])
        >>> res.sel(depth=4, lam=0.8)["t_star"].round(2)
        array([43056.37])
    """

    path: Path
    config: SweepKind
    n_configs: int
    n_chunks: int
    computed: int
    skipped: int
    failed: int
    seconds: float
    _cache: dict = dataclasses.field(default_factory=dict, repr=False, compare=False)
    _opened: dict = dataclasses.field(default_factory=dict, repr=False, compare=False)

    @property
    def configs_per_s(self) -> float:
        """Rows computed per second by the call (0 when nothing was computed)."""
        return self.computed / self.seconds if self.seconds > 0 else 0.0

    def _store(self) -> Store:
        if "store" not in self._opened:
            store = Store(self.path)
            store.check_complete()
            self._opened["store"] = store
        return self._opened["store"]

    @property
    def names(self) -> tuple[str, ...]:
        """The column names: the parameters, then the outputs."""
        return self.config.parameter_names + tuple(o.name for o in self.config.outputs())

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._cache:
            if name in self.config.parameter_names:
                self._cache[name] = self.config.parameters([name])[name]
            elif name in self.names:
                self._cache[name] = self._store().column(name)
            else:
                raise KeyError(f"no column {name!r} in this sweep; columns: {sorted(self.names)}")
        return self._cache[name]

    def __contains__(self, name) -> bool:
        return name in self.names

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)

    def columns(self) -> dict[str, np.ndarray]:
        """Every column, one row per configuration (read once, then cached)."""
        return {name: self[name] for name in self.names}

    def sel(self, **axes) -> dict[str, np.ndarray]:
        """The rows whose axes take the given values: every column at those rows.

        Each keyword names an axis of the grid (``config.grid.names``) and
        gives one value or a list of them; numbers match to a relative 1e-9.
        Rows stay in configuration order; only the chunks that hold them are
        read. Raises ``ValueError`` for an unknown axis or a value not on it.
        """
        grid = self.config.grid
        rows = grid.rows({name: grid.positions(name, value) for name, value in axes.items()})
        out = self.config.parameters(rows=rows)
        store = self._store()
        for output in self.config.outputs():
            out[output.name] = store.rows(output.name, rows)
        return out

    def to_xarray(self):
        """The columns as an ``xarray.Dataset`` over the grid's axes (needs xarray).

        Dimensions are the grid's axes (``config.grid.names``) with their
        values as coordinates, plus ``feature`` for per-feature outputs;
        every other column is a data variable. Where the grid is not a full
        product (a general-flow sweep: ``tau`` only under target ``"ema"``),
        absent combinations hold NaN (floats), False (booleans) or -1
        (integers). Reads every column into memory.

        Examples:
            >>> import tempfile, jepa_flow as jf
            >>> cfg = jf.parse_sweep_config(
            ...     '[sweep]\\nobjective = ["jepa", "mae"]\\ndepth = [1, 4]\\n'
            ...     'lam = 1.0\\nvar = [1.0, 2.0]\\neps = 1e-3'
            ... )
            >>> ds = jf.run_sweep(cfg, tempfile.mkdtemp()).to_xarray()  # doctest: +SKIP
            >>> ds.t_star.sel(objective="mae", depth=4).squeeze().values.round(2)  # doctest: +SKIP
            array([59.11, 59.02])
        """
        try:
            import xarray as xr
        except ImportError:
            raise ImportError(XARRAY_MISSING) from None
        grid = self.config.grid
        dims = {o.name: o.dims for o in self.config.outputs()}
        data = {}
        for name in self.names:
            if name not in grid.names:
                column = self[name]
                data[name] = (grid.names + dims.get(name, ()), grid.embed(column, _fill(column)))
        attrs = {"kind": self.config.name, "fingerprint": self.config.fingerprint()}
        return xr.Dataset(data, coords=dict(grid.axes), attrs={**attrs, "path": str(self.path)})


def _fill(column: np.ndarray):
    """What absent grid points hold: NaN, False or -1 by dtype."""
    kind = column.dtype.kind
    return np.nan if kind in "fc" else False if kind == "b" else -1
