"""Fixed points of the balanced per-feature flow (docs/theory.md §3).

All functions here are pure ``jax.numpy`` on arrays that broadcast together and
work in log space, so that ``rho ** depth`` neither overflows nor underflows
for deep networks:

    JEPA:  u* = rho,               wbar* = rho^L
    MAE:   u* = rho^(1/(L+1)),     wbar* = rho^(L/(L+1))

``u`` is the common diagonal entry of every encoder layer and of the
predictor/decoder, ``wbar = u^L`` the end-to-end encoder along the feature.
A feature with ``lam <= 0`` is never learned: ``u`` decays to 0.
"""

from __future__ import annotations

import jax.numpy as jnp


def log_u_star(objective: str, log_rho, depth):
    """``log u*``: the per-layer fixed point in log space (needs ``rho > 0``)."""
    if objective == "jepa":
        return log_rho
    return log_rho / (depth + 1.0)


def log_u_level(objective: str, log_rho, depth, fraction):
    """``log u_p`` where ``wbar = fraction * wbar*``, i.e. ``u_p = fraction^(1/L) u*``."""
    return jnp.log(fraction) / depth + log_u_star(objective, log_rho, depth)


def wbar_star(objective: str, lam, var, depth):
    """The learned end-to-end encoder ``wbar*`` (0 where ``lam <= 0``)."""
    learned = lam > 0
    log_rho = jnp.log(jnp.where(learned, lam, 1.0)) - jnp.log(var)
    return jnp.where(learned, jnp.exp(depth * log_u_star(objective, log_rho, depth)), 0.0)


def clock_exponents(objective: str, depth):
    """Exponents ``(q, r)`` of the flow written in the clock ``s`` (see ``_ode``).

    With ``y = log u`` and ``ds = var u^r' dt`` the balanced flow becomes
    ``dy/ds = rho - exp(q y)`` and ``dt/ds = exp(-r y) / var``:

        JEPA:  q = 1,      r = 2L - 1
        MAE:   q = L + 1,  r = L - 1
    """
    if objective == "jepa":
        return jnp.ones_like(depth), 2.0 * depth - 1.0
    return depth + 1.0, depth - 1.0
