"""Feature bases off the diagonal: which directions the per-feature theory uses (theory §11).

When ``Sxx`` and ``Syx`` do not commute, no orthonormal basis diagonalizes
both, and the per-feature theory (theory §3-§4) needs a choice of feature
directions ``v_i`` with their ``var_i = v_i^T Sxx v_i`` and
``lam_i = v_i^T S v_i`` (``S`` the symmetric part of ``Syx``). Four bases:

- ``"pca"``: the eigenvectors of ``Sxx`` (descending ``var``), orthonormal;
  the analysis of theory §9.
- ``"generalized"``: the generalized eigenvectors ``S v = rho Sxx v``
  (descending ``rho``), which diagonalize both covariances by congruence,
  ``V^T Sxx V = diag(var)``, ``V^T S V = diag(lam)``; not orthogonal. Their
  scale is free; ``normalize`` picks it (``"dual"``: the dual vectors have
  unit norm, the scale for which the diagonal approximation of theory §11
  uses ``var_i`` and ``lam_i`` as they are; ``"unit"``: ``|v_i| = 1``;
  ``"sxx"``: ``v_i^T Sxx v_i = 1``).
- ``"mae"``: the right singular vectors of ``Syx Sxx^-1`` (descending singular
  value), MAE's learned input directions (theory §6.4); orthonormal.
- ``"lam"``: the eigenvectors of ``S`` (descending ``lam``), orthonormal: the
  basis of the leading small-eps terms of both flows.

Plain numpy: a Cholesky factor and one symmetric eigendecomposition, about
as fast as LAPACK's generalized solver (``scripts/bench_analyze.py``).
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np
from jaxtyping import ArrayLike, Float

from .._core import _validate
from .._core._results import register_result

BASES = ("pca", "generalized", "mae", "lam")
NORMALIZATIONS = ("dual", "unit", "sxx")

__all__ = ["BASES", "NORMALIZATIONS", "FeatureBasis", "feature_basis", "generalized_basis"]


@register_result
@dataclasses.dataclass(frozen=True)
class FeatureBasis:
    """Feature directions and their per-feature parameters (theory §11).

    Attributes:
        kind: ``"pca"``, ``"generalized"``, ``"mae"`` or ``"lam"``.
        normalize: the column scale of ``"generalized"`` (``"dual"``, ``"unit"``
            or ``"sxx"``); None for the orthonormal bases.
        vectors: ``[d, d]`` columns ``v_i`` (input coordinates), in the basis's
            order; each column's largest-magnitude entry is positive.
        dual: ``[d, d]`` columns ``a_i`` with ``a_i^T v_j = delta_ij``
            (``dual = vectors^-T``; equal to ``vectors`` for an orthonormal basis).
            A feature's amplitude in the network is ``|Wbar a_i|``.
        rho: ``[d]`` ``lam_i / var_i`` (the generalized eigenvalues for ``"generalized"``).
        lam: ``[d]`` ``v_i^T S v_i``.  var: ``[d]`` ``v_i^T Sxx v_i``.
        nonorthogonality: ``|Vn^T Vn - I|_F / sqrt(d)`` with ``Vn`` the columns
            scaled to unit norm: 0 for an orthonormal basis.
        max_cosine: the largest ``|cos|`` between two columns (0 when ``d = 1``).

    Examples:
        ``Sxx = diag(4, 1)`` and ``Syx = [[2, 0.5], [0.5, 0.8]]`` do not commute;
        the generalized basis diagonalizes both, the principal one only ``Sxx``:

        >>> import numpy as np
        >>> import jepa_flow as jf
        >>> Sxx, Syx = np.diag([4.0, 1.0]), np.array([[2.0, 0.5], [0.5, 0.8]])
        >>> g = jf.feature_basis(Sxx, Syx, basis="generalized")
        >>> g.rho.round(4).tolist(), round(g.nonorthogonality, 4)
        ([0.9415, 0.3585], 0.5409)
        >>> bool(np.allclose(g.vectors.T @ Sxx @ g.vectors, np.diag(g.var)))
        True
        >>> np.linalg.norm(g.dual, axis=0).round(12).tolist()  # "dual": unit dual vectors
        [1.0, 1.0]
        >>> p = jf.feature_basis(Sxx, Syx)  # "pca": Sxx's eigenvectors
        >>> p.var.tolist(), p.lam.tolist(), p.nonorthogonality
        ([4.0, 1.0], [2.0, 0.8], 0.0)
    """

    kind: str
    normalize: str | None
    vectors: np.ndarray
    dual: np.ndarray
    rho: np.ndarray
    lam: np.ndarray
    var: np.ndarray
    nonorthogonality: float
    max_cosine: float

    @property
    def d(self) -> int:
        return int(self.var.size)

    @property
    def rate(self) -> np.ndarray:
        """``[d]`` ``g_i = |a_i|^2``, the first layer's rate of feature ``i`` in the
        diagonal approximation (theory §11): 1 for ``"dual"`` and orthonormal bases."""
        return np.sum(self.dual**2, axis=0)


def _moments(Sxx, Syx):
    """``Sxx`` (checked symmetric positive definite) and ``S = (Syx + Syx^T) / 2``."""
    Sxx = _validate.as_real("Sxx", Sxx)
    if Sxx.ndim != 2 or Sxx.shape[0] != Sxx.shape[1] or Sxx.shape[0] < 1:
        raise ValueError(f"Sxx must be a square [d, d] matrix; got shape {Sxx.shape}")
    Syx = _validate.as_real("Syx", Syx)
    if Syx.shape != Sxx.shape:
        raise ValueError(f"Syx must have the shape of Sxx {Sxx.shape}; got {Syx.shape}")
    scale = max(np.abs(Sxx).max(), 1e-300)
    if np.abs(Sxx - Sxx.T).max() > 1e-10 * scale:
        raise ValueError(
            f"Sxx must be symmetric; got |Sxx - Sxx^T| = {np.abs(Sxx - Sxx.T).max():.3g}"
        )
    return 0.5 * (Sxx + Sxx.T), Syx, 0.5 * (Syx + Syx.T)


def _signs(V):
    """Flip each column so that its largest-magnitude entry is positive."""
    big = np.argmax(np.abs(V), axis=0)
    return V * np.where(V[big, np.arange(V.shape[1])] < 0, -1.0, 1.0)


def _eigh_desc(A):
    ev, U = np.linalg.eigh(A)
    return ev[::-1], _signs(U[:, ::-1])


def _cholesky(Sxx):
    try:
        return np.linalg.cholesky(Sxx)
    except np.linalg.LinAlgError as err:
        ev = np.linalg.eigvalsh(Sxx)
        raise ValueError(
            f"Sxx must be positive definite; smallest eigenvalue {ev.min():.6g}"
        ) from err


def _nonorthogonality(V):
    """``(|Vn^T Vn - I|_F / sqrt(d), max |cos|)`` with ``Vn`` the unit-norm columns."""
    Vn = V / np.linalg.norm(V, axis=0)
    C = Vn.T @ Vn - np.eye(V.shape[1])
    return float(np.linalg.norm(C) / np.sqrt(V.shape[1])), float(np.abs(C).max())


def _orthonormal(kind, U, Sxx, S):
    """A ``FeatureBasis`` of orthonormal columns ``U``: ``var``, ``lam`` by projection."""
    var = np.sum(U * (Sxx @ U), axis=0)
    lam = np.sum(U * (S @ U), axis=0)
    return FeatureBasis(kind, None, U, U, lam / var, lam, var, 0.0, 0.0)


def generalized_basis(
    Sxx: Float[ArrayLike, "d d"],
    Syx: Float[ArrayLike, "d d"],
    *,
    normalize: Literal["dual", "unit", "sxx"] = "dual",
) -> FeatureBasis:
    """The generalized eigenbasis ``S v = rho Sxx v`` (theory §11), descending ``rho``.

    With the Cholesky factor ``Sxx = C C^T`` and ``C^-1 S C^-T = Q diag(rho) Q^T``,
    ``V = C^-T Q`` has ``V^T Sxx V = I`` and ``V^T S V = diag(rho)``, and its
    dual (``V^-T``) is ``C Q``. The columns are then scaled by ``normalize``:
    ``"dual"`` (default; ``|a_i| = 1``, so ``var_i = |Sxx v_i|^2 / (v_i^T Sxx v_i)``
    for any scale of ``v_i``), ``"unit"`` (``|v_i| = 1``) or ``"sxx"``
    (``var_i = 1``, ``lam_i = rho_i``). ``lam_i = rho_i var_i`` in every case.

    Args:
        Sxx: ``[d, d]`` symmetric positive definite.  Syx: ``[d, d]`` (its
            symmetric part is used).
        normalize: ``"dual"``, ``"unit"`` or ``"sxx"``.

    Raises:
        ValueError: bad shapes, non-finite entries, an ``Sxx`` that is not
            symmetric positive definite, or an unknown ``normalize``.

    Examples:
        Commuting covariances: the generalized basis is the principal one,
        and every normalization of it gives the diagonal's ``var`` and ``lam``
        except ``"sxx"``, which rescales them to ``(1, rho)``:

        >>> import jepa_flow as jf
        >>> g = jf.generalized_basis([[2.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 0.8]])
        >>> [a.round(12).tolist() for a in (g.rho, g.var, g.lam, g.vectors)]
        [[0.8, 0.5], [1.0, 2.0], [0.8, 1.0], [[0.0, 1.0], [1.0, 0.0]]]
        >>> s = jf.generalized_basis([[2.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 0.8]],
        ...                       normalize="sxx")
        >>> s.var.round(12).tolist(), s.lam.round(12).tolist()
        ([1.0, 1.0], [0.8, 0.5])
    """
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {NORMALIZATIONS}; got {normalize!r}")
    Sxx, _, S = _moments(Sxx, Syx)
    C = _cholesky(Sxx)
    Ci = np.linalg.inv(C)  # lower triangular
    M = Ci @ S @ Ci.T
    rho, Q = _eigh_desc(0.5 * (M + M.T))
    V = Ci.T @ Q  # V^T Sxx V = I
    A = C @ Q  # V^-T: a_i^T v_j = delta_ij
    if normalize == "dual":
        scale = np.linalg.norm(A, axis=0)  # v -> |a| v makes |a| = 1
    elif normalize == "unit":
        scale = 1.0 / np.linalg.norm(V, axis=0)
    else:
        scale = np.ones_like(rho)
    V, A = V * scale, A / scale
    flip = np.where(V[np.argmax(np.abs(V), axis=0), np.arange(V.shape[1])] < 0, -1.0, 1.0)
    V, A = V * flip, A * flip
    var = scale**2
    nonorth, max_cos = _nonorthogonality(V)
    return FeatureBasis("generalized", normalize, V, A, rho, rho * var, var, nonorth, max_cos)


def feature_basis(
    Sxx: Float[ArrayLike, "d d"],
    Syx: Float[ArrayLike, "d d"],
    *,
    basis: Literal["pca", "generalized", "mae", "lam"] = "pca",
    normalize: Literal["dual", "unit", "sxx"] | None = None,
) -> FeatureBasis:
    """The feature basis ``basis`` of the covariances (theory §11; module docstring).

    ``normalize`` applies to ``basis="generalized"`` only (None: ``"dual"``);
    the other bases are orthonormal and refuse it.

    Examples:
        In the commuting case every basis is the principal one:

        >>> import numpy as np
        >>> import jepa_flow as jf
        >>> Sxx, Syx = np.diag([2.0, 1.0]), np.diag([1.6, 0.4])  # rho 0.8, 0.4
        >>> [jf.feature_basis(Sxx, Syx, basis=b).lam.tolist() for b in ("pca", "mae", "lam")]
        [[1.6, 0.4], [1.6, 0.4], [1.6, 0.4]]
        >>> jf.feature_basis(Sxx, Syx, basis="pcs")
        Traceback (most recent call last):
        ...
        ValueError: basis must be one of ('pca', 'generalized', 'mae', 'lam'); got 'pcs'
    """
    if basis not in BASES:
        raise ValueError(f"basis must be one of {BASES}; got {basis!r}")
    if basis == "generalized":
        return generalized_basis(Sxx, Syx, normalize="dual" if normalize is None else normalize)
    if normalize is not None:
        raise ValueError(
            f"normalize applies to basis='generalized' only (the {basis!r} basis is "
            f"orthonormal); got normalize={normalize!r}"
        )
    Sxx, Syx, S = _moments(Sxx, Syx)
    if basis == "pca":
        _cholesky(Sxx)
        _, U = _eigh_desc(Sxx)
    elif basis == "lam":
        _cholesky(Sxx)
        _, U = _eigh_desc(S)
    else:  # "mae": right singular vectors of Syx Sxx^-1
        _cholesky(Sxx)  # positive definite, or a one-line error
        P = np.linalg.solve(Sxx, Syx.T).T
        _, _, Bt = np.linalg.svd(P)
        U = _signs(Bt.T)
    return _orthonormal(basis, U, Sxx, S)
