"""Small-initialization asymptotics of the critical time (docs/theory.md §4).

For ``eps -> 0``::

    JEPA:  t* ~ (1/lam) sum_{n=1}^{2L-1} eps^(-n/L) / (n rho^(2L-1-n))
    MAE:   t* ~ eps^(-(L-1)/L) / ((L-1) lam)        (L >= 2)
           t* ~ log(1/eps) / lam                    (L = 1)

The leading orders do not depend on the level ``fraction``. They explain the
learning order (rho enters JEPA only through ``rho / eps^(1/L)``) but are rough
at moderate ``eps``: never use them to decide an order.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def jepa_series(lam, var, depth, eps):
    lam, var, depth, eps = jnp.broadcast_arrays(lam, var, depth, eps)
    log_rho = jnp.log(lam / var)
    log_eps = jnp.log(eps)
    m = 2.0 * depth - 1.0

    def body(n, acc):
        n = n.astype(acc.dtype)
        term = jnp.exp(-n / depth * log_eps - (m - n) * log_rho) / n
        return acc + jnp.where(n <= m, term, 0.0)

    n_max = jnp.max(m).astype(jnp.int32) if m.size else jnp.int32(0)
    return jax.lax.fori_loop(1, n_max + 1, body, jnp.zeros_like(lam)) / lam


def mae_series(lam, var, depth, eps):
    lam, var, depth, eps = jnp.broadcast_arrays(lam, var, depth, eps)
    is_one = depth == 1.0
    lm1 = jnp.where(is_one, 1.0, depth - 1.0)
    deep = jnp.exp(-lm1 / depth * jnp.log(eps)) / lm1
    return jnp.where(is_one, -jnp.log(eps), deep) / lam


def series_time(objective: str, lam, var, depth, eps):
    """Leading small-eps critical time for either objective."""
    if objective == "jepa":
        return jepa_series(lam, var, depth, eps)
    return mae_series(lam, var, depth, eps)
