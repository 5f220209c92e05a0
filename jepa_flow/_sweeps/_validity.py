"""Sweeps of the per-feature theories against the full-matrix flow (``[validity]``; theory §11).

A ``[validity]`` table (instead of ``[sweep]``) makes experiment 10's
validity map a sweep: every configuration is one source of the synthetic
non-commutation family ``noncommuting(var, rho, theta, seed=seed)``
(``_training._synthetic``), its full-matrix flow integrated once from the
balanced start with the stiff solver, and every theory of
``_theory._validity`` scored against it (``_training._validity``: the same
functions experiment 10 calls, docs/preregistration/exp10.md)::

    [validity]
    objective = ["jepa", "mae"]      # jepa (stop-gradient), ema (JEPA, EMA target), mae
    theta = [0.0, 5.0, 10.0, 20.0]   # degrees in [0, 180]: how far the bases turn apart
    depth = [1, 2, 4]
    eps = [1e-2, 1e-3]
    seed = {range = 3}               # seeds of the rotation's generator (or a list)
    d = 6                            # features
    var = [1.0, 0.1]                 # var = geomspace(1.0, 0.1, d)
    rho = [0.3, 0.9]                 # rho = linspace(0.3, 0.9, d), each in (-1, 1)

Several spectra are one more axis: instead of ``var`` and ``rho``, a table
of named spectra (experiment 10's two)::

    spectrum = {narrow = {var = [1.0, 0.1], rho = [0.3, 0.9]},
                wide = {var = [1.0, 0.01], rho = [0.2, 0.95]}}

(with ``var`` and ``rho`` alone, the one spectrum is named ``"default"``).

Optional keys (defaults in ``DEFAULTS``): ``theories`` (a list of
``THEORIES``, default all; the flow's horizon comes from every theory's
times whichever are scored, as in experiment 10), ``tau`` (the EMA target's time constant, only
with ``ema``; default 1, as experiment 10), ``k`` (first-``k`` overlap,
integer in ``[1, d - 1]``; default 2), ``points_per_decade`` (save times of
the flow; default 300).

The swept axes are ``objective, spectrum, theta, depth, eps, seed`` (C-order
product, ``seed`` fastest); each objective is one group. A chunk runs its
configurations one after another on the host (LSODA through scipy; the EMA
flow's field is jitted), building each ``(spectrum, theta, seed)`` source once.

Outputs per configuration (``T`` theories, in ``theories`` order, dimension
``theory``): ``spearman [T]``, ``overlap [T]``, ``median_error [T]``,
``max_error [T]`` and ``n [T]`` (directions compared: learned in both), the
source's ``nonorthogonality`` (of the generalized basis) and ``offdiag``
(of the principal-component basis, theory §9), the flow's ``offdiag_dual``
(theory §11.5), ``n_learned`` (directions the flow learned by its end) and
``ok`` (False where the solve failed: scores NaN).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .._core import _budget
from .._theory._validity import THEORIES
from ._kind import Grid, Output, SweepKind
from ._validity_run import OBJECTIVES, SCORES, run_chunk
from ._values import MAX_GRID, count_values, grid_values

AXES = ("objective", "spectrum", "theta", "depth", "eps", "seed")
SETTINGS = ("d", "var", "rho", "theories", "tau", "k", "points_per_decade")
REQUIRED = ("objective", "theta", "depth", "eps", "d")
DEFAULT_SPECTRUM = "default"  # the name of the one spectrum given by var and rho
DEFAULTS = {"seed": 0, "theories": list(THEORIES), "tau": 1.0, "k": 2, "points_per_decade": 300}
MAX_DEPTH = 64
MAX_D = 64
THETA_MAX = 180.0
DEFAULT_CHUNK = 4  # configurations per chunk: each is one stiff solve (seconds to minutes)
DECADES = 20  # save times per flow: about DECADES x points_per_decade (an estimate)


def _where(key: str) -> str:
    return f"validity.{key}"


@dataclasses.dataclass(frozen=True)
class ValiditySweepConfig(SweepKind):
    """A validated ``[validity]`` sweep: theories against the full-matrix flow (module docstring).

    Attributes:
        axes: ``(name, values)`` for ``AXES`` (``theta`` in degrees, ``spectrum``
            the spectra's names).
        d: features.  spectra: ``(name, (var_first, var_last), (rho_first,
            rho_last))`` per spectrum: ``geomspace`` of ``var``, ``linspace`` of ``rho``.
        theories: the theories scored, in column order.
        tau, k, points_per_decade: as in the module docstring.
        text: the configuration file as given.

    Examples:
        >>> import jepa_flow as jf
        >>> config = jf.parse_sweep_config('''
        ... [validity]
        ... objective = ["jepa", "mae"]
        ... theta = [0.0, 10.0, 20.0]
        ... depth = [1, 2]
        ... eps = 1e-2
        ... seed = {range = 2}
        ... d = 4
        ... var = [1.0, 0.1]
        ... rho = [0.3, 0.9]
        ... ''')
        >>> config.names, config.shape, config.size
        (('objective', 'spectrum', 'theta', 'depth', 'eps', 'seed'), (2, 1, 3, 2, 1, 2), 24)
        >>> config.spectrum("default")[1].round(2).tolist()
        [0.3, 0.5, 0.7, 0.9]
    """

    axes: tuple
    d: int
    spectra: tuple
    theories: tuple = THEORIES
    tau: float = 1.0
    k: int = 2
    points_per_decade: int = 300
    text: str = dataclasses.field(default="", repr=False)
    budget: tuple = (_budget.DEFAULT_MAX_MEMORY, _budget.DEFAULT_MAX_DISK)
    pair: bool = False

    name = "validity"
    title = "[validity]"
    plot = "jepa_flow._plotting._sweep_figure:write_sweep_figure"
    failure = "failed full-matrix flows"

    @classmethod
    def claims(cls, doc: dict) -> bool:
        return "validity" in doc

    @classmethod
    def from_toml(cls, doc: dict, text: str, *, limits: tuple, check: bool) -> ValiditySweepConfig:
        return parse_validity(doc, text, limits=limits, check=check)

    # ------------------------------------------------------------ the grid

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(v) for _, v in self.axes)

    @property
    def names(self) -> tuple[str, ...]:
        return AXES

    def axis(self, name: str) -> tuple:
        return dict(self.axes)[name]

    def spectrum(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """``(var, rho)`` ``[d]`` of spectrum ``name``: ``geomspace`` and ``linspace``."""
        var, rho = {n: (v, r) for n, v, r in self.spectra}[name]
        return np.geomspace(*var, self.d), np.linspace(*rho, self.d)

    def describe(self) -> str:
        shape = " x ".join(f"{n} {len(v)}" for n, v in self.axes)
        return (
            f"{self.size} full-matrix flows ({shape}), d = {self.d}, {len(self.theories)} theories"
        )

    def canonical(self) -> dict:
        return {
            "flow": "validity",
            "pair": False,
            "axes": [[n, list(v)] for n, v in self.axes],
            "d": self.d,
            "spectra": [[n, list(v), list(r)] for n, v, r in self.spectra],
            "theories": list(self.theories),
            "tau": self.tau,
            "k": self.k,
            "points_per_decade": self.points_per_decade,
        }

    def make_grid(self) -> Grid:
        """The axes as columns: ``objective``, ``spectrum`` strings, the others float64."""
        strings = ("objective", "spectrum")
        return Grid.product(
            [
                (n, np.asarray(v) if n in strings else np.asarray(v, np.float64))
                for n, v in self.axes
            ]
        )

    def outputs(self) -> tuple[Output, ...]:
        t = (len(self.theories),)
        per_theory = tuple(Output(s, "float64", t, ("theory",)) for s in SCORES)
        per_theory += (Output("n", "int32", t, ("theory",)),)
        scalars = (
            Output("nonorthogonality", "float64"),
            Output("offdiag", "float64"),
            Output("offdiag_dual", "float64"),
            Output("n_learned", "int32"),
            Output("ok", "bool"),
        )
        return per_theory + scalars

    # ------------------------------------------------------------ running

    def group_sizes(self) -> tuple[int, ...]:
        return (math.prod(self.shape[1:]),) * len(self.axis("objective"))

    def default_chunk(self) -> int:
        return DEFAULT_CHUNK

    def work_bytes(self) -> int:
        """Memory of one configuration's flow: its saved states and their copies (an
        estimate: ``DECADES x points_per_decade`` save times, 33 more around each crossing)."""
        n_t = DECADES * self.points_per_decade + 33 * self.d
        return 8 * 4 * n_t * self.d * self.d

    def work(self, chunk_size: int) -> tuple[int, int]:
        """A chunk runs its configurations one at a time: one flow in memory."""
        return 1, self.work_bytes()

    def check_runnable(self, dtype) -> None:
        """The EMA flow's field is JAX: refuse ``ema`` without float64."""
        if "ema" in self.axis("objective") and np.dtype(dtype) != np.float64:
            raise ValueError(
                "validity.objective 'ema' needs float64 (the EMA flow's stiff solve); "
                "run without --precision float32"
            )

    def chunk_function(self, group: int, devices: tuple):
        """``dispatch`` notes the rows; ``gather`` integrates and scores them (on the host)."""

        def gather(chunk):
            outputs = run_chunk(self, group, chunk.lo, chunk.hi)
            return [outputs[o.name] for o in self.outputs()]

        return (lambda chunk, padded: chunk), gather


