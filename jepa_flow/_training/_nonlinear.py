"""Small nonlinear encoders on real two-view data: when is each theory feature learned (theory §9).

The encoder is an MLP ``f`` with ``depth`` hidden layers of width ``d``
(``tanh`` or ``relu``, no biases: the rows are centred) and a linear output
layer of width ``d``; JEPA adds a linear predictor ``V`` (target
``stop_gradient(f(y))`` or an EMA copy of ``f``), MAE a linear decoder ``V``
(target ``y``); the losses are those of theory §1 with ``f`` in place of
``Wbar``. Every weight matrix starts as ``eps^(1/(depth + 2)) * G / sqrt(d)``
(``G`` standard normal, per seed), so the prediction map starts at about
``eps`` as in the linear runs. Plain SGD on minibatches of rows, flow time
``t = eta * step``; the seeds are ``vmap``-ed in one compiled call.

When is theory feature ``u_i`` learned? Its *response* is the representation's
covariance with the feature, per unit of its variance::

    g_i(t) = | E[ f(x) (u_i^T x) ] | / var_i

For a linear encoder ``f(x) = Wbar x`` in the theory's diagonal case this is
exactly ``|Wbar u_i|``, the per-feature measure of the linear runs, so the two
are comparable; for a nonlinear ``f`` it is the part of the representation
linear in the feature. (The fraction of the feature's variance that a linear
readout explains is not used: it is 1 from the start for any invertible
random encoder, whatever its scale.) A feature's time is the first time
``g_i`` reaches half its final value (linear interpolation between records;
inf if it did not grow to twice its start).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import ArrayLike, Float

from .._core._results import register_result
from ._config import TrainConfig
from ._data import Data

ACTIVATIONS = {"tanh": jnp.tanh, "relu": jax.nn.relu}
TARGETS = ("stopgrad", "ema")


@register_result
@dataclasses.dataclass(frozen=True)
class NonlinearResult:
    """``t`` ``[R]``; ``response`` ``[S, R, d]`` (``g_i``, features = columns of
    ``basis``); ``time`` ``[S, d]`` half-final times; ``loss`` ``[S, R]``.

    Examples:
        Two seeds of a tanh MAE on pairs with variances ``4, 1, 0.25``: records
        from ``t = 0`` to ``t_max``, and the feature of largest variance, the
        first in the theory's learning order, is learned first by both:

        >>> import numpy as np, jepa_flow as jf
        >>> x = np.random.default_rng(0).normal(size=(400, 3)) * [2.0, 1.0, 0.5]
        >>> rows = jf.from_samples(x, x + 0.1 * np.random.default_rng(1).normal(size=x.shape))
        >>> cfg = jf.TrainConfig(objective="mae", eta=0.05, seed=[0, 1], eps=1e-2, t_max=20.0)
        >>> nl = jf.train_nonlinear(rows, cfg, batch=64, n_eval=400)
        >>> nl.response.shape, nl.loss.shape, float(nl.t[0]), float(nl.t[-1])
        ((2, 81, 3), (2, 81), 0.0, 20.0)
        >>> int(jf.analyze(rows).order("mae", 1, 1e-2)[0]), nl.time.argmin(axis=1).tolist()
        (0, [0, 0])
        >>> bool(np.array_equal(nl.basis, rows.U)), nl.activation, nl.depth
        (True, 'tanh', 1)
    """

    objective: str
    activation: str
    depth: int
    t: np.ndarray
    response: np.ndarray
    time: np.ndarray
    loss: np.ndarray
    basis: np.ndarray


def _init(key, d, depth, eps):
    n = depth + 2  # hidden layers, output layer, predictor
    g = jax.random.normal(key, (n, d, d)) / jnp.sqrt(d)
    return eps ** (1.0 / n) * g  # [hidden..., output, V]


def _encode(act, Ws, X):
    h = X
    for a in range(Ws.shape[0] - 2):
        h = act(h @ Ws[a].T)
    return h @ Ws[-2].T


def _loss(objective, act, Ws, WT, X, Y):
    z = _encode(act, Ws, X)
    pred = z @ Ws[-1].T
    if objective == "mae":
        target = Y
    else:
        target = jax.lax.stop_gradient(_encode(act, WT if WT is not None else Ws, Y))
    return 0.5 * jnp.sum((pred - target) ** 2) / X.shape[0]


def _half_times(t, g):
    """First crossing of half the final value per column of ``g`` ``[R, d]``."""
    final = g[-1]
    level = 0.5 * final
    above = g >= level
    first = np.argmax(above, axis=0)
    ok = above.any(axis=0) & (final > 2 * g[0])
    i0 = np.maximum(first - 1, 0)
    c = np.arange(g.shape[1])
    g0, g1 = g[i0, c], g[first, c]
    frac = np.clip((level - g0) / np.where(g1 > g0, g1 - g0, 1.0), 0.0, 1.0)
    tc = np.where(first == 0, t[0], t[i0] + frac * (t[first] - t[i0]))
    return np.where(ok, tc, np.inf)


@functools.lru_cache(maxsize=8)
def _runner(objective, activation, target, depth, batch, precision="highest"):
    act = ACTIVATIONS[activation]

    def step(_, carry):
        Ws, WT, key, eta, beta, X, Y, _loss_prev = carry
        key, sub = jax.random.split(key)
        k_row, k_swap = jax.random.split(sub)
        idx = jax.random.randint(k_row, (batch,), 0, X.shape[0])
        xb, yb = X[idx], Y[idx]
        flip = jax.random.bernoulli(k_swap, 0.5, (batch, 1))
        xb, yb = jnp.where(flip, yb, xb), jnp.where(flip, xb, yb)
        loss, g = jax.value_and_grad(functools.partial(_loss, objective, act))(
            Ws, WT if target == "ema" else None, xb, yb
        )
        Ws = Ws - eta * g
        WT = beta * WT + (1.0 - beta) * Ws if target == "ema" else WT
        return Ws, WT, key, eta, beta, X, Y, loss

    def one(n_steps, Ws, WT, key, eta, beta, X, Y, Xe, U, var):
        with jax.default_matmul_precision(precision):  # config.matmul_precision
            carry = (Ws, WT, key, eta, beta, X, Y, jnp.zeros((), Ws.dtype))
            Ws, WT, key, *_, loss = jax.lax.fori_loop(0, n_steps, step, carry)
            z = _encode(act, Ws, Xe)
            s = Xe @ U  # [m, d] feature values
            resp = jnp.linalg.norm(z.T @ s / Xe.shape[0], axis=0) / var
        return Ws, WT, key, resp, loss

    axes = (None, 0, 0, 0, None, None, None, None, None, None, None)
    return jax.jit(jax.vmap(one, in_axes=axes))


def train_nonlinear(
    data: Data,
    config: TrainConfig,
    *,
    activation: Literal["tanh", "relu"] = "tanh",
    batch: int = 256,
    n_eval: int = 4096,
    basis: Float[ArrayLike, "d d"] | None = None,
) -> NonlinearResult:
    """Train ``len(config.seed)`` MLP encoders on the rows of a ``"samples"`` source.

    The same ``TrainConfig`` as ``train`` describes the run: ``objective``,
    one ``depth`` (hidden layers, 1 .. 8), one ``eta`` (plain SGD), ``seed``,
    ``eps`` (initial scale), ``t_max`` or ``steps``, ``target`` (``"stopgrad"``
    or ``"ema"`` with ``tau >= eta``) and ``n_t`` records (>= 4); see the
    module docstring for the model and the measured responses.

    Args:
        data: from ``from_samples`` (pooled views).
        config: the run (fields above; ``init``, ``scale``, ``optimizer`` must
            keep their defaults).
        activation: ``"tanh"`` or ``"relu"``.
        batch: rows per step, >= 1.
        n_eval: rows used to measure the responses.
        basis: ``[d, d]`` theory features (columns); default ``data.U``.

    Examples:
        >>> import numpy as np, jepa_flow as jf
        >>> x = np.random.default_rng(0).normal(size=(400, 3)) * [2.0, 1.0, 0.5]
        >>> rows = jf.from_samples(x, x + 0.1 * np.random.default_rng(1).normal(size=x.shape))
        >>> cfg = jf.TrainConfig(objective="mae", eta=0.05, seed=[0, 1], eps=1e-2, t_max=20.0)
        >>> nl = jf.train_nonlinear(rows, cfg, batch=64, n_eval=400)
        >>> nl.response.shape[0], nl.time.shape  # half times [seed, feature]
        (2, (2, 3))
    """
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig; got {type(config).__name__}")
    if not isinstance(data, Data) or data.model != "samples":
        raise ValueError("data must be a 'samples' source (jepa_flow.from_samples)")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {tuple(ACTIVATIONS)}; got {activation!r}")
    objective, target, tau = config.objective, config.target, config.tau
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS} for MLP encoders; got {target!r}")
    if len(config.depth) != 1 or not 1 <= config.depth[0] <= 8:
        raise ValueError(
            f"depth must be one integer in [1, 8] for MLP encoders; got {config.depth}"
        )
    if len(config.eta) != 1:
        raise ValueError(f"eta must be a single learning rate for MLP encoders; got {config.eta}")
    if (config.init, config.scale, config.optimizer) != ("balanced", 0.0, "sgd"):
        raise ValueError(
            "MLP encoders use their own initialization and plain SGD: "
            "keep init, scale and optimizer at their defaults"
        )
    depth, eta, eps = config.depth[0], config.eta[0], config.eps
    if target == "ema" and tau < eta:
        raise ValueError(f"tau must be >= eta = {eta} for an EMA target; got {tau}")
    if config.n_t < 4:
        raise ValueError(f"n_t must be >= 4; got {config.n_t}")
    seeds = np.asarray(config.seed)
    n_records = config.n_t
    d = data.d
    U = jnp.asarray(data.U if basis is None else basis)
    with jax.default_matmul_precision("highest"):
        var = jnp.einsum("ij,ik,kj->j", U, data.Sxx, U)
    n_steps = config.n_steps
    rec = np.unique(np.round(np.geomspace(1, n_steps, int(n_records))).astype(int))
    X, Y = data.X, data.Y
    Xe = X[: min(int(n_eval), X.shape[0])]
    keys = jax.vmap(jax.random.PRNGKey)(jnp.asarray(seeds, jnp.uint32))
    k_init = jax.vmap(lambda k: jax.random.split(k)[0])(keys)
    keys = jax.vmap(lambda k: jax.random.split(k)[1])(keys)
    Ws = jax.vmap(lambda k: _init(k, d, int(depth), eps))(k_init)
    WT = Ws
    beta = 1.0 - eta / tau if target == "ema" else 0.0
    fn = _runner(objective, activation, target, int(depth), int(batch), config.matmul_precision)
    t, resp, loss, done = [0.0], [], [], 0
    resp.append(np.asarray(fn(0, Ws, WT, keys, eta, beta, X, Y, Xe, U, var)[3]))
    loss.append(np.full(seeds.size, np.nan))
    for r in rec:
        Ws, WT, keys, g, lo = fn(int(r - done), Ws, WT, keys, eta, beta, X, Y, Xe, U, var)
        done = int(r)
        t.append(eta * r)
        resp.append(np.asarray(g))
        loss.append(np.asarray(lo))
    t = np.asarray(t)
    response = np.stack(resp, axis=1)  # [S, R, d]
    times = np.stack([_half_times(t, response[s]) for s in range(seeds.size)])
    return NonlinearResult(
        objective=objective,
        activation=activation,
        depth=int(depth),
        t=t,
        response=response,
        time=times,
        loss=np.stack(loss, axis=1),
        basis=np.asarray(U),
    )
