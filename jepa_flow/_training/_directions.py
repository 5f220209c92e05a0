"""When is a feature learned, without assuming the diagonal (theory §9).

``learned_directions`` finds the input directions a run has learned (the right
singular vectors of its end state) and when each reached a level of its end
value; ``alignment`` compares them with the theory's features;
``mae_end_directions`` is MAE's end state for any covariances.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from jaxtyping import ArrayLike, Float

from .._core import _validate
from .._core._results import register_result
from ._data import Data

__all__ = [
    "LearnedDirections",
    "alignment",
    "learned_directions",
    "mae_end_directions",
    "matched_times",
]


@register_result
@dataclasses.dataclass(frozen=True)
class LearnedDirections:
    """When each direction of a run's end state is learned (theory §9).

    The end state's encoder ``Wbar_end = A diag(s) B^T`` defines the learned
    directions: the right singular vectors ``b_k`` (input space, descending
    ``s_k``) with their representation directions ``a_k``. The progress of
    direction ``k`` at time ``t`` is the projection of ``Wbar(t)`` onto the end
    state's singular pair, ``m_k(t) = a_k^T Wbar(t) b_k / s_k``. It depends only
    on the end state, not on a chosen basis (a fixed orthogonal change of the
    input coordinates or of the representation leaves it unchanged), and in
    the theory's diagonal case it is the per-feature ``wbar_j(t) / wbar*_j``.
    (The encoded norm ``|Wbar(t) b_k| / s_k`` is not used: where end singular
    values are close, ``b_k`` mixes features, and its norm rises with the
    earliest of them; the projection weighs the mixing twice, on both sides.)

    Attributes:
        s: ``[d]`` end singular values.  directions: ``[d, d]`` columns ``b_k``.
        progress: ``[T, d]`` ``m_k(t)``.
        time: ``[d]`` first time ``m_k`` reaches ``level`` (linear interpolation
            between samples; the first time if it starts there; inf if never,
            or if the direction did not grow: ``s_k <= 2 |Wbar(0) b_k|``).
        level: the level, in (0, 1).

    Examples:
        ``Wbar(t) = t diag(2, 1)`` on ``t`` in [0, 4]: each direction's progress
        is ``t / 4``, so both reach half at ``t = 2``:

        >>> import numpy as np, jepa_flow as jf
        >>> t = np.linspace(0.0, 4.0, 5)
        >>> ld = jf.learned_directions(t, t[:, None, None] * np.diag([2.0, 1.0]))
        >>> ld.s.tolist(), ld.progress[:, 0].tolist(), ld.time.tolist(), ld.learned.tolist()
        ([8.0, 4.0], [0.0, 0.25, 0.5, 0.75, 1.0], [2.0, 2.0], [True, True])
    """

    s: np.ndarray
    directions: np.ndarray
    progress: np.ndarray
    time: np.ndarray
    level: float

    @property
    def learned(self) -> np.ndarray:
        return np.isfinite(self.time)


def learned_directions(
    t: Float[ArrayLike, " T"],
    wbar: Float[ArrayLike, "T d d"],
    *,
    wbar_end: Float[ArrayLike, "d d"] | None = None,
    level: float = 0.5,
) -> LearnedDirections:
    """``LearnedDirections`` of one run: ``t`` ``[T]`` increasing, ``wbar`` ``[T, d, d]``.

    ``wbar_end`` is the end state (default ``wbar[-1]``); the measure is
    meaningful when the run has converged on the directions it reports.

    Examples:
        ``Wbar(t) = R diag(f_1, f_2, f_3) R^T`` with logistic ``f_1``, ``f_2``
        reaching half of their end values 3 and 1 at ``t = 6`` and ``t = 2``,
        and a constant ``f_3`` (it does not grow: never learned):

        >>> import numpy as np, jepa_flow as jf
        >>> t = np.linspace(0.0, 10.0, 101)
        >>> def grow(s, t_half):
        ...     return s / (1 + np.exp(-5 * (t - t_half)))
        >>> f = np.stack([grow(3.0, 6.0), grow(1.0, 2.0), np.full_like(t, 0.5)], axis=1)
        >>> R = jf.random_rotation(3, seed=0)
        >>> ld = jf.learned_directions(t, np.einsum("ij,tj,kj->tik", R, f, R))
        >>> ld.s.round(6).tolist(), ld.time.round(6).tolist()
        ([3.0, 1.0, 0.5], [6.0, 2.0, inf])
        >>> bool(np.allclose(jf.alignment(R, ld.directions), np.eye(3)))  # R's columns
        True
    """
    t = _validate.as_real("t", t)
    wbar = _validate.as_real("wbar", wbar)
    if wbar.ndim != 3 or wbar.shape[1] != wbar.shape[2] or wbar.shape[0] != t.size:
        raise ValueError(f"wbar must have shape [T={t.size}, d, d]; got {wbar.shape}")
    level = float(_validate.as_real("level", level))
    if not 0 < level < 1:
        raise ValueError(f"level must lie in the open interval (0, 1); got {level}")
    end = wbar[-1] if wbar_end is None else _validate.as_real("wbar_end", wbar_end)
    A, s, Bt = np.linalg.svd(end)
    B = Bt.T
    proj = np.einsum("ik,tij,jk->tk", A, wbar, B)  # [T, d]: a_k^T Wbar(t) b_k
    m = proj / np.where(s > 0, s, 1.0)
    grew = s > 2 * np.linalg.norm(wbar[0] @ B, axis=0)  # the direction grew at all
    above = m >= level
    first = np.argmax(above, axis=0)
    found = above.any(axis=0) & grew
    i0 = np.maximum(first - 1, 0)
    cols = np.arange(s.size)
    m0, m1 = m[i0, cols], m[first, cols]
    frac = np.clip((level - m0) / np.where(m1 > m0, m1 - m0, 1.0), 0.0, 1.0)
    tc = np.where(first == 0, t[0], t[i0] + frac * (t[first] - t[i0]))
    return LearnedDirections(
        s=s, directions=B, progress=m, time=np.where(found, tc, np.inf), level=level
    )


def alignment(
    basis: Float[ArrayLike, "d k"], directions: Float[ArrayLike, "d m"]
) -> Float[np.ndarray, "k m"]:
    """``|u_i^T b_k|`` ``[d, d]``: cosines between theory features (columns of ``basis``)
    and learned directions (columns of ``directions``); a permutation matrix up to
    signs exactly when the two bases agree.

    Examples:
        >>> import numpy as np, jepa_flow as jf
        >>> c, s = np.cos(np.pi / 6), np.sin(np.pi / 6)  # a 30-degree rotation
        >>> jf.alignment(np.eye(2), [[c, -s], [s, c]]).round(4).tolist()
        [[0.866, 0.5], [0.5, 0.866]]
        >>> jf.alignment(np.eye(2), [[0.0, 1.0], [-1.0, 0.0]]).tolist()  # swapped, one sign
        [[0.0, 1.0], [1.0, 0.0]]
    """
    return np.abs(np.asarray(basis).T @ np.asarray(directions))


def matched_times(analysis_times, align, learned_times):
    """Pair each learned direction ``k`` with its best-aligned theory feature ``i(k)``.

    Returns ``(feature [d], cosine [d], predicted [d], observed [d])`` with
    ``predicted[k] = analysis_times[i(k)]`` and ``observed = learned_times``.
    """
    feature = np.argmax(align, axis=0)
    cosine = align[feature, np.arange(align.shape[1])]
    return feature, cosine, np.asarray(analysis_times)[feature], np.asarray(learned_times)


def mae_end_directions(data: Data) -> tuple[Float[np.ndarray, " d"], Float[np.ndarray, "d d"]]:
    """MAE's end state without the diagonal assumption (theory §9): ``(s, B)``.

    MAE's population loss is minimized by the prediction map
    ``P = V Wbar = Syx Sxx^-1``; from a balanced start the layers stay balanced,
    so at the minimum ``Wbar = R diag(s)^(L/(L+1)) B^T`` with ``P = A diag(s) B^T``
    its SVD: the learned input directions are the right singular vectors ``B``
    of ``Syx Sxx^-1`` (columns, descending ``s``), whatever the basis of ``Sxx``.
    They are the theory's ``u_i`` when ``Sxx`` and ``Syx`` commute.

    Examples:
        Targets ``y = P x`` exactly, with ``P = R diag(0.8, 0.5) R^T`` and inputs
        whose covariance has another basis (``symmetric=False`` keeps the map):
        MAE's directions are ``R``'s columns with ``s = (0.8, 0.5)``, not the
        eigenvectors of ``Sxx``:

        >>> import numpy as np, jepa_flow as jf
        >>> R = jf.random_rotation(2, seed=1)
        >>> P = R @ np.diag([0.8, 0.5]) @ R.T
        >>> x = np.random.default_rng(0).standard_normal((50, 2)) * [3.0, 1.0]
        >>> data = jf.from_samples(x, x @ P.T, symmetric=False)
        >>> s, B = jf.mae_end_directions(data)
        >>> s.round(6).tolist(), bool(np.allclose(jf.alignment(R, B), np.eye(2)))
        ([0.8, 0.5], True)
        >>> jf.alignment(jf.analyze(data).basis, B).round(2).tolist()  # Sxx's eigenvectors
        [[0.77, 0.64], [0.64, 0.77]]
    """
    if not isinstance(data, Data):
        raise ValueError(f"data must be a jepa_flow Data source; got {type(data).__name__}")
    Sxx, Syx = np.asarray(data.Sxx, float), np.asarray(data.Syx, float)
    P = np.linalg.solve(Sxx.T, Syx.T).T  # Syx Sxx^-1
    _, s, Bt = np.linalg.svd(P)
    return s, Bt.T