# ---------------------------------------------------------------- parsing


def parse_validity(doc: dict, text: str, limits=None, check: bool = True) -> ValiditySweepConfig:
    """Validate a ``[validity]`` table (module docstring); ``limits`` = ``(max_memory, max_disk)``.

    The grid is counted before any axis is generated; with ``check`` the disk
    budget is checked. Raises ``ValueError`` naming the key and its allowed range.
    """
    limits = limits or (_budget.DEFAULT_MAX_MEMORY, _budget.DEFAULT_MAX_DISK)
    table = _table(doc)
    counts = [_count(key, table.get(key, 1)) for key in AXES]
    size = math.prod(counts)
    if size > MAX_GRID:
        raise ValueError(f"the grid has {size:.3g} full-matrix flows, more than {MAX_GRID:.0e}")
    d = _integer("d", table["d"], 2, MAX_D)
    objectives = _strings("objective", table["objective"], tuple(OBJECTIVES))
    spectra = _spectra(table)
    axes = (
        ("objective", objectives),
        ("spectrum", tuple(name for name, _, _ in spectra)),
        ("theta", _numbers("theta", table["theta"], 0.0, THETA_MAX, "[0, 180] degrees")),
        ("depth", _integers("depth", table["depth"], 1, MAX_DEPTH)),
        ("eps", _numbers("eps", table["eps"], 0.0, 1.0, "(0, 1)", open_=True)),
        ("seed", _seeds(table["seed"])),
    )
    theories = _strings("theories", table["theories"], THEORIES)
    if "tau" in doc["validity"] and "ema" not in objectives:
        raise ValueError("validity.tau applies to objective 'ema' only; remove it")
    tau = _number("tau", table["tau"], 0.0, math.inf, ">= 0 (finite)")
    k = _integer("k", table["k"], 1, d - 1)
    ppd = _integer("points_per_decade", table["points_per_decade"], 10, 10000)
    config = ValiditySweepConfig(
        axes=axes,
        d=d,
        spectra=spectra,
        theories=theories,
        tau=tau,
        k=k,
        points_per_decade=ppd,
        text=text,
        budget=limits,
    )
    if check:
        _budget.check_budget(
            f"the sweep's results ({config.describe()}, {config.row_bytes()} bytes each)",
            disk=config.disk_bytes,
            max_disk=config.budget[1],
        )
    return config


