"""The full-matrix flow over long times, with a stiff solver (theory §6.4, §11.6).

``full_flow`` integrates the flow of theory §6 with an explicit method
(Tsit5). Once a feature is learned its perturbations decay at a rate of order
``var rho^(2L)`` while later features may take ``1e6 ... 1e19`` time units
to rise (deep JEPA, small ``eps``, small ``rho``): an explicit method then
needs more steps than there are seconds in a day, limited by stability, not
by accuracy. ``stiff_flow`` integrates the same flow from the balanced start
``W_a = V = eps^(1/L) I`` with scipy's LSODA (Adams where the flow is not
stiff, BDF where it is; stable at any step, its Jacobian reused across
steps), and its dense output evaluates ``Wbar(t)`` anywhere in ``[0, t_end]``.

Two exact forms of the state (theory §11.6): for the stop-gradient and MAE,
the balanced layers reduce the flow to the end-to-end encoder and the
predictor, ``(E, V)`` (``reduced_field``, numpy, ``2 d^2`` numbers at any
depth); for an EMA target the layers and the target's layers
``(W, V, W_T)`` (``full_flow_field``, jitted, with ``jax.jacfwd``).

Tolerances: ``rtol = 1e-8`` and ``atol = 1e-12 eps^(1/L)`` (every entry of
the start is ``eps^(1/L)``). Measured against ``full_flow`` (Tsit5, rtol
1e-10) where both are feasible: ``tests/test_exp10.py``.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from .._core._results import register_result
from .._core._status import Status
from ._fullflow import full_flow_field

RTOL = 1e-8
METHOD = "LSODA"  # Adams where the flow is not stiff, BDF where it is (switched automatically)
METHODS = ("LSODA", "BDF")  # BDF: where LSODA's switch to its stiff method fails (theory §11.6)
ATOL_REL = 1e-4  # atol = ATOL_REL * rtol * eps^(1/L)

__all__ = ["StiffFlow", "stiff_flow"]


def reduced_field(objective: str, depth: int, E, V, Sxx, Syx):
    """``(dE/dt, dV/dt)`` of the balanced flow in the end-to-end encoder (theory §11.6).

    With balanced layers (``W_(a+1)^T W_(a+1) = W_a W_a^T``, kept by the flow
    and true at ``W_a = eps^(1/L) I``) and ``E = P diag(s) Q^T``::

        dE/dt = - sum_a (E E^T)^((L-a)/L) G (E^T E)^((a-1)/L) = - P ((P^T G Q) * K) Q^T
        K_ik  = sum_(j=0)^(L-1) s_i^(2 (L-1-j)/L) s_k^(2 j/L)

    with ``G = V^T R`` and ``R`` the residual of ``full_flow_field``; ``dV/dt = -R E^T``.
    ``K`` is summed term by term (no division), and the sum over ``a`` does not
    depend on the choice of singular vectors, so repeated singular values
    (the start) are harmless. Plain numpy, batched over leading axes of ``E``
    and ``V`` (the SVD runs in numpy's LAPACK on the calling thread).
    """
    R = _residual(objective, E, V, Sxx, Syx)
    G = np.swapaxes(V, -1, -2) @ R
    P, Qt, K = _svd_weights(depth, E)
    return _precondition(P, Qt, K, G), -R @ np.swapaxes(E, -1, -2)


def _residual(objective: str, E, V, Sxx, Syx):
    """``R = V E Sxx - E Syx`` (JEPA) or ``V E Sxx - Syx`` (MAE), the residual of
    ``full_flow_field`` in the end-to-end encoder (batched over leading axes)."""
    return V @ E @ Sxx - (Syx if objective == "mae" else E @ Syx)


def _svd_weights(depth: int, E):
    """``(P, Q^T, K)`` of ``reduced_field``: ``E = P diag(s) Q^T`` and
    ``K_ik = sum_(j=0)^(L-1) s_i^(2 (L-1-j)/L) s_k^(2 j/L)``."""
    P, s, Qt = np.linalg.svd(E)
    a = s ** (2.0 / depth)
    K = sum(a[..., :, None] ** (depth - 1 - j) * a[..., None, :] ** j for j in range(depth))
    return P, Qt, K


def _precondition(P, Qt, K, G):
    """``- P ((P^T G Q) * K) Q^T`` (batched over the leading axes of ``G``)."""
    Q, Pt = np.swapaxes(Qt, -1, -2), np.swapaxes(P, -1, -2)
    return -P @ ((Pt @ G @ Q) * K) @ Qt


def reduced_jacobian(objective: str, depth: int, E, V, Sxx, Syx):
    """The Jacobian of ``reduced_field`` (rows: ``(dE, dV)`` flattened; columns: ``(E, V)``)
    with the singular vectors and ``K`` held at their values at ``E`` (theory §11.6).

    Exact wherever ``G = V^T R = 0`` (the fixed points, where the stiffness
    lives: the terms left out are the derivatives of ``P``, ``Q`` and ``K``
    times ``P^T G Q``); elsewhere a Newton matrix, which is all the solver
    needs. One SVD, then the linearised field applied to all ``2 d^2`` unit
    directions at once::

        dR  = dV E Sxx + V dE Sxx - dE Syx      (MAE: without dE Syx)
        dG  = dV^T R + V^T dR
        d(dE/dt) = - P ((P^T dG Q) * K) Q^T,    d(dV/dt) = - dR E^T - R dE^T
    """
    d = E.shape[-1]
    n = d * d
    R = _residual(objective, E, V, Sxx, Syx)
    P, Qt, K = _svd_weights(depth, E)
    unit = np.eye(n).reshape(n, d, d)
    dE = np.concatenate([unit, np.zeros_like(unit)])
    dV = np.concatenate([np.zeros_like(unit), unit])
    dR = dV @ (E @ Sxx) + V @ dE @ Sxx - (0.0 if objective == "mae" else dE @ Syx)
    dG = np.swapaxes(dV, -1, -2) @ R + V.T @ dR
    d_fE = _precondition(P, Qt, K, dG)
    d_fV = -dR @ E.T - R @ np.swapaxes(dE, -1, -2)
    return np.concatenate([d_fE.reshape(2 * n, n), d_fV.reshape(2 * n, n)], -1).T


class _Reduced:
    """``f``, its Jacobian and ``wbar`` of the state ``(E, V)``.

    The Jacobian is ``reduced_jacobian`` (singular vectors held fixed: the
    SVD's derivative is undefined at repeated singular values, and the solver
    needs the Jacobian only to converge its Newton iterations). ``jac_fd`` is
    the forward-difference one used before (step ``1.5e-8`` of each entry's
    scale, all ``n + 1`` evaluations in one batch): a reference. It is about 4x
    slower per call at d = 16 (27.6 against 6.5 ms, one core: ``n + 1`` SVDs),
    and near ``s = 0`` at depth >= 2 a poor Newton matrix (theory §11.6).
    """

    def __init__(self, objective, depth, d):
        self.objective, self.depth, self.d = objective, depth, d

    def _split(self, y):
        """``(E, V)`` of the flattened state(s) ``y`` (batched over leading axes)."""
        d = self.d
        shape = y.shape[:-1] + (d, d)
        return y[..., : d * d].reshape(shape), y[..., d * d :].reshape(shape)

    def __call__(self, y, Sxx, Syx, tau=None):
        y = np.asarray(y, float)
        dE, dV = reduced_field(self.objective, self.depth, *self._split(y), Sxx, Syx)
        return np.concatenate(
            [dE.reshape(y.shape[:-1] + (-1,)), dV.reshape(y.shape[:-1] + (-1,))], -1
        )

    def jac(self, y, Sxx, Syx, tau=None):
        E, V = self._split(np.asarray(y, float))
        return reduced_jacobian(self.objective, self.depth, E, V, Sxx, Syx)

    def jac_fd(self, y, Sxx, Syx, tau=None):
        h = 1.5e-8 * np.maximum(np.abs(y), np.mean(np.abs(y)))
        values = self(np.concatenate([y[None, :], y[None, :] + np.diag(h)]), Sxx, Syx)
        return ((values[1:] - values[0]) / h[:, None]).T

    def wbar(self, ys):
        return np.moveaxis(np.asarray(ys)[: self.d * self.d], 0, -1).reshape(-1, self.d, self.d)


FORMS = ("auto", "reduced", "layers")


@functools.lru_cache(maxsize=32)
def _field(objective: str, target: str, depth: int, d: int, form: str = "reduced"):
    """``(f, jac, wbar)`` of the flattened state: ``(E, V)`` (``form="reduced"``,
    ``reduced_field``, numpy) or the layers ``(W, V[, WT])`` (jitted ``full_flow_field``
    and its ``jax.jacfwd``; the only form of an EMA target)."""
    if form == "reduced":
        r = _Reduced(objective, depth, d)
        return r, r.jac, r.wbar
    n_w = depth * d * d
    ema = target == "ema"

    def unflat(y):
        W = y[:n_w].reshape(depth, d, d)
        WT = y[n_w + d * d :].reshape(depth, d, d) if ema else None
        return W, y[n_w : n_w + d * d].reshape(d, d), WT

    def f_layers(y, Sxx, Syx, tau):
        args = (Sxx, Syx, jnp.zeros_like(Sxx), jnp.ones(depth, y.dtype), tau)
        dW, dV, dWT = full_flow_field(objective, target, 0.0, unflat(y), args)
        return jnp.concatenate([dW.ravel(), dV.ravel()] + ([dWT.ravel()] if ema else []))

    def wbar_layers(y):
        W = unflat(y)[0]
        E = W[0]
        for a in range(1, depth):
            E = W[a] @ E
        return E

    return (
        jax.jit(f_layers),
        jax.jit(jax.jacfwd(f_layers)),
        jax.jit(jax.vmap(wbar_layers, in_axes=1)),
    )


def _start(form: str, target: str, depth: int, d: int, u0: float) -> np.ndarray:
    """The balanced start, flattened as ``_field`` expects."""
    eye = np.eye(d).ravel()
    if form == "reduced":
        return np.concatenate([u0**depth * eye, u0 * eye])
    layers = np.tile(u0 * eye, depth)
    return np.concatenate([layers, u0 * eye] + ([layers] if target == "ema" else []))


def choose_form(target: str) -> str:
    """``"layers"`` for an EMA target (its target's layers are not balanced), else
    ``"reduced"`` (exact for balanced layers, and cheaper at any depth)."""
    return "layers" if target == "ema" else "reduced"


@register_result
@dataclasses.dataclass(frozen=True)
class StiffFlow:
    """``Wbar`` of the full-matrix flow at ``t`` ``[T]``: ``wbar`` ``[T, d, d]``.

    ``status`` is a ``Status`` code: ``SUCCESSFUL``, ``MAX_STEPS_REACHED``
    (the step budget ran out at ``t_reached``) or ``FAILED`` (the solver
    failed); ``ok`` is ``status == SUCCESSFUL``, and ``wbar`` is NaN unless
    ``ok``. ``nfev``/``njev`` count field and Jacobian evaluations, ``steps``
    the solver's steps. ``wbar_at(t)`` evaluates the dense output anywhere in
    ``[0, t_reached]``.
    """

    t: np.ndarray
    wbar: np.ndarray
    ok: bool
    nfev: int
    njev: int
    dense: object = dataclasses.field(repr=False, compare=False)
    depth: int = 1
    objective: str = "jepa"
    target: str = "stopgrad"
    form: str = "reduced"
    status: int = int(Status.SUCCESSFUL)
    steps: int = 0
    t_reached: float = float("nan")
    method: str = METHOD

    def wbar_at(self, t) -> np.ndarray:
        """``Wbar`` at the times ``t`` ``[n]`` (dense output), ``[n, d, d]``."""
        d = self.wbar.shape[-1]
        _, _, to_wbar = _field(self.objective, self.target, self.depth, d, self.form)
        return np.asarray(to_wbar(jnp.asarray(self.dense(np.asarray(t, float)))))


def _limit_threads():
    """One BLAS thread for the solver's small LU factorizations (a shared CPU)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1)


def _integrate(method, f, jac, y0, t_end, rtol, atol, max_steps):
    """``method`` from 0 to ``t_end`` (``solve_ivp``'s loop, with a step budget):
    ``(status, dense output, nfev, njev, steps, t reached)``."""
    import scipy.integrate
    from scipy.integrate import OdeSolution

    solver = getattr(scipy.integrate, method)(f, 0.0, y0, t_end, rtol=rtol, atol=atol, jac=jac)
    ts, pieces, status = [0.0], [], None
    while status is None:
        if solver.step() is not None or solver.status == "failed":
            status = Status.FAILED
            break
        ts.append(solver.t)
        pieces.append(solver.dense_output())
        if solver.status == "finished":
            status = Status.SUCCESSFUL
        elif max_steps is not None and len(pieces) >= max_steps:
            status = Status.MAX_STEPS_REACHED
    dense = OdeSolution(ts, pieces) if pieces else None
    return status, dense, solver.nfev, solver.njev, len(pieces), float(ts[-1])


def stiff_flow(
    objective,
    Sxx,
    Syx,
    depth,
    eps,
    t,
    *,
    target="stopgrad",
    tau=0.0,
    rtol=RTOL,
    form="auto",
    max_steps=None,
    method=METHOD,
) -> StiffFlow:
    """The full-matrix flow of theory §6.4 from the balanced start, by a stiff solver.

    Args:
        objective: ``"jepa"`` or ``"mae"``.
        Sxx, Syx: ``[d, d]`` covariances in the input basis.
        depth: encoder depth ``L >= 1``.  eps: ``wbar(0)``, > 0.
        t: increasing save times ``[T]``, >= 0 (the last is the end).
        target, tau: JEPA's target: ``"stopgrad"`` or ``"ema"`` (``tau > 0``).
        rtol: relative tolerance (``atol`` follows, module docstring).
        form: the state integrated: ``"reduced"`` ``(E, V)``, ``"layers"`` or
            ``"auto"`` (``choose_form``); an EMA target needs the layers.
        max_steps: the solver's step budget (None: no limit). A flow that does
            not settle (theory §11.8) is stopped here, with ``MAX_STEPS_REACHED``.
        method: ``"LSODA"`` (the default) or ``"BDF"`` (scipy's solvers).

    Examples:
        The canonical pair at depth 1 (theory §4): ``|Wbar e_j|`` crosses half
        of ``wbar*`` at the exact critical times 1008.43 and 1257.32 (to 3e-7):

        >>> import numpy as np, jepa_flow as jf
        >>> from jepa_flow._theory._stiff import stiff_flow
        >>> lam, var = [1.0, 0.8], [2.0, 1.0]
        >>> t = np.linspace(1000.0, 1300.0, 3001)
        >>> sf = stiff_flow("jepa", np.diag(var), np.diag(lam), 1, 1e-3, t)
        >>> w = np.abs(np.einsum("tii->ti", sf.wbar)) / jf.fixed_point("jepa", lam, var, 1)
        >>> crossing = [np.interp(0.5, w[:, j], t) for j in (0, 1)]
        >>> exact = jf.critical_time("jepa", lam, var, 1, 1e-3)
        >>> bool(np.allclose(crossing, exact, rtol=3e-7)), sf.ok
        (True, True)
    """
    if objective not in ("jepa", "mae"):
        raise ValueError(f"objective must be 'jepa' or 'mae'; got {objective!r}")
    if target not in ("stopgrad", "ema"):
        raise ValueError(f"target must be 'stopgrad' or 'ema'; got {target!r}")
    target = target if objective == "jepa" else "stopgrad"
    if target == "ema" and not tau > 0:
        raise ValueError(f"tau must be > 0 for target='ema'; got {tau!r}")
    if max_steps is not None and not (isinstance(max_steps, int) and max_steps >= 1):
        raise ValueError(f"max_steps must be None or an integer >= 1; got {max_steps!r}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}")
    if form not in FORMS or (form == "reduced" and target == "ema"):
        raise ValueError(
            f"form must be one of {FORMS} ('reduced' not with target='ema'); got {form!r}"
        )
    Sxx, Syx = (np.asarray(a, float) for a in (Sxx, Syx))
    form = choose_form(target) if form == "auto" else form
    if form == "layers":
        Sxx, Syx = jnp.asarray(Sxx), jnp.asarray(Syx)
    d, depth = int(Sxx.shape[0]), int(depth)
    t = np.asarray(t, float)
    f, jac, to_wbar = _field(objective, target, depth, d, form)
    u0 = float(eps) ** (1.0 / depth)
    y0 = _start(form, target, depth, d, u0)
    tau = jnp.asarray(float(tau))
    with _limit_threads():
        status, dense, nfev, njev, steps, t_reached = _integrate(
            method,
            lambda _, y: np.asarray(f(y, Sxx, Syx, tau)),
            lambda _, y: np.asarray(jac(y, Sxx, Syx, tau)),
            y0,
            float(t[-1]),
            rtol,
            ATOL_REL * rtol * u0,
            max_steps,
        )
    ok = status == Status.SUCCESSFUL
    wbar = np.asarray(to_wbar(jnp.asarray(dense(t)))) if ok else np.full((t.size, d, d), np.nan)
    return StiffFlow(
        t,
        wbar,
        ok,
        nfev,
        njev,
        dense,
        depth,
        objective,
        target,
        form,
        int(status),
        steps,
        t_reached,
        method,
    )
