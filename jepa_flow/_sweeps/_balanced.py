"""Sweeps of critical times of the balanced flow: ``SweepConfig`` (theory §3-§5).

A sweep is the Cartesian product of every parameter's values. Each parameter
takes a single value, a list, or a generated grid::

    [sweep]
    objective = ["jepa", "mae"]
    depth = [1, 2, 4, 8]
    lam = {logspace = [-2, 1, 64]}        # 10^-2 .. 10^1, 64 values
    rho = {linspace = [0.05, 0.95, 64]}   # or var = ...  (rho = lam / var)
    eps = 1e-3
    fraction = 0.5                        # optional, default 0.5
    method = "exact"                      # optional: "exact", "ode", "series"
    rtol = 1e-10                          # optional: tolerance of method "ode" (one value)

A pair sweep compares two features trained together (theory §4, learning
order). ``[sweep]`` then holds the shared settings only (objective, depth, eps,
fraction, method) and ``[pair]`` describes feature A and a grid for feature B,
either absolutely or as ratios to A::

    [pair]
    lam_a = 1.0
    var_a = 2.0                           # or rho_a
    lam_b = {logspace = [-1, 0.5, 48]}    # or lam_ratio = lam_b / lam_a
    rho_b = {linspace = [0.05, 0.95, 48]} # or var_b, rho_ratio, var_ratio

Every key of ``[pair]`` may be a grid too.

An optional ``[budget]`` table raises the memory and disk budgets (see
``jepa_flow._core._budget``; defaults 4 GiB and 20 GiB)::

    [budget]
    memory = "16G"                        # parameter grids and one chunk in memory
    disk = "1T"                           # the results (17 bytes per configuration,
                                          # 42 for a pair sweep)

The grid's size is counted from its axes before any axis is materialized, so a
typo such as ``n = 1e9`` is refused with the estimate in milliseconds. The
budget is not part of the sweep's identity: raising it never invalidates
results already written. The configurations are ordered as
the C-order product of ``AXES`` (or ``PAIR_AXES``) restricted to the keys
present: the first axis varies slowest, the last fastest. ``objective`` and
``method`` are static (compiled in) and always come first, so every chunk of a
sweep lies within one (objective, method) group.

Each chunk is one call of a jitted ``jax.shard_map`` of the vmapped
critical-time kernel over a one-axis ``Mesh`` of all local devices, so the
same code fills 1 CPU, 8 GPUs or a TPU host; every chunk is padded to the
same shape (one compilation per group). Chunk parameters are generated from
the flat index, so memory is bounded by the chunk size, not the grid size.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .._core import _budget
from .._theory._critical_time import resolve_rtol
from ._balanced_chunk import (
    axis_table,
    derived_features,
    device_function,
    in_dtype,
    inputs_on_devices,
    kernel_function,
    kernel_inputs,
    on_devices,
)
from ._kind import Grid, Output, SweepKind
from ._values import (
    MAX_GRID,
    STATIC,
    check_values,
    count_values,
    grid_values,
    one_of,
    rtol_of,
)

AXES = ("objective", "method", "depth", "eps", "fraction", "lam", "rho", "var")
PAIR_SHARED = ("objective", "method", "depth", "eps", "fraction")
PAIR_KEYS = (
    "lam_a",
    "rho_a",
    "var_a",
    "lam_b",
    "lam_ratio",
    "rho_b",
    "var_b",
    "rho_ratio",
    "var_ratio",
)
PAIR_AXES = PAIR_SHARED + PAIR_KEYS
DEFAULTS = {"method": "exact", "fraction": 0.5}
FLOWS = ("balanced", "general")
# Configurations per chunk by method (measured on 2 CPU cores: the closed forms
# gain from large chunks; the vmapped ODE solve is fastest around 4096, where
# its per-step state stays in cache).
DEFAULT_CHUNK = {"exact": 1 << 17, "series": 1 << 17, "ode": 1 << 12}
OUTPUTS = (Output("t_star"), Output("wbar_star"), Output("ok", "bool"))
PAIR_OUTPUTS = (
    Output("t_star_a"),
    Output("t_star_b"),
    Output("wbar_star_a"),
    Output("wbar_star_b"),
    Output("first", "int8"),
    Output("t_ratio"),
    Output("ok", "bool"),
)
# Working memory per configuration and feature while a chunk runs (inputs on host
# and device, the solver's state, outputs), an upper estimate; two chunks are in
# flight at a time.
WORK_BYTES = {"exact": 512, "series": 512, "ode": 4096}


@dataclasses.dataclass(frozen=True)
class SweepConfig(SweepKind):
    """A validated sweep grid of critical times of the balanced flow.

    Attributes:
        axes: ordered ``(name, values)``; values is a tuple of strings for the
            static axes and a 1-D float64 array otherwise.
        pair: True for a pair sweep (``[pair]`` table present).
        text: the configuration file as given (for the output directory).
        rtol: relative tolerance of ``method = "ode"`` (None: the default,
            1e-12); part of the fingerprint when given.

    Examples:
        A pair sweep: the shared settings in ``[sweep]``, the two features in
        ``[pair]``; axes that are absent from the file are not in ``names``.

        >>> import jepa_flow as jf
        >>> config = jf.parse_sweep_config('''
        ... [sweep]
        ... objective = "jepa"
        ... depth = [1, 2, 4, 8]
        ... eps = 1e-3
        ... [pair]
        ... lam_a = 1.0
        ... var_a = 2.0
        ... lam_ratio = {linspace = [0.5, 1.5, 3]}
        ... rho_b = [0.6, 0.8]
        ... ''')
        >>> config.pair, config.names[-4:]
        (True, ('lam_a', 'var_a', 'lam_ratio', 'rho_b'))
        >>> config.shape, config.size, config.groups
        ((1, 1, 4, 1, 1, 1, 1, 3, 2), 24, [('jepa', 'exact')])

        The last axis varies fastest; ``rows`` derives feature B's parameters:

        >>> rows = config.rows(0, 3)  # the first three configurations
        >>> for key in ("lam_b", "rho_b", "var_b"):
        ...     print(key, rows[key].round(4))
        lam_b [0.5 0.5 1. ]
        rho_b [0.6 0.8 0.6]
        var_b [0.8333 0.625  1.6667]
    """

    axes: tuple
    pair: bool
    text: str = ""
    rtol: float | None = None
    budget: tuple = (_budget.DEFAULT_MAX_MEMORY, _budget.DEFAULT_MAX_DISK)

    name = "balanced"
    title = "flow = 'balanced'"
    plot = "jepa_flow._plotting._sweep_figure:write_sweep_figure"

    # ---------------------------------------------------------------- parsing

    def failure_message(self, precision: str) -> str:
        """Balanced rows fail by a solver failure (method ode) or by leaving the float range."""
        why = "a failed solve or " if "ode" in dict(self.axes).get("method", ()) else ""
        return (
            f"configurations not computed (NaN, ok=False: {why}a time or fixed point "
            f"outside the {precision} range)"
        )

    @classmethod
    def claims(cls, doc: dict) -> bool:
        sweep = doc.get("sweep")
        return isinstance(sweep, dict) and sweep.get("flow", "balanced") != "general"

    @classmethod
    def from_toml(cls, doc: dict, text: str, *, limits: tuple, check: bool) -> SweepConfig:
        sweep, pair, rtol = sweep_tables(doc)
        allowed = PAIR_SHARED if pair is not None else AXES
        for key in sweep:
            if key not in allowed:
                hint = (
                    " (feature parameters of a pair sweep belong in [pair])" if key in AXES else ""
                )
                raise ValueError(f"unknown key sweep.{key}{hint}; allowed: {', '.join(allowed)}")
        sweep = {**DEFAULTS, **sweep}
        for key in ("objective", "depth", "eps"):
            if key not in sweep:
                raise ValueError(f"sweep.{key} is required")
        features = {k: v for k, v in sweep.items() if k not in PAIR_SHARED}
        table = {
            **{k: v for k, v in sweep.items() if k in PAIR_SHARED},
            **_features(features, pair),
        }
        order = PAIR_AXES if pair is not None else AXES
        row_bytes = sum(o.row_bytes() for o in (PAIR_OUTPUTS if pair is not None else OUTPUTS))
        axes = counted_axes(table, order, pair is not None, limits if check else None, row_bytes)
        config = cls(axes=axes, pair=pair is not None, text=text, rtol=rtol, budget=limits)
        check_rho_needs_positive_lam(dict(config.axes))
        return config

    # ---------------------------------------------------------------- grid

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.axes)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(values) for _, values in self.axes)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def groups(self) -> list[tuple[str, str]]:
        """The (objective, method) pairs in sweep order."""
        values = dict(self.axes)
        return [(o, m) for o in values["objective"] for m in values["method"]]

    @property
    def numeric_axes(self) -> tuple:
        return tuple((n, v) for n, v in self.axes if n not in STATIC)

    @property
    def group_size(self) -> int:
        """Configurations per (objective, method) group."""
        return math.prod(len(v) for _, v in self.numeric_axes)

    def make_grid(self) -> Grid:
        return Grid.product(self.axes)

    def derived(self, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``lam, rho, var`` (or both features' for a pair) completed from the axes."""
        return derived_features(columns, self.pair)

    def canonical(self) -> dict:
        """The grid as plain JSON data (what identifies a sweep's results)."""
        out = {
            "pair": self.pair,
            "axes": [
                [n, [v if isinstance(v, str) else float(v) for v in vals]] for n, vals in self.axes
            ],
        }
        if self.rtol is not None:
            out["rtol"] = self.rtol
        return out

    def describe(self) -> str:
        shape = " x ".join(f"{n} {len(v)}" for n, v in self.axes if len(v) > 1) or "one point"
        return f"{self.size} configurations ({shape})"

    def rows(self, lo: int, hi: int) -> dict[str, np.ndarray]:
        """Numeric parameters of configurations ``lo:hi`` of any (objective, method) group.

        Returns one float64 array per numeric axis plus the derived kernel
        inputs: ``lam, var, rho`` (plain) or ``lam_a, var_a, rho_a, lam_b,
        var_b, rho_b`` (pair). Memory is proportional to ``hi - lo`` only.
        """
        axes = self.numeric_axes
        idx = np.unravel_index(np.arange(lo, hi), [len(v) for _, v in axes])
        out = {name: vals[i] for (name, vals), i in zip(axes, idx)}
        out.update(derived_features(out, self.pair))
        return out

    def subgrid(self, keep) -> SweepConfig:
        axes = tuple((n, v if n in STATIC or n in keep else v[:1]) for n, v in self.axes)
        return SweepConfig(axes=axes, pair=self.pair, text=self.text)

    # ---------------------------------------------------------------- running

    def outputs(self) -> tuple[Output, ...]:
        return PAIR_OUTPUTS if self.pair else OUTPUTS

    def group_sizes(self) -> tuple[int, ...]:
        return (self.group_size,) * len(self.groups)

    def default_chunk(self) -> int:
        return min(DEFAULT_CHUNK[method] for _, method in self.groups)

    def work(self, chunk_size: int) -> tuple[int, int]:
        features = 2 if self.pair else 1
        per_row = features * max(WORK_BYTES[m] for _, m in self.groups)
        return min(chunk_size, self.group_size), per_row

    def check_runnable(self, dtype) -> None:
        check_rtol(self.rtol, dtype)

    def chunk_function(self, group: int, devices: tuple):
        """Inputs made on the devices in float64, on the host in float32 (``_balanced_chunk``)."""
        objective, method = self.groups[group]
        if not inputs_on_devices():
            dispatch, gather = kernel_function(objective, method, self.pair, devices, self.rtol)

            def start(chunk, padded):
                return dispatch(in_dtype(kernel_inputs(self, chunk.lo, chunk.hi, padded)))

            return start, gather
        names = tuple(n for n, _ in self.numeric_axes)
        tables = on_devices(axis_table(self.numeric_axes), devices)

        def start_on_devices(chunk, padded):
            fn = device_function(objective, method, self.pair, devices, self.rtol, names, padded)
            return fn(np.int64(chunk.lo), np.int64(chunk.rows), *tables)

        return start_on_devices, _gather


