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
import numpy as np
from jaxtyping import ArrayLike, Float, Int

from .._core import _validate


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


def cited_critical_time(
    lam: Float[ArrayLike, "..."],
    var: Float[ArrayLike, "..."],
    depth: Int[ArrayLike, "..."],
    eps: Float[ArrayLike, "..."],
) -> Float[np.ndarray, "..."]:
    """The critical time a 2026 note claims in the generalized basis (theory §11).

    ``t ~ 1 / (lam rho^(2L-2) eps^(1/L))`` in this library's time (the note's
    ``L / (lam rho^(2L-2) eps^(1/L))`` in the paper's time ``tau = L t``,
    theory §4): the ``n = 1`` term of the JEPA series of theory §4.3, its
    smallest term at small ``eps``, not its leading one. A conjecture to test,
    not a result of this library; ``inf`` where ``lam <= 0``.

    Examples:
        >>> import jepa_flow as jf
        >>> jf.cited_critical_time([0.8, -1.0], 1.0, 2, 1e-4).round(6).tolist()  # 1/(0.8^3 0.01)
        [195.3125, inf]
    """
    shape, p = _validate.feature_params(lam, var, depth, eps)
    lam, var, depth, eps = p["lam"], p["var"], p["depth"], p["eps"]
    learned = lam > 0
    lam_ = np.where(learned, lam, 1.0)
    log_t = -np.log(lam_) - (2 * depth - 2) * np.log(lam_ / var) - np.log(eps) / depth
    with np.errstate(over="ignore"):
        return np.where(learned, np.exp(log_t), np.inf).reshape(shape)
