"""Numerical integration of the balanced per-feature flow (docs/theory.md §3, §8).

The flows ``du/dt = u^(2L) (lam - var u)`` (JEPA) and
``du/dt = u^L (lam - var u^(L+1))`` (MAE) are violently stiff in ``t``: a deep
JEPA feature spends ``t ~ eps^(-(2L-1)/L) / lam`` (up to 1e15) on its plateau
and then rises on a time scale ``1 / (var rho^(2L))`` that can be shorter than
the float64 spacing of ``t`` itself. No step-size controller survives that in
the original time, explicit or implicit.

The clock (docs/theory.md §8.1)
-------------------------------
With ``y = log u`` and a *clock* ``s`` (a Sundman time transformation,
``ds = var u^r dt``) the flow becomes non-stiff::

    dy/ds   = rho - exp(q y)            (logistic in log space)
    dtau/ds = exp(-r (y - y0))          (the original time, rescaled)
    t       = tau exp(-r y0) / var

    JEPA:  q = 1,      r = 2L - 1
    MAE:   q = L + 1,  r = L - 1

with ``y0 = log(eps) / L``. ``simulate`` integrates this system with
``diffrax.Dopri8`` and dense output and inverts ``tau(s)`` by bisection to land
on each save time (``ode_trajectory``). Everything there follows the dtype
(docs/theory.md §8.3): the tolerance is the user's ``rtol`` (``default_rtol``:
1e-12 in float64, 1.2e-5 in float32; ``min_rtol`` = 16 machine epsilons),
convergence is declared at ``|y - y*| <= rtol (1 + |y*|) / 10``, and the
bisection takes ``nmant + 28`` halvings (80 in float64, 51 in float32) inside
a bracket that holds by construction. The field's exponents are clamped at
half the dtype's overflow threshold: a trial stage of a rejected step can
overshoot to ``y > 88``, where float32's ``exp`` overflows and ``inf - inf``
turned the step size into NaN for good (the member then spun to
``max_steps``); clamped, the trial is merely rejected.

Hitting times as integrals (docs/theory.md §8.2)
------------------------------------------------
A critical time needs no event and no root finder: ``y`` is monotone, so the
time to reach the level ``y_p`` is an integral over ``y``,
``t = int_{y0}^{y_p} exp(-r y) / (var (rho - exp(q y))) dy``. We integrate it
in the coordinate in which the clock's logistic is linear,
``v = logit(x)`` with ``x = exp(q y) / rho`` (so ``v = q rho s + v0``), offset
to ``w = v - v0``::

    rho tau = (1/q) int_{v0}^{v_p} ((1 + e^-v) / (1 + e^-v0))^k dv,    k = r / q
            = (1/q) int_0^W (x0 + (1 - x0) e^-w)^k dw,
    t       = (rho tau) exp(-r y0) / lam,        W = v_p - v0,

everything in log space (``log rho = log lam - log var``), so no ratio
overflows. Why this coordinate: in ``y`` the integrand has a pole at the
fixed point, only ``-log(fraction) / L`` beyond the level (0.0066 for a
depth-16 JEPA feature at fraction 0.9); in ``v`` the fixed point is at
infinity and the integrand is analytic in the strip ``|Im v| < pi`` (entire
for JEPA, where ``k`` is an integer). The base ``x0 + (1 - x0) e^-w`` is a sum
of two positive terms: its logarithm has no cancellation even where ``v0``
is -700, which is what keeps the integral accurate in float32.

What is left is the decay ``e^(-k w)`` on the scale ``1/k`` (``k = 2L - 1``
for JEPA, up to 2047) at the start of an interval ``W`` that can be 1400
long (eps = 1e-300). The substitution ``z = log(1 + c w)``, ``c = max(k, 1/W)``
tames both ends: the start becomes a double-exponential fall over
``z = O(1)``, and the long flat end is compressed logarithmically into an
interval of length ``log(1 + c W) <= 15``. One fixed Gauss-Legendre panel in
``z`` then integrates every member, with no adaptivity:
``gauss_nodes(rtol)`` picks 16-64 nodes from the measured worst case
(docs/solvers.md).

The fixed rule is the default: as accurate as the adaptive ``diffrax.Dopri8``
solve of the same integral (``integrator="diffrax"``, kept for that
comparison) and faster per configuration, with no loop and no rejected steps.
Either way nothing can fail to bracket: the ``optimistix.Bisection`` event
this replaces raised "The root is not contained in [lower, upper]" from
inside a batch (optimistix issue #206) for rho above ~100, eps = 1e-300,
lam = 1e300 and in float32.

Accuracy: the error relative to ``method="exact"`` is below ``rtol`` for
every tolerance from 1e-3 to 1e-11 and within 2x of it at 1e-12, over depth
1-1024 and eps from 1e-300 to the level; the measurements (node counts,
tables, float32) are in docs/solvers.md.
"""

