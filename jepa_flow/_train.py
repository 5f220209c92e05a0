"""Training engine: deep linear JEPA/MAE trained by jitted optax SGD (THEORY 1, 6, 7).

One train step is ``value_and_grad`` of the loss, ``optimizer.update`` and
``optax.apply_updates``, written for one member and ``vmap``-ed over a grid of
(seed, depth, learning rate) members; steps run inside ``lax.scan`` in chunks
of ``chunk`` steps so that a tqdm bar can report progress between chunks. The
whole run compiles once per (objective, target, optimizer, data source, shapes).

Time: with learning rate ``eta``, step ``k`` is flow time ``t = eta * k``
(THEORY 1). Plain SGD is gradient descent on the flow with an O(eta) time
bias: on the population loss it follows the flow's critical times to about
``eta * rate / 2`` relative, where ``rate`` is the feature's growth rate at its
rise; keep ``eta * var * rho^(2L-1)`` (JEPA) below about 1e-2 for 1 %.
(With momentum ``m`` the effective rate is ``eta / (1 - m)``; Adam has no flow
counterpart.) The discrete EMA ``W_T <- beta W_T + (1 - beta) W`` with
``beta = 1 - eta / tau`` lags its online layers by ``tau - eta`` in flow time
(``tau / eta - 1`` steps), so it matches the continuous EMA of THEORY 6 with
time constant ``tau - eta``: take ``eta << tau``.

Recorded, at log-spaced steps shared by every member: the population loss,
the singular values of ``Wbar``, and per input feature ``e_j`` (columns of the
data's ``U``) the encoded norm ``|Wbar e_j|``, the diagonal entry
``e_j^T Wbar e_j`` and the off-diagonal mass ``sqrt(sum_(i != j) (e_i^T Wbar e_j)^2)``
(THEORY 7). At *every* step the first crossing of ``|Wbar e_j|`` over
``fraction * wbar*_j`` (per-feature theory) is detected and interpolated
linearly between the two steps: that is the training critical time.

Depth: members of different depths share ``n_layers = max(depth)`` layers; the
extra layers are identity with masked updates (see ``jepa_flow._model``).
"""

from __future__ import annotations

import dataclasses
import functools
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from . import _validate
from ._critical_time import fixed_point
from ._data import Data, sample, sample_moments
from ._model import (
    Params,
    init_params,
    layer_mask,
    mask_layers,
    minibatch_loss,
    population_loss,
    wbar,
)

TARGETS = ("stopgrad", "ema", "frozen")
OPTIMIZERS = ("sgd", "momentum", "adam")
MAX_TRAIN_DEPTH = 64
DIVERGED = 1e150  # |loss| above this (or NaN/inf) counts as divergence


class DivergenceError(ValueError):
    """Training diverged (NaN or overflow in the loss); lower the learning rate."""


@dataclasses.dataclass(frozen=True)
class _Static:
    objective: str
    target: str
    optimizer: str
    init: str  # "balanced", "random" or "given"
    n_layers: int
    batch: int | None
    chunk: int
    keep_latent: bool


class _Member(eqx.Module):
    params: Params
    WT: jax.Array | None  # EMA target layers
    opt_state: optax.OptState
    key: jax.Array
    prev: jax.Array  # |Wbar e_j| at the previous step
    t_cross: jax.Array
    bad: jax.Array  # first diverged step, -1 if none
    loss: jax.Array


class _Consts(eqx.Module):  # per member
    depth: jax.Array
    eta: jax.Array
    beta: jax.Array
    thr: jax.Array
    seed: jax.Array


def _optimizer(name: str, eta, momentum):
    if name == "sgd":
        return optax.sgd(eta)
    if name == "momentum":
        return optax.sgd(eta, momentum=momentum)
    return optax.adam(eta)


def _target(st: _Static, E, WT, teacher):
    if st.target == "stopgrad":
        return jax.lax.stop_gradient(E)
    if st.target == "ema":
        return wbar(WT)
    return teacher


