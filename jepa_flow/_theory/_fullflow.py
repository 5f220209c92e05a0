"""Full-matrix gradient flow (theory §6), integrated with diffrax as a PyTree of matrices.

With ``E = W_L ... W_1``, target ``E_T`` (``E`` itself for the stop-gradient,
the EMA layers' product, or a frozen teacher) and the residual

    R = V E Sxx - E_T Syx      (JEPA)         R = V E Sxx - Syx      (MAE)

the flow is written out by hand (not by autodiff, so it is an independent
reference for the training engine)::

    dV/dt    = - R E^T
    dW_a/dt  = - (W_L ... W_(a+1))^T V^T R (W_(a-1) ... W_1)^T
    dWT_a/dt = (W_a - WT_a) / tau        (EMA target only)

It holds for any covariances, commuting or not, and from any start: this is
what training is compared with where the per-feature theory stops predicting
it (capture, theory §7). Padded identity layers (``a >= depth``) have zero
velocity, as in the training engine.
"""

from __future__ import annotations

import functools
from typing import Literal, Protocol

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int

from .._core._results import register_result
from .._core._status import crossing_status, status_ok
from ._layers import layer_mask, wbar
from ._ode import SOLVED, solver_status

RTOL = 1e-10  # float64 step tolerances
ATOL = 1e-13
RTOL_F32 = 1e-6  # float32 (theory §8.3: 1e-10 is below its resolution)
ATOL_F32 = 1e-9
MAX_STEPS = 200_000
_GRID = 4096  # dense-output points scanned for each feature's first crossing
# The dense output keeps every step's interpolation data for all ``max_steps`` steps up
# front (about 10 states a step for Tsit5): 200,000 steps of a d = 16, depth-2 state were
# 7 GB. A solve first gets the steps that fit in DENSE_BYTES (at least MIN_STEPS) and
# reruns with MAX_STEPS only if it runs out; the steps taken do not depend on the buffer.
DENSE_BYTES = 512 * 2**20
DENSE_STATES_PER_STEP = 10
MIN_STEPS = 4096


def dense_steps(state_size: int, itemsize: int) -> int:
    """The steps of a first dense solve of ``state_size`` numbers (see ``DENSE_BYTES``).

    Examples:
        >>> dense_steps(3 * 16 * 16, 8), dense_steps(3 * 2 * 2, 8)  # d = 16 and 2, depth 2
        (8738, 200000)
    """
    fit = DENSE_BYTES // (DENSE_STATES_PER_STEP * state_size * itemsize)
    return int(min(MAX_STEPS, max(MIN_STEPS, fit)))


def tolerances(dtype) -> tuple[float, float]:
    """``(rtol, atol)`` of the full-matrix solve for the dtype (theory §8.3)."""
    return (RTOL, ATOL) if jnp.finfo(dtype).bits == 64 else (RTOL_F32, ATOL_F32)


def _bisections(dtype) -> int:
    """Halvings of a grid bracket down to the dtype's resolution: 60 (float64), 31 (float32)."""
    return int(jnp.finfo(dtype).nmant) + 8


def full_flow_field(objective, target, t, y, args):
    """``d(W, V[, WT])/dt`` of theory §6; ``y = (W [n, d, d], V [d, d], WT or None)``."""
    W, V, WT = y
    Sxx, Syx, teacher, mask, tau = args
    n = W.shape[0]
    E = wbar(W)
    if objective == "mae":
        R = V @ E @ Sxx - Syx
    else:
        E_T = {"stopgrad": E, "frozen": teacher}.get(target)
        E_T = wbar(WT) if target == "ema" else E_T
        R = V @ E @ Sxx - E_T @ Syx
    G = V.T @ R  # gradient with respect to E
    dW = []
    for a in range(n):
        left = jnp.eye(W.shape[1])
        for b in range(a + 1, n):
            left = W[b] @ left
        right = jnp.eye(W.shape[1])
        for b in range(a):
            right = W[b] @ right
        dW.append(-left.T @ G @ right.T)
    dW = jnp.stack(dW) * mask[:, None, None]
    dWT = None if WT is None else (W - WT) / tau
    return dW, -R @ E.T, dWT