from __future__ import annotations

import functools

import diffrax
import jax
import jax.numpy as jnp
import numpy as np

from .._core._status import Status
from ._fixed_point import clock_exponents, log_u_level, log_u_star

# Result codes of the solvers: the ``Status`` codes of their three outcomes.
SOLVED, BUDGET, FAILED = (
    int(s) for s in (Status.SUCCESSFUL, Status.MAX_STEPS_REACHED, Status.FAILED)
)
# Steps allowed per diffrax hitting-time integral: about 33 are needed at rtol 1e-12.
MAX_STEPS = 256
# Dense output stores every step: about 240 steps at most are needed from eps =
# 1e-6 to convergence (measured over depth 1..16), so 1024 leaves room and
# keeps the memory per trajectory near 256 KiB.
MAX_STEPS_DENSE = 1024
# Members per vmapped solve in a large batch: small enough to stay in cache.
CHUNK = 1024


@functools.cache
def default_rtol(dtype) -> float:
    """The default relative tolerance: 1e-12 in float64, ``100 eps`` (1.2e-5) in float32."""
    return max(1e-12, 100.0 * float(jnp.finfo(dtype).eps))


@functools.cache
def min_rtol(dtype) -> float:
    """The smallest tolerance the dtype can honour: 16 machine epsilons."""
    return 16.0 * float(jnp.finfo(dtype).eps)


def solver_status(sol):
    """The ``Status`` of a diffrax solution: successful, max steps reached or failed."""
    return jnp.where(
        sol.result == diffrax.RESULTS.successful,
        SOLVED,
        jnp.where(sol.result == diffrax.RESULTS.max_steps_reached, BUDGET, FAILED),
    )


def _log1m_exp(x):
    """``log(1 - exp(x))`` for ``x < 0``."""
    return jnp.where(x > -0.6931471805599453, jnp.log(-jnp.expm1(x)), jnp.log1p(-jnp.exp(x)))


# Gauss-Legendre node counts by tolerance: the smallest count whose worst
# relative error, measured against the closed forms over depth 1-1024, rho
# 1e-4..1e4, eps 1e-300 to the level and fractions 0.01-0.999 (20000
# configurations per objective), is below the tolerance:
#   nodes       16      24      32      40       48       64
#   worst     3.1e-4  2.5e-6  2.4e-8  1.8e-10  5.3e-12  1.6e-12
_NODES = ((3e-4, 16), (3e-6, 24), (3e-8, 32), (2e-10, 40), (6e-12, 48))


def gauss_nodes(rtol: float) -> int:
    """Gauss-Legendre nodes for the hitting-time integral at tolerance ``rtol``."""
    return next((n for tol, n in _NODES if rtol >= tol), 64)


def _gauss_integral(k, x0, width, nodes):
    """``int_0^width (x0 + (1 - x0) e^-w)^k dw`` by ``nodes``-point Gauss-Legendre.

    After ``z = log(1 + c w)`` with ``c = max(k, 1/width)``: the decay
    ``e^(-k w)`` from the start becomes a double-exponential fall over
    ``z = O(1)`` and the flat far end is compressed logarithmically, so one
    panel serves every member (see the module docstring).
    """
    x, wts = np.polynomial.legendre.leggauss(nodes)
    dtype = width.dtype
    x, wts = jnp.asarray(x, dtype), jnp.asarray(wts, dtype)
    tiny = jnp.finfo(dtype).tiny
    c = jnp.maximum(k, 1.0 / width)
    half = 0.5 * jnp.log1p(c * width)  # half the z interval
    z = half[:, None] * (x + 1.0)
    w = jnp.expm1(z) / c[:, None]
    # the log of a sum of two positive terms: accurate to an ulp; the floor
    # keeps log(0) out where both underflow (then k = 0 or the term is ~0)
    base = jnp.maximum(x0[:, None] + (1.0 - x0[:, None]) * jnp.exp(-w), tiny)
    g = jnp.exp(k[:, None] * jnp.log(base) + z)
    return half / c * jnp.sum(g * wts, axis=1)


