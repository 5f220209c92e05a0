"""A synthetic family with controlled non-commutation (theory §11, experiment 10).

``noncommuting(var, rho, theta, seed=s)`` is the Gaussian two-view source

    Sxx = diag(var),   Syx = Sxx^(1/2) R(theta) diag(rho) R(theta)^T Sxx^(1/2),   Syy = Sxx

with ``R(theta) = expm(theta K)``, ``K`` antisymmetric: the matrix logarithm
of a Haar-random rotation (``random_rotation(d, seed=seed)``, its first column's
sign flipped if its determinant is -1), scaled so that its largest rotation
angle is 1 radian. ``theta`` (radians) is the angle by which the eigenbasis
of ``Sxx^(-1/2) Syx Sxx^(-1/2)`` turns away from the eigenbasis of ``Sxx``.

By construction the generalized eigenvalues of ``S v = rho Sxx v`` are
exactly ``rho`` whatever ``theta`` (``Sxx^(-1/2) Syx Sxx^(-1/2)`` is similar
to ``diag(rho)``), so ``|rho| < 1`` keeps the joint covariance valid; at
``theta = 0`` the two covariances commute, with ``lam_i = rho_i var_i``.
``Syx`` is symmetric. Plain numpy: ``K`` and ``expm(theta K)`` come from the
eigendecomposition of the Hermitian ``i K`` (exact for an antisymmetric
matrix), ``logm`` from the eigendecomposition of the rotation.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .._core import _validate
from ._data import Data, gaussian, random_rotation

__all__ = ["noncommuting", "rotation_generator", "rotation"]


def rotation_generator(d: int, seed: int = 0) -> np.ndarray:
    """``K`` ``[d, d]`` antisymmetric: ``logm`` of a random rotation, largest angle 1 radian.

    Examples:
        >>> import numpy as np
        >>> K = rotation_generator(4, seed=0)
        >>> bool(np.allclose(K, -K.T)), round(float(np.abs(np.linalg.eigvals(K)).max()), 12)
        (True, 1.0)
    """
    if isinstance(d, bool) or int(d) != d or d < 2:
        raise ValueError(f"d must be an integer >= 2; got {d!r}")
    Q = random_rotation(int(d), seed=seed)
    if np.linalg.det(Q) < 0:
        Q[:, 0] = -Q[:, 0]
    ev, W = np.linalg.eig(Q)  # unit-modulus eigenvalues, distinct for a random rotation
    K = np.real(W @ np.diag(np.log(ev)) @ np.linalg.inv(W))
    K = 0.5 * (K - K.T)
    return K / np.abs(np.linalg.eigvals(K)).max()


def rotation(K: ArrayLike, theta: float) -> np.ndarray:
    """``expm(theta K)`` for an antisymmetric ``K`` (orthogonal, determinant 1).

    Examples:
        >>> import numpy as np
        >>> K = np.array([[0.0, -1.0], [1.0, 0.0]])
        >>> rotation(K, np.pi / 2).round(12).tolist()
        [[0.0, -1.0], [1.0, 0.0]]
    """
    mu, W = np.linalg.eigh(1j * np.asarray(K, float))  # i K Hermitian: K = W diag(-i mu) W^H
    return np.real(W @ np.diag(np.exp(-1j * float(theta) * mu)) @ W.conj().T)


def noncommuting(
    var: ArrayLike,
    rho: ArrayLike,
    theta: float,
    *,
    seed: int = 0,
    batch: int | None = None,
) -> Data:
    """The source of the module docstring: ``Sxx = diag(var)``, generalized eigenvalues ``rho``.

    Args:
        var: ``[d]`` input variances, > 0, d >= 2.
        rho: ``[d]`` generalized eigenvalues, each in (-1, 1).
        theta: rotation angle in radians, finite.
        seed: seed of the random rotation whose logarithm is ``K``.
        batch: ``None`` (population loss) or samples per step, as in ``gaussian``.

    Returns a ``Data`` in the input basis (``U = I``: ``lam``, ``var`` are the
    diagonals, the principal-component theory's parameters).

    Examples:
        At ``theta = 0`` the source is diagonal, ``lam = rho var``; away from it
        ``Syx`` has off-diagonal entries and the same generalized eigenvalues:

        >>> import numpy as np, jepa_flow as jf
        >>> a = jf.noncommuting([1.0, 0.5, 0.25], [0.9, 0.6, 0.3], 0.0, seed=1)
        >>> np.asarray(a.lam).round(12).tolist(), a.diagonal
        ([0.9, 0.3, 0.075], True)
        >>> b = jf.noncommuting([1.0, 0.5, 0.25], [0.9, 0.6, 0.3], 0.3, seed=1)
        >>> jf.generalized_basis(b.Sxx, b.Syx).rho.round(12).tolist(), b.diagonal
        ([0.9, 0.6, 0.3], False)
    """
    var = np.atleast_1d(_validate.as_positive("var", var)).astype(float)
    rho = np.atleast_1d(_validate.as_real("rho", rho)).astype(float)
    if var.ndim != 1 or var.size < 2:
        raise ValueError(f"var must be a 1-D array of d >= 2 variances; got shape {var.shape}")
    if rho.shape != var.shape:
        raise ValueError(f"rho must have the shape of var {var.shape}; got {rho.shape}")
    if not (np.abs(rho) < 1).all():
        raise ValueError(f"rho must lie in (-1, 1) (a valid joint covariance); got {rho.tolist()}")
    theta = float(_validate.as_real("theta", theta))
    # theta = 0 exactly: R = I (no rounding), so the source is flagged diagonal
    R = rotation(rotation_generator(var.size, seed), theta) if theta else np.eye(var.size)
    root = np.sqrt(var)
    Syx = root[:, None] * (R @ np.diag(rho) @ R.T) * root[None, :]
    return gaussian(Sxx=var, Syx=0.5 * (Syx + Syx.T), Syy=var, batch=batch)