def _init_member(st, data, shared, c):
    key_init, key_run = jax.random.split(jax.random.PRNGKey(c.seed))
    if st.init == "given":
        params = Params(W=shared["W0"], V=shared["V0"])
    else:
        params = init_params(
            st.init, key_init, data.d, c.depth, st.n_layers, shared["eps"], shared["scale"]
        )
    opt_state = _optimizer(st.optimizer, c.eta, shared["momentum"]).init(params)
    prev = jnp.linalg.norm(wbar(params.W) @ data.U, axis=0)
    return _Member(
        params=params,
        WT=params.W if st.target == "ema" else None,
        opt_state=opt_state,
        key=key_run,
        prev=prev,
        t_cross=jnp.full(data.d, jnp.inf),
        bad=jnp.array(-1),
        loss=jnp.array(0.0),
    )


def _step(st, data, shared, k, m: _Member, c: _Consts) -> _Member:
    """One optimizer step of one member at step ``k`` (state ``k`` -> ``k + 1``)."""
    key, sub = jax.random.split(m.key)

    def loss_fn(p):
        E = wbar(p.W)
        E_T = _target(st, E, m.WT, shared["teacher"])
        if st.batch is None:
            loss = population_loss(st.objective, p, E_T, data.Sxx, data.Syx, data.Syy)
        elif data.sampler == "wishart":  # the minibatch's moments, exactly distributed
            loss = population_loss(st.objective, p, E_T, *sample_moments(data, sub, st.batch))
        else:
            X, Y = sample(data, sub, st.batch)
            loss = minibatch_loss(st.objective, p, E_T, X, Y)
        return loss, E

    (loss, E), grads = jax.value_and_grad(loss_fn, has_aux=True)(m.params)
    mask = layer_mask(c.depth, st.n_layers)
    opt = _optimizer(st.optimizer, c.eta, shared["momentum"])
    updates, opt_state = opt.update(mask_layers(grads, mask), m.opt_state, m.params)
    params = optax.apply_updates(m.params, mask_layers(updates, mask))
    WT = None if m.WT is None else c.beta * m.WT + (1.0 - c.beta) * params.W
    # first crossing of |Wbar e_j| over the threshold, state k against state k - 1
    norm = jnp.linalg.norm(E @ data.U, axis=0)
    hit = (norm >= c.thr) & jnp.isinf(m.t_cross)
    frac = jnp.clip((c.thr - m.prev) / jnp.where(norm > m.prev, norm - m.prev, 1.0), 0.0, 1.0)
    t_hit = jnp.where(k == 0, 0.0, c.eta * (k - 1 + frac))
    bad = jnp.where((m.bad < 0) & ~(jnp.abs(loss) < DIVERGED), k, m.bad)
    return _Member(
        params=params,
        WT=WT,
        opt_state=opt_state,
        key=key,
        prev=norm,
        t_cross=jnp.where(hit, t_hit, m.t_cross),
        bad=bad,
        loss=loss,
    )


def _record(st, data, shared, m: _Member) -> dict:
    """Basis-independent and eigenbasis measurements of one member's state."""
    E = wbar(m.params.W)
    E_T = _target(st, E, m.WT, shared["teacher"])
    M = data.U.T @ E @ data.U  # Wbar in the feature basis
    norm = jnp.linalg.norm(M, axis=0)
    diag = jnp.diagonal(M)
    out = {
        "loss": population_loss(st.objective, m.params, E_T, data.Sxx, data.Syx, data.Syy),
        "sv": jnp.linalg.svd(E, compute_uv=False),
        "norm": norm,
        "diag": diag,
        "offdiag": jnp.linalg.norm(M - jnp.diag(diag), axis=0),
    }
    if st.keep_latent:
        out["latent"] = M
    return out


@functools.lru_cache(maxsize=32)
def _chunk_fn(st: _Static):
    """Jitted: run ``st.chunk`` steps of every member, recording at ``rec_steps``."""

    def run(carry, data, shared, consts):
        step = jax.vmap(functools.partial(_step, st, data, shared), in_axes=(None, 0, 0))
        record = jax.vmap(functools.partial(_record, st, data, shared))
        rec_steps = shared["rec_steps"]
        n_rec = rec_steps.shape[0]

        def body(carry, _):
            k, r, members, recs = carry
            now = (r < n_rec) & (k == rec_steps[jnp.minimum(r, n_rec - 1)])

            def write(recs):
                new = record(members)
                return jax.tree.map(lambda buf, x: buf.at[:, r].set(x), recs, new)

            recs = jax.lax.cond(now, write, lambda recs: recs, recs)
            members = jax.lax.cond(
                k < shared["n_steps"], lambda ms: step(k, ms, consts), lambda ms: ms, members
            )
            return (k + 1, r + now, members, recs), None

        carry, _ = jax.lax.scan(body, carry, None, length=st.chunk)
        return carry

    return jax.jit(run, donate_argnums=0)