def _diffrax_integral(k, x0, width, rtol):
    """The same integral by diffrax Dopri8 + PID: ``(I, code, steps)`` (one member)."""
    tiny = jnp.finfo(width.dtype).tiny

    def integrand(w, _, args):
        return jnp.exp(k * jnp.log(jnp.maximum(x0 + (1.0 - x0) * jnp.exp(-w), tiny)))

    kw = k * width
    lower = jnp.where(kw > 1e-3, -jnp.expm1(-kw) / jnp.where(k > 0, k, 1.0), width)
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(integrand),
        diffrax.Dopri8(),
        t0=jnp.zeros_like(width),
        t1=width,
        dt0=None,
        y0=jnp.zeros_like(width),
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=rtol * lower),
        saveat=diffrax.SaveAt(t1=True),
        max_steps=MAX_STEPS,
        throw=False,
    )
    return sol.ys[-1], solver_status(sol), sol.stats["num_steps"]


def map_chunks(fn, args, effort, chunk=CHUNK):
    """``fn(*args)`` over a large flat batch, in chunks of members of similar effort.

    A vmapped adaptive solve runs until its slowest member finishes, so the
    batch is sorted by ``effort`` (a predictor of the step count), cut into
    chunks of ``chunk`` members that ``lax.map`` solves one after another, and
    put back in the original order. Batches that are small, or not a multiple
    of ``chunk``, are solved in one piece. ``effort=None``: no sorting (the
    chunks only bound the memory).
    """
    n = args[0].shape[0]
    if n <= chunk or n % chunk:
        return fn(*args)
    if effort is None:
        out = jax.lax.map(lambda xs: fn(*xs), tuple(a.reshape(-1, chunk) for a in args))
        return jax.tree.map(lambda o: o.reshape(-1), out)
    order = jnp.argsort(effort)
    out = jax.lax.map(lambda xs: fn(*xs), tuple(a[order].reshape(-1, chunk) for a in args))
    inverse = jnp.argsort(order)
    return jax.tree.map(lambda o: o.reshape(-1)[inverse], out)


def ode_critical_time(
    objective: str, lam, log_rho, depth, log_eps, fraction, rtol, integrator="gauss"
):
    """Critical time as the hitting-time integral (flat arrays, every ``lam > 0``).

    ``log_rho`` and ``log_eps`` are passed in log space so that no ratio
    over- or underflows. Returns ``(t_star, code, evaluations)`` with ``code``
    one of ``SOLVED``, ``BUDGET`` (``max_steps`` reached, diffrax only) or
    ``FAILED``; ``t_star`` is NaN unless ``code == SOLVED``. Members already
    at their level return 0; a time beyond the float range comes back as
    ``inf`` (the caller flags it). ``integrator``: ``"gauss"`` (the default,
    ``gauss_nodes(rtol)`` nodes) or ``"diffrax"`` (adaptive Dopri8, kept for
    ``scripts/bench_critical_time.py``'s comparison).
    """
    q, r = clock_exponents(objective, depth)
    y0 = log_eps / depth
    y_level = log_u_level(objective, log_rho, depth, fraction)
    reached = y0 >= y_level
    # x = exp(q y) / rho and v = logit(x), at the start and at the level
    lx0 = q * jnp.minimum(y0, y_level) - log_rho
    lxp = q * (jnp.log(fraction) / depth)  # q y_level - log rho, exactly
    l1x0, l1xp = _log1m_exp(jnp.minimum(lx0, lxp)), _log1m_exp(lxp)
    width = jnp.where(reached, 1.0, (q * (y_level - y0)) - l1xp + l1x0)
    k = r / q
    x0 = jnp.exp(lx0)
    if integrator == "gauss":
        nodes = gauss_nodes(rtol)
        integral = map_chunks(lambda *a: _gauss_integral(*a, nodes), (k, x0, width), None)
        ok = jnp.isfinite(integral) & (integral > 0)
        code = jnp.where(ok, SOLVED, FAILED)
        steps = jnp.full(k.shape, nodes)
    else:
        effort = jnp.log1p(k * width)  # the step count grows like log(k W)
        integral, code, steps = map_chunks(
            jax.vmap(lambda *a: _diffrax_integral(*a, rtol)), (k, x0, width), effort
        )
    # t = (rho tau) exp(-r y0) / lam, in log space
    log_t = jnp.log(integral / q) - r * y0 - jnp.log(lam)
    t_star = jnp.where(code == SOLVED, jnp.exp(log_t), jnp.nan)
    return jnp.where(reached, 0.0, t_star), jnp.where(reached, SOLVED, code), steps


