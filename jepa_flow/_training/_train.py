"""Training engine: deep linear JEPA/MAE trained by jitted optax SGD (theory §1, §6, §7).

``train`` validates its arguments (before anything is compiled), builds the
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

Depth: members of different depths share ``n_layers = max(depth)`` layers; the
extra layers are identity with masked updates (see ``jepa_flow._training._model``).
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from .._core import _validate
from .._theory._critical_time import fixed_point
from ._data import Data
from ._engine import DIVERGED, Consts, DivergenceError, Static, run
from ._model import Params, wbar

TARGETS = ("stopgrad", "ema", "frozen")
OPTIMIZERS = ("sgd", "momentum", "adam")
MAX_TRAIN_DEPTH = 64

__all__ = ["DIVERGED", "DivergenceError", "TrainResult", "record_steps", "thresholds", "train"]


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """Trajectories of a grid of members, axes ``[seed, depth, eta, ...]``.

    ``t``, ``loss``: ``[S, D, E, R]``; ``sv``, ``norm``, ``diag``, ``offdiag``:
    ``[S, D, E, R, d]`` (features in the data's eigenbasis ``e_j``); ``latent``:
    ``U^T Wbar U`` ``[S, D, E, R, d, d]`` (or None); ``t_cross``: training
    critical times ``[S, D, E, d]`` (inf: not reached); ``threshold``:
    ``fraction * wbar*_j`` ``[D, d]``; ``W0``/``V0`` initial and ``W``/``V``
    final parameters (padded to ``n_layers``).
    """

    objective: str
    target: str
    optimizer: str
    data: Data
    seed: np.ndarray
    depth: np.ndarray
    eta: np.ndarray
    tau: float
    teacher: np.ndarray | None
    fraction: float
    n_steps: int
    step: np.ndarray
    t: np.ndarray
    loss: np.ndarray
    sv: np.ndarray
    norm: np.ndarray
    diag: np.ndarray
    offdiag: np.ndarray
    latent: np.ndarray | None
    t_cross: np.ndarray
    threshold: np.ndarray
    W0: np.ndarray
    V0: np.ndarray
    W: np.ndarray
    V: np.ndarray

    @property
    def wbar(self) -> np.ndarray:
        """Final end-to-end encoders ``[S, D, E, d, d]``."""
        E = self.W[..., 0, :, :]
        for a in range(1, self.W.shape[-3]):
            E = self.W[..., a, :, :] @ E
        return E


def _ints(name, value, lo):
    arr = np.atleast_1d(_validate.as_real(name, value))
    if arr.ndim != 1 or (arr != np.round(arr)).any() or (arr < lo).any():
        raise ValueError(f"{name} must be an integer >= {lo} or a 1-D list of them; got {value!r}")
    return arr.astype(np.int64)


def _teacher_matrix(teacher, d):
    if isinstance(teacher, TrainResult):
        teacher = teacher.wbar.reshape(-1, d, d)[0]
    elif isinstance(teacher, Params):
        teacher = np.asarray(wbar(teacher.W))
    arr = _validate.as_real("teacher", teacher)
    if arr.shape != (d, d):
        raise ValueError(f"teacher must be a ({d}, {d}) encoder matrix Wbar_T; got {arr.shape}")
    return arr


def thresholds(objective, target, data: Data, depth, fraction, teacher=None) -> np.ndarray:
    """``fraction * wbar*_j`` per depth and feature ``[D, d]`` (theory §3 and §6).

    Frozen teacher ``E_T``: MAE dynamics with ``lam -> c lam``, ``c = e_j^T E_T e_j``.
    """
    lam, var = np.asarray(data.lam), np.asarray(data.var)
    obj = objective
    if objective == "jepa" and target == "frozen":
        lam = np.diag(np.asarray(data.U).T @ teacher @ np.asarray(data.U)) * lam
        obj = "mae"
    depth = np.asarray(depth, float)[:, None]
    ws = np.asarray(fixed_point(obj, lam[None, :], var[None, :], depth))
    return np.where(ws > 0, fraction * ws, np.inf)


def _check_choice(name, value, allowed):
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}; got {value!r}")
    return value


def record_steps(n_steps: int, n_records: int, extra=()) -> np.ndarray:
    """Step 0, about ``n_records - 1`` log-spaced steps up to ``n_steps``, and ``extra`` steps."""
    log = np.geomspace(1, n_steps, max(n_records - 1, 1)) if n_steps >= 1 else np.zeros(0)
    log = np.concatenate([log, np.clip(np.asarray(extra, float), 0, n_steps)])
    return np.unique(np.concatenate([[0], np.round(log).astype(np.int64), [n_steps]]))


def _chunk_size(n_total: int) -> int:
    return int(min(16384, max(128, 2 ** round(math.log2(max(n_total, 1) / 100)))))


def train(
    objective,
    data: Data,
    *,
    depth=1,
    eta=1e-2,
    seed=0,
    t_max=None,
    steps=None,
    eps=1e-3,
    init="balanced",
    scale=0.0,
    target="stopgrad",
    tau=0.0,
    teacher=None,
    optimizer="sgd",
    momentum=0.9,
    fraction=0.5,
    n_records=120,
    t_records=(),
    keep_latent=None,
    progress=False,
) -> TrainResult:
    """Train a grid of deep linear JEPA/MAE members in one compiled, vmapped call.

    Members are the product ``seed x depth x eta``; each starts from its seed's
    initialization (the same seed gives the same noise at every depth and rate)
    and runs ``steps`` steps, or ``ceil(t_max / min(eta))`` (then members with a
    larger ``eta`` reach a later flow time ``t = eta * step``).

    Args:
        objective: ``"jepa"`` or ``"mae"``.
        data: a ``Data`` source (``gaussian``, ``noisy_views``, ``linear_dynamics``).
        depth: encoder depth ``L`` (int or list), 1 .. 64.
        eta: learning rate(s), > 0.  seed: int or list, >= 0.
        t_max: flow time to reach (> 0), or ``steps``: number of steps (>= 1).
        eps: balanced initialization ``W_a = V = eps^(1/L) I`` (``Wbar(0) = eps I``), > 0.
        init: ``"balanced"``, ``"random"`` (entries ``scale * N(0,1)``) or a ``Params``
            with ``W`` of shape ``[L, d, d]`` (then ``depth`` must be ``L``).
        scale: >= 0; Gaussian noise added to the balanced start, or the random scale.
        target: JEPA target, ``"stopgrad"`` (theory §1), ``"ema"`` (``W_T <- beta W_T +
            (1 - beta) W`` per step, ``beta = 1 - eta / tau``; ``tau = 0`` gives the
            stop-gradient run) or ``"frozen"`` (``teacher``: a ``[d, d]`` encoder
            ``Wbar_T``, a ``Params`` or a ``TrainResult`` whose first member's final
            encoder is used).
        tau: EMA time constant in flow time, 0 or >= max(eta).
        optimizer: ``"sgd"`` (default; the flow's discretization), ``"momentum"``
            (with ``momentum``) or ``"adam"``.
        fraction: level of the training critical time, ``fraction * wbar*_j``, in (0, 1).
        n_records: number of log-spaced records (>= 2).
        t_records: extra flow times to record at (converted to steps with the
            smallest ``eta``), e.g. a dense grid around the expected rises.
        keep_latent: record ``U^T Wbar U`` (default: when it is under 1e7 numbers).
        progress: show a tqdm bar (steps, loss, time left).

    Raises:
        ValueError: bad arguments (before compiling); ``DivergenceError`` (a
            ``ValueError``) when a member's loss turns NaN or overflows.
    """
    _validate.check_objective(objective)
    if not isinstance(data, Data):
        raise ValueError(f"data must be a jepa_flow Data source; got {type(data).__name__}")
    _check_choice("target", target, TARGETS)
    _check_choice("optimizer", optimizer, OPTIMIZERS)
    if objective == "mae" and target != "stopgrad":
        raise ValueError(f"target applies to objective 'jepa' only; got target={target!r} for MAE")
    d = data.d
    depths = _ints("depth", depth, 1)
    if depths.max() > MAX_TRAIN_DEPTH:
        raise ValueError(f"depth must be an integer in [1, {MAX_TRAIN_DEPTH}]; got {depths.max()}")
    etas = np.atleast_1d(_validate.as_positive("eta", eta)).ravel()
    seeds = _ints("seed", seed, 0)
    eps = float(_validate.as_positive("eps", eps))
    scale = float(_validate.as_real("scale", scale))
    if scale < 0:
        raise ValueError(f"scale must be >= 0; got {scale}")
    fraction = float(_validate.as_fraction(fraction))
    tau = float(_validate.as_real("tau", tau))
    if target == "ema" and tau != 0 and tau < etas.max():
        raise ValueError(
            f"tau must be 0 or >= max(eta) = {etas.max()} (beta = 1 - eta/tau in [0, 1)); got {tau}"
        )
    if (steps is None) == (t_max is None):
        raise ValueError("give exactly one of t_max (flow time, > 0) and steps (int >= 1)")
    if steps is None:
        n_steps = math.ceil(float(_validate.as_positive("t_max", t_max)) / etas.min() - 1e-9)
    else:
        n_steps = int(_ints("steps", steps, 1)[0])
    if int(n_records) < 2:
        raise ValueError(f"n_records must be >= 2; got {n_records}")
    if isinstance(init, Params):
        W0 = _validate.as_real("init.W", init.W)
        if W0.ndim != 3 or W0.shape[1:] != (d, d) or init.V.shape != (d, d):
            raise ValueError(f"init must have W [L, {d}, {d}] and V [{d}, {d}]")
        if depths.size != 1 or depths[0] != W0.shape[0]:
            raise ValueError(
                f"with a given init, depth must be its L = {W0.shape[0]}; got {depths}"
            )
        init_kind, V0 = "given", _validate.as_real("init.V", init.V)
    else:
        init_kind = _check_choice("init", init, ("balanced", "random"))
        W0 = V0 = np.zeros(0)
    E_T = np.zeros((d, d))
    if target == "frozen":
        if teacher is None:
            raise ValueError("target 'frozen' needs a teacher encoder (teacher=...)")
        E_T = _teacher_matrix(teacher, d)
    n_layers = int(depths.max())
    extra = np.atleast_1d(_validate.as_real("t_records", t_records)) / etas.min()
    rec = record_steps(n_steps, int(n_records), extra)
    if keep_latent is None:
        keep_latent = seeds.size * depths.size * etas.size * rec.size * d * d < 1e7
    st = Static(
        objective,
        target,
        optimizer,
        init_kind,
        n_layers,
        data.batch,
        _chunk_size(n_steps + 1),
        bool(keep_latent),
    )

    thr = thresholds(objective, target, data, depths, fraction, E_T)
    g_seed, g_depth, g_eta = np.meshgrid(
        np.arange(seeds.size), np.arange(depths.size), np.arange(etas.size), indexing="ij"
    )
    g_seed, g_depth, g_eta = g_seed.ravel(), g_depth.ravel(), g_eta.ravel()
    eta_m = etas[g_eta]
    beta = np.zeros_like(eta_m) if (target != "ema" or tau == 0) else 1.0 - eta_m / tau
    consts = Consts(
        depth=jnp.asarray(depths[g_depth]),
        eta=jnp.asarray(eta_m),
        beta=jnp.asarray(beta),
        thr=jnp.asarray(thr[g_depth]),
        seed=jnp.asarray(seeds[g_seed], jnp.uint32),
    )
    shared = {
        "eps": jnp.asarray(eps),
        "scale": jnp.asarray(scale),
        "momentum": jnp.asarray(float(momentum)),
        "teacher": jnp.asarray(E_T),
        "W0": jnp.asarray(W0),
        "V0": jnp.asarray(V0),
        "rec_steps": jnp.asarray(rec),
        "n_steps": jnp.asarray(n_steps),
    }

    def where(i):
        return f"eta={eta_m[i]:g}, depth={depths[g_depth[i]]}, seed={seeds[g_seed[i]]}"

    with jax.default_matmul_precision("highest"):  # no TF32 on GPUs (float32 runs)
        carry = run(st, data, shared, consts, n_steps, rec.size, eta_m, where, progress)
    init_members, (_, _, members, recs) = carry
    W_init, V_init = init_members.params.W, init_members.params.V
    grid = (seeds.size, depths.size, etas.size)

    def shaped(x):
        return np.asarray(x).reshape(*grid, *np.shape(x)[1:])

    recs = {k: shaped(v) for k, v in recs.items()}
    return TrainResult(
        objective=objective,
        target=target,
        optimizer=optimizer,
        data=data,
        seed=seeds,
        depth=depths,
        eta=etas,
        tau=tau,
        teacher=E_T if target == "frozen" else None,
        fraction=fraction,
        n_steps=n_steps,
        step=rec,
        t=shaped(eta_m[:, None] * rec[None, :]),
        loss=recs["loss"],
        sv=recs["sv"],
        norm=recs["norm"],
        diag=recs["diag"],
        offdiag=recs["offdiag"],
        latent=recs.get("latent"),
        t_cross=shaped(members.t_cross),
        threshold=thr,
        W0=shaped(W_init),
        V0=shaped(V_init),
        W=shaped(members.params.W),
        V=shaped(members.params.V),
    )