@functools.partial(jax.jit, static_argnames=("objective", "target", "max_steps"))
def _solve(objective, target, *args, max_steps):
    """The solve and its crossings, every matrix product in full precision (no TF32)."""
    with jax.default_matmul_precision("highest"):
        return _solve_traced(objective, target, *args, max_steps=max_steps)


def _solve_traced(
    objective, target, Sxx, Syx, U, teacher, tau, depth, W0, V0, ts, level, *, max_steps
):
    mask = layer_mask(depth, W0.shape[0])
    y0 = (W0, V0, W0 if target == "ema" else None)
    args = (Sxx, Syx, teacher, mask, tau)
    t1 = ts[-1]
    rtol, atol = tolerances(ts.dtype)
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(functools.partial(full_flow_field, objective, target)),
        diffrax.Tsit5(),
        t0=0.0,
        t1=t1,
        dt0=None,
        y0=y0,
        args=args,
        saveat=diffrax.SaveAt(ts=ts, dense=True),
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
        max_steps=max_steps,
        throw=False,
    )
    solver = solver_status(sol)
    short = sol.result == diffrax.RESULTS.max_steps_reached

    def norms(t):
        return jnp.linalg.norm(wbar(sol.evaluate(t)[0]) @ U, axis=0)

    latent = jax.vmap(lambda W: U.T @ wbar(W) @ U)(sol.ys[0])
    # first crossing of |E e_j| over thr_j: scan a grid, then bisect the dense output
    grid = jnp.concatenate([jnp.zeros(1), jnp.geomspace(t1 * 1e-6, t1, _GRID - 1)])
    above = jax.vmap(norms)(grid) >= level  # [G, d]
    first = jnp.argmax(above, axis=0)
    found = above.any(axis=0)

    def bisect(j, i):
        def body(_, br):
            lo, hi = br
            mid = 0.5 * (lo + hi)
            up = norms(mid)[j] >= level[j]
            return jnp.where(up, lo, mid), jnp.where(up, mid, hi)

        lo, hi = jax.lax.fori_loop(
            0, _bisections(ts.dtype), body, (grid[jnp.maximum(i - 1, 0)], grid[i])
        )
        return jnp.where(i == 0, 0.0, 0.5 * (lo + hi))

    t_star = jnp.where(found, jax.vmap(bisect)(jnp.arange(U.shape[0]), first), jnp.inf)
    status = jnp.where(solver == SOLVED, crossing_status(t_star, level, jnp), solver)
    return latent, t_star, status, sol.stats["num_steps"], short


@register_result
class FullFlow(eqx.Module):
    """The full-matrix flow sampled at ``t``: ``latent = U^T Wbar U`` ``[T, d, d]``,
    ``norm = |Wbar e_j|`` ``[T, d]``, and each feature's first crossing ``t_star`` ``[d]``
    of ``level`` (inf if none before ``t[-1]``); ``status`` ``[d]``, each feature's
    ``Status`` (``MAX_STEPS_REACHED`` or ``FAILED`` for all if the solve failed);
    ``ok``: the solve succeeded.

    Examples:
        A depth-1 MAE on two features (``rho = 0.5, 0.8``), balanced start:
        ``Wbar`` stays diagonal and converges to ``rho^(1/2)``.

        >>> import numpy as np
        >>> import jepa_flow as jf
        >>> data = jf.gaussian(Sxx=[2.0, 1.0], Syx=[1.0, 0.8])
        >>> I = np.eye(2)
        >>> ff = jf.full_flow("mae", data, 1e-3 * I[None], 1e-3 * I, 1, t=[10.0, 200.0],
        ...                   level=[0.5, 0.5])
        >>> ff.latent.shape, ff.norm.shape, ff.t_star.shape
        ((2, 2, 2), (2, 2), (2,))
        >>> print(np.round(ff.latent[-1], 4))
        [[0.7071 0.    ]
         [0.     0.8944]]
        >>> bool(ff.ok), [jf.Status(s).name for s in ff.status]
        (True, ['SUCCESSFUL', 'SUCCESSFUL'])
    """

    t: Float[Array, " T"]
    latent: Float[Array, "T d d"]
    norm: Float[Array, "T d"]
    t_star: Float[Array, " d"]
    status: Int[Array, " d"]
    num_steps: Int[Array, ""]

    @property
    def ok(self) -> jax.Array:
        """Whether the solve succeeded (no feature's status is a failure)."""
        return jnp.all(status_ok(self.status))


