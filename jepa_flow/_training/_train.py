"""Training engine: deep linear JEPA/MAE trained by jitted optax SGD (theory §1, §6, §7).

``train(data, config)`` takes a validated ``TrainConfig``, builds the
grid of (seed, depth, learning rate) members and runs them in one compiled,
vmapped call of the engine in ``jepa_flow._training._engine`` (one jitted optax step,
scanned in chunks, with a tqdm bar between chunks). It compiles once per
(objective, target, optimizer, data source, shapes).

Time: with learning rate ``eta``, step ``k`` is flow time ``t = eta * k``
(theory §1). Plain SGD is gradient descent on the flow with an O(eta) time
bias: on the population loss it follows the flow's critical times to about
``eta * rate / 2`` relative, where ``rate`` is the feature's growth rate at its
rise; keep ``eta * var * rho^(2L-1)`` (JEPA) below about 1e-2 for 1 %.
(With momentum ``m`` the effective rate is ``eta / (1 - m)``; Adam has no flow
counterpart.) The discrete EMA ``W_T <- beta W_T + (1 - beta) W`` with
``beta = 1 - eta / tau`` lags its online layers by ``tau - eta`` in flow time
(``tau / eta - 1`` steps), so it matches the continuous EMA of theory §6 with
time constant ``tau - eta``: take ``eta << tau``.

Recorded, at log-spaced steps shared by every member: the population loss,
the singular values of ``Wbar``, and per input feature ``e_j`` (columns of the
data's ``U``) the encoded norm ``|Wbar e_j|``, the diagonal entry
``e_j^T Wbar e_j`` and the off-diagonal mass ``sqrt(sum_(i != j) (e_i^T Wbar e_j)^2)``
(theory §7). At *every* step the first crossing of ``|Wbar e_j|`` over
``fraction * wbar*_j`` (per-feature theory) is detected and interpolated
linearly between the two steps: that is the training critical time.

Precision: ``train`` runs in the working dtype of JAX (float64 when
``jax_enable_x64`` is on, float32 otherwise; ``jepa_flow._core._batch.float_dtype``),
like the theory layer: the data's arrays are cast to it, and every recorded
array of the ``TrainResult`` is in it: JAX arrays, left on the device they
were computed on (``step``, ``t`` and ``level`` are exact numpy values).
Every matrix product runs at ``config.matmul_precision`` (``"highest"`` by
default: no TF32 on GPUs). Minibatch draws are float32 in both (``jepa_flow._training._data``),
so the same seed gives the same minibatches in both precisions. The float32
accuracy of trained critical times is measured in docs/precision.md.

Depth: members of different depths share ``n_layers = max(depth)`` layers; the
extra layers are identity with masked updates (see ``jepa_flow._training._model``).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import ArrayLike, Bool, Float

from .._core import _validate
from .._core._batch import float_dtype
from .._core._devices import batch_sharding
from .._core._grid import Selection, select
from .._core._results import register_result
from .._core._status import Status, crossing_status, status_ok
from .._theory._critical_time import fixed_point
from .._theory._layers import Params, wbar
from .._theory._targets import frozen_teacher_lam
from ._config import TrainConfig
from ._data import Data
from ._engine import (
    DIVERGED,
    Consts,
    DivergenceError,
    Static,
    block_size,
    diverged_threshold,
    run,
)
from ._labelled import train_dataset
from ._records import record_slots, record_steps, resolve_t_extra

__all__ = [
    "DIVERGED",
    "DivergenceError",
    "TrainResult",
    "diverged_members",
    "levels",
    "record_steps",
    "train",
]


@register_result
@dataclasses.dataclass(frozen=True)
class TrainResult:
    """A trained grid of members, axes ``[seed, depth, eta, ...]`` (``S, D, E``).

    Attributes:
        config: the ``TrainConfig`` the run was made with.
        data: the ``Data`` it was trained on.
        teacher: the frozen teacher ``Wbar_T`` ``[d, d]`` (target ``"frozen"``), else None.
        step: recorded steps ``[R]`` (shared by every member).
        t: recorded flow times ``eta * step``, ``[S, D, E, R]``.
        loss: population loss at the records, ``[S, D, E, R]``.
        sv: singular values of ``Wbar``, ``[S, D, E, R, d]``.
        norm: ``|Wbar e_j|`` per input feature ``e_j`` (columns of ``data.U``),
            ``[S, D, E, R, d]``; basis-independent (docs/theory.md §7.1).
        diag: ``e_j^T Wbar e_j``, ``[S, D, E, R, d]``.
        offdiag: ``sqrt(sum_(i != j) (e_i^T Wbar e_j)^2)``, ``[S, D, E, R, d]``.
        latent: ``U^T Wbar U`` ``[S, D, E, R, d, d]``, or None when not kept.
        t_star: training critical times, the first crossing of ``level`` by
            ``|Wbar e_j|`` interpolated between steps, ``[S, D, E, d]``
            (inf: not reached within the run).
        level: ``fraction * wbar*_j`` per depth and feature, ``[D, d]``
            (inf where the feature is never learned).
        W0, V0: initial parameters ``[S, D, E, n_layers, d, d]`` and ``[S, D, E, d, d]``
            (layers beyond a member's depth are the identity).
        W, V: final parameters, same shapes.

    Examples:
        A JEPA of depths 1 and 2 on the canonical pair:

        >>> import jepa_flow as jf
        >>> data = jf.gaussian(Sxx=[2.0, 1.0], Syx=[1.0, 0.8])
        >>> r = jf.train(data, jf.TrainConfig(depth=[1, 2], eta=0.1, steps=100, n_t=10))
        >>> r.t_star.shape, r.norm.shape, r.W.shape  # [seed, depth, eta, ...]
        ((1, 2, 1, 2), (1, 2, 1, 10, 2), (1, 2, 1, 2, 2, 2))
        >>> r.level.round(3).tolist()  # half of wbar* = rho^L
        [[0.25, 0.4], [0.125, 0.32]]
    """

    config: TrainConfig
    data: Data
    teacher: np.ndarray | None
    step: np.ndarray
    t: np.ndarray
    loss: np.ndarray
    sv: np.ndarray
    norm: np.ndarray
    diag: np.ndarray
    offdiag: np.ndarray
    latent: np.ndarray | None
    t_star: np.ndarray
    level: np.ndarray
    W0: np.ndarray
    V0: np.ndarray
    W: np.ndarray
    V: np.ndarray

    @property
    def depth(self) -> np.ndarray:
        """The grid's depths ``[D]``."""
        return np.asarray(self.config.depth)

    @property
    def eta(self) -> np.ndarray:
        """The grid's learning rates ``[E]``."""
        return np.asarray(self.config.eta)

    @property
    def seed(self) -> np.ndarray:
        """The grid's seeds ``[S]``."""
        return np.asarray(self.config.seed)

    @property
    def status(self) -> np.ndarray:
        """Each member's and feature's ``Status`` ``[S, D, E, d]`` (integer codes).

        ``SUCCESSFUL`` (the level was crossed at ``t_star``), ``STARTS_ABOVE_LEVEL``
        (``t_star = 0``), ``NEVER_LEARNED`` (``wbar* = 0``: ``level`` is inf),
        ``NOT_REACHED`` (not within the run), or ``DIVERGED`` for every feature
        of a diverged member (``diverged_members``; only with ``on_divergence="keep"``).
        """
        code = crossing_status(self.t_star, self.level[None, :, None, :])
        return np.where(diverged_members(self)[..., None], int(Status.DIVERGED), code)

    @property
    def ok(self) -> np.ndarray:
        """``[S, D, E, d]``: False where the member diverged (``status`` is a failure)."""
        return status_ok(self.status)

    @property
    def coords(self) -> dict[str, np.ndarray]:
        """The grid's axis values: ``{"seed": [S], "depth": [D], "eta": [E]}``."""
        return {"seed": self.seed, "depth": self.depth, "eta": self.eta}

    def sel(
        self,
        *,
        seed: int | Sequence[int] | None = None,
        depth: int | Sequence[int] | None = None,
        eta: float | Sequence[float] | None = None,
    ) -> Selection:
        """Members by their grid values: every array indexed along ``[seed, depth, eta]``.

        Each argument is None (the whole axis), one value (the axis is
        dropped) or a list of values (the axis is kept, in that order); an
        ``eta`` matches a grid value to a relative 1e-12. ``level`` is
        indexed by ``depth``; values without the grid axes (``config``,
        ``data``, ``step``) are the result's own. Raises ``ValueError`` for
        a value not on the grid, naming the axis and its values.

        Examples:
            >>> import jepa_flow as jf
            >>> data = jf.gaussian(Sxx=[2.0, 1.0], Syx=[1.0, 0.8])
            >>> r = jf.train(data, jf.TrainConfig(depth=[1, 2], eta=0.1, steps=100, n_t=10))
            >>> r.sel(depth=2, eta=0.1, seed=0).level.round(3).tolist()  # r.level[1]
            [0.125, 0.32]
            >>> r.sel(depth=2).norm.shape  # [seed, eta, record, feature]
            (1, 1, 10, 2)
            >>> r.sel(depth=3)
            Traceback (most recent call last):
            ...
            ValueError: depth=3 is not on the grid; its depth values are [1, 2]
        """
        by_depth = {"level": lambda v, pos: np.take(v, pos["depth"], axis=0)}
        return select(self, self.coords, {"seed": seed, "depth": depth, "eta": eta}, by_depth)

    def to_xarray(self):
        """The run as an ``xarray.Dataset`` over ``seed``, ``depth``, ``eta`` (needs xarray).

        Every recorded array is a variable with its grid values as
        coordinates, plus ``record`` (``step`` as its coordinate; ``t`` is a
        variable, since it depends on ``eta``), ``feature``, ``component``
        (singular values), ``layer``, ``out``/``in`` (matrices); ``level``
        is over ``depth`` and ``feature``; ``status`` holds the ``Status``
        codes. The configuration is in ``attrs["config"]`` (JSON).

        Examples:
            >>> import jepa_flow as jf
            >>> data = jf.gaussian(Sxx=[2.0, 1.0], Syx=[1.0, 0.8])
            >>> r = jf.train(data, jf.TrainConfig(depth=[1, 2], eta=0.1, steps=100, n_t=10))
            >>> ds = r.to_xarray()
            >>> ds["norm"].dims
            ('seed', 'depth', 'eta', 'record', 'feature')
            >>> ds["level"].sel(depth=2).round(3).values.tolist()
            [0.125, 0.32]
        """
        return train_dataset(self)

    @property
    def wbar(self) -> np.ndarray:
        """Final end-to-end encoders ``[S, D, E, d, d]``."""
        E = self.W[..., 0, :, :]
        for a in range(1, self.W.shape[-3]):
            E = self.W[..., a, :, :] @ E
        return E


def diverged_members(result: TrainResult) -> Bool[np.ndarray, "S D E"]:
    """Members whose recorded loss went NaN or above the divergence threshold, ``[S, D, E]``.

    The threshold is ``DIVERGED`` in float64 and ``1e30`` in float32 (the loss's dtype).

    Only a run with ``on_divergence="keep"`` can hold any (otherwise ``train``
    raises); their records after the divergence are NaN or huge.

    Examples:
        >>> import jepa_flow as jf
        >>> data = jf.gaussian(Sxx=[1.0, 2.0], Syx=[0.5, 1.0])
        >>> cfg = jf.TrainConfig(objective="mae", depth=2, eta=[0.1, 5.0], eps=0.5, steps=300)
        >>> r = jf.train(data, cfg, on_divergence="keep")
        >>> jf.diverged_members(r).tolist()  # [seed, depth, eta]
        [[[False, True]]]
    """
    bad = ~(np.abs(result.loss) < diverged_threshold(result.loss.dtype))
    return bad.any(axis=-1) | ~np.isfinite(result.W).all(axis=(-3, -2, -1))


def _teacher_matrix(teacher, d):
    if isinstance(teacher, TrainResult):
        teacher = teacher.wbar.reshape(-1, d, d)[0]
    elif isinstance(teacher, Params):
        teacher = np.asarray(wbar(teacher.W))
    arr = _validate.as_real("teacher", teacher)
    if arr.shape != (d, d):
        raise ValueError(f"teacher must be a ({d}, {d}) encoder matrix Wbar_T; got {arr.shape}")
    return arr


def teacher_diagonal(data: Data, teacher) -> np.ndarray:
    """``c_j = e_j^T Wbar_T e_j``: the teacher in the feature basis (docs/theory.md §6.3)."""
    U = np.asarray(data.U)
    return np.diag(U.T @ np.asarray(teacher) @ U)


def levels(config: TrainConfig, data: Data, teacher=None) -> np.ndarray:
    """``fraction * wbar*_j`` per depth and feature ``[D, d]`` (docs/theory.md §3, §6.3).

    A frozen teacher ``Wbar_T``: MAE's fixed point with ``lam -> c lam``.
    Never-learned features (``wbar* = 0``) get ``inf``.
    """
    lam, var = np.asarray(data.lam), np.asarray(data.var)
    objective = config.objective
    if objective == "jepa" and config.target == "frozen":
        lam, objective = frozen_teacher_lam(lam, teacher_diagonal(data, teacher)), "mae"
    depth = np.asarray(config.depth, float)[:, None]
    ws = np.asarray(fixed_point(objective, lam[None, :], var[None, :], depth))
    return np.where(ws > 0, config.fraction * ws, np.inf)


# Steps per compiled scan call. Fixed, so runs of different lengths (a training
# sweep's learning rates) share one compilation; steps past a run's end are skipped
# by a ``lax.cond`` and cost next to nothing.
CHUNK_STEPS = 1024


def _as_working_dtype(data: Data) -> Data:
    """``data`` with its float arrays in the working dtype (a no-op when they already are)."""
    dtype = float_dtype()

    def cast(x):
        return x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x

    return jax.tree.map(cast, data)


def _start(config: TrainConfig, start, d: int):
    """The given initial ``(W0, V0)`` (``init == "given"``), checked; empty arrays otherwise."""
    if config.init != "given":
        if start is not None:
            raise ValueError(f"start is only used with init='given'; got init={config.init!r}")
        return np.zeros(0), np.zeros(0)
    if not isinstance(start, Params):
        raise ValueError("init='given' needs start=Params(W=[L, d, d], V=[d, d])")
    W0 = _validate.as_real("start.W", start.W)
    V0 = _validate.as_real("start.V", start.V)
    if W0.ndim != 3 or W0.shape[1:] != (d, d) or V0.shape != (d, d):
        raise ValueError(f"start must have W [L, {d}, {d}] and V [{d}, {d}]")
    if config.depth != (W0.shape[0],):
        raise ValueError(
            f"with a given start, depth must be its L = {W0.shape[0]}; got {config.depth}"
        )
    return W0, V0


def train(
    data: Data,
    config: TrainConfig,
    *,
    start: Params | None = None,
    teacher: Float[ArrayLike, "d d"] | Params | TrainResult | None = None,
    progress: bool = False,
    devices: Sequence[jax.Device] | None = None,
    on_divergence: Literal["raise", "keep"] = "raise",
) -> TrainResult:
    """Train a grid of deep linear JEPA/MAE members in one compiled, vmapped call.

    Members are the product ``seed x depth x eta`` of ``config``; each starts
    from its seed's initialization (the same seed gives the same noise at
    every depth and rate) and runs ``config.n_steps`` steps (with ``t_max``,
    members with a larger ``eta`` reach a later flow time ``t = eta * step``).

    Args:
        data: a ``Data`` source (``gaussian``, ``noisy_views``, ``linear_dynamics``).
        config: a ``TrainConfig`` (validated when it was made).
        start: ``Params(W=[L, d, d], V=[d, d])``, the initial state when
            ``config.init == "given"``.
        teacher: the frozen target when ``config.target == "frozen"``: a
            ``[d, d]`` encoder ``Wbar_T``, a ``Params`` or a ``TrainResult``
            (its first member's final encoder).
        progress: show a tqdm bar (steps, loss).
        devices: devices to split the members over (their number must divide
            the number of members); None: JAX's default placement.
        on_divergence: ``"raise"`` (a ``DivergenceError``) or ``"keep"``: every
            member runs to the end and a diverged one keeps its NaN or huge
            state (find it by ``result.loss``; ``diverged_members``).

    Returns:
        A ``TrainResult`` that records ``config``.

    Raises:
        ValueError: bad arguments (before compiling); ``DivergenceError`` (a
            ``ValueError``) when a member's loss turns NaN or overflows.

    Examples:
        The canonical pair of docs/theory.md §4, MAE at depth 1: t* = 6.0119, 7.8086:

        >>> import jepa_flow as jf
        >>> data = jf.gaussian(Sxx=[2.0, 1.0], Syx=[1.0, 0.8])
        >>> cfg = jf.TrainConfig(objective="mae", depth=1, eta=1e-3, t_max=12.0)
        >>> r = jf.train(data, cfg)
        >>> r.sel(seed=0, depth=1, eta=1e-3).t_star.round(2).tolist()  # r.t_star[0, 0, 0]
        [6.01, 7.81]
    """
    if on_divergence not in ("raise", "keep"):
        raise ValueError(f"on_divergence must be 'raise' or 'keep'; got {on_divergence!r}")
    run_args, ctx = prepared(data, config, start=start, teacher=teacher, devices=devices)
    st, data, shared, consts, slots = run_args
    keep = on_divergence == "keep"
    init_members, carry = run(
        st, data, shared, consts, config.n_steps, slots, ctx["eta_m"], ctx["where"], progress, keep
    )
    return _result(ctx["config"], data, ctx, init_members, carry[2], carry[3])


def prepared(data: Data, config: TrainConfig, *, start=None, teacher=None, devices=None):
    """Everything ``train`` hands to the engine, checked: ``((st, data, shared, consts,
    slots), context)``; ``_engine.compiled_run(st, stop)(data, shared, consts, slots)``
    runs it (``scripts/bench_overhead.py`` times that against ``train``)."""
    if not isinstance(data, Data):
        raise ValueError(f"data must be a jepa_flow Data source; got {type(data).__name__}")
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig; got {type(config).__name__}")
    d = data.d
    data = _as_working_dtype(data)
    W0, V0 = _start(config, start, d)
    E_T = _teacher(config, teacher, d)
    config = resolve_t_extra(data, config)  # t_extra="auto": the records over the rises
    depths, etas, seeds = (np.asarray(x) for x in (config.depth, config.eta, config.seed))
    rec = record_steps(config.n_steps, config.n_t, np.asarray(config.t_extra, float) / etas.min())
    keep_latent = config.keep_latent
    if keep_latent is None:
        keep_latent = seeds.size * depths.size * etas.size * rec.size * d * d < 1e7
    n_members, n_layers = seeds.size * depths.size * etas.size, int(depths.max())
    sharded = devices is not None and len(devices) > 1
    # cache-sized blocks pay on a CPU only: on a GPU they serialize the ensemble (an
    # H200 reached 1 % of its float64 matmul peak with 4096 members in blocks of 64)
    on_cpu = (devices[0] if devices else jax.devices()[0]).platform == "cpu"
    # a member's parameters, gradients and temporaries: about 4 copies of its layers
    member_bytes = 4 * (n_layers + 1) * d * d * jnp.dtype(float_dtype()).itemsize
    st = Static(config.objective, config.target, config.optimizer, config.init,
                n_layers, data.batch, CHUNK_STEPS, bool(keep_latent), config.matmul_precision,
                block_size(n_members, member_bytes) if on_cpu and not sharded else 0)  # fmt: skip
    level = levels(config, data, E_T)
    axes = (np.arange(seeds.size), np.arange(depths.size), np.arange(etas.size))
    g_seed, g_depth, g_eta = (g.ravel() for g in np.meshgrid(*axes, indexing="ij"))
    eta_m = etas[g_eta]
    tau = config.tau
    beta = np.zeros_like(eta_m) if (config.target != "ema" or tau == 0) else 1.0 - eta_m / tau
    consts = Consts(
        depth=jnp.asarray(depths[g_depth]),
        eta=jnp.asarray(eta_m),
        beta=jnp.asarray(beta),
        level=jnp.asarray(level[g_depth]),
        seed=jnp.asarray(seeds[g_seed], jnp.uint32),
    )
    if devices is not None and len(devices) > 1:
        if eta_m.size % len(devices):
            raise ValueError(
                f"devices: {eta_m.size} members do not split evenly over {len(devices)} devices"
            )
        consts = jax.device_put(consts, batch_sharding(tuple(devices)))
    slots = record_slots(config)
    shared = {
        "eps": jnp.asarray(config.eps),
        "scale": jnp.asarray(config.scale),
        "momentum": jnp.asarray(config.momentum),
        "teacher": jnp.asarray(E_T),
        "W0": jnp.asarray(W0),
        "V0": jnp.asarray(V0),
        # padded with -1 (never reached): the same compiled engine for every length
        "rec_steps": jnp.asarray(np.pad(rec, (0, slots - rec.size), constant_values=-1)),
        "n_steps": jnp.asarray(config.n_steps),
    }

    def where(i):
        return f"eta={eta_m[i]:g}, depth={depths[g_depth[i]]}, seed={seeds[g_seed[i]]}"

    ctx = dict(eta_m=eta_m, where=where, rec=rec, level=level, teacher=E_T, config=config)
    return (st, data, shared, consts, slots), ctx


def _teacher(config: TrainConfig, teacher, d: int) -> np.ndarray:
    """The frozen teacher's ``Wbar_T`` (target ``"frozen"``), else zeros; checked."""
    if config.target == "frozen":
        if teacher is None:
            raise ValueError("target 'frozen' needs a teacher encoder (teacher=...)")
        return _teacher_matrix(teacher, d)
    if teacher is not None:
        raise ValueError(f"teacher is only used with target='frozen'; got {config.target!r}")
    return np.zeros((d, d))


def _result(config, data, ctx, init_members, members, recs) -> TrainResult:
    """The ``TrainResult``: device arrays shaped ``[seed, depth, eta, ...]`` (records cut to
    the run's own), the steps, times and levels as numpy."""
    rec = ctx["rec"]
    grid = (len(config.seed), len(config.depth), len(config.eta))
    out = _shaped(grid, rec.size, recs, members.t_star, init_members.params, members.params)
    recs, t_star, start, end = out
    return TrainResult(
        config=config,
        data=data,
        teacher=ctx["teacher"] if config.target == "frozen" else None,
        step=rec,
        t=(ctx["eta_m"][:, None] * rec[None, :]).reshape(*grid, rec.size),
        loss=recs["loss"],
        sv=recs["sv"],
        norm=recs["norm"],
        diag=recs["diag"],
        offdiag=recs["offdiag"],
        latent=recs.get("latent"),
        t_star=t_star,
        level=ctx["level"],
        W0=start.W,
        V0=start.V,
        W=end.W,
        V=end.V,
    )


@functools.partial(jax.jit, static_argnums=(0, 1))
def _shaped(grid, n_rec, recs, *arrays):
    """Member axes to ``grid``, records to the first ``n_rec`` (one compiled call)."""

    def shaped(x):
        return x.reshape(*grid, *x.shape[1:])

    recs = {k: shaped(v[:, :n_rec]) for k, v in recs.items()}
    return (recs, *jax.tree.map(shaped, arrays))
