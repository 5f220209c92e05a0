"""Exact times of the balanced per-feature flow (docs/theory.md §4).

``time_to_level(objective, lam, var, depth, log_u0, log_u)`` is the time the
flow takes to carry the per-layer weight from ``u0`` to ``u`` (``u0 < u < u*``),
computed without an ODE solver:

JEPA, by partial fractions of ``1 / (u^(2L) (lam - var u))``, written with
``m = 2L - 1`` and every term positive (no cancellation)::

    t(u) = rho^-m / lam [ sum_{n=1}^{m} ((rho/u0)^n - (rho/u)^n) / n
                          + log(u/u0) + log((rho - u0) / (rho - u)) ]

(the docs/theory.md §4.1 form with ``n = 2L - 1 - k``).

MAE, by the hypergeometric antiderivative::

    t(u) = (1/lam) [ I_L(u0, u) + H(u) - H(u0) ]
    I_L  = (u0^(1-L) - u^(1-L)) / (L-1)   (L >= 2),   log(u/u0)   (L = 1)
    H(u) = (u^2 / (2 rho)) 2F1(1, 2/(L+1); 1 + 2/(L+1); u^(L+1)/rho)

Both are pure ``jax.numpy``, broadcast over all arguments (``depth`` included:
the JEPA sum runs to the largest ``2L - 1`` in the batch and masks the rest),
and are accurate to a few ulp in float64. In float32 they agree with float64
to 3.3e-5 (JEPA) and 1.3e-4 (MAE) relative at worst, medians 3e-7 and 1e-7,
over depth 1-8, lam 1e-2..1e2, rho 10^-1.5..10^0.5, eps 1e-6..1e-1 (see
docs/precision.md): the JEPA terms are all positive, and most of the error is
the rounding of the inputs, amplified by the exponents.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.special import digamma

# Terms of the two hypergeometric series: each converges at least like 2^-n.
_HYP_TERMS = 60


def _log1m_exp(x):
    """``log(1 - exp(x))`` for ``x < 0``, accurate near 0 and for very negative x."""
    return jnp.where(x > -0.6931471805599453, jnp.log(-jnp.expm1(x)), jnp.log1p(-jnp.exp(x)))


def jepa_time(lam, var, depth, log_u0, log_u):
    """Exact JEPA time from ``u0`` to ``u`` (``0 < u0 <= u < rho``), theory §4."""
    lam, var, depth, log_u0, log_u = jnp.broadcast_arrays(lam, var, depth, log_u0, log_u)
    log_rho = jnp.log(lam) - jnp.log(var)  # no overflow of lam / var
    m = 2.0 * depth - 1.0
    d = log_u - log_u0  # >= 0

    def body(n, acc):
        n = n.astype(acc.dtype)
        # rho^(n - m) u0^-n (1 - (u0/u)^n) / n, evaluated in log space
        term = jnp.exp((n - m) * log_rho - n * log_u0) * (-jnp.expm1(-n * d)) / n
        return acc + jnp.where(n <= m, term, 0.0)

    n_max = jnp.max(m).astype(jnp.int32) if m.size else jnp.int32(0)
    series = jax.lax.fori_loop(1, n_max + 1, body, jnp.zeros_like(lam))
    logs = d + _log1m_exp(log_u0 - log_rho) - _log1m_exp(log_u - log_rho)
    return (series + jnp.exp(-m * log_rho) * logs) / lam


def hyp2f1_1b(b, z):
    """``2F1(1, b; 1 + b; z)`` for ``0 <= z < 1`` and ``b > 0``.

    Below ``z = 1/2`` the defining series ``sum_j b z^j / (b + j)``; above it
    the logarithmic ``1 - z`` expansion (Abramowitz & Stegun 15.3.10 with
    ``a = 1``, ``c = a + b``)::

        b sum_n (b)_n / n! [psi(n + 1) - psi(b + n) - log(1 - z)] (1 - z)^n

    Both converge at least like ``2^-n``; 60 terms reach float64 rounding.
    """
    b, z = jnp.broadcast_arrays(b, z)
    low = z <= 0.5
    z_lo = jnp.where(low, z, 0.0)
    w = jnp.where(low, 0.5, 1.0 - z)  # 1 - z in (0, 1/2)
    log_w = jnp.log(w)

    def body(n, carry):
        s_lo, z_pow, s_hi, coef, psi_n1, psi_bn, w_pow = carry
        nf = jnp.asarray(n, dtype=z.dtype)
        s_lo = s_lo + b * z_pow / (b + nf)
        s_hi = s_hi + coef * (psi_n1 - psi_bn - log_w) * w_pow
        # advance every recursion to n + 1
        z_pow = z_pow * z_lo
        coef = coef * (b + nf) / (nf + 1.0)
        psi_n1 = psi_n1 + 1.0 / (nf + 1.0)
        psi_bn = psi_bn + 1.0 / (b + nf)
        w_pow = w_pow * w
        return s_lo, z_pow, s_hi, coef, psi_n1, psi_bn, w_pow

    one = jnp.ones_like(z)
    init = (0.0 * z, one, 0.0 * z, one, digamma(one), digamma(b), one)

    def both_series():
        s_lo, _, s_hi, *_ = jax.lax.fori_loop(0, _HYP_TERMS, body, init, unroll=True)
        return s_lo, s_hi

    def low_series_only():  # every z <= 1/2 (always so at fraction <= 1/2)
        def body_lo(n, carry):
            s_lo, z_pow = carry
            return s_lo + b * z_pow / (b + n), z_pow * z_lo

        s_lo, _ = jax.lax.fori_loop(0, _HYP_TERMS, body_lo, (0.0 * z, one), unroll=True)
        return s_lo, s_lo

    s_lo, s_hi = jax.lax.cond(jnp.any(~low), both_series, low_series_only)
    return jnp.where(low, s_lo, b * s_hi)


def mae_time(lam, var, depth, log_u0, log_u):
    """Exact MAE time from ``u0`` to ``u`` (``0 < u0 <= u < rho^(1/(L+1))``), theory §4."""
    lam, var, depth, log_u0, log_u = jnp.broadcast_arrays(lam, var, depth, log_u0, log_u)
    log_rho = jnp.log(lam) - jnp.log(var)  # no overflow of lam / var
    d = log_u - log_u0
    is_one = depth == 1.0
    lm1 = jnp.where(is_one, 1.0, depth - 1.0)
    i_l = jnp.where(is_one, d, jnp.exp(-lm1 * log_u0) * (-jnp.expm1(-lm1 * d)) / lm1)
    b = 2.0 / (depth + 1.0)

    def h(log_x):
        z = jnp.exp((depth + 1.0) * log_x - log_rho)
        return 0.5 * jnp.exp(2.0 * log_x - log_rho) * hyp2f1_1b(b, z)

    return (i_l + h(log_u) - h(log_u0)) / lam


def time_to_level(objective: str, lam, var, depth, log_u0, log_u):
    """Exact time from ``u0`` to ``u`` for either objective (see module docstring)."""
    if objective == "jepa":
        return jepa_time(lam, var, depth, log_u0, log_u)
    return mae_time(lam, var, depth, log_u0, log_u)