class Covariances(Protocol):
    """What ``full_flow`` reads of a data source (a ``jepa_flow.Data``): its input-basis
    covariances ``Sxx``, ``Syx`` ``[d, d]`` and feature basis ``U`` (columns)."""

    Sxx: jax.Array
    Syx: jax.Array
    U: jax.Array

    @property
    def d(self) -> int: ...


def full_flow(
    objective: Literal["jepa", "mae"],
    data: Covariances,
    W0: Float[ArrayLike, "n_layers d d"],
    V0: Float[ArrayLike, "d d"],
    depth: int,
    t: Float[ArrayLike, " T"],
    level: Float[ArrayLike, " d"],
    *,
    target: Literal["stopgrad", "ema", "frozen"] = "stopgrad",
    tau: float = 0.0,
    teacher: Float[ArrayLike, "d d"] | None = None,
) -> FullFlow:
    """Integrate the full-matrix flow of theory §6 from ``(W0, V0)`` (one member).

    Args:
        objective: ``"jepa"`` or ``"mae"``.  data: a ``Data`` (its input-basis covariances).
        W0: ``[n_layers, d, d]`` layers (``W0[0] = W_1``; layers ``>= depth`` must be I).
        V0: ``[d, d]``.  depth: number of real layers.
        t: increasing save times (the last is the end time), > 0.
        level: ``[d]`` levels of ``|Wbar e_j|`` whose first crossing is reported.
        target, tau, teacher: as in ``train`` (``tau > 0`` for ``"ema"``).

    Tsit5 with PID control (rtol 1e-10, atol 1e-13 in float64; 1e-6, 1e-9
    in float32, the working dtype when ``jax_enable_x64`` is off); crossings
    located by bisection on the dense output to the dtype's resolution. The
    float32 accuracy is measured in docs/precision.md.

    Examples:
        From the balanced, diagonal start the full-matrix flow is the
        per-feature flow: the canonical pair of theory §4 (JEPA, depth 1,
        ``eps = 1e-3``) crosses half of ``wbar*`` at the exact critical times.

        >>> import numpy as np
        >>> import jepa_flow as jf
        >>> lam, var = np.array([1.0, 0.8]), np.array([2.0, 1.0])
        >>> data = jf.gaussian(Sxx=var, Syx=lam)  # diagonal: the eigenbasis U = I
        >>> W0, V0 = 1e-3 * np.eye(2)[None], 1e-3 * np.eye(2)  # W0[0] = W_1
        >>> half = 0.5 * jf.fixed_point("jepa", lam, var, 1)
        >>> ff = jf.full_flow("jepa", data, W0, V0, depth=1, t=[1e3, 5e3], level=half)
        >>> print(np.round(ff.t_star, 2))
        [1008.43 1257.32]
        >>> print(np.round(jf.critical_time("jepa", lam, var, 1, 1e-3), 2))
        [1008.43 1257.32]
    """
    if target == "ema" and tau <= 0:
        target = "stopgrad"  # tau -> 0 is the stop-gradient flow
    d = data.d
    teacher = jnp.zeros((d, d)) if teacher is None else jnp.asarray(teacher)
    ts = jnp.asarray(np.asarray(t, float))
    W0, V0 = jnp.asarray(W0), jnp.asarray(V0)
    args = (data.Sxx, data.Syx, data.U, teacher, jnp.asarray(float(tau)), jnp.asarray(depth))
    args += (W0, V0, ts, jnp.asarray(level))
    state = W0.size * (2 if target == "ema" else 1) + V0.size
    first = dense_steps(state, ts.dtype.itemsize)
    latent, t_star, status, steps, short = _solve(objective, target, *args, max_steps=first)
    if bool(short) and first < MAX_STEPS:  # rare: a long solve, with the full buffer
        latent, t_star, status, steps, _ = _solve(objective, target, *args, max_steps=MAX_STEPS)
    return FullFlow(
        t=ts,
        latent=latent,
        norm=jnp.linalg.norm(latent, axis=-2),
        t_star=t_star,
        status=status,
        num_steps=steps,
    )
