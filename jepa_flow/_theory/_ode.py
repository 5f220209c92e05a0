"""diffrax integration of the balanced per-feature flow (docs/theory.md §3).

The flows ``du/dt = u^(2L) (lam - var u)`` (JEPA) and
``du/dt = u^L (lam - var u^(L+1))`` (MAE) are violently stiff in ``t``: a deep
JEPA feature spends ``t ~ eps^(-(2L-1)/L) / lam`` (up to 1e15) on its plateau
and then rises on a time scale ``1 / (var rho^(2L))`` that can be shorter than
the float64 spacing of ``t`` itself. No step-size controller survives that in
the original time, explicit or implicit.

So we integrate the same flow in a *clock* ``s`` (a Sundman time transformation,
``ds = var u^r' dt``) chosen so that the state ``y = log u`` moves at an O(1)
rate over the whole trajectory::

    dy/ds   = rho - exp(q y)            (logistic in log space)
    dtau/ds = exp(-r (y - y0))          (the original time, rescaled)
    t       = tau exp(-r y0) / var

    JEPA:  q = 1,      r = 2L - 1
    MAE:   q = L + 1,  r = L - 1

with ``y0 = log(eps) / L``. In ``s`` the system is non-stiff at every depth (its
Jacobian is at most ``q rho`` and falls to 0 on the plateau) and the number of
steps hardly depends on depth, eps or lam, which is what a vmapped batch needs
(a vmapped adaptive solve runs until its slowest member finishes). Hence an
explicit high-order solver: ``diffrax.Dopri8`` with a ``PIDController`` at
``rtol = atol = 1e-12`` takes about 26 steps per feature (Tsit5 needs about 140
for the same accuracy, and an implicit Kvaerno solver buys nothing once the
problem is not stiff); ``tau`` is O(1) at the start, so relative and absolute
tolerances mean the same thing. The critical time is a ``diffrax.Event`` on
``y - y_level`` located by an ``optimistix.Bisection`` root finder on the dense
interpolant (without a root finder the event returns the end of the step);
bisection, not Newton, because Newton's linear solve does not trace under
``shard_map``.
"""

from __future__ import annotations

import diffrax
import jax
import jax.numpy as jnp
import optimistix as optx

from ._fixed_point import clock_exponents, log_u_level, log_u_star

RTOL = 1e-12
ATOL = 1e-12
MAX_STEPS = 4096
# Dense output stores every step: about 240 steps at most are needed from eps =
# 1e-6 to convergence (measured over depth 1..16), so 1024 leaves room and
# keeps the memory per trajectory near 256 KiB.
MAX_STEPS_DENSE = 1024
# Members per vmapped solve in a large batch: small enough to stay in cache.
CHUNK = 1024


def clock_field(s, state, args):
    """The balanced flow in the clock ``s``: ``d(y, tau)/ds``."""
    y, tau = state
    rho, q, r, y0 = args
    return rho - jnp.exp(q * y), jnp.exp(-r * (y - y0))


def _solve_clock(rho, q, r, y0, s1, event, saveat, max_steps):
    """One feature's ``diffeqsolve`` in the clock, from ``(y0, tau = 0)`` at ``s = 0``."""
    return diffrax.diffeqsolve(
        diffrax.ODETerm(clock_field),
        diffrax.Dopri8(),
        t0=0.0,
        t1=s1,
        dt0=None,
        y0=(y0, jnp.zeros_like(y0)),
        args=(rho, q, r, y0),
        saveat=saveat,
        stepsize_controller=diffrax.PIDController(rtol=RTOL, atol=ATOL),
        event=event,
        max_steps=max_steps,
        throw=False,
    )


def _succeeded(sol):
    return (sol.result == diffrax.RESULTS.successful) | (
        sol.result == diffrax.RESULTS.event_occurred
    )


def _solve_to_level(rho, q, r, y0, y_level, s1):
    """Integrate one feature from ``y0`` until ``y = y_level``; returns ``(tau, ok, steps)``."""
    # The bisection root finder (rather than Newton) also traces under shard_map.
    event = diffrax.Event(
        lambda t, y, args, **kwargs: y[0] - y_level,
        root_finder=optx.Bisection(rtol=1e-13, atol=1e-13),
    )
    sol = _solve_clock(rho, q, r, y0, s1, event, diffrax.SaveAt(t1=True), MAX_STEPS)
    ok = _succeeded(sol) & jnp.asarray(sol.event_mask)
    return sol.ys[1][-1], ok, sol.stats["num_steps"]


def map_chunks(fn, args, effort, chunk=CHUNK):
    """``fn(*args)`` over a large flat batch, in chunks of members of similar effort.

    A vmapped adaptive solve runs until its slowest member finishes, so the
    batch is sorted by ``effort`` (a predictor of the step count), cut into
    chunks of ``chunk`` members that ``lax.map`` solves one after another, and
    put back in the original order. Batches that are small, or not a multiple
    of ``chunk``, are solved in one piece.
    """
    n = effort.shape[0]
    if n <= chunk or n % chunk:
        return fn(*args)
    order = jnp.argsort(effort)
    out = jax.lax.map(lambda xs: fn(*xs), tuple(a[order].reshape(-1, chunk) for a in args))
    inverse = jnp.argsort(order)
    return jax.tree.map(lambda o: o.reshape(-1)[inverse], out)