def _table(doc: dict) -> dict:
    """The ``[validity]`` table with its defaults; refuses other tables and unknown keys."""
    extra = set(doc) - {"validity", "budget"}
    if extra:
        raise ValueError(
            f"a [validity] sweep takes only [validity] and [budget]; remove [{min(extra)}]"
        )
    table = doc["validity"]
    if not isinstance(table, dict):
        raise ValueError("validity must be a table: [validity]")
    for key in table:
        if key not in AXES + SETTINGS:
            raise ValueError(f"unknown key validity.{key}; allowed: {', '.join(AXES + SETTINGS)}")
    for key in REQUIRED:
        if key not in table:
            raise ValueError(f"validity.{key} is required")
    return {**DEFAULTS, **table}


def _count(key: str, value) -> int:
    if key == "spectrum":
        return len(value) if isinstance(value, dict) else 1
    if key == "seed" and isinstance(value, dict) and set(value) == {"range"}:
        n = value["range"]
        return n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else 1
    return count_values(_where(key), value)


def _strings(key: str, value, allowed: tuple) -> tuple[str, ...]:
    values = value if isinstance(value, list) else [value]
    if not values:
        raise ValueError(f"validity.{key}: empty list (give at least one of {allowed})")
    for v in values:
        if v not in allowed:
            raise ValueError(f"validity.{key} values must be among {allowed}; got {v!r}")
    if len(set(values)) != len(values):
        raise ValueError(f"validity.{key}: repeated values in {values!r}")
    return tuple(values)