def sweep_tables(doc: dict) -> tuple[dict, dict | None, float | None]:
    """``[sweep]`` (less ``rtol`` and ``flow``), ``[pair]`` and ``sweep.rtol``, checked."""
    sweep = dict(doc["sweep"])
    rtol = rtol_of(sweep.pop("rtol", None))
    pair = doc.get("pair")
    if pair is not None and not isinstance(pair, dict):
        raise ValueError("pair must be a table: [pair]")
    flow = sweep.pop("flow", "balanced")
    if flow not in FLOWS:
        raise ValueError(f"sweep.flow must be one of {FLOWS}; got {flow!r}")
    return sweep, pair, rtol


def _features(sweep: dict, pair: dict | None) -> dict:
    """The feature keys (``lam`` and ``rho`` or ``var``, or ``[pair]``'s), checked for presence."""
    if pair is None:
        if "lam" not in sweep:
            raise ValueError("sweep.lam is required")
        one_of(sweep, ("rho", "var"), "sweep", required=True)
        return dict(sweep)
    for key in pair:
        if key not in PAIR_KEYS:
            raise ValueError(f"unknown key pair.{key}; allowed: {', '.join(PAIR_KEYS)}")
    if "lam_a" not in pair:
        raise ValueError("pair.lam_a is required")
    one_of(pair, ("rho_a", "var_a"), "pair (feature A)", required=True)
    one_of(pair, ("lam_b", "lam_ratio"), "pair (feature B)", required=True)
    one_of(pair, ("rho_b", "var_b", "rho_ratio", "var_ratio"), "pair (feature B)", True)
    return dict(pair)


