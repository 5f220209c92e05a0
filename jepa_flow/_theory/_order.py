"""Learning order, flip depth and relative error (docs/theory.md §10).

Plain numpy on finished critical times: every experiment, plot, comparison
and CLI table that orders features or compares two times uses these, so an
order or an error means the same thing everywhere.

- The *learning order* sorts features by critical time, earliest first,
  ties in feature order; never-learned features (``t* = inf``) and failed
  ones (NaN) come last.
- The *flip depth* is the first depth whose learning order differs from the
  first depth's.
- The *relative error* of ``a`` against a reference ``b`` is
  ``|a - b| / |b|``, 0 where both are the same infinity, inf where exactly
  one is infinite.
"""

from __future__ import annotations

import numpy as np


def learning_order(t_star) -> np.ndarray:
    """Feature indices sorted by critical time along the last axis (docs/theory.md §10).

    Args:
        t_star: critical times ``[..., F]``; ``inf`` (never learned) and NaN
            (failed) sort last, in feature order.

    Returns:
        Integer indices ``[..., F]``, earliest first.

    Examples:
        >>> import numpy as np
        >>> learning_order(np.array([3.0, np.inf, 1.0, 2.0])).tolist()
        [2, 3, 0, 1]
    """
    t = np.asarray(t_star, float)
    return np.argsort(np.where(np.isnan(t), np.inf, t), axis=-1, kind="stable")


def learned_first(t_star) -> np.ndarray:
    """Index of the first-learned feature along the last axis (-1 where none is learned).

    Examples:
        >>> learned_first([[5.0, 4.0], [np.inf, np.inf]]).tolist()
        [1, -1]
    """
    t = np.asarray(t_star, float)
    first = learning_order(t)[..., 0]
    none = ~np.isfinite(np.take_along_axis(t, first[..., None], axis=-1)[..., 0])
    return np.where(none, -1, first)


def flip_depth(depth, t_star):
    """First depth whose learning order differs from the first depth's (docs/theory.md §10).

    Args:
        depth: depths ``[D]``, increasing.
        t_star: critical times ``[D, F]`` (row ``i`` at ``depth[i]``).

    Returns:
        That depth as an int, or None if the order never changes.

    Examples:
        The canonical pair of docs/theory.md §4, JEPA at eps = 1e-3:

        >>> import jepa_flow as jf
        >>> t = jf.critical_time("jepa", [1.0, 0.8], [2.0, 1.0], [[1], [2], [3], [4]], 1e-3)
        >>> flip_depth([1, 2, 3, 4], t)
        4
    """
    depth = np.asarray(depth)
    order = learning_order(t_star)
    differs = np.any(order != order[0], axis=-1)
    return int(depth[np.argmax(differs)]) if differs.any() else None


def rel_error(a, b) -> np.ndarray:
    """``|a - b| / |b|`` elementwise (docs/theory.md §10).

    0 where ``a == b`` (the same infinity included), inf where exactly one is
    infinite, NaN where either is NaN.

    Examples:
        >>> rel_error([1.01, np.inf, np.inf], [1.0, np.inf, 2.0]).round(6).tolist()
        [0.01, 0.0, inf]
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.abs(a - b) / np.abs(b)
    both_finite = np.isfinite(a) & np.isfinite(b)
    either_nan = np.isnan(a) | np.isnan(b)
    return np.where(both_finite, r, np.where(either_nan, np.nan, np.where(a == b, 0.0, np.inf)))


def _ranks(v) -> np.ndarray:
    """Ranks 0 .. n-1, ties sharing their mean rank."""
    order = np.argsort(v, kind="stable")
    r = np.empty(v.size)
    r[order] = np.arange(v.size)
    _, inv = np.unique(v, return_inverse=True)
    return np.bincount(inv, r)[inv] / np.bincount(inv)[inv]


def rank_correlation(a, b) -> float:
    """Spearman's rank correlation of two samples (docs/theory.md §10).

    Over the entries finite in both (never-learned features drop out); ties
    share their mean rank. NaN when fewer than 3 entries remain or one side
    is constant.

    Examples:
        >>> round(rank_correlation([1, 2, 3, 4], [10, 20, 40, 30]), 6)
        0.8
        >>> round(rank_correlation([1, 2, 2, 4, np.inf], [1, 3, 2, 4, 5]), 6)
        0.948683
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3:
        return float("nan")
    ra, rb = _ranks(a[ok]), _ranks(b[ok])
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def top_k_overlap(order_a, order_b, k: int) -> float:
    """Fraction of ``order_a``'s first ``k`` features among ``order_b``'s first ``k`` (§10).

    Examples:
        >>> top_k_overlap([0, 1, 2, 3], [1, 3, 0, 2], 2)
        0.5
    """
    return len(set(np.asarray(order_a)[:k].tolist()) & set(np.asarray(order_b)[:k].tolist())) / k
