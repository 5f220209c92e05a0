"""Sweep configurations: a TOML file describing a full grid of parameters.

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
    disk = "1T"                           # the chunk files (17 bytes per configuration,
                                          # 42 for a pair sweep)

The grid's size is counted from its axes before any axis is materialized, so a
typo such as ``n = 1e9`` is refused with the estimate in milliseconds. The
budget is not part of the sweep's identity: raising it never invalidates
results already written. The configurations are ordered as
the C-order product of ``AXES`` (or ``PAIR_AXES``) restricted to the keys
present: the first axis varies slowest, the last fastest. ``objective`` and
``method`` are static (compiled in) and always come first, so every chunk of a
sweep lies within one (objective, method) group.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import tomllib

import numpy as np

from .._core import _budget, _validate

STATIC = ("objective", "method")
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
MAX_GRID = 10**12
FLOWS = ("balanced", "general")
# bytes written per configuration (the chunk files' arrays)
BYTES_PER_CONFIG = {False: 8 + 8 + 1, True: 4 * 8 + 1 + 8 + 1}
BUDGET_KEYS = ("memory", "disk")


def fingerprint_of(canonical: dict) -> str:
    """sha256 of a configuration's canonical JSON (every sweep kind's identity)."""
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    """A validated sweep grid.

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

    @property
    def disk_bytes(self) -> int:
        """Estimated bytes of the chunk files."""
        return self.size * BYTES_PER_CONFIG[self.pair]

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

    def fingerprint(self) -> str:
        """sha256 of the canonical grid: equal iff the configurations are equal."""
        return fingerprint_of(self.canonical())

    def rows(self, lo: int, hi: int) -> dict[str, np.ndarray]:
        """Numeric parameters of configurations ``lo:hi`` of any (objective, method) group.

        Returns one float64 array per numeric axis plus the derived kernel
        inputs: ``lam, var, rho`` (plain) or ``lam_a, var_a, rho_a, lam_b,
        var_b, rho_b`` (pair). Memory is proportional to ``hi - lo`` only.
        """
        axes = self.numeric_axes
        idx = np.unravel_index(np.arange(lo, hi), [len(v) for _, v in axes])
        out = {name: vals[i] for (name, vals), i in zip(axes, idx)}
        if self.pair:
            lam_a, rho_a, var_a = _feature(out["lam_a"], out.get("rho_a"), out.get("var_a"))
            lam_b = out["lam_b"] if "lam_b" in out else out["lam_ratio"] * lam_a
            rho_b = out.get("rho_b")
            if "rho_ratio" in out:
                rho_b = out["rho_ratio"] * rho_a
            var_b = out.get("var_b")
            if "var_ratio" in out:
                var_b = out["var_ratio"] * var_a
            lam_b, rho_b, var_b = _feature(lam_b, rho_b, var_b)
            out.update(lam_a=lam_a, rho_a=rho_a, var_a=var_a)
            out.update(lam_b=lam_b, rho_b=rho_b, var_b=var_b)
        else:
            out["lam"], out["rho"], out["var"] = _feature(
                out["lam"], out.get("rho"), out.get("var")
            )
        return out


def _feature(lam, rho, var):
    """Complete ``(lam, rho, var)`` of one feature from lam and one of rho, var."""
    if rho is not None:
        return lam, rho, lam / rho
    return lam, lam / var, var


def _count(where: str, value) -> int:
    """How many values a parameter takes, without generating them."""
    if isinstance(value, dict):
        spec = next(iter(value.values()), None) if len(value) == 1 else None
        if isinstance(spec, list) and len(spec) == 3:
            n = spec[2]
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                kind = next(iter(value))
                raise ValueError(f"{where}: {kind} count n must be an integer >= 1; got {n!r}")
            return n
        return 1  # malformed: _grid says why
    return len(value) if isinstance(value, list) else 1


def _grid(where: str, key: str, value) -> np.ndarray | tuple:
    """One parameter's values: a scalar, a list, or a linspace/logspace table."""
    if isinstance(value, dict):
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
        grid = np.linspace(start, stop, n) if kind == "linspace" else np.logspace(start, stop, n)
        return grid
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


def _check_values(key: str, grid) -> None:
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


def _one_of(table: dict, keys: tuple[str, ...], where: str, required: bool) -> str | None:
    present = [k for k in keys if k in table]
    if len(present) > 1:
        raise ValueError(f"{where}: give only one of {', '.join(present)}")
    if required and not present:
        raise ValueError(f"{where}: one of {', '.join(keys)} is required")
    return present[0] if present else None


def _budget_of(doc: dict, max_memory, max_disk) -> tuple[int, int]:
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


