"""Trajectories of the balanced per-feature flow, integrated with diffrax."""

from __future__ import annotations

import functools
import warnings
from typing import Literal

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float, Int

from .._core import _checks, _validate
from .._core._batch import Program, bucket, float_dtype, run
from .._core._results import register_result
from .._core._status import Status, status_ok
from .._core._warn import JepaFlowWarning
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
        status: each member's ``Status``, ``[*batch]``: ``SUCCESSFUL``, or
            ``MAX_STEPS_REACHED`` / ``FAILED`` (the trajectory is then NaN).
        ok: (a property) ``status`` is not a failure, ``[*batch]``.

    Examples:
        >>> import jepa_flow as jf
        >>> traj = jf.simulate("mae", lam=1.0, var=2.0, depth=[1, 2], eps=1e-3, t=[0, 10, 100])
        >>> traj.objective, traj.t.shape, traj.wbar.shape, traj.wbar_star.shape
        ('mae', (3,), (3, 2), (2,))
        >>> print(traj.wbar_star.round(4))  # rho^(L/(L+1)) with rho = 0.5
        [0.7071 0.63  ]
        >>> print(traj.wbar[-1].round(4))  # converged by t = 100
        [0.7071 0.63  ]
        >>> bool((traj.u == traj.v).all()), bool(traj.ok.all()), traj.status.tolist()
        (True, True, [0, 0])
    """

    objective: str = eqx.field(static=True)
    t: Float[Array, " T"]
    wbar: Float[Array, "T ..."]
    u: Float[Array, "T ..."]
    v: Float[Array, "T ..."]
    wbar_star: Float[Array, "..."]
    status: Int[Array, "..."]

    @property
    def ok(self) -> Bool[Array, "..."]:
        """Members whose solve finished (``status`` is not a failure)."""
        return status_ok(self.status)


def simulate(
    objective: Literal["jepa", "mae"],
    lam: Float[ArrayLike, "..."],
    var: Float[ArrayLike, "..."],
    depth: Int[ArrayLike, "..."],
    eps: Float[ArrayLike, "..."],
    t: Float[ArrayLike, " T"],
    *,
    rtol: float | None = None,
) -> Trajectory:
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
        ValueError: for bad parameters, save times or ``rtol``, before any
            result is returned (the parameters' values are checked inside
            the compiled solve, as in ``critical_time``; under ``jax.jit`` the
            error is raised at run time).

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
    times = _save_times(t, dtype)
    program = _trajectory_program(objective, rtol, int(times.shape[0]))
    values = dict(lam=lam, var=var, depth=depth, eps=eps)
    (wbar, u, ws, status), counts, n = run(program, values, extras=(times,))
    if counts is not None:  # some status above SOLVED
        warnings.warn(
            f"simulate: the ODE solve did not finish for {n - int(counts[SOLVED])} of {n} "
            f"members ({int(counts[BUDGET])} ran out of steps; the others failed or left the "
            "float range); their trajectories are NaN",
            JepaFlowWarning,
            stacklevel=2,
        )
    times = times if _checks.is_traced(times) else jnp.asarray(times)
    return Trajectory(
        objective=objective, t=times, wbar=wbar, u=u, v=u, wbar_star=ws, status=status
    )


def _save_times(t, dtype):
    """The save times, checked (on the host; at run time when traced)."""
    if _checks.is_traced(t):
        if t.ndim != 1 or t.shape[0] == 0:
            raise ValueError(f"t must be a non-empty 1-D array of times; got shape {t.shape}")
        bad = ~jnp.isfinite(t) | (t < 0) | (jnp.diff(t, prepend=t[:1]) < 0)
        return eqx.error_if(t, bad.any(), "t must be finite, >= 0 and non-decreasing").astype(dtype)
    return _validate.as_times(t).astype(dtype)  # numpy: padded on the host if need be


def _pad_times(extras):
    """Save times padded with the last one to a bucket size (the bucketed path: one
    compiled solve per bucket of save times too)."""
    (t,) = extras
    return (np.pad(t, (0, bucket(t.shape[0]) - t.shape[0]), mode="edge"),)


def _trajectory_kernel(objective, rtol, flat, t):
    lam, var, depth, eps = (flat[k] for k in _FILL)
    log_u, code, _ = ode_trajectory(objective, lam, var, depth, eps, t, rtol)
    ok = code == SOLVED
    log_u = jnp.where(ok[:, None], log_u, jnp.nan)
    outputs = (
        jnp.exp(depth[:, None] * log_u),
        jnp.exp(log_u),
        wbar_star(objective, lam, var, depth),
    )
    return outputs + (code,), code


def _finish_trajectory(n_t, outputs):
    """``wbar`` and ``u`` from ``[*batch, T_padded]`` to ``[T, *batch]``."""
    wbar, u, ws, status = outputs
    return jnp.moveaxis(wbar[..., :n_t], -1, 0), jnp.moveaxis(u[..., :n_t], -1, 0), ws, status


def _any_failed(outputs):
    return (outputs[-1] != SOLVED).any()  # status


@functools.cache
def _trajectory_program(objective, rtol, n_t) -> Program:
    params = (("lam", "real"), ("var", "positive"), ("depth", "depth"), ("eps", "positive"))
    return Program(
        key=("simulate", objective, rtol, n_t),
        params=params,
        fill=tuple((name, _FILL[name]) for name, _ in params),
        kernel=functools.partial(_trajectory_kernel, objective, rtol),
        subnormal=("lam", "var", "eps"),
        n_status=len(Status),
        needs_counts=_any_failed,
        finish=functools.partial(_finish_trajectory, n_t),
        pad_extras=_pad_times,
        multi_device=False,
    )