def feature_axes(sweep: dict, pair: dict | None, limits: tuple | None) -> tuple:
    """The feature axes of ``[sweep]`` (``lam, rho | var``) or of ``[pair]``, validated.

    What a general-flow sweep shares with this one: the same keys, checks and
    messages (``limits``: check the axes' memory; None: skip).
    """
    table = _features(sweep, pair)
    order = PAIR_KEYS if pair is not None else ("lam", "rho", "var")
    axes = counted_axes(table, order, pair is not None, limits, None)
    check_rho_needs_positive_lam(dict(axes))
    return axes


def counted_axes(table: dict, order, pair: bool, limits, row_bytes) -> tuple:
    """``(key, values)`` of the keys of ``order`` in ``table``, counted before generated.

    The grid is counted first and refused above ``MAX_GRID`` or, with
    ``limits`` (``(max_memory, max_disk)``), beyond the memory of its axes or
    (with ``row_bytes``) the disk of its results; then each axis is generated
    and range-checked.
    """

    def where(key):
        return f"pair.{key}" if pair and key in PAIR_KEYS else f"sweep.{key}"

    keys = [k for k in order if k in table]
    counts = {k: count_values(where(k), table[k]) for k in keys}
    size = math.prod(counts.values())
    if size > MAX_GRID:
        raise ValueError(f"the grid has {size:.3g} configurations, more than {MAX_GRID:.0e}")
    if limits is not None:
        _budget.check_budget(
            f"the grid's axes ({sum(counts.values())} values)",
            memory=8 * sum(counts.values()),
            max_memory=limits[0],
        )
    if limits is not None and row_bytes is not None:
        shape = " x ".join(str(c) for c in counts.values() if c > 1) or "1"
        _budget.check_budget(
            f"the sweep's results ({size:,} configurations = {shape}, {row_bytes} bytes each)",
            disk=size * row_bytes,
            max_disk=limits[1],
        )
    axes = []
    for key in keys:
        values = grid_values(where(key), key, table[key])
        check_values(where(key), key, values)
        axes.append((key, values))
    return tuple(axes)


