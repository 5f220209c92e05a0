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

Outputs per configuration: ``t_star`` (inf where collapsed), ``wbar_final``
(the fixed point reached), ``collapsed``, ``ok``; for pairs the same per
feature (suffix ``_a``, ``_b``) plus ``first`` and ``t_ratio``.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np

from .._core import _budget, _validate
from .._theory._general import KERNEL_INPUTS, TARGETS, flow_kind, general_function
from .._theory._targets import frozen_teacher_lam
from ._config import SweepConfig, _checked, _grid, fingerprint_of

SHARED = ("objective", "target", "depth", "eps", "fraction", "init_ratio", "tau", "c")
FEATURE = ("lam", "rho", "var")
DEFAULTS = {"target": "stopgrad", "fraction": 0.5, "init_ratio": 1.0}
NO_TARGET = "none"
OUTPUTS = ("t_star", "wbar_final", "collapsed", "ok")
PAIR_OUTPUTS = (
    "t_star_a",
    "t_star_b",
    "wbar_final_a",
    "wbar_final_b",
    "collapsed_a",
    "collapsed_b",
    "first",
    "t_ratio",
    "ok",
)
# Configurations per chunk: the explicit quadrature gains from large chunks; the
# implicit EMA solve has a larger per-member state and many more steps.
DEFAULT_CHUNK = 1 << 14
WORK_BYTES = 4096  # memory per configuration in flight (solver state, as the balanced ODE)
# bytes written per configuration: t_star, wbar_final (8 each), collapsed, ok (1 each)
BYTES_PER_CONFIG = {False: 8 + 8 + 1 + 1, True: 4 * 8 + 2 + 1 + 8 + 1}
_FILL = {"lam": 1.0, "var": 2.0, "depth": 1.0, "eps": 1e-2, "init_ratio": 1.0}
_FILL.update(tau=0.0, fraction=0.5)


@dataclasses.dataclass(frozen=True)
class GeneralSweepConfig:
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
    flow: str = "general"
    budget: tuple = (_budget.DEFAULT_MAX_MEMORY, _budget.DEFAULT_MAX_DISK)
    rtol: float | None = None  # the kernels' tolerance (None: their dtype's default)

    @property
    def disk_bytes(self) -> int:
        """Bytes of the chunk files of the whole sweep."""
        return self.size * BYTES_PER_CONFIG[self.pair]

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

    def fingerprint(self) -> str:
        """sha256 of ``canonical()``: equal iff the configurations are equal."""
        return fingerprint_of(self.canonical())

    def chunk_plan(self, chunk_size: int) -> list[tuple[int, int, int, int]]:
        """``(index, group, lo, hi)`` for every chunk; ``lo:hi`` indexes within the group."""
        plan = []
        for g, grid in enumerate(self.grids):
            for lo in range(0, grid.size, chunk_size):
                plan.append((len(plan), g, lo, min(lo + chunk_size, grid.size)))
        return plan

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

    def parameters(self) -> dict[str, np.ndarray]:
        """Every parameter column, one row per configuration (groups one after another)."""
        cols: dict[str, list] = {}
        for g, ((objective, target), grid) in enumerate(zip(self.groups, self.grids)):
            rows = grid.rows(0, grid.size)
            rows["objective"] = np.full(grid.size, objective)
            rows["target"] = np.full(grid.size, target)
            for key in ("tau", "c"):  # NaN where the key does not apply
                rows.setdefault(key, np.full(grid.size, np.nan))
            for key, value in rows.items():
                cols.setdefault(key, []).append(value)
        return {k: np.concatenate(v) for k, v in cols.items()}


def parse_general(
    sweep: dict, pair: dict | None, text: str, limits=None, check: bool = True, rtol=None
) -> GeneralSweepConfig:
    """Validate the ``[sweep]`` (and ``[pair]``) tables of a general-flow sweep.

    ``limits`` is ``(max_memory, max_disk)`` as resolved by ``parse_config``;
    ``check`` False skips the disk-budget check (reading finished results);
    ``rtol`` is ``sweep.rtol`` as ``parse_config`` validated it (None: the default).
    """
    limits = limits or (_budget.DEFAULT_MAX_MEMORY, _budget.DEFAULT_MAX_DISK)
    from ._config import PAIR_KEYS

    allowed = SHARED if pair is not None else SHARED + FEATURE
    for key in sweep:
        if key not in allowed:
            raise ValueError(
                f"unknown key sweep.{key} for flow = 'general'; allowed: flow, {', '.join(allowed)}"
            )
    sweep = {**DEFAULTS, **sweep}
    for key in ("objective", "depth", "eps"):
        if key not in sweep:
            raise ValueError(f"sweep.{key} is required")
    objectives = _grid("sweep.objective", "objective", sweep["objective"])
    _checked("sweep.objective", "objective", objectives)
    targets = _grid("sweep.target", "objective", sweep["target"])  # strings, no repeats
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
    numeric = {}
    for key in ("depth", "eps", "fraction", "init_ratio", "tau", "c"):
        if key in sweep:
            grid = _grid(f"sweep.{key}", key, sweep[key])
            if key == "init_ratio":
                _validate.as_positive("sweep.init_ratio", grid)
            elif key == "tau":
                if (np.asarray(grid) < 0).any():
                    raise ValueError(f"sweep.tau must be >= 0; got {float(np.min(grid))!r}")
            else:
                _checked(f"sweep.{key}", key, grid)
            numeric[key] = grid
    if pair is None:
        if "lam" not in sweep:
            raise ValueError("sweep.lam is required")
        table = "[sweep]\n" + "".join(f"{k} = {_toml(sweep[k])}\n" for k in FEATURE if k in sweep)
    else:
        table = "[pair]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in pair.items())
    # The feature axes go through the balanced parser: same keys, same checks, same messages.
    from ._config import parse_config

    shared = '[sweep]\nobjective = "jepa"\ndepth = 1\neps = 1.0\n'
    base = parse_config(shared + table.replace("[sweep]\n", ""))
    features = tuple((n, v) for n, v in base.axes if n in FEATURE or n in PAIR_KEYS)
    grids = []
    for objective, target in groups:
        axes = [("objective", (objective,))]
        for key in ("depth", "eps", "fraction", "init_ratio"):
            axes.append((key, numeric[key]))
        if target == "ema":
            axes.append(("tau", numeric["tau"]))
        if target == "frozen":
            axes.append(("c", numeric["c"]))
        grids.append(SweepConfig(axes=tuple(axes) + features, pair=pair is not None, text=text))
    config = GeneralSweepConfig(
        tuple(groups), tuple(grids), pair is not None, text, budget=limits, rtol=rtol
    )
    if check:
        _budget.check_budget(
            f"the sweep's results ({config.describe()}, "
            f"{BYTES_PER_CONFIG[config.pair]} bytes each)",
            disk=config.disk_bytes,
            max_disk=limits[1],
        )
    return config


def _toml(value) -> str:
    """A parsed TOML value written back as TOML (numbers, strings, lists, inline tables)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


def outputs(pair: bool) -> tuple[str, ...]:
    return PAIR_OUTPUTS if pair else OUTPUTS


def chunk_function(config: GeneralSweepConfig, group: int, devices: tuple):
    """``(dispatch, gather)`` for a chunk of ``group`` (see ``_run.chunk_function``)."""
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
