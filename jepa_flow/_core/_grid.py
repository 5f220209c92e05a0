"""Results by name: select members of a ``seed x depth x eta`` grid by their values.

A training run's arrays lead with the grid axes ``[seed, depth, eta, ...]``
(``S, D, E``). ``select`` turns named values into positions and returns a
``Selection``: a read-only view whose attributes are the result's own,
indexed along the grid axes. As in xarray, a single value drops its axis and
a sequence of values keeps it (in the order given).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

GRID = ("seed", "depth", "eta")
# eta values are floats: a value within this relative distance of a grid value selects it
_ETA_RTOL = 1e-12

__all__ = ["GRID", "Selection", "grid_positions", "import_xarray", "select", "take_grid"]


def import_xarray(what: str):
    """The ``xarray`` module, or an ``ImportError`` that says how to install it."""
    try:
        import xarray
    except ImportError:
        raise ImportError(
            f"{what} needs xarray, an optional dependency: "
            "pip install 'jepa_flow[xarray]' (or pip install xarray)"
        ) from None
    return xarray


def _position(name: str, grid: np.ndarray, value) -> int:
    if name == "eta":
        hits = np.flatnonzero(np.isclose(grid, float(value), rtol=_ETA_RTOL, atol=0.0))
    else:
        hits = np.flatnonzero(grid == value)
    if hits.size == 0:
        values = ", ".join(f"{x:g}" for x in grid)
        raise ValueError(f"{name}={value!r} is not on the grid; its {name} values are [{values}]")
    return int(hits[0])


def grid_positions(coords: Mapping[str, np.ndarray], selection: Mapping[str, Any]) -> dict:
    """Positions of the selected values: an int (the axis is dropped) or an int array.

    ``coords`` maps each grid axis to its values; ``selection`` maps an axis to
    None (keep it whole), a value, or a sequence of values. Raises a
    ``ValueError`` naming the axis for an unknown axis or a value off the grid.

    Examples:
        >>> coords = {"seed": np.array([0, 1]), "depth": np.array([1, 2]), "eta": np.array([0.1])}
        >>> grid_positions(coords, {"depth": 2, "seed": [1, 0]})
        {'seed': array([1, 0]), 'depth': 1, 'eta': array([0])}
        >>> grid_positions(coords, {"depth": 3})
        Traceback (most recent call last):
        ...
        ValueError: depth=3 is not on the grid; its depth values are [1, 2]
    """
    unknown = sorted(set(selection) - set(GRID))
    if unknown:
        raise ValueError(f"unknown grid axes {unknown}; the axes are {list(GRID)}")
    out = {}
    for name in GRID:
        grid = np.asarray(coords[name])
        value = selection.get(name)
        if value is None:
            out[name] = np.arange(grid.size)
        elif np.ndim(value) == 0:
            out[name] = _position(name, grid, value)
        else:
            out[name] = np.array([_position(name, grid, v) for v in value], dtype=int)
    return out


def take_grid(x, positions: Mapping[str, Any], axes=GRID):
    """``x`` indexed along its leading ``axes`` by ``positions`` (an int drops the axis)."""
    x = np.asarray(x)
    at = 0
    for name in axes:
        x = np.take(x, positions[name], axis=at)
        at += np.ndim(positions[name])
    return x


def _grid_shape(coords) -> tuple[int, ...]:
    return tuple(np.asarray(coords[name]).size for name in GRID)


class Selection:
    """Members of a result selected by grid values (``TrainResult.sel``, ``Comparison.sel``).

    Every attribute of the result is available, indexed along the grid axes
    ``[seed, depth, eta]``: a selected single value drops its axis, a
    sequence keeps it. Attributes without those axes (the configuration, the
    data, per-feature parameters) are the result's own. ``dims`` names the
    grid axes left, ``coords`` the selected values.

    Examples:
        >>> import jepa_flow as jf
        >>> data = jf.gaussian(Sxx=[2.0, 1.0], Syx=[1.0, 0.8])
        >>> r = jf.train(data, jf.TrainConfig(depth=[1, 2], eta=[0.1, 0.2], steps=50, n_t=5))
        >>> s = r.sel(depth=2, eta=[0.2, 0.1])
        >>> s
        Selection of TrainResult (seed: 1, depth=2, eta: 2)
        >>> s.dims, s.t_star.shape  # [seed, eta, feature]
        (('seed', 'eta'), (1, 2, 2))
    """

    def __init__(self, source, positions: dict, coords: dict, special: Mapping[str, Callable]):
        self._source = source
        self._positions = positions
        self._special = special
        picked = {k: np.asarray(coords[k])[positions[k]] for k in GRID}
        self.coords = {k: v.item() if v.ndim == 0 else v for k, v in picked.items()}
        self.dims = tuple(k for k in GRID if np.ndim(positions[k]))
        self._grid = _grid_shape(coords)

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        value = getattr(self._source, name)
        if name in self._special:
            return self._special[name](value, self._positions)
        if isinstance(value, np.ndarray) and value.shape[:3] == self._grid and value.ndim >= 3:
            return take_grid(value, self._positions)
        if hasattr(value, "shape") and tuple(value.shape[:3]) == self._grid and value.ndim >= 3:
            return take_grid(np.asarray(value), self._positions)
        return value

    def __dir__(self):
        return sorted(set(dir(self._source)) | {"coords", "dims"})

    def __repr__(self) -> str:
        at = ", ".join(
            f"{k}={self.coords[k]!r}" if k not in self.dims else f"{k}: {self.coords[k].size}"
            for k in GRID
        )
        return f"Selection of {type(self._source).__name__} ({at})"


def select(source, coords: dict, selection: dict, special: Mapping[str, Callable] = {}):
    """A ``Selection`` of ``source`` (whose grid axes have the values ``coords``)."""
    return Selection(source, grid_positions(coords, selection), coords, special)