def check_rho_needs_positive_lam(values: dict) -> None:
    """A feature given by its ``rho`` needs ``lam > 0`` (so that ``var = lam / rho > 0``)."""
    needs = []  # (lam key whose values must be > 0, why)
    if "rho" in values:
        needs.append(("lam", "rho is given"))
    if "rho_a" in values:
        needs.append(("lam_a", "rho_a is given"))
    if "rho_ratio" in values:
        needs.append(("lam_a", "rho_ratio is given (rho_b = rho_ratio * lam_a / var_a)"))
    if "rho_b" in values or "rho_ratio" in values:
        key = "lam_b" if "lam_b" in values else "lam_a"
        needs.append((key, "feature B is given by its rho"))
    for key, why in needs:
        low = float(np.min(values[key]))
        if low <= 0:
            table = "sweep" if key == "lam" else "pair"
            raise ValueError(f"{table}.{key} must be > 0 when {why}; got {low!r}")


def check_rtol(rtol, dtype) -> None:
    """``sweep.rtol`` within the working dtype's range (None: the default, always fine)."""
    if rtol is not None:
        try:
            resolve_rtol(rtol, dtype)
        except ValueError as err:
            raise ValueError(f"sweep.{err}") from None


def _gather(handle) -> list[np.ndarray]:
    return [np.asarray(x) for x in handle]