def _numbers(key, value, lo, hi, shown, open_=False) -> tuple[float, ...]:
    """A grid of distinct numbers in ``[lo, hi]`` (``(lo, hi)`` when ``open_``)."""
    arr = np.asarray(grid_values(_where(key), key, value), float)
    inside = (arr > lo) & (arr < hi) if open_ else (arr >= lo) & (arr <= hi)
    if not (np.isfinite(arr) & inside).all():
        bad = float(arr[~(np.isfinite(arr) & inside)][0])
        raise ValueError(f"validity.{key} values must lie in {shown}; got {bad:g}")
    if len(set(arr.tolist())) != arr.size:
        raise ValueError(f"validity.{key}: repeated values in {arr.tolist()}")
    return tuple(float(x) for x in arr)


def _integers(key, value, lo, hi) -> tuple[int, ...]:
    arr = np.asarray(grid_values(_where(key), key, value), float)
    bad = ~np.isfinite(arr) | (arr != np.round(arr)) | (arr < lo) | (arr > hi)
    if bad.any():
        raise ValueError(f"validity.{key} must be integers in [{lo}, {hi}]; got {arr[bad][0]:g}")
    out = tuple(int(x) for x in arr)
    if len(set(out)) != len(out):
        raise ValueError(f"validity.{key}: repeated values in {list(out)}")
    return out


def _seeds(value) -> tuple[int, ...]:
    if isinstance(value, dict) and set(value) == {"range"}:
        n = value["range"]
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_GRID:
            raise ValueError(f"validity.seed: range must be an integer >= 1; got {n!r}")
        return tuple(range(n))
    return _integers("seed", value, 0, 2**32 - 1)


def _integer(key, value, lo, hi) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ValueError(f"validity.{key} must be an integer in [{lo}, {hi}]; got {value!r}")
    return value


def _number(key, value, lo, hi, shown) -> float:
    if isinstance(value, (bool, str, list, dict)) or value is None:
        raise ValueError(f"validity.{key} must be one number {shown}; got {value!r}")
    x = float(value)
    if not (math.isfinite(x) and lo <= x <= hi):
        raise ValueError(f"validity.{key} must be one number {shown}; got {value!r}")
    return x


def _pair(key, value, lo, hi, shown) -> tuple[float, float]:
    """``[first, last]`` of a spectrum, each strictly inside ``(lo, hi)``."""
    ok = isinstance(value, list) and len(value) == 2
    ok = ok and all(not isinstance(v, (bool, str, list, dict)) and v is not None for v in value)
    if not ok:
        raise ValueError(f"validity.{key} must be [first, last], two numbers in {shown}")
    a, b = (float(v) for v in value)
    if not all(math.isfinite(x) and lo < x < hi for x in (a, b)):
        raise ValueError(f"validity.{key} values must lie in {shown}; got {value!r}")
    return a, b


def _one_spectrum(where: str, table: dict) -> tuple:
    """``((var_first, var_last), (rho_first, rho_last))`` of a table with ``var`` and ``rho``."""
    for key in ("var", "rho"):
        if key not in table:
            raise ValueError(f"validity.{where}{key} is required")
    var = _pair(f"{where}var", table["var"], 0.0, math.inf, "> 0 (finite)")
    rho = _pair(f"{where}rho", table["rho"], -1.0, 1.0, "(-1, 1)")
    return var, rho


def _spectra(table: dict) -> tuple:
    """``(name, var, rho)`` per spectrum: ``var`` and ``rho``, or a ``spectrum`` table of them."""
    if "spectrum" not in table:
        return ((DEFAULT_SPECTRUM, *_one_spectrum("", table)),)
    if "var" in table or "rho" in table:
        raise ValueError("validity: give either var and rho or a spectrum table, not both")
    named = table["spectrum"]
    if not isinstance(named, dict) or not named:
        raise ValueError(
            "validity.spectrum must be a table of named spectra: "
            "spectrum = {NAME = {var = [first, last], rho = [first, last]}, ...}"
        )
    out = []
    for name, spec in named.items():
        if not isinstance(spec, dict) or set(spec) - {"var", "rho"}:
            raise ValueError(
                f"validity.spectrum.{name} must be a table of var and rho: "
                "{var = [first, last], rho = [first, last]}"
            )
        out.append((name, *_one_spectrum(f"spectrum.{name}.", spec)))
    return tuple(out)
