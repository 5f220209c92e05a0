"""Public fixed points and critical times (docs/theory.md §3 and §4)."""

from __future__ import annotations

import functools
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from .._core import _validate
from .._core._batch import flatten_padded
from .._core._devices import local_devices, over_devices
from ._exact import time_to_level
from ._fixed_point import log_u_level, wbar_star
from ._ode import ode_critical_time
from ._series import series_time

# Values used to pad a batch; they describe an easy, learned feature.
_FILL = {"lam": 1.0, "var": 1.0, "depth": 1.0, "eps": 0.5, "fraction": 0.5}


def fixed_point(objective, lam, var, depth):
    """The learned end-to-end encoder ``wbar*`` of each feature (theory §3).

    ``JEPA: wbar* = rho^L``; ``MAE: wbar* = rho^(L/(L+1))``, with
    ``rho = lam / var``; 0 where ``lam <= 0`` (the feature is never learned).

    Args:
        objective: ``"jepa"`` or ``"mae"``.
        lam: covariance of the two views along the feature, any real.
        var: input variance along the feature, > 0.
        depth: encoder depth ``L``, integer >= 1.

    All arguments broadcast together (numpy rules). Returns a float array of
    the broadcast shape (float64 when ``jax_enable_x64`` is on).

    Examples:
        Features A = (lam 1, var 2) and B = (lam 0.8, var 1) of theory §4:
        JEPA's ``rho^L`` at depth 2, MAE's ``rho^(L/(L+1))`` at depth 1.

        >>> import numpy as np
        >>> import jepa_flow as jf
        >>> lam, var = np.array([1.0, 0.8]), np.array([2.0, 1.0])
        >>> print(np.round(jf.fixed_point("jepa", lam, var, depth=2), 4))
        [0.25 0.64]
        >>> print(np.round(jf.fixed_point("mae", lam, var, depth=1), 4))
        [0.7071 0.8944]
        >>> print(jf.fixed_point("jepa", -1.0, 1.0, depth=3))  # lam <= 0: never learned
        0.0
    """
    _validate.check_objective(objective)
    shape, p = _validate.feature_params(lam, var, depth)
    flat, n = flatten_padded(p, _FILL)
    out = _fixed_point_flat(objective, flat["lam"], flat["var"], flat["depth"])
    return out[:n].reshape(shape)


@functools.partial(jax.jit, static_argnames="objective")
def _fixed_point_flat(objective, lam, var, depth):
    return wbar_star(objective, lam, var, depth)