def _solve_dense(rho, q, r, y0, y_star, tol, tau_max, s1, rtol):
    """Integrate one feature in the clock until ``tau >= tau_max`` or ``|y - y*| <= tol``.

    Returns the solution with dense output (for inverting ``tau(s)``).
    """

    # A trial stage of a rejected step can overshoot far enough that exp
    # overflows (y > 88 in float32); inf - inf = NaN would then poison the step
    # size for good. Clamped exponents keep every trial finite and rejectable.
    cap = 0.5 * float(np.log(jnp.finfo(y0.dtype).max))

    def field(s, state, args):
        y, tau = state
        return (
            rho - jnp.exp(jnp.minimum(q * y, cap)),
            jnp.exp(jnp.minimum(-r * (y - y0), cap)),
        )

    def stop(t, y, args, **kwargs):  # diffrax passes these by keyword
        y, tau = y
        return (tau >= tau_max) | (jnp.abs(y - y_star) <= tol)

    return diffrax.diffeqsolve(
        diffrax.ODETerm(field),
        diffrax.Dopri8(),
        t0=jnp.zeros_like(y0),
        t1=s1,
        dt0=None,
        y0=(y0, jnp.zeros_like(y0)),
        saveat=diffrax.SaveAt(t1=True, dense=True),
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=rtol),
        event=diffrax.Event(stop),
        max_steps=MAX_STEPS_DENSE,
        throw=False,
    )


def _invert_clock(sol, tau_targets, bisections):
    """``y`` at each ``tau`` in ``tau_targets`` by bisection on the dense ``tau(s)``.

    The bracket ``[0, s_end]`` is kept by construction (no root finder that
    could raise); ``bisections`` halvings reach the dtype's resolution of ``s``.
    """
    s_end = sol.ts[-1]
    y_end, tau_end = sol.ys[0][-1], sol.ys[1][-1]

    def one(tau_target):
        def body(_, bracket):
            lo, hi = bracket
            mid = 0.5 * (lo + hi)
            below = sol.evaluate(mid)[1] < tau_target
            return jnp.where(below, mid, lo), jnp.where(below, hi, mid)

        lo, hi = jax.lax.fori_loop(0, bisections, body, (jnp.zeros_like(s_end), s_end))
        y = sol.evaluate(0.5 * (lo + hi))[0]
        return jnp.where(tau_target >= tau_end, y_end, y)

    return jax.vmap(one)(tau_targets)


def ode_trajectory(objective: str, lam, var, depth, eps, t, rtol):
    """``log u`` at the save times ``t`` for flat parameter arrays.

    Returns ``(log_u [N, T], code [N], num_steps [N])``. Works for any sign of
    ``lam``: a feature with ``lam <= 0`` decays towards 0, and ``tau >= s``
    then bounds the clock needed to reach ``t[-1]``. Tolerances and the
    number of bisections follow the dtype of ``t``.
    """
    finfo = jnp.finfo(t.dtype)
    learned = lam > 0
    log_rho = jnp.log(jnp.where(learned, lam, 1.0)) - jnp.log(var)
    rho = jnp.where(learned, jnp.exp(log_rho), lam / var)  # <= 0: the feature decays
    q, r = clock_exponents(objective, depth)
    y0 = jnp.log(eps) / depth
    y_star = log_u_star(objective, log_rho, depth)
    # converged when |y - y*| <= tol; never for a feature that decays
    tol = jnp.where(learned, 0.1 * rtol * (1.0 + jnp.abs(y_star)), -1.0)
    scale = var * jnp.exp(r * y0)  # tau = t * scale
    tau_max = t[-1] * scale
    # Growth: from y0 to the half level at rate >= rho (1 - 2^(-q/L)), then
    # exponential convergence at rate >= q rho / 4 (down to the tolerance).
    y_half = log_u_level(objective, log_rho, depth, 0.5)
    rate = rho * -jnp.expm1(-q / depth * jnp.log(2.0))
    s_grow = (jnp.abs(y_half - y0) + 1.0) / jnp.where(learned, rate, 1.0) + 4.0 * (
        12.0 - jnp.log(rtol)
    ) / (q * jnp.where(learned, rho, 1.0))
    s1 = jnp.where(learned, s_grow, tau_max + 1.0)
    bisections = int(finfo.nmant) + 28  # 80 in float64, 51 in float32

    def one(rho, q, r, y0, y_star, tol, tau_max, s1, scale):
        sol = _solve_dense(rho, q, r, y0, y_star, tol, tau_max, s1, rtol)
        code = jnp.where(sol.result == diffrax.RESULTS.event_occurred, SOLVED, solver_status(sol))
        return _invert_clock(sol, t * scale, bisections), code, sol.stats["num_steps"]

    return jax.vmap(one)(rho, q, r, y0, y_star, tol, tau_max, s1, scale)
