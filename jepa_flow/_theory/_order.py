"""Learning order, flip depth and relative error (docs/theory.md §10).

Plain numpy on finished critical times: every experiment, plot, comparison
and CLI table that orders features or compares two times uses these, so an
order or an error means the same thing everywhere.

- A feature is *learned* when its critical time is positive and finite
  (``learned_mask``). ``t* = 0`` means it starts at or above its level (no
  learning to order), ``t* = inf`` that it is never learned, NaN that the
  solve failed: none of these is ranked among the learned features.
- The *learning order* puts the learned features first, earliest first (ties
  in feature order), then the ``t* = 0`` ones, then ``inf``, then NaN (each
  group in feature order).
- The *flip depth* is the first depth at which two features learned at both
  that depth and the first one are learned in the other order.
- ``order_agreement`` compares two sets of critical times over the features
  learned in both: Spearman's correlation and the top-``k`` overlap.
- The *relative error* of ``a`` against a reference ``b`` is
  ``|a - b| / |b|``, 0 where both are the same infinity, inf where exactly
  one is infinite.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from jaxtyping import ArrayLike, Bool, Float, Int


def learned_mask(t_star: Float[ArrayLike, "*batch d"]) -> Bool[np.ndarray, "*batch d"]:
    """True where a feature is learned: ``0 < t* < inf`` (docs/theory.md §10).

    Examples:
        >>> learned_mask([2.0, 0.0, np.inf, np.nan]).tolist()
        [True, False, False, False]
    """
    t = np.asarray(t_star, float)
    with np.errstate(invalid="ignore"):
        return (t > 0) & (t < np.inf)


def _group(t) -> np.ndarray:
    """0: learned, 1: ``t* = 0``, 2: ``t* = inf``, 3: NaN or any other invalid value."""
    with np.errstate(invalid="ignore"):
        return np.where(learned_mask(t), 0, np.where(t == 0, 1, np.where(t == np.inf, 2, 3)))


def learning_order(t_star: Float[ArrayLike, "*batch d"]) -> Int[np.ndarray, "*batch d"]:
    """Feature indices in learning order along the last axis (docs/theory.md §10).

    Args:
        t_star: critical times ``[..., F]``.

    Returns:
        Integer indices ``[..., F]``: the learned features (``0 < t* < inf``)
        first, earliest first; then those with ``t* = 0`` (learned at the
        start), then ``inf`` (never learned), then NaN (failed); ties and each
        trailing group in feature order.

    Examples:
        >>> import numpy as np
        >>> learning_order(np.array([3.0, np.inf, 1.0, 2.0])).tolist()
        [2, 3, 0, 1]
        >>> learning_order(np.array([np.nan, 0.0, 5.0, np.inf, 0.5, 0.0])).tolist()
        [4, 2, 1, 5, 3, 0]
    """
    t = np.asarray(t_star, float)
    group = _group(t)
    key = np.where(group == 0, t, 0.0)
    return np.lexsort((key, group), axis=-1)


def learned_order(t_star: Float[ArrayLike, " d"]) -> Int[np.ndarray, " k"]:
    """Indices of the learned features (``0 < t* < inf``) only, in learning order (§10).

    Examples:
        >>> learned_order([0.0, 3.0, np.inf, 1.0]).tolist()
        [3, 1]
    """
    t = np.asarray(t_star, float)
    if t.ndim != 1:
        raise ValueError(f"t_star must be 1-D (one critical time per feature); got {t.shape}")
    order = learning_order(t)
    return order[learned_mask(t)[order]]


def learned_first(t_star: Float[ArrayLike, "*batch d"]) -> Int[np.ndarray, "*batch"]:
    """Index of the first-learned feature along the last axis (-1 where none is learned).

    A feature with ``t* = 0`` is not learned first: it is not learned at all.

    Examples:
        >>> learned_first([[5.0, 4.0], [np.inf, np.inf], [0.0, 3.0], [0.0, np.inf]]).tolist()
        [1, -1, 1, -1]
    """
    t = np.asarray(t_star, float)
    first = learning_order(t)[..., 0]
    none = ~learned_mask(np.take_along_axis(t, first[..., None], axis=-1)[..., 0])
    return np.where(none, -1, first)


def pair_first(t_a, t_b, xp=np):
    """Which of two features is learned first: 0 (A), 1 (B), 2 (neither, or a tie) (§10).

    Elementwise on ``t_a``, ``t_b`` (numpy, or jax.numpy with ``xp=jnp``
    inside a compiled sweep). A feature counts only where it is learned
    (``0 < t* < inf``): a ``t* = 0`` or never-learned one is never first.

    Examples:
        >>> t_a = np.array([1.0, 2.0, 0.0, 0.0, np.inf, 3.0])
        >>> pair_first(t_a, np.array([2.0, 1.0, 5.0, 0.0, np.inf, 3.0])).tolist()
        [0, 1, 1, 2, 2, 2]
    """
    t_a, t_b = xp.asarray(t_a), xp.asarray(t_b)
    la = (t_a > 0) & (t_a < np.inf)
    lb = (t_b > 0) & (t_b < np.inf)
    a_first = la & (~lb | (t_a < t_b))
    b_first = lb & (~la | (t_b < t_a))
    return xp.where(a_first, 0, xp.where(b_first, 1, 2))


def flip_depth(depth: Int[ArrayLike, " D"], t_star: Float[ArrayLike, "D d"]) -> int | None:
    """First depth whose learning order differs from the first depth's (docs/theory.md §10).

    Only features learned (``0 < t* < inf``) at both depths are compared: a
    feature that starts learned or is never learned at one of them cannot flip.

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
        >>> flip_depth([1, 2], [[0.0, 1.0], [2.0, 1.0]]) is None  # A starts learned at L = 1
        True
    """
    depth = np.asarray(depth)
    t = np.asarray(t_star, float)
    learned = learned_mask(t)
    for i in range(1, t.shape[0]):
        both = learned[0] & learned[i]
        first, here = learning_order(t[0]), learning_order(t[i])
        if not np.array_equal(first[both[first]], here[both[here]]):
            return int(depth[i])
    return None


def rel_error(a: Float[ArrayLike, "..."], b: Float[ArrayLike, "..."]) -> Float[np.ndarray, "..."]:
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


def rank_correlation(a: Float[ArrayLike, " d"], b: Float[ArrayLike, " d"]) -> float:
    """Spearman's rank correlation of two samples (docs/theory.md §10).

    Over the entries finite in both; ties share their mean rank. NaN when
    fewer than 3 entries remain or one side is constant. This is the plain
    statistic for any two quantities; to compare two sets of *critical times*
    use ``order_agreement``, which also leaves out ``t* = 0``.

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


