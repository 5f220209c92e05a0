"""Per-feature theories in a chosen basis, and how well one predicts an observed order (§11).

A *theory* (docs/preregistration/exp10.md) is a feature basis of the
covariances (``feature_basis``, theory §11) with its per-feature ``lam_i``,
``var_i``, and the critical times of theory §4 computed from them:

========== ======================================================================
``pca``     eigenvectors of ``Sxx`` (the analysis of theory §9)
``gen-dual`` generalized eigenvectors, dual vectors of unit norm (theory §11.3)
``gen-unit`` the same directions, unit Euclidean norm
``gen-sxx``  the same directions, ``v^T Sxx v = 1`` (``var = 1``, ``lam = rho``)
``lam``     eigenvectors of ``S``
``mae``     right singular vectors of ``Syx Sxx^-1`` (MAE's end directions)
``cited``   ``gen-unit``'s ``lam``, ``rho`` in the cited note's time (theory §11.5);
            JEPA only (NaN for MAE)
========== ======================================================================

Critical times at level ``fraction`` from the exact method (JEPA stop-gradient
and MAE) or the general per-feature flow (JEPA with an EMA target, theory §6.2).

Scores of a predicted time per direction against an observed one
(``order_scores``) are computed over the directions *learned in both*
(``0 < t < inf`` on both sides, ``learned_mask``, theory §10): Spearman's rank
correlation and the first-``k`` overlap of the two orders (``order_agreement``:
NaN below 3 directions, and unless more than ``k`` are compared) and the
relative errors ``|t_pred - t_obs| / t_obs`` (their median and maximum; NaN
when no direction is left).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .._core._results import register_result
from ._basis import FeatureBasis, feature_basis
from ._critical_time import critical_time
from ._general import general_critical_time
from ._order import learned_mask, order_agreement, rel_error
from ._series import cited_critical_time

# theory name -> (basis, normalization of the generalized basis)
THEORY_BASIS = {
    "pca": ("pca", None),
    "gen-dual": ("generalized", "dual"),
    "gen-unit": ("generalized", "unit"),
    "gen-sxx": ("generalized", "sxx"),
    "lam": ("lam", None),
    "mae": ("mae", None),
    "cited": ("generalized", "unit"),
}
THEORIES = tuple(THEORY_BASIS)
# found after experiment 10's results were seen (not preregistered; reported apart)
EXPLORATORY = ("rho-order",)

__all__ = [
    "EXPLORATORY",
    "THEORIES",
    "OrderScores",
    "order_scores",
    "rho_order_times",
    "theory_basis",
    "theory_times",
]


def rho_order_times(t_star) -> np.ndarray:
    """Exploratory (after experiment 10's results): learned in decreasing ``rho``.

    ``t_star`` ``[..., d]``: the ``gen-dual`` critical times, whose features are
    in decreasing generalized ``rho``. Its learned times (``0 < t* < inf``),
    sorted, are handed out in that order: the feature of largest ``rho`` gets
    the earliest, and so on; the others keep theirs. This is what JEPA's
    full-matrix flow does as soon as the covariances do not commute (capture,
    theory §7.1, §11.7): the order of ``rho``, on the time scale of the
    per-feature theory.

    Examples:
        >>> rho_order_times([5.0, 3.0, 0.0, 1.0, np.inf]).tolist()
        [1.0, 3.0, 0.0, 5.0, inf]
    """
    t = np.array(t_star, float)
    flat = t.reshape(-1, t.shape[-1])
    for row in flat:
        ok = learned_mask(row)
        row[ok] = np.sort(row[ok])
    return flat.reshape(t.shape)


def _check_theory(theory):
    if theory not in THEORY_BASIS:
        raise ValueError(f"theory must be one of {THEORIES}; got {theory!r}")


def theory_basis(theory, Sxx, Syx) -> FeatureBasis:
    """The ``FeatureBasis`` a theory uses (module table).

    Examples:
        >>> import numpy as np
        >>> b = theory_basis("gen-sxx", np.diag([4.0, 1.0]), [[2.0, 0.5], [0.5, 0.8]])
        >>> b.kind, b.normalize, b.var.round(12).tolist()
        ('generalized', 'sxx', [1.0, 1.0])
    """
    _check_theory(theory)
    basis, normalize = THEORY_BASIS[theory]
    return feature_basis(Sxx, Syx, basis=basis, normalize=normalize)


def theory_times(
    theory, basis: FeatureBasis, objective, depth, eps, *, target="stopgrad", tau=0.0, fraction=0.5
) -> np.ndarray:
    """Critical times ``[..., d]`` of a theory's features (module docstring).

    ``depth`` and ``eps`` broadcast against a trailing feature axis (pass
    ``depth[:, None]`` for a column of depths). ``inf`` for a feature never
    learned (``lam <= 0``), 0 for one that starts at its level.

    Examples:
        The diagonal case: every theory but ``cited`` gives the critical
        times of theory §4 (the canonical pair, JEPA, depth 1, eps 1e-3):

        >>> import numpy as np
        >>> Sxx, Syx = np.diag([2.0, 1.0]), np.diag([1.0, 0.8])
        >>> b = theory_basis("gen-dual", Sxx, Syx)  # descending rho: B first
        >>> theory_times("gen-dual", b, "jepa", 1, 1e-3).round(2).tolist()
        [1257.32, 1008.43]
        >>> float(theory_times("cited", theory_basis("cited", Sxx, Syx), "mae", 1, 1e-3)[0])
        nan
    """
    _check_theory(theory)
    lam, var = basis.lam, basis.var
    if theory == "cited":
        if objective != "jepa":
            return np.full(np.broadcast_shapes(np.shape(depth), np.shape(eps), lam.shape), np.nan)
        return np.asarray(cited_critical_time(lam, var, depth, eps))
    if objective == "jepa" and target == "ema":
        res = general_critical_time(
            "jepa", lam, var, depth, eps, target="ema", tau=tau, fraction=fraction
        )
        return np.asarray(res.t_star)
    return np.asarray(critical_time(objective, lam, var, depth, eps, fraction=fraction))


@register_result
@dataclasses.dataclass(frozen=True)
class OrderScores:
    """A predicted learning order and its times against an observed one (module docstring).

    Attributes:
        spearman: rank correlation over the directions learned in both.
        overlap: fraction of the ``k`` earliest observed among the ``k`` earliest predicted.
        median_error, max_error: of ``|t_pred - t_obs| / t_obs`` over the same directions.
        n: how many directions were compared.  k: the overlap's ``k``.

    Examples:
        >>> s = order_scores([1.0, 2.0, 3.0, 0.0], [1.25, 2.5, 3.75, 5.0], k=2)
        >>> round(s.spearman, 6), s.overlap, round(s.median_error, 6), s.n
        (1.0, 1.0, 0.2, 3)
    """

    spearman: float
    overlap: float
    median_error: float
    max_error: float
    n: int
    k: int

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def order_scores(predicted, observed, k: int) -> OrderScores:
    """Score predicted times ``[n]`` against observed ones ``[n]`` (same directions).

    Only the directions with ``0 < t < inf`` in both count; see ``OrderScores``.

    Examples:
        Four directions, the third never learned in the observation; the
        predicted order swaps the first two of the remaining three:

        >>> s = order_scores([2.0, 1.0, 5.0, 3.0], [1.0, 2.0, np.inf, 3.0], k=2)
        >>> round(s.spearman, 6), s.overlap, round(s.median_error, 6), round(s.max_error, 6)
        (0.5, 1.0, 0.5, 1.0)
        >>> order_scores([1.0, 2.0], [1.0, np.inf], k=2).n
        1
    """
    predicted = np.asarray(predicted, float)
    observed = np.asarray(observed, float)
    if predicted.shape != observed.shape or predicted.ndim != 1:
        raise ValueError(
            f"predicted and observed must be 1-D of one length; got {predicted.shape}, "
            f"{observed.shape}"
        )
    both = learned_mask(predicted) & learned_mask(observed)
    agree = order_agreement(predicted, observed, k=k)
    err = rel_error(predicted[both], observed[both])
    n = int(both.sum())
    med, worst = (float(np.median(err)), float(err.max())) if n else (np.nan, np.nan)
    return OrderScores(float(agree.spearman), float(agree.overlap), med, worst, n, int(k))
