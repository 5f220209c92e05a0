"""Trajectories of the balanced per-feature flow, integrated with diffrax."""

from __future__ import annotations

import functools
import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float

from .._core import _validate
from .._core._batch import bucket, flatten_padded, float_dtype
from .._core._results import register_result
from ._fixed_point import wbar_star
from ._ode import BUDGET, SOLVED, ode_trajectory

_FILL = {"lam": 1.0, "var": 1.0, "depth": 1.0, "eps": 0.5}


@register_result
class Trajectory(eqx.Module):
    """The balanced flow sampled at the save times.

    Attributes:
        objective: ``"jepa"`` or ``"mae"``.
        t: the save times, shape ``[T]``.
        wbar: end-to-end encoder ``wbar = u^L`` along each feature, ``[T, *batch]``.
        u: common entry of every encoder layer, ``[T, *batch]``.
        v: predictor (JEPA) or decoder (MAE) entry, ``[T, *batch]``; equal to
            ``u`` because ``v^2 - w_a^2`` is conserved from the balanced start.
        wbar_star: the fixed point ``wbar*``, ``[*batch]``.
        ok: False for members whose solve failed, ``[*batch]``.

    Examples:
        >>> import jepa_flow as jf
        >>> traj = jf.simulate("mae", lam=1.0, var=2.0, depth=[1, 2], eps=1e-3, t=[0, 10, 100])
        >>> traj.objective, traj.t.shape, traj.wbar.shape, traj.wbar_star.shape
        ('mae', (3,), (3, 2), (2,))
        >>> print(traj.wbar_star.round(4))  # rho^(L/(L+1)) with rho = 0.5
        [0.7071 0.63  ]
        >>> print(traj.wbar[-1].round(4))  # converged by t = 100
        [0.7071 0.63  ]
        >>> bool((traj.u == traj.v).all()), bool(traj.ok.all())
        (True, True)
    """

    objective: str = eqx.field(static=True)
    t: Float[Array, " T"]
    wbar: Float[Array, "T ..."]
    u: Float[Array, "T ..."]
    v: Float[Array, "T ..."]
    wbar_star: Float[Array, "..."]
    ok: Bool[Array, "..."]


def simulate(objective, lam, var, depth, eps, t, rtol=None) -> Trajectory:
    """Integrate the balanced per-feature flow and sample it at the times ``t``.

    Solves ``du/dt = u^(2L) (lam - var u)`` (JEPA) or
    ``du/dt = u^L (lam - var u^(L+1))`` (MAE) from ``u(0) = eps^(1/L)``
    (theory §3) with diffrax, in the clock described in ``jepa_flow._theory._ode``
    (explicit Dopri8, PID control at ``rtol``, dense output inverted by
    bisection to land exactly on each save time). Every batch member is one
    vmapped solve.

    Accuracy (float64, default ``rtol``): each sampled point lies on the exact
    trajectory to a relative error in time below 1e-6 (typically 1e-10);
    where ``wbar`` is not too steep in ``t`` that is also its relative error
    in ``wbar``. Near a deep network's sudden rise ``wbar(t)`` can change by
    orders of magnitude within one float spacing of ``t``, and no method can
    do better than the time error.

    Precision: float64 when ``jax_enable_x64`` is on, float32 otherwise (no
    warning; see ``docs/precision.md``). In float32 the default ``rtol`` is
    1.2e-5 and each point lies on the exact trajectory to about 1e-3 relative
    in time at worst (docs/solvers.md). ``ok`` is False
    for a member whose solve did not finish (its trajectory is NaN), never a
    silent wrong curve.

    Args:
        objective: ``"jepa"`` or ``"mae"``.
        lam, var, depth, eps: per-feature parameters as in ``critical_time``;
            they broadcast together to the batch shape. ``lam <= 0`` gives a
            decaying trajectory.
        t: save times, 1-D, non-negative, non-decreasing.
        rtol: relative tolerance of the solve; default 1e-12 in float64 and
            1.2e-5 in float32; allowed range [16 machine epsilons, 0.1].

    Returns:
        A ``Trajectory`` with ``wbar``, ``u`` and ``v`` of shape ``[T, *batch]``.

    Raises:
        ValueError: for bad parameters, save times or ``rtol``, before anything
            is compiled.

    Examples:
        Feature A of theory §4 at depth 1 (``wbar* = rho = 0.5``) is at half
        its fixed point at its critical time, and B (``rho = 0.8``) later:

        >>> import numpy as np
        >>> import jepa_flow as jf
        >>> lam, var = np.array([1.0, 0.8]), np.array([2.0, 1.0])
        >>> t_a = float(jf.critical_time("jepa", 1.0, 2.0, depth=1, eps=1e-3))
        >>> traj = jf.simulate("jepa", lam, var, depth=1, eps=1e-3, t=[0.0, t_a, 1e5])
        >>> traj.wbar.shape  # [T, *batch]
        (3, 2)
        >>> print(np.round(traj.wbar, 4))
        [[0.001  0.001 ]
         [0.25   0.0051]
         [0.5    0.8   ]]
    """
    from ._critical_time import resolve_rtol

    _validate.check_objective(objective)
    dtype = float_dtype()
    rtol = resolve_rtol(rtol, dtype)
    times = _validate.as_times(t)
    shape, p = _validate.feature_params(lam, var, depth, eps)
    flat, n = flatten_padded(p, _FILL)
    n_t = times.size
    t_pad = np.full(bucket(n_t), times[-1])
    t_pad[:n_t] = times
    log_u, code, _ = _trajectory_flat(objective, rtol, t=jnp.asarray(t_pad, dtype), **flat)
    ok = np.asarray(code[:n]) == SOLVED
    log_u = jnp.where(jnp.asarray(ok)[:, None], log_u[:n], jnp.nan)
    log_u = log_u[:, :n_t].T.reshape((n_t, *shape))
    depth_b = jnp.asarray(p["depth"], log_u.dtype)
    u = jnp.exp(log_u)
    if not ok.all():
        budget = int((np.asarray(code[:n]) == BUDGET).sum())
        warnings.warn(
            f"simulate: the ODE solve did not finish for {int((~ok).sum())} of {n} members "
            f"({budget} ran out of steps; the others failed or left the float range); "
            "their trajectories are NaN",
            RuntimeWarning,
            stacklevel=2,
        )
    return Trajectory(
        objective=objective,
        t=jnp.asarray(times, log_u.dtype),
        wbar=jnp.exp(depth_b * log_u),
        u=u,
        v=u,
        wbar_star=wbar_star(objective, jnp.asarray(p["lam"]), jnp.asarray(p["var"]), depth_b),
        ok=jnp.asarray(ok.reshape(shape)),
    )


@functools.partial(jax.jit, static_argnames=("objective", "rtol"))
def _trajectory_flat(objective, rtol, lam, var, depth, eps, t):
    return ode_trajectory(objective, lam, var, depth, eps, t, rtol)