def critical_time(objective, lam, var, depth, eps, fraction=0.5, method="exact"):
    """Time at which ``wbar`` first reaches ``fraction * wbar*`` (theory §4).

    The flow starts from the balanced ``W_a(0) = V(0) = eps^(1/L) I``, so
    ``wbar(0) = eps``; time is gradient-flow time with unit rate on every
    parameter (the paper's ``tau`` is ``depth * t``).

    Args:
        objective: ``"jepa"`` or ``"mae"``.
        lam: covariance of the two views along the feature (any real; ``lam <= 0``
            is never learned and gives ``inf``).
        var: input variance along the feature, > 0.
        depth: encoder depth ``L``, integer in [1, 1024]; may be an array.
        eps: initial end-to-end weight ``wbar(0)``, > 0. Where ``eps`` already
            reaches the level the time is 0.
        fraction: the level as a fraction of ``wbar*``, in (0, 1).
        method: ``"exact"`` (JEPA closed form; MAE hypergeometric form, accurate
            to float64 rounding, no ODE), ``"ode"`` (diffrax integration with a
            root-found event, relative error below 1e-8 in float64, about 1e-10 at
            ``fraction = 0.5``; see ``jepa_flow._theory._ode`` for the method), or
            ``"series"`` (the leading small-eps asymptotics, independent of
            ``fraction``; rough at moderate eps).

    All parameters broadcast together (numpy rules); the result has the
    broadcast shape. A large batch is split over all local devices (on a CPU,
    ``jax.config.update("jax_num_cpu_devices", os.cpu_count())`` before any
    computation gives one device per core). Run ``jax.config.update("jax_enable_x64", True)`` first
    for float64: the documented accuracies are float64 figures.

    Raises:
        ValueError: for an unknown objective or method, a non-finite value,
            ``var <= 0``, a non-integer depth or one outside [1, 1024],
            ``eps <= 0``, ``fraction`` outside (0, 1), or shapes that do not
            broadcast; raised before anything is compiled.

    Examples:
        The canonical pair of theory §4 at ``eps = 1e-3``: JEPA learns A
        first at depth 1 and B first at depth 4; MAE learns A first at both.

        >>> import numpy as np
        >>> import jepa_flow as jf
        >>> lam, var = np.array([1.0, 0.8]), np.array([2.0, 1.0])  # features A, B
        >>> depth = np.array([[1], [4]])  # broadcasts to shape (2, 2)
        >>> print(np.round(jf.critical_time("jepa", lam, var, depth, eps=1e-3), 2))
        [[ 1008.43  1257.32]
         [43985.88 43056.37]]
        >>> print(np.round(jf.critical_time("mae", lam, var, depth, eps=1e-3), 4))
        [[ 6.0119  7.8086]
         [59.0177 73.8566]]

        The diffrax solve agrees with the closed form; the small-eps series
        only roughly:

        >>> print(np.round(jf.critical_time("jepa", lam, var, 4, 1e-3, method="ode"), 2))
        [43985.88 43056.37]
        >>> print(np.round(jf.critical_time("jepa", lam, var, 4, 1e-3, method="series"), 1))
        [44257.9 43065.1]

        ``lam <= 0`` is never learned; a start at or above the level takes no time:

        >>> print(jf.critical_time("jepa", [-1.0, 1.0], 1.0, 2, eps=[1e-3, 0.9]))
        [inf  0.]
    """
    _validate.check_objective(objective)
    _validate.check_method(method)
    shape, p = _validate.feature_params(lam, var, depth, eps, fraction)
    devices = local_devices()
    flat, n = flatten_padded(p, _FILL, multiple=len(devices))
    if n < 64 * len(devices):  # small batches: one device is quicker
        devices = devices[:1]
    t_star, ok = _critical_time_jit(objective, method, devices)(*(flat[k] for k in _FILL))
    ok = np.asarray(ok[:n])
    if not ok.all():
        warnings.warn(
            f"critical_time: the ODE solve failed for {int((~ok).sum())} of {n} members "
            "(returned as NaN)",
            stacklevel=2,
        )
    return t_star[:n].reshape(shape)


def critical_time_kernel(objective, method, lam, var, depth, eps, fraction):
    """Critical times of flat, validated arrays: ``(t_star, ok)``.

    Pure and unjitted: the building block that ``critical_time`` jits and that
    sweeps ``vmap``/``shard_map`` over chunks. ``objective`` and ``method``
    are static; every other argument is a 1-D array of one length.
    """
    learned = lam > 0
    lam_safe = jnp.where(learned, lam, var)  # rho = 1 stands in for unlearned features
    log_rho = jnp.log(lam_safe / var)
    log_u0 = jnp.log(eps) / depth
    log_up = log_u_level(objective, log_rho, depth, fraction)
    reached = log_u0 >= log_up
    ok = jnp.ones(lam.shape, bool)
    if method == "exact":
        t_star = time_to_level(objective, lam_safe, var, depth, log_u0, jnp.maximum(log_up, log_u0))
    elif method == "series":
        t_star = series_time(objective, lam_safe, var, depth, eps)
    else:
        eps_safe = jnp.where(learned, eps, jnp.exp(depth * (log_up - 1.0)))
        t_star, ok, _ = ode_critical_time(objective, lam_safe, var, depth, eps_safe, fraction)
        ok = ok | ~learned
    t_star = jnp.where(reached, 0.0, t_star)
    return jnp.where(learned, t_star, jnp.inf), ok


_critical_time_flat = jax.jit(critical_time_kernel, static_argnames=("objective", "method"))


@functools.cache
def _critical_time_jit(objective, method, devices):
    """The kernel, jitted and split over ``devices`` (one compiled function per shape)."""
    if len(devices) == 1:
        return functools.partial(_critical_time_flat, objective, method)
    return jax.jit(
        over_devices(functools.partial(critical_time_kernel, objective, method), devices)
    )
