"""Sweeps of the general per-feature flow (``flow = "general"``; theory §6.1-§6.3, §7.2).

The ``[sweep]`` table takes the keys of a balanced sweep (except ``method``)
plus the start and the target::

    [sweep]
    objective = ["jepa", "mae"]
    flow = "general"
    target = ["stopgrad", "ema"]            # JEPA: stopgrad | ema | frozen (default stopgrad)
    tau = {logspace = [-1, 2, 16]}          # EMA time constant (flow time), >= 0
    c = [0.5, 2.0]                          # frozen teacher's entry (target "frozen")
    init_ratio = {logspace = [-1, 3, 17]}   # v0 / w0; 1 is the balanced start (default 1)
    depth = [1, 2, 4]
    lam = 1.0
    rho = {linspace = [0.1, 0.9, 33]}
    eps = 1e-3
    rtol = 1e-8                             # optional: the integrators' tolerance (one value;
                                            # default 1e-10, EMA 1e-8; 1e-6 in float32)

and a ``[pair]`` table works as for the balanced flow. Combinations that do
not apply collapse instead of multiplying the grid: the sweep is a list of
*groups*, one per (objective, target) that exists (MAE has no target: one
group ``("mae", "none")``), and each group is the product of the axes that
apply to it (``tau`` only under ``ema``, ``c`` only under ``frozen``).
``GeneralSweepConfig.describe()`` gives the count per group; the command line
prints it before running. Groups are chunked one after another; each chunk is
one call of ``general_function`` (theory layer) over all local devices.

The grid's axes are every group's axes together; ``tau`` and ``c`` are NaN
in the groups where they do not apply (``load_sweep``'s columns too).

Outputs per configuration: ``t_star`` (inf where collapsed), ``wbar_final``
(the fixed point reached), ``collapsed``, ``ok``; for pairs the same per
feature (suffix ``_a``, ``_b``) plus ``first`` and ``t_ratio``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .._core import _budget, _validate
from .._theory._general import KERNEL_INPUTS, TARGETS, flow_kind, general_function
from .._theory._targets import frozen_teacher_lam
from ._balanced import PAIR_KEYS, SweepConfig, check_rtol, feature_axes, sweep_tables
from ._balanced_chunk import derived_features, in_dtype
from ._kind import Grid, Output, SweepKind
from ._values import check_values, grid_values

SHARED = ("objective", "target", "depth", "eps", "fraction", "init_ratio", "tau", "c")
FEATURE = ("lam", "rho", "var")
DEFAULTS = {"target": "stopgrad", "fraction": 0.5, "init_ratio": 1.0}
NO_TARGET = "none"
OUTPUTS = (
    Output("t_star"),
    Output("wbar_final"),
    Output("collapsed", "bool"),
    Output("ok", "bool"),
)
PAIR_OUTPUTS = (
    Output("t_star_a"),
    Output("t_star_b"),
    Output("wbar_final_a"),
    Output("wbar_final_b"),
    Output("collapsed_a", "bool"),
    Output("collapsed_b", "bool"),
    Output("first", "int8"),
    Output("t_ratio"),
    Output("ok", "bool"),
)
# Configurations per chunk: the explicit quadrature gains from large chunks; the
# implicit EMA solve has a larger per-member state and many more steps.
DEFAULT_CHUNK = 1 << 14
WORK_BYTES = 4096  # memory per configuration in flight (solver state, as the balanced ODE)
_FILL = {"lam": 1.0, "var": 2.0, "depth": 1.0, "eps": 1e-2, "init_ratio": 1.0}
_FILL.update(tau=0.0, fraction=0.5)
_NUMERIC = ("depth", "eps", "fraction", "init_ratio", "tau", "c")


@dataclasses.dataclass(frozen=True)
class GeneralSweepConfig(SweepKind):
    """A validated general-flow sweep: one balanced-style grid per (objective, target).

    Attributes:
        groups: ``(objective, target)`` per group (``target`` is ``"none"`` for MAE).
        grids: one ``SweepConfig`` per group holding that group's numeric axes.
        pair: True for a pair sweep.
        text: the configuration file as given.

    Examples:
        >>> import jepa_flow as jf
        >>> config = jf.parse_sweep_config('''
        ... [sweep]
        ... objective = ["jepa", "mae"]
        ... flow = "general"
        ... target = ["stopgrad", "ema"]
        ... tau = [0.1, 1.0, 10.0]
        ... init_ratio = [1.0, 10.0]
        ... depth = [1, 2]
        ... lam = 1.0
        ... rho = [0.5, 0.8]
        ... eps = 1e-3
        ... ''')
        >>> print(config.describe())
        40 configurations (jepa/stopgrad 8, jepa/ema 24, mae 8)
    """

    groups: tuple
    grids: tuple = dataclasses.field(repr=False)
    pair: bool = False
    text: str = dataclasses.field(default="", repr=False)
    budget: tuple = (_budget.DEFAULT_MAX_MEMORY, _budget.DEFAULT_MAX_DISK)
    rtol: float | None = None  # the kernels' tolerance (None: their dtype's default)

    name = "general"
    title = "flow = 'general'"

    @classmethod
    def claims(cls, doc: dict) -> bool:
        sweep = doc.get("sweep")
        return isinstance(sweep, dict) and sweep.get("flow") == "general"

    @classmethod
    def from_toml(cls, doc: dict, text: str, *, limits: tuple, check: bool) -> GeneralSweepConfig:
        sweep, pair, rtol = sweep_tables(doc)
        allowed = SHARED if pair is not None else SHARED + FEATURE
        for key in sweep:
            if key not in allowed:
                raise ValueError(
                    f"unknown key sweep.{key} for flow = 'general'; "
                    f"allowed: flow, {', '.join(allowed)}"
                )
        sweep = {**DEFAULTS, **sweep}
        for key in ("objective", "depth", "eps"):
            if key not in sweep:
                raise ValueError(f"sweep.{key} is required")
        groups = _groups(sweep)
        numeric = {k: _numeric(k, sweep[k]) for k in _NUMERIC if k in sweep}
        features = feature_axes({k: sweep[k] for k in FEATURE if k in sweep}, pair, limits)
        grids = []
        for objective, target in groups:
            keys = ("depth", "eps", "fraction", "init_ratio")
            keys += ("tau",) * (target == "ema") + ("c",) * (target == "frozen")
            axes = (("objective", (objective,)),) + tuple((k, numeric[k]) for k in keys)
            grids.append(SweepConfig(axes=axes + features, pair=pair is not None, text=text))
        config = cls(tuple(groups), tuple(grids), pair is not None, text, limits, rtol)
        if check:
            _budget.check_budget(
                f"the sweep's results ({config.describe()}, {config.row_bytes()} bytes each)",
                disk=config.disk_bytes,
                max_disk=limits[1],
            )
        return config

    @property
    def size(self) -> int:
        return sum(g.size for g in self.grids)

    def describe(self) -> str:
        parts = [
            f"{o}/{t} {g.size}" if t != NO_TARGET else f"{o} {g.size}"
            for (o, t), g in zip(self.groups, self.grids)
        ]
        return f"{self.size} configurations ({', '.join(parts)})"

    def canonical(self) -> dict:
        out = {
            "flow": "general",
            "pair": self.pair,
            "groups": [[o, t, g.canonical()["axes"]] for (o, t), g in zip(self.groups, self.grids)],
        }
        if self.rtol is not None:
            out["rtol"] = self.rtol
        return out

    def make_grid(self) -> Grid:
        """Every group's axes together (``tau``, ``c``: NaN where they do not apply)."""
        per_group = []
        for (objective, target), grid in zip(self.groups, self.grids):
            axes = dict(grid.axes)
            axes.update(objective=np.asarray([objective]), target=np.asarray([target]))
            for key in ("tau", "c"):
                axes.setdefault(key, np.asarray([np.nan]))
            per_group.append(axes)
        features = tuple(n for n, _ in self.grids[0].axes if n in FEATURE or n in PAIR_KEYS)
        names = ("objective", "target") + _NUMERIC + features
        union = [(n, _unique(np.concatenate([np.asarray(a[n]) for a in per_group]))) for n in names]
        blocks = [[_positions(values, np.asarray(a[n])) for n, values in union] for a in per_group]
        return Grid(union, blocks)

    def derived(self, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return derived_features(columns, self.pair)

    def outputs(self) -> tuple[Output, ...]:
        return PAIR_OUTPUTS if self.pair else OUTPUTS

    def group_sizes(self) -> tuple[int, ...]:
        return tuple(g.size for g in self.grids)

    def default_chunk(self) -> int:
        return DEFAULT_CHUNK

    def work(self, chunk_size: int) -> tuple[int, int]:
        features = 2 if self.pair else 1
        return min(chunk_size, max(g.size for g in self.grids)), features * WORK_BYTES

    def check_runnable(self, dtype) -> None:
        check_rtol(self.rtol, dtype)

    def kernel_inputs(self, group: int, lo: int, hi: int, padded: int) -> list[np.ndarray]:
        """``KERNEL_INPUTS`` of rows ``lo:hi`` of ``group`` (A's then B's for pairs), padded."""
        objective, target = self.groups[group]
        rows = self.grids[group].rows(lo, hi)
        features = ("_a", "_b") if self.pair else ("",)
        out = []
        for f in features:
            lam = rows["lam" + f]
            if objective == "jepa" and target == "frozen":
                lam = frozen_teacher_lam(lam, rows["c"])
            values = {"lam": lam, "var": rows["var" + f], "tau": rows.get("tau", 0.0)}
            for name in KERNEL_INPUTS:
                buf = np.full(padded, _FILL[name], dtype=np.float64)
                buf[: hi - lo] = values[name] if name in values else rows[name]
                out.append(buf)
        return out

    def chunk_function(self, group: int, devices: tuple):
        dispatch, gather = _kernel_function(self, group, devices)

        def start(chunk, padded):
            return dispatch(in_dtype(self.kernel_inputs(group, chunk.lo, chunk.hi, padded)))

        return start, gather


def _groups(sweep: dict) -> list[tuple[str, str]]:
    """``(objective, target)`` per group; checks ``objective``, ``target``, ``tau`` and ``c``."""
    objectives = grid_values("sweep.objective", "objective", sweep["objective"])
    check_values("sweep.objective", "objective", objectives)
    targets = grid_values("sweep.target", "objective", sweep["target"])  # strings, no repeats
    for t in targets:
        if t not in TARGETS:
            raise ValueError(f"sweep.target: target must be one of {TARGETS}; got {t!r}")
    groups = [(o, t) for o in objectives for t in (targets if o == "jepa" else (NO_TARGET,))]
    used = {t for _, t in groups}
    for key, target in (("tau", "ema"), ("c", "frozen")):
        if target in used and key not in sweep:
            raise ValueError(f"sweep.{key} is required when sweep.target includes {target!r}")
        if key in sweep and target not in used:
            raise ValueError(f"sweep.{key} applies only to a JEPA target {target!r}; remove it")
    return groups


def _numeric(key: str, value) -> np.ndarray:
    """One of ``_NUMERIC``'s values, range-checked."""
    grid = grid_values(f"sweep.{key}", key, value)
    if key == "init_ratio":
        _validate.as_positive("sweep.init_ratio", grid)
    elif key == "tau":
        if (np.asarray(grid) < 0).any():
            raise ValueError(f"sweep.tau must be >= 0; got {float(np.min(grid))!r}")
    else:
        check_values(f"sweep.{key}", key, grid)
    return grid


def _unique(values: np.ndarray) -> np.ndarray:
    """``values`` without repeats (NaN equal to NaN), in order of first appearance."""
    keep = [i for i, v in enumerate(values) if _positions(values[:i], values[i : i + 1]).size == 0]
    return values[keep]


def _positions(values: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Index in ``values`` of each of ``wanted`` (NaN finds NaN); empty where absent."""
    out = []
    for w in wanted:
        if values.dtype.kind == "f" and np.isnan(w):
            hit = np.flatnonzero(np.isnan(values))
        else:
            hit = np.flatnonzero(values == w)
        if hit.size:
            out.append(hit[0])
    return np.asarray(out, dtype=np.int64)


def _kernel_function(config: GeneralSweepConfig, group: int, devices: tuple):
    """``(dispatch, gather)`` of ``general_function`` for a chunk of ``group``."""
    objective, target = config.groups[group]
    dispatch, gather = general_function(flow_kind(objective, target), devices, config.rtol)
    if not config.pair:

        def gather_plain(handle):
            t_star, wbar, collapsed, ok, _ = gather(handle)
            return [t_star, wbar, collapsed, ok]

        return lambda inputs: dispatch(*inputs), gather_plain

    def dispatch_pair(inputs):
        k = len(KERNEL_INPUTS)
        # A and B in one batch: one adaptive loop, not two in sequence
        both = [np.concatenate([a, b]) for a, b in zip(inputs[:k], inputs[k:])]
        return dispatch(*both), both[0].shape[0] // 2

    def gather_pair(handle):
        handle, m = handle
        t_star, wbar, collapsed, ok, _ = gather(handle)
        t_a, t_b = t_star[:m], t_star[m:]
        first = np.where(t_b < t_a, 1, np.where(t_a < t_b, 0, 2)).astype(np.int8)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = t_b / t_a
        return [
            t_a,
            t_b,
            wbar[:m],
            wbar[m:],
            collapsed[:m],
            collapsed[m:],
            first,
            ratio,
            ok[:m] & ok[m:],
        ]

    return dispatch_pair, gather_pair
