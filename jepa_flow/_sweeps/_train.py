"""Sweeps of real training runs against the theory (a ``[train]`` table; theory §8.4, §10).

A ``[train]`` table replaces ``[sweep]``: every configuration is one SGD run
of ``jepa_flow.train`` compared with its theory by ``jepa_flow.compare``::

    [train]
    objective = ["jepa", "mae"]
    data = "gaussian"                 # noisy_views, linear_dynamics, patches, digits, membrane
    lam = [1.0, 0.8]                  # gaussian: the features (diagonal Syx and Sxx)
    var = [2.0, 1.0]
    depth = [1, 2, 3]
    eta = {logspace = [-3, -1, 9]}
    batch = [64, 256, 1024, "population"]
    seed = {range = 8}                # or a list of integers >= 0
    rotation = "random"               # or "identity" (default); rotation_seed = 0
    t_max = 3000.0                    # flow time: each eta runs ceil(t_max / eta) steps
    eps = 1e-3

The data keys: ``gaussian`` takes ``lam`` and ``var`` (one value per
feature), ``noisy_views`` takes ``s``, ``nu`` and optionally ``c``,
``linear_dynamics`` takes ``a`` and ``var``; the real data sets take
``options = {...}`` (those of ``load_dataset`` except ``batch``) and no
rotation. Other keys (defaults in ``DEFAULTS``): ``steps`` (instead of
``t_max``: every run makes that many steps), ``fraction``, ``scale`` (noise of
the balanced start), ``target`` (JEPA: ``"stopgrad"`` or ``"ema"`` with
``tau``), ``sampler`` (``"moments"``: exact minibatch moments, needs ``batch
>= 2d``; ``"samples"``: drawn samples), ``n_t`` (records per run).

The swept axes are ``objective, batch, eta, depth, seed`` and configurations
are their C-order product (``objective`` slowest, ``seed`` fastest). A chunk
is one compiled, vmapped ``train`` call of one ``(objective, batch)`` for one
``eta`` (with ``t_max``: each eta runs its own number of steps) or, with
``steps``, a block of etas, with every depth and seed, its members split over
the local devices (padded with extra seeds to a multiple of their number),
followed by ``compare`` on its result. Chunks of one ``(objective, batch)``
share one compilation whatever their etas (``train`` scans a fixed number of
steps per call and pads its records to ``record_slots``). A diverged member does not stop its
chunk: its row is marked ``diverged``, its times are NaN and ``ok`` is False.

Outputs per configuration (``d`` features): ``t_train [d]`` (the trained
critical times), ``t_theory [d]`` (the reference: per-feature theory, or the
full-matrix flow where capture is predicted or the per-feature flow is not
exact), ``use_full [d]`` (which one), ``rel_error [d]`` (NaN where training
did not follow the reference), ``order_match``, ``captures_seen``,
``followed``, ``diverged`` and ``ok``.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np

from .._core import _budget, _validate
from .._training._data import gaussian, linear_dynamics, noisy_views
from .._training._datasets import load_dataset
from ._kind import Grid, Output, SweepKind
from ._train_run import run_chunk
from ._values import MAX_GRID, count_values, grid_values

OBJECTIVES = ("jepa", "mae")
SYNTHETIC = {
    "gaussian": ("lam", "var"),
    "noisy_views": ("s", "nu", "c"),
    "linear_dynamics": ("a", "var"),
}
REQUIRED = {"gaussian": ("lam", "var"), "noisy_views": ("s", "nu"), "linear_dynamics": ("a", "var")}
DATASETS = ("patches", "digits", "membrane")
AXES = ("objective", "batch", "eta", "depth", "seed")
SETTINGS = (
    "data",
    "options",
    "rotation",
    "rotation_seed",
    "t_max",
    "steps",
    "eps",
    "fraction",
    "scale",
    "target",
    "tau",
    "sampler",
    "n_t",
)
KEYS = AXES + SETTINGS + ("lam", "var", "s", "nu", "c", "a")
DEFAULTS = {
    "seed": 0,
    "rotation": "identity",
    "rotation_seed": 0,
    "eps": 1e-3,
    "fraction": 0.5,
    "scale": 0.0,
    "target": "stopgrad",
    "tau": 0.0,
    "sampler": "moments",
    "n_t": 120,
}
OUTPUTS = (
    "t_train",
    "t_theory",
    "use_full",
    "rel_error",
    "order_match",
    "captures_seen",
    "followed",
    "diverged",
    "ok",
)
POPULATION = "population"
DEFAULT_CHUNK = 4096  # members per train() call


def _where(key: str) -> str:
    return f"train.{key}"


def _int_list(key: str, value, lo: int, hi: int) -> tuple[int, ...]:
    if isinstance(value, dict):
        if set(value) == {"range"} and key == "seed":
            n = value["range"]
            if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_GRID:
                raise ValueError(f"train.seed: range must be an integer >= 1; got {n!r}")
            return tuple(range(n))
        grid = grid_values(_where(key), key, value)
    else:
        grid = grid_values(_where(key), key, value)
    arr = np.asarray(grid, float)
    bad = (arr != np.round(arr)) | (arr < lo) | (arr > hi)
    if bad.any():
        raise ValueError(
            f"train.{key} must be integers in [{lo}, {hi}]; got {arr[np.argmax(bad)]!r}"
        )
    out = tuple(int(x) for x in arr)
    if len(set(out)) != len(out):
        raise ValueError(f"train.{key}: repeated values in {list(out)}")
    return out


def _batches(value) -> tuple:
    values = value if isinstance(value, list) else [value]
    if not values:
        raise ValueError("train.batch: empty grid (give at least one value)")
    out = []
    for v in values:
        if v == POPULATION:
            out.append(None)
        elif isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(
                f"train.batch values must be integers >= 1 or {POPULATION!r}; got {v!r}"
            )
        else:
            out.append(int(v))
    if len(set(out)) != len(out):
        raise ValueError(f"train.batch: repeated values in {values!r}")
    return tuple(out)


def _one_number(key: str, value, lo: float, lo_open: bool = False) -> float:
    if isinstance(value, (bool, str, list, dict)) or value is None:
        raise ValueError(f"train.{key} must be one number; got {value!r}")
    x = float(value)
    if not math.isfinite(x) or (x <= lo if lo_open else x < lo):
        bound = f"> {lo}" if lo_open else f">= {lo}"
        raise ValueError(f"train.{key} must be a finite number {bound}; got {value!r}")
    return x


def _choice(key: str, value, allowed) -> str:
    if value not in allowed:
        raise ValueError(f"train.{key} must be one of {allowed}; got {value!r}")
    return value


@dataclasses.dataclass(frozen=True)
class TrainSweepConfig(SweepKind):
    """A validated ``[train]`` sweep: training runs over ``objective x batch x eta x depth x seed``.

    Attributes:
        axes: ``(name, values)`` for ``AXES`` (``batch`` None is the population loss).
        data: the data source's name; ``features``: its parameters as
            ``(key, values)`` (synthetic sources) and ``options`` (real data sets).
        settings: the remaining settings as a dict (``t_max`` or ``steps``,
            ``eps``, ``fraction``, ``scale``, ``target``, ``tau``, ``sampler``,
            ``n_t``, ``rotation``, ``rotation_seed``).
        text: the configuration file as given.

    Examples:
        >>> import jepa_flow as jf
        >>> config = jf.parse_sweep_config('''
        ... [train]
        ... objective = ["jepa", "mae"]
        ... data = "gaussian"
        ... lam = [1.0, 0.8]
        ... var = [2.0, 1.0]
        ... depth = [1, 2]
        ... eta = {logspace = [-2, -1, 3]}
        ... batch = [64, "population"]
        ... seed = {range = 4}
        ... t_max = 3000.0
        ... ''')
        >>> print(config.describe())
        96 training runs (objective 2 x batch 2 x eta 3 x depth 2 x seed 4), d = 2 features
        >>> config.shape, config.group_size
        ((2, 2, 3, 2, 4), 24)
    """

    axes: tuple
    data: str
    features: tuple = ()
    options: tuple = ()
    settings: tuple = ()
    text: str = dataclasses.field(default="", repr=False)
    budget: tuple = (_budget.DEFAULT_MAX_MEMORY, _budget.DEFAULT_MAX_DISK)
    d: int | None = None
    pair: bool = False

    name = "train"
    title = "[train]"
    plot = "jepa_flow._plotting._sweep_figure:write_sweep_figure"
    failure = "runs diverged or without a reference"

    @classmethod
    def claims(cls, doc: dict) -> bool:
        return "train" in doc

    @classmethod
    def from_toml(cls, doc: dict, text: str, *, limits: tuple, check: bool) -> TrainSweepConfig:
        return parse_train(doc, text, limits=limits, check=check)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(v) for _, v in self.axes)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def names(self) -> tuple[str, ...]:
        return AXES

    def axis(self, name: str) -> tuple:
        return dict(self.axes)[name]

    @property
    def setting(self) -> dict:
        return dict(self.settings)

    @property
    def groups(self) -> list[tuple[str, int | None]]:
        """``(objective, batch)`` per group, in sweep order."""
        return [(o, b) for o in self.axis("objective") for b in self.axis("batch")]

    @property
    def group_size(self) -> int:
        return math.prod(self.shape[2:])

    @property
    def members_per_eta(self) -> int:
        return len(self.axis("depth")) * len(self.axis("seed"))

    def describe(self) -> str:
        shape = " x ".join(f"{n} {len(v)}" for n, v in self.axes)
        d = f", d = {self.d} features" if self.d else ""
        return f"{self.size} training runs ({shape}){d}"

    def canonical(self) -> dict:
        return {
            "flow": "train",
            "pair": False,
            "axes": [[n, list(v)] for n, v in self.axes],
            "data": self.data,
            "features": [[k, list(v)] for k, v in self.features],
            "options": [list(kv) for kv in self.options],
            "settings": [list(kv) for kv in self.settings],
        }

    def make_grid(self) -> Grid:
        """The axes as columns: ``batch`` inf for the population, ``eta``/``depth`` floats."""
        axes = []
        for name, values in self.axes:
            if name == "batch":
                values = [np.inf if b is None else float(b) for b in values]
            col = np.asarray(values)
            if name in ("eta", "depth"):
                col = col.astype(np.float64)
            axes.append((name, col))
        return Grid.product(axes)

    def outputs(self) -> tuple[Output, ...]:
        """Per-feature outputs have ``d`` entries (64 while ``d`` is not known)."""
        d = (self.d or 64,)
        per_feature = (("t_train", "float"), ("t_theory", "float64"))
        per_feature += (("use_full", "bool"), ("rel_error", "float64"))
        scalars = (("order_match", "bool"), ("captures_seen", "int32"), ("followed", "bool"))
        scalars += (("diverged", "bool"), ("ok", "bool"))
        return tuple(Output(n, t, d, ("feature",)) for n, t in per_feature) + tuple(
            Output(n, t) for n, t in scalars
        )

    def etas_per_chunk(self, chunk_size: int) -> int:
        """With ``t_max`` one eta per chunk (its own steps); with ``steps`` a block of them."""
        if self.setting.get("steps") is None:
            return 1
        return max(1, min(len(self.axis("eta")), chunk_size // self.members_per_eta))

    def chunk_rows(self, chunk_size: int) -> int:
        return self.etas_per_chunk(chunk_size) * self.members_per_eta

    def group_sizes(self) -> tuple[int, ...]:
        return (self.group_size,) * len(self.groups)

    def default_chunk(self) -> int:
        return DEFAULT_CHUNK

    def chunk_members(self, chunk_size: int) -> int:
        """Members of the largest ``train`` call."""
        return self.etas_per_chunk(chunk_size) * self.members_per_eta

    def work_bytes(self) -> int:
        """Memory per member in flight: records, parameters, curves (an upper estimate)."""
        d = self.d or 64
        n_rec = self.setting["n_t"] + 2
        layers = max(self.axis("depth")) + 3
        return 8 * 4 * (n_rec * (2 + 6 * d + d * d) + 4 * layers * d * d)

    def work(self, chunk_size: int) -> tuple[int, int]:
        return self.chunk_members(chunk_size), self.work_bytes()

    def chunk_function(self, group: int, devices: tuple):
        """``dispatch`` only notes the rows; ``gather`` trains and compares them.

        The engine checks its members between its own scan chunks, so a
        chunk runs synchronously; running it in ``gather`` lets the runner
        write each chunk as soon as it is done.
        """

        def gather(chunk):
            outputs = run_chunk(self, group, chunk.lo, chunk.hi, devices)
            return [outputs[o.name] for o in self.outputs()]

        return (lambda chunk, padded: chunk), gather

    def parameters(self, names=None, rows=None) -> dict[str, np.ndarray]:
        """Every axis as a column, one row per configuration (``batch`` inf: population)."""
        return super().parameters(names, rows)

    @functools.cached_property
    def _sources(self) -> dict:
        return {}

    def data_source(self, batch):
        """The ``Data`` source at ``batch`` (None: population), built once per batch."""
        if batch not in self._sources:
            self._sources[batch] = _make_data(self, batch)
        return self._sources[batch]


def _make_data(config: TrainSweepConfig, batch):
    s = config.setting
    f = {k: np.asarray(v, float) for k, v in config.features}
    if config.data in DATASETS:
        return load_dataset(config.data, batch=batch, **dict(config.options))
    sampler = {"moments": "wishart", "samples": "samples"}[s["sampler"]]
    common = dict(
        batch=batch,
        U="random" if s["rotation"] == "random" else None,
        seed=s["rotation_seed"],
        sampler=sampler,
    )
    if config.data == "gaussian":
        return gaussian(Sxx=f["var"], Syx=f["lam"], **common)
    if config.data == "noisy_views":
        return noisy_views(f["s"], f["nu"], f.get("c", 0.0), **common)
    return linear_dynamics(f["a"], f["var"], **common)


def parse_train(doc: dict, text: str, limits=None, check: bool = True) -> TrainSweepConfig:
    """Validate a ``[train]`` table (module docstring); ``limits`` = ``(max_memory, max_disk)``.

    The grid is counted before any axis is generated; with ``check`` the disk
    budget is checked and the data source is built once at the population
    loss (so its own checks run, and ``d`` is known) before anything runs.
    """
    limits = limits or (_budget.DEFAULT_MAX_MEMORY, _budget.DEFAULT_MAX_DISK)
    table = _train_table(doc)
    _count_axes(table, limits[0] if check else None)
    axes = _axes(table)
    eta = np.asarray(axes[2][1])
    s = _settings(table, eta)
    data = table["data"]
    if data in DATASETS and ("rotation" in doc["train"] or "rotation_seed" in doc["train"]):
        raise ValueError(f"train.rotation does not apply to the real data set {data!r}")
    if data in SYNTHETIC:
        features, options, d = _synthetic(table, data, s["sampler"], axes[1][1])
    else:
        features, options, d = (), _options(table, doc, data), None
    config = TrainSweepConfig(
        axes=axes,
        data=data,
        features=features,
        options=options,
        settings=tuple(sorted(s.items())),
        text=text,
        budget=limits,
        d=d,
    )
    return _checked_source(config) if check else config


def _train_table(doc: dict) -> dict:
    """The ``[train]`` table with its defaults; refuses unknown tables and keys."""
    extra = set(doc) - {"train", "budget"}
    if extra:
        raise ValueError(f"a [train] sweep takes only [train] and [budget]; remove [{min(extra)}]")
    table = doc["train"]
    if not isinstance(table, dict):
        raise ValueError("train must be a table: [train]")
    for key in table:
        if key not in KEYS:
            raise ValueError(f"unknown key train.{key}; allowed: {', '.join(KEYS)}")
    table = {**DEFAULTS, **table}
    for key in ("objective", "data", "depth", "eta", "batch"):
        if key not in table:
            raise ValueError(f"train.{key} is required")
    data = table["data"]
    if data not in SYNTHETIC and data not in DATASETS:
        raise ValueError(f"train.data must be one of {(*SYNTHETIC, *DATASETS)}; got {data!r}")
    allowed_data = SYNTHETIC.get(data, ("options",))
    for key in ("lam", "var", "s", "nu", "c", "a", "options"):
        if key in table and key not in allowed_data:
            raise ValueError(
                f"train.{key} does not apply to data = {data!r}; "
                f"its keys: {', '.join(allowed_data)}"
            )
    return table


def _count_axes(table: dict, max_memory) -> None:
    """Count the grid before generating any axis (and check its memory: ``max_memory``)."""
    counts = []
    for key in AXES:
        value = table[key]
        if key == "seed" and isinstance(value, dict) and set(value) == {"range"}:
            counts.append(value["range"] if isinstance(value["range"], int) else 1)
        else:
            counts.append(count_values(_where(key), value))
    size = math.prod(counts)
    if size > MAX_GRID:
        raise ValueError(f"the grid has {size:.3g} training runs, more than {MAX_GRID:.0e}")
    if max_memory is not None:
        _budget.check_budget(
            f"the grid's axes ({sum(counts)} values)",
            memory=8 * sum(counts),
            max_memory=max_memory,
        )


def _axes(table: dict) -> tuple:
    """``(name, values)`` for ``AXES``, validated."""
    objectives = grid_values("train.objective", "objective", table["objective"])
    for o in objectives:
        _choice("objective", o, OBJECTIVES)
    batches = _batches(table["batch"])
    eta = grid_values("train.eta", "eta", table["eta"])
    try:
        _validate.as_positive("eta", eta)
    except ValueError as err:
        raise ValueError(f"train.{err}") from None
    if len(set(eta.tolist())) != eta.size:
        raise ValueError("train.eta: repeated values")
    depth = _int_list("depth", table["depth"], 1, 64)
    seed = _int_list("seed", table["seed"], 0, 2**32 - 1)
    return (
        ("objective", tuple(objectives)),
        ("batch", batches),
        ("eta", tuple(float(x) for x in eta)),
        ("depth", depth),
        ("seed", seed),
    )


def _settings(table: dict, eta: np.ndarray) -> dict:
    """The single-valued settings, validated (``eta``: the swept step sizes, for ``tau``)."""
    s = {}
    if ("t_max" in table) == ("steps" in table):
        raise ValueError("train: give exactly one of t_max (flow time, > 0) and steps (int >= 1)")
    if "t_max" in table:
        s["t_max"] = _one_number("t_max", table["t_max"], 0.0, lo_open=True)
    else:
        steps = table["steps"]
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"train.steps must be an integer >= 1; got {steps!r}")
        s["steps"] = steps
    s["eps"] = _one_number("eps", table["eps"], 0.0, lo_open=True)
    s["fraction"] = _one_number("fraction", table["fraction"], 0.0, lo_open=True)
    if s["fraction"] >= 1:
        raise ValueError(f"train.fraction must lie in (0, 1); got {table['fraction']!r}")
    s["scale"] = _one_number("scale", table["scale"], 0.0)
    s["target"] = _choice("target", table["target"], ("stopgrad", "ema"))
    s["tau"] = _one_number("tau", table["tau"], 0.0)
    if s["target"] == "ema" and s["tau"] != 0 and s["tau"] < eta.max():
        raise ValueError(
            f"train.tau must be 0 or >= max(eta) = {eta.max():g} with target 'ema'; got {s['tau']}"
        )
    if s["target"] != "ema" and s["tau"] != 0:
        raise ValueError("train.tau applies to target = 'ema' only; remove it")
    s["sampler"] = _choice("sampler", table["sampler"], ("moments", "samples"))
    n_t = table["n_t"]
    if isinstance(n_t, bool) or not isinstance(n_t, int) or not 2 <= n_t <= 10000:
        raise ValueError(f"train.n_t must be an integer in [2, 10000]; got {n_t!r}")
    s["n_t"] = n_t
    s["rotation"] = _choice("rotation", table["rotation"], ("identity", "random"))
    rs = table["rotation_seed"]
    if isinstance(rs, bool) or not isinstance(rs, int) or rs < 0:
        raise ValueError(f"train.rotation_seed must be an integer >= 0; got {rs!r}")
    s["rotation_seed"] = rs
    return s


def _synthetic(table: dict, data: str, sampler: str, batches) -> tuple:
    """``(features, (), d)`` of a synthetic source: one value per feature for each key."""
    for key in REQUIRED[data]:
        if key not in table:
            raise ValueError(f"train.{key} is required for data = {data!r}")
    features = []
    for key in SYNTHETIC[data]:
        if key in table:
            values = table[key] if isinstance(table[key], list) else [table[key]]
            arr = _validate.as_real(_where(key), values)
            if arr.ndim != 1 or arr.size == 0:
                raise ValueError(f"train.{key} must be a number or a list of numbers")
            features.append((key, tuple(float(x) for x in arr)))
    sizes = {len(v) for k, v in features if k != "c" or len(v) > 1}
    if len(sizes) > 1:
        raise ValueError(
            f"train: the feature lists {', '.join(k for k, _ in features)} must have "
            "the same length (one value per feature)"
        )
    d = sizes.pop()
    if sampler == "moments":
        small = [b for b in batches if b is not None and b < 2 * d]
        if small:
            raise ValueError(
                f"train.batch {small[0]} is below 2d = {2 * d}, the least sampler "
                "'moments' draws; use larger batches or sampler = 'samples'"
            )
    return tuple(features), (), d


def _options(table: dict, doc: dict, data: str) -> tuple:
    """A real data set's ``options`` table as sorted ``(key, value)`` pairs."""
    opts = table.get("options", {})
    if not isinstance(opts, dict):
        raise ValueError("train.options must be a table: options = {...}")
    if "batch" in opts:
        raise ValueError("train.options.batch: give the batch sizes as train.batch")
    if "sampler" in doc["train"]:
        raise ValueError(
            f"train.sampler does not apply to the real data set {data!r} (rows are drawn)"
        )
    return tuple(sorted(opts.items()))


def _checked_source(config: TrainSweepConfig) -> TrainSweepConfig:
    """Build the population-loss data source (its checks run, ``d`` is known); check the disk."""
    try:
        source = config.data_source(None)
    except ValueError as err:
        raise ValueError(f"train.data = {config.data!r}: {err}") from None
    config = dataclasses.replace(config, d=source.d)
    config._sources[None] = source
    _budget.check_budget(
        f"the sweep's results ({config.describe()}, {config.row_bytes()} bytes each)",
        disk=config.disk_bytes,
        max_disk=config.budget[1],
    )
    return config
