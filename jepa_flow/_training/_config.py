"""``TrainConfig``: everything that defines a training run except its data.

One frozen, typed object is built by the Python user or the CLI, validated
once (before anything is compiled), passed to ``train``, recorded in the
``TrainResult`` and read back by ``compare``, so a comparison always uses the
run's own ``eps``, ``init``, ``scale`` and ``fraction``. It round-trips
through JSON (``to_dict`` / ``from_dict``).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import numpy as np

from .._core import _validate
from .._core._results import register_result

OBJECTIVES = ("jepa", "mae")
TARGETS = ("stopgrad", "ema", "frozen")
OPTIMIZERS = ("sgd", "momentum", "adam")
INITS = ("balanced", "random", "given")
# jax.default_matmul_precision names: "highest" is full float32 (or float64) products;
# "high" and "default" let a GPU use TF32 (a 10-bit mantissa) and a TPU bfloat16 passes
MATMUL_PRECISIONS = ("highest", "high", "default")
MAX_TRAIN_DEPTH = 64


def _choice(name, value, allowed):
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}; got {value!r}")
    return value


def _ints(name, value, lo, hi=None) -> tuple[int, ...]:
    arr = np.atleast_1d(_validate.as_real(name, value))
    rng = f"[{lo}, {hi}]" if hi is not None else f">= {lo}"
    bad = (arr != np.round(arr)) | (arr < lo) | ((arr > hi) if hi is not None else False)
    if arr.ndim != 1 or arr.size == 0 or bad.any():
        raise ValueError(f"{name} must be an integer {rng} or a 1-D list of them; got {value!r}")
    return tuple(int(x) for x in arr)


def _floats(name, value, positive=False) -> tuple[float, ...]:
    check = _validate.as_positive if positive else _validate.as_real
    arr = np.atleast_1d(check(name, value))
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a number or a 1-D list of them; got {value!r}")
    return tuple(float(x) for x in arr)


def _scalar(name, value, lo=None, lo_open=False) -> float:
    arr = _validate.as_real(name, value)
    if arr.ndim:
        raise ValueError(f"{name} must be a single number; got {value!r}")
    x = float(arr)
    if lo is not None and (x <= lo if lo_open else x < lo):
        bound = f"> {lo}" if lo_open else f">= {lo}"
        raise ValueError(f"{name} must be {bound}; got {x!r}")
    return x


def _times(name, value) -> tuple[float, ...]:
    if isinstance(value, str):
        raise ValueError(f"{name} must be 'auto' or a list of flow times >= 0; got {value!r}")
    t_rec = np.atleast_1d(_validate.as_real(name, value)).ravel()
    if (t_rec < 0).any():
        raise ValueError(f"{name} must be >= 0 (allowed range [0, inf))")
    return tuple(float(x) for x in t_rec)


@register_result
@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """A grid of training runs: ``seed x depth x eta`` members of one objective.

    Every field is validated on construction (a ``ValueError`` names the field
    and the allowed range). Lists are stored as tuples, so a config is
    hashable and immutable; ``dataclasses.replace(config, eta=...)`` makes a
    variant.

    Attributes:
        objective: ``"jepa"`` or ``"mae"`` (docs/theory.md §1).
        depth: encoder depths ``L``, each in [1, 64].
        eta: learning rates, > 0. Step ``k`` is flow time ``t = eta k`` (§8.4).
        seed: random seeds, >= 0 (initial noise and minibatches).
        t_max: flow time to reach (> 0), or
        steps: number of steps (>= 1); exactly one of the two.
        eps: balanced start ``W_a = V = eps^(1/L) I``, so ``Wbar(0) = eps I``; > 0.
        init: ``"balanced"`` (plus ``scale`` Gaussian noise), ``"random"``
            (entries ``scale N(0, 1)``) or ``"given"`` (``train(start=...)``).
        scale: >= 0, the noise of the balanced start or the random scale.
        target: JEPA's target: ``"stopgrad"``, ``"ema"`` (time constant
            ``tau`` in flow time; ``tau = 0`` is the stop-gradient run) or
            ``"frozen"`` (``train(teacher=...)``), §6.2-§6.3. MAE: ``"stopgrad"``.
        tau: EMA time constant, 0 or >= max(eta).
        optimizer: ``"sgd"`` (the flow's discretization), ``"momentum"`` or ``"adam"``.
        momentum: in [0, 1), for ``"momentum"``.
        fraction: the critical time's level, ``fraction * wbar*``, in (0, 1).
        n_t: number of log-spaced records, >= 2.
        t_extra: extra flow times to record at, or ``"auto"`` (the default):
            ``record_times(data, config)``, dense over each depth's rises,
            computed by ``train`` from its data (the ``TrainResult``'s config
            then holds the times). ``()`` records the log-spaced steps only.
        keep_latent: record ``U^T Wbar U`` at every record (None: when it is
            under 1e7 numbers).
        matmul_precision: precision of every matrix product of the run
            (``jax.default_matmul_precision``): ``"highest"`` (the default:
            full float32 or float64 products on every device), or ``"high"``
            or ``"default"``, which let an A100/H100/H200 GPU use TF32 (about
            three fewer digits in float32; float64 is unaffected) and a TPU
            bfloat16 passes, for speed. CPUs compute every choice in full.

    Examples:
        >>> cfg = TrainConfig(objective="mae", depth=[1, 2], eta=0.01, t_max=50.0)
        >>> cfg.depth, cfg.eta, cfg.n_steps
        ((1, 2), (0.01,), 5000)
        >>> TrainConfig(eta=0)
        Traceback (most recent call last):
        ...
        ValueError: eta must be > 0 (allowed range (0, inf)); got 0.0
    """

    objective: str = "jepa"
    depth: tuple[int, ...] = (1,)
    eta: tuple[float, ...] = (1e-2,)
    seed: tuple[int, ...] = (0,)
    t_max: float | None = None
    steps: int | None = None
    eps: float = 1e-3
    init: str = "balanced"
    scale: float = 0.0
    target: str = "stopgrad"
    tau: float = 0.0
    optimizer: str = "sgd"
    momentum: float = 0.9
    fraction: float = 0.5
    n_t: int = 120
    t_extra: tuple[float, ...] | Literal["auto"] = "auto"
    keep_latent: bool | None = None
    matmul_precision: str = "highest"

    def __post_init__(self):
        def put(name, value):
            object.__setattr__(self, name, value)

        _choice("objective", self.objective, OBJECTIVES)
        put("depth", _ints("depth", self.depth, 1, MAX_TRAIN_DEPTH))
        put("eta", _floats("eta", self.eta, positive=True))
        put("seed", _ints("seed", self.seed, 0, 2**32 - 1))
        if (self.steps is None) == (self.t_max is None):
            raise ValueError("give exactly one of t_max (flow time, > 0) and steps (int >= 1)")
        if self.t_max is not None:
            put("t_max", _scalar("t_max", self.t_max, 0.0, lo_open=True))
            if max(self.eta) > self.t_max:  # not one step would fit before t_max
                raise ValueError(
                    f"eta must be at most t_max = {self.t_max:g} (one step covers flow time "
                    f"eta); got {max(self.eta):g}"
                )
        else:
            put("steps", _ints("steps", self.steps, 1)[0])
        put("eps", _scalar("eps", self.eps, 0.0, lo_open=True))
        _choice("init", self.init, INITS)
        put("scale", _scalar("scale", self.scale, 0.0))
        _choice("target", self.target, TARGETS)
        if self.objective == "mae" and self.target != "stopgrad":
            raise ValueError(
                f"target applies to objective 'jepa' only; got target={self.target!r} for MAE"
            )
        put("tau", _scalar("tau", self.tau, 0.0))
        if self.target == "ema" and self.tau != 0 and self.tau < max(self.eta):
            raise ValueError(
                f"tau must be 0 or >= max(eta) = {max(self.eta)} (beta = 1 - eta/tau in [0, 1)); "
                f"got {self.tau}"
            )
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        momentum = _scalar("momentum", self.momentum, 0.0)
        if momentum >= 1:
            raise ValueError(f"momentum must lie in [0, 1); got {momentum}")
        put("momentum", momentum)
        put("fraction", float(_validate.as_fraction(self.fraction)))
        put("n_t", _ints("n_t", self.n_t, 2)[0])
        if not (isinstance(self.t_extra, str) and self.t_extra == "auto"):
            put("t_extra", _times("t_extra", self.t_extra))
        if self.keep_latent is not None and not isinstance(self.keep_latent, (bool, np.bool_)):
            raise ValueError(f"keep_latent must be True, False or None; got {self.keep_latent!r}")
        _choice("matmul_precision", self.matmul_precision, MATMUL_PRECISIONS)

    @property
    def n_steps(self) -> int:
        """Steps every member runs: ``steps``, or ``ceil(t_max / min(eta))``."""
        if self.steps is not None:
            return self.steps
        return math.ceil(self.t_max / min(self.eta) - 1e-9)

    def to_dict(self) -> dict:
        """The fields as plain JSON values (tuples become lists)."""
        return {
            f.name: list(v) if isinstance(v, tuple) else v
            for f in dataclasses.fields(self)
            for v in [getattr(self, f.name)]
        }

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """Inverse of ``to_dict``; unknown keys are refused."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown TrainConfig fields {unknown}; allowed: {sorted(names)}")
        return cls(**d)
