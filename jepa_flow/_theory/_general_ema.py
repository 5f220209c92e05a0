"""The EMA target's implicit solver of the general per-feature flow (theory §6.2).

``solve_ema`` integrates ``d(T, z)/dy`` of ``jepa_flow._theory._general`` (the
module docstring derives the system and why it is stiff) by Kvaerno's 5(4)
ESDIRK written out for it: each implicit stage is one scalar Newton solve in
``z``. ``exponent`` and ``v_ratio`` are the reduced state's algebra, shared
with the 1-D flows of ``_general``. Cost and accuracy: docs/solvers.md.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

# Attempted steps (rejected ones included) of one EMA member: at most about 300 were
# measured, tau up to 1e6 included (module docstring); the cap only ends a member
# that would not finish (it comes back NaN, ok = False), and costs nothing unused.
MAX_STEPS_EMA = 16384
# Newton iterations per implicit stage of the EMA solve (scalar, exact derivative,
# started from the previous stage's value moved along its slope): 2 take the same
# steps as 4 or 6 (and 1.4x less time than 4), 1 does not converge (a stage that does
# not converge rejects its step). Started from the previous stage's value alone, 4
# were needed.
NEWTON_ITERATIONS = 2


def exponent(kind: str, depth):
    """``a`` of ``K = var exp(a y) v (...)``: ``2L - 2`` (JEPA) or ``L - 2`` (MAE)."""
    return depth - 2.0 if kind == "mae" else 2.0 * depth - 2.0


def v_ratio(y, y0, r):
    """``v / v0 = sqrt(r^2 - 1 + exp(2 (y - y0))) / r`` (exact 1-to-1 at ``r = 1``)."""
    return jnp.sqrt(r * r + jnp.expm1(2.0 * (y - y0))) / r


# Kvaerno's 5(4) ESDIRK tableau (A-L stable, stiffly accurate, explicit first
# stage; the coefficients of ``diffrax.Kvaerno5``): row i holds a_i1 .. a_i(i-1),
# the diagonal is _GAMMA, the last row is the solution's weights.
_GAMMA = 0.26
_A = (
    (),
    (_GAMMA,),
    (0.13, 0.84033320996790809),
    (0.22371961478320505, 0.47675532319799699, -0.06470895363112615),
    (0.16648564323248321, 0.10450018841591720, 0.03631482272098715, -0.13090704451073998),
    (0.13855640231268224, 0.0, -0.04245337201752043, 0.02446657898003141, 0.61943039072480676),
    (
        0.13659751177640291,
        0.0,
        -0.05496908796538376,
        -0.04118626728321046,
        0.62993304899016403,
        0.06962479448202728,
    ),
)
_C = (0.0, 0.52, 1.230333209967908, 0.8957659843500759, 0.43639360985864756, 1.0, 1.0)
_B = _A[6] + (_GAMMA,)
# solution minus the embedded 4th-order one (the 6th stage's row with its diagonal)
_B_ERR = tuple(b - e for b, e in zip(_B, _A[5] + (_GAMMA, 0.0)))


def _ema_parts(rho, depth, y0, r, v0, tau_k0):
    """The EMA field in two halves: ``at(y)`` (what depends on ``y`` only) and
    ``field(pre, z) -> (dz/dy, dT/dy, d(dz/dy)/dz, z_pole)``.

    ``z_pole = log(v / rho) / L`` is where the bracket ``rho exp(L z) - v``
    vanishes: the flow lives above it (``dT/dy > 0``).
    """
    a = exponent("ema", depth)
    ema = tau_k0 > 0
    inv_tau = jnp.where(ema, 1.0 / jnp.where(ema, tau_k0, 1.0), 0.0)

    def at(y):
        vr = v_ratio(y, y0, r)
        v = v0 * vr
        return v, jnp.exp(-a * (y - y0)) * rho / vr, jnp.log(v / rho) / depth

    def field(pre, z):
        v, scale, z_pole = pre
        ez = rho * jnp.exp(depth * z)
        bracket = ez - v
        g = scale / bracket
        em = jnp.expm1(-z)
        f = jnp.where(ema, em * inv_tau * g - 1.0, 0.0)
        f_z = inv_tau * g * (-(em + 1.0) - em * depth * ez / bracket)
        return f, g, f_z, z_pole

    return at, field


def solve_ema(tols, y_start, y_end, args):
    """The EMA flow ``d(T, z)/dy`` from ``y_start`` to ``y_end``, vectorized over members.

    Kvaerno's 5(4) ESDIRK written out for this system: ``dT/dy`` does not
    depend on ``T``, so each implicit stage is one scalar equation in ``z``,
    solved by ``NEWTON_ITERATIONS`` Newton steps with the exact derivative (kept
    above the bracket's pole). A step is accepted when every stage converged
    and its error estimate is within ``rtol * (1 + |z|)`` for ``z`` and
    ``rtol * |T|`` for ``T`` (relative: ``T`` is the answer, and it can end
    far below 1); the step size then follows ``0.9 err^(-1/5)`` within
    ``[0.2, 5]`` (a non-converged stage quarters it). One ``lax.while_loop``
    advances every member until each has reached ``y_end`` or spent
    ``MAX_STEPS_EMA`` attempts. Returns ``(T, ok, steps)``.
    """
    tol, newton_tol = tols
    at, field = _ema_parts(*args)
    span = y_end - y_start
    zero = jnp.zeros_like(y_start)
    f1, g1, _, _ = field(at(y_start), zero)
    count = jnp.zeros(y_start.shape, jnp.int32)
    tiny = jnp.finfo(y_start.dtype).tiny
    init = (y_start, zero, zero, f1, g1, 0.01 * span, count, span <= 0, span != span)

    def active(state):
        *_, done, failed = state
        return ~done & ~failed

    def body(state):
        y, T, z, f1, g1, h, steps, done, failed = state
        rest = y_end - y
        last = h >= rest
        h = jnp.minimum(h, rest)
        fs, gs = [f1], [g1]
        Z = z
        converged = jnp.ones_like(done)
        for i in range(1, 7):
            pre = at(y + _C[i] * h)
            base = z + h * sum(a * f for a, f in zip(_A[i], fs))
            Z = Z + (_C[i] - _C[i - 1]) * h * fs[-1]  # from the previous stage, along its slope
            for _ in range(NEWTON_ITERATIONS):
                f, _, f_z, z_pole = field(pre, Z)
                step = (Z - base - h * _GAMMA * f) / (1.0 - h * _GAMMA * f_z)
                new = Z - step
                new = jnp.where(new > z_pole, new, 0.5 * (Z + z_pole))  # stay above the pole
                Z = jnp.where(jnp.isfinite(new), new, Z)
            f, g, _, z_pole = field(pre, Z)
            residual = jnp.abs(Z - base - h * _GAMMA * f)
            converged &= (residual <= newton_tol * (1.0 + jnp.abs(Z))) & (Z > z_pole)
            converged &= jnp.isfinite(f) & jnp.isfinite(g) & (g > 0)
            fs.append(f)
            gs.append(g)
        T_new = T + h * sum(b * g for b, g in zip(_B, gs))
        err_z = h * sum(b * f for b, f in zip(_B_ERR, fs))
        err_T = h * sum(b * g for b, g in zip(_B_ERR, gs))
        scale_z = tol * (1.0 + jnp.maximum(jnp.abs(z), jnp.abs(Z)))
        scale_T = tol * jnp.maximum(jnp.maximum(jnp.abs(T), jnp.abs(T_new)), tiny)
        err = jnp.maximum(jnp.abs(err_z) / scale_z, jnp.abs(err_T) / scale_T)
        err = jnp.where(converged & jnp.isfinite(err) & jnp.isfinite(T_new), err, jnp.inf)
        accept = err <= 1.0
        factor = jnp.where(converged, jnp.clip(0.9 * err**-0.2, 0.2, 5.0), 0.25)
        moving = active(state)
        take = moving & accept
        y = jnp.where(take, jnp.where(last, y_end, y + h), y)
        T = jnp.where(take, T_new, T)
        z = jnp.where(take, Z, z)  # stiffly accurate: the last stage is the solution
        f1 = jnp.where(take, fs[-1], f1)
        g1 = jnp.where(take, gs[-1], g1)
        h = jnp.where(moving, h * factor, h)
        steps = steps + moving
        done = done | (take & last)
        failed = failed | (moving & ~done & (steps >= MAX_STEPS_EMA))
        return y, T, z, f1, g1, h, steps, done, failed

    out = jax.lax.while_loop(lambda s: jnp.any(active(s)), body, init)
    T, steps, done, failed = out[1], out[6], out[7], out[8]
    ok = done & ~failed & jnp.isfinite(T)
    return T, ok, steps
