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


def rank_correlation(x, y) -> float:
    """Spearman's rank correlation of two 1-D samples (ties broken by position).

    Examples:
        >>> round(rank_correlation([1, 2, 3, 4], [10, 20, 40, 30]), 6)
        0.8
    """
    rx = np.argsort(np.argsort(np.asarray(x, float), kind="stable"), kind="stable")
    ry = np.argsort(np.argsort(np.asarray(y, float), kind="stable"), kind="stable")
    return float(np.corrcoef(rx, ry)[0, 1])