def parse_config(text: str, *, max_memory=None, max_disk=None, budget: bool = True) -> SweepConfig:
    """Parse and validate a sweep configuration (TOML text).

    Args:
        text: the TOML text.
        max_memory, max_disk: budgets in bytes or size strings such as ``"16G"``;
            they override the ``[budget]`` table, which overrides the defaults
            (4 GiB, 20 GiB).
        budget: False to skip the budget checks (reading finished results).

    Raises ``ValueError`` naming the offending key for unknown tables or keys,
    missing or conflicting keys, empty grids and invalid values, and a
    ``BudgetError`` (a ``ValueError``) with the estimate when the grid's axes
    or chunk files would exceed the budget; the grid is counted before any axis
    is generated, and nothing is computed or written before this succeeds.

    Examples:
        >>> import jepa_flow as jf
        >>> config = jf.parse_sweep_config('''
        ... [sweep]
        ... objective = ["jepa", "mae"]
        ... depth = [1, 2, 4, 8]
        ... lam = {logspace = [-2, 1, 64]}
        ... rho = {linspace = [0.05, 0.95, 64]}
        ... eps = 1e-3
        ... ''')
        >>> config.names
        ('objective', 'method', 'depth', 'eps', 'fraction', 'lam', 'rho')
        >>> config.shape, config.size
        ((2, 1, 4, 1, 1, 64, 64), 32768)
        >>> dict(config.axes)["method"], float(dict(config.axes)["fraction"][0])  # defaults
        (('exact',), 0.5)
        >>> jf.parse_sweep_config('''
        ... [sweep]
        ... objective = "jepa"
        ... depth = [1, 0]
        ... lam = 1.0
        ... var = 2.0
        ... eps = 1e-3
        ... ''')
        Traceback (most recent call last):
        ...
        ValueError: sweep.depth: depth must be an integer in [1, 1024]; got 0.0 at index (1,)
    """
    if not isinstance(text, str):
        raise ValueError(f"text must be the TOML configuration as a str; got {type(text).__name__}")
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"configuration is not valid TOML: {err}") from None
    unknown = set(doc) - {"sweep", "pair", "budget", "train"}
    if unknown:
        raise ValueError(
            f"unknown table or key {min(unknown)!r} (allowed: [sweep], [pair], [train], [budget])"
        )
    max_mem, max_dsk = _budget_of(doc, max_memory, max_disk)
    if "train" in doc:  # training runs against the theory: jepa_flow._sweeps._train
        from ._train import parse_train

        return parse_train(doc, text, limits=(max_mem, max_dsk), check=budget)
    if not isinstance(doc.get("sweep"), dict):
        raise ValueError("a [sweep] (or [train]) table is required")
    sweep = dict(doc["sweep"])
    rtol = _rtol(sweep.pop("rtol", None))
    pair = doc.get("pair")
    if pair is not None and not isinstance(pair, dict):
        raise ValueError("pair must be a table: [pair]")
    flow = sweep.pop("flow", "balanced")
    if flow not in FLOWS:
        raise ValueError(f"sweep.flow must be one of {FLOWS}; got {flow!r}")
    if flow == "general":  # the general per-feature flow: jepa_flow._sweeps._general
        from ._general import parse_general

        return parse_general(sweep, pair, text, limits=(max_mem, max_dsk), check=budget, rtol=rtol)
    allowed = PAIR_SHARED if pair is not None else AXES
    for key in sweep:
        if key not in allowed:
            hint = " (feature parameters of a pair sweep belong in [pair])" if key in AXES else ""
            raise ValueError(f"unknown key sweep.{key}{hint}; allowed: {', '.join(allowed)}")
    for key, default in DEFAULTS.items():
        sweep.setdefault(key, default)
    for key in ("objective", "depth", "eps"):
        if key not in sweep:
            raise ValueError(f"sweep.{key} is required")
    table = dict(sweep)
    if pair is None:
        if "lam" not in sweep:
            raise ValueError("sweep.lam is required")
        _one_of(sweep, ("rho", "var"), "sweep", required=True)
        order = AXES
    else:
        for key in pair:
            if key not in PAIR_KEYS:
                raise ValueError(f"unknown key pair.{key}; allowed: {', '.join(PAIR_KEYS)}")
        if "lam_a" not in pair:
            raise ValueError("pair.lam_a is required")
        _one_of(pair, ("rho_a", "var_a"), "pair (feature A)", required=True)
        _one_of(pair, ("lam_b", "lam_ratio"), "pair (feature B)", required=True)
        _one_of(pair, ("rho_b", "var_b", "rho_ratio", "var_ratio"), "pair (feature B)", True)
        table.update(pair)
        order = PAIR_AXES

    def where(key):
        return f"pair.{key}" if pair is not None and key in PAIR_KEYS else f"sweep.{key}"

    keys = [k for k in order if k in table]
    counts = {k: _count(where(k), table[k]) for k in keys}
    size = math.prod(counts.values())
    if size > MAX_GRID:
        raise ValueError(f"the grid has {size:.3g} configurations, more than {MAX_GRID:.0e}")
    if budget:
        shape = " x ".join(str(c) for c in counts.values() if c > 1) or "1"
        _budget.check_budget(
            f"the grid's axes ({sum(counts.values())} values)",
            memory=8 * sum(counts.values()),
            max_memory=max_mem,
        )
        _budget.check_budget(
            f"the sweep's results ({size:,} configurations = {shape}, "
            f"{BYTES_PER_CONFIG[pair is not None]} bytes each)",
            disk=size * BYTES_PER_CONFIG[pair is not None],
            max_disk=max_dsk,
        )
    axes = []
    for key in keys:
        grid = _grid(where(key), key, table[key])
        _checked(where(key), key, grid)
        axes.append((key, grid))
    config = SweepConfig(
        axes=tuple(axes), pair=pair is not None, text=text, rtol=rtol, budget=(max_mem, max_dsk)
    )
    _check_rho_needs_positive_lam(config)
    return config


def _rtol(value) -> float | None:
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


def _checked(where: str, key: str, grid) -> None:
    try:
        _check_values(key, grid)
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None


def _check_rho_needs_positive_lam(config: SweepConfig) -> None:
    """A feature given by its ``rho`` needs ``lam > 0`` (so that ``var = lam / rho > 0``)."""
    values = dict(config.axes)
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


def load_config(path, *, max_memory=None, max_disk=None) -> SweepConfig:
    """Read and validate a sweep configuration file (budgets as in ``parse_config``)."""
    try:
        with open(path, "rb") as fh:
            text = fh.read().decode()
    except OSError as err:
        raise ValueError(f"cannot read configuration {str(path)!r}: {err.strerror}") from None
    except UnicodeDecodeError:
        raise ValueError(f"configuration {str(path)!r} is not UTF-8 text") from None
    return parse_config(text, max_memory=max_memory, max_disk=max_disk)