def ode_critical_time(objective: str, lam, var, depth, eps, fraction):
    """Critical time by integrating the flow (flat arrays, every ``lam > 0``).

    Returns ``(t_star, ok, num_steps)``; ``ok`` is False for a member whose
    solve failed (it is then NaN), so a vmapped batch never hides a failure.
    Members already at their level (``eps^(1/L) >= u_p``) return 0.
    """
    log_rho = jnp.log(lam / var)
    rho = jnp.exp(log_rho)
    q, r = clock_exponents(objective, depth)
    y0 = jnp.log(eps) / depth
    y_level = log_u_level(objective, log_rho, depth, fraction)
    reached = y0 >= y_level
    # dy/ds >= rho (1 - fraction^(q/L)) below the level: a bound on the event's s.
    rate = rho * -jnp.expm1(q / depth * jnp.log(fraction))
    y0_safe = jnp.where(reached, y_level - 1.0, y0)
    s1 = 2.0 * (y_level - y0_safe) / rate + 1.0 / rho
    effort = (r + 1.0) * (y_level - y0_safe)  # grows with the number of steps a member needs
    tau, ok, steps = map_chunks(
        jax.vmap(_solve_to_level), (rho, q, r, y0_safe, y_level, s1), effort
    )
    t_star = tau * jnp.exp(-r * y0_safe) / var
    t_star = jnp.where(reached, 0.0, jnp.where(ok, t_star, jnp.nan))
    return t_star, ok | reached, steps


def _solve_dense(rho, q, r, y0, y_star, tol, tau_max, s1):
    """Integrate one feature until ``tau >= tau_max`` or ``|y - y*| <= tol``.

    Returns the solution with dense output (for inverting ``tau(s)``).
    """

    def stop(t, y, args, **kwargs):  # diffrax passes these by keyword
        y, tau = y
        return (tau >= tau_max) | (jnp.abs(y - y_star) <= tol)

    return _solve_clock(
        rho, q, r, y0, s1, diffrax.Event(stop), diffrax.SaveAt(t1=True, dense=True), MAX_STEPS_DENSE
    )


_BISECTIONS = 80


def _invert_clock(sol, tau_targets):
    """``y`` at each ``tau`` in ``tau_targets`` by bisection on the dense ``tau(s)``."""
    s_end = sol.ts[-1]
    y_end, tau_end = sol.ys[0][-1], sol.ys[1][-1]

    def one(tau_target):
        def body(_, bracket):
            lo, hi = bracket
            mid = 0.5 * (lo + hi)
            below = sol.evaluate(mid)[1] < tau_target
            return jnp.where(below, mid, lo), jnp.where(below, hi, mid)

        lo, hi = jax.lax.fori_loop(0, _BISECTIONS, body, (jnp.zeros_like(s_end), s_end))
        y = sol.evaluate(0.5 * (lo + hi))[0]
        return jnp.where(tau_target >= tau_end, y_end, y)

    return jax.vmap(one)(tau_targets)


def ode_trajectory(objective: str, lam, var, depth, eps, t):
    """``log u`` at the save times ``t`` for flat parameter arrays.

    Returns ``(log_u [N, T], ok [N], num_steps [N])``. Works for any sign of ``lam``: a
    feature with ``lam <= 0`` decays towards 0, and ``tau >= s`` then bounds
    the clock needed to reach ``t[-1]``.
    """
    learned = lam > 0
    rho = lam / var
    log_rho = jnp.log(jnp.where(learned, rho, 1.0))
    q, r = clock_exponents(objective, depth)
    y0 = jnp.log(eps) / depth
    y_star = log_u_star(objective, log_rho, depth)
    # converged when |y - y*| <= tol; never for a feature that decays
    tol = jnp.where(learned, 1e-13 * (1.0 + jnp.abs(y_star)), -1.0)
    scale = var * jnp.exp(r * y0)  # tau = t * scale
    tau_max = t[-1] * scale
    # Growth: from y0 to the half level at rate >= rho (1 - 2^(-q/L)), then
    # exponential convergence at rate >= q rho / 4.
    y_half = log_u_level(objective, log_rho, depth, 0.5)
    rate = rho * -jnp.expm1(-q / depth * jnp.log(2.0))
    s_grow = (jnp.abs(y_half - y0) + 1.0) / jnp.where(learned, rate, 1.0) + 160.0 / (
        q * jnp.where(learned, rho, 1.0)
    )
    s1 = jnp.where(learned, s_grow, tau_max + 1.0)

    def one(rho, q, r, y0, y_star, tol, tau_max, s1, scale):
        sol = _solve_dense(rho, q, r, y0, y_star, tol, tau_max, s1)
        ok = _succeeded(sol)
        return _invert_clock(sol, t * scale), ok, sol.stats["num_steps"]

    return jax.vmap(one)(rho, q, r, y0, y_star, tol, tau_max, s1, scale)