def top_k_overlap(order_a: Int[ArrayLike, " d"], order_b: Int[ArrayLike, " d"], k: int) -> float:
    """Fraction of ``order_a``'s first ``k`` features among ``order_b``'s first ``k`` (§10).

    Plain set overlap of two index lists, whatever they contain; for critical
    times use ``order_agreement`` (features learned in both only).

    Examples:
        >>> top_k_overlap([0, 1, 2, 3], [1, 3, 0, 2], 2)
        0.5
    """
    return len(set(np.asarray(order_a)[:k].tolist()) & set(np.asarray(order_b)[:k].tolist())) / k


class OrderAgreement(NamedTuple):
    """How far two learning orders agree, over the features learned in both (§10).

    Attributes:
        spearman: Spearman's rank correlation of the two sets of times (NaN below 3).
        overlap: top-``k`` overlap of the two orders (NaN without ``k``).
        n_compared: how many features are learned in both.

    Examples:
        >>> spearman, overlap, n = order_agreement([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 4.0, 3.0], k=2)
        >>> round(spearman, 6), overlap, n
        (0.8, 1.0, 4)
    """

    spearman: float
    overlap: float
    n_compared: int


def order_agreement(
    t_a: Float[ArrayLike, " d"], t_b: Float[ArrayLike, " d"], *, k: int | None = None
) -> OrderAgreement:
    """Spearman correlation and top-``k`` overlap of two sets of critical times (§10).

    Only features learned in both (``0 < t* < inf`` in ``t_a`` and in
    ``t_b``, ``learned_mask``) are compared; ``n_compared`` says how many.
    ``spearman`` is ``rank_correlation`` over them (NaN below 3). ``overlap``
    is the fraction of ``t_a``'s first ``k`` of them among ``t_b``'s first
    ``k``; NaN when ``k`` is None or no more than ``k`` features are compared
    (the overlap would be 1 whatever the orders).

    Examples:
        Feature 0 starts learned in ``a`` and feature 4 is never learned in ``b``:
        both drop out, and the three left are ranked alike up to one swap:

        >>> r = order_agreement([0.0, 1.0, 2.0, 3.0, 4.0], [9.0, 1.0, 3.0, 2.0, np.inf], k=1)
        >>> round(r.spearman, 6), r.overlap, r.n_compared
        (0.5, 1.0, 3)
    """
    a, b = np.asarray(t_a, float), np.asarray(t_b, float)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(f"t_a and t_b must be 1-D of the same length; got {a.shape}, {b.shape}")
    both = learned_mask(a) & learned_mask(b)
    if k is not None and (isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1):
        raise ValueError(f"k must be a positive integer or None; got {k!r}")
    n = int(both.sum())
    rho = rank_correlation(a[both], b[both])
    if k is None or n <= k:
        return OrderAgreement(rho, float("nan"), n)
    oa, ob = learning_order(a[both]), learning_order(b[both])
    return OrderAgreement(rho, top_k_overlap(oa, ob, int(k)), n)