@functools.lru_cache(maxsize=32)
def _init_fn(st: _Static):
    def init(data, shared, consts, n_rec):
        members = jax.vmap(functools.partial(_init_member, st, data, shared))(consts)
        one = jax.eval_shape(
            functools.partial(_record, st, data, shared), jax.tree.map(lambda x: x[0], members)
        )
        n = consts.eta.shape[0]
        recs = jax.tree.map(lambda s: jnp.full((n, n_rec, *s.shape), jnp.nan, s.dtype), one)
        return (jnp.array(0), jnp.array(0), members, recs)

    return jax.jit(init, static_argnums=3)


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
    """``fraction * wbar*_j`` per depth and feature ``[D, d]`` (THEORY 3 and 6).

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


def _run(st, data, shared, consts, n_steps, n_rec, eta_m, where, progress):
    """Initialize and run every chunk; returns ``(initial members, final carry)``.

    Checks for divergence after each chunk and raises ``DivergenceError``
    naming the first diverged member (``where(i)`` describes member ``i``).
    """
    carry = _init_fn(st)(data, shared, consts, n_rec)
    init_members = jax.tree.map(jnp.copy, carry[2])  # the carry is donated
    run = _chunk_fn(st)
    with tqdm(total=n_steps, disable=not progress, unit="step", dynamic_ncols=True) as bar:
        for _ in range(0, n_steps + 1, st.chunk):
            carry = run(carry, data, shared, consts)
            members = carry[2]
            bad = np.asarray(members.bad)
            if (bad >= 0).any():
                i = int(np.argmax(bad >= 0))
                raise DivergenceError(
                    f"training diverged (loss NaN or above {DIVERGED:g}) at step {int(bad[i])} "
                    f"(flow time {eta_m[i] * bad[i]:.4g}) for {where(i)}; "
                    "use a smaller learning rate eta"
                )
            bar.update(min(st.chunk, n_steps - bar.n))
            bar.set_postfix(loss=f"{float(jnp.mean(members.loss)):.4g}")
    return init_members, carry


def _check_choice(name, value, allowed):
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}; got {value!r}")
    return value


def record_steps(n_steps: int, n_records: int) -> np.ndarray:
    """Step 0 and about ``n_records - 1`` log-spaced steps up to ``n_steps`` (unique)."""
    log = np.geomspace(1, n_steps, max(n_records - 1, 1)) if n_steps >= 1 else np.zeros(0)
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
        target: JEPA target, ``"stopgrad"`` (THEORY 1), ``"ema"`` (``W_T <- beta W_T +
            (1 - beta) W`` per step, ``beta = 1 - eta / tau``; ``tau = 0`` gives the
            stop-gradient run) or ``"frozen"`` (``teacher``: a ``[d, d]`` encoder
            ``Wbar_T``, a ``Params`` or a ``TrainResult`` whose first member's final
            encoder is used).
        tau: EMA time constant in flow time, 0 or >= max(eta).
        optimizer: ``"sgd"`` (default; the flow's discretization), ``"momentum"``
            (with ``momentum``) or ``"adam"``.
        fraction: level of the training critical time, ``fraction * wbar*_j``, in (0, 1).
        n_records: number of log-spaced records (>= 2).
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
        n_steps = int(math.ceil(float(_validate.as_positive("t_max", t_max)) / etas.min() - 1e-9))
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
    rec = record_steps(n_steps, int(n_records))
    if keep_latent is None:
        keep_latent = seeds.size * depths.size * etas.size * rec.size * d * d < 1e7
    st = _Static(
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
    consts = _Consts(
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
        carry = _run(st, data, shared, consts, n_steps, rec.size, eta_m, where, progress)
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
