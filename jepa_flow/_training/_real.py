"""Real two-view data: paired samples, their moments and the feature analysis (theory §9).

``from_samples(x, y)`` turns ``n`` paired views ``x[k], y[k]`` (``[n, d]``, two
views of one item) into a ``Data`` source: the views are centred (each by its
own mean) and the moments are the plain ``1/n`` averages of the rows, so the
population loss of the source is *exactly* the mean loss over the rows (full
batch) and a minibatch draws rows of the data set itself (with replacement).

With ``symmetric=True`` (the default, the theory's assumption of §2) each
drawn pair is shown as ``(y, x)`` with probability 1/2: the rows' distribution
then has the pooled ``Sxx = Syy = (Cxx + Cyy) / 2`` and the symmetric
``Syx = (Cyx + Cyx^T) / 2``, and these are the source's covariances. With
``symmetric=False`` the rows are used as given (``Sxx = Cxx``, ``Syy = Cyy``,
``Syx = Cyx``); the feature analysis then uses the symmetric part of ``Syx``
and reports the asymmetry.

The feature analysis (``analyze``, theory §9 and §11): a feature basis
``v_i`` (by default the orthonormal eigenbasis of ``Sxx``, descending variance;
or the generalized, MAE or ``lam`` basis of theory §11; with ``objective=``,
that objective's ``DEFAULT_BASIS``, experiment 10's choice, theory §11.7),
each feature's ``var_i = v_i^T Sxx v_i``, ``lam_i = v_i^T Syx v_i`` and
``rho_i = lam_i / var_i``, and how far the data is from the theory's
assumption that one orthonormal basis diagonalizes both covariances. The
per-feature theory (``critical_time``, theory §4) then predicts every
feature's critical time and the learning order (theory §10); features with
``lam_i <= 0`` are never learned (time ``inf``).
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import jax.numpy as jnp
import numpy as np
from jaxtyping import ArrayLike, Float

from .._core import _validate
from .._core._results import register_result
from .._theory._basis import BASES, feature_basis
from .._theory._critical_time import critical_time as _critical_time
from .._theory._order import learning_order
from ._data import Data, _batch

NORMALIZE = (None, "max", "trace")
RANK_TOL = 1e-10  # smallest kept eigenvalue of Sxx, relative to the largest
# Per objective, the basis (and column scale) ``analyze(data, objective=...)`` uses when none is
# given: the one whose per-feature theory ranks the full-matrix flow's learning order best,
# by experiment 10's preregistered rule (docs/theory.md §11.7). Without an objective: "pca".
DEFAULT_BASIS = {"jepa": ("generalized", "sxx"), "mae": ("pca", None)}
MIN_SCALE = 1e-100  # smallest largest |x| after centring: its square stays a normal float64

__all__ = [
    "DEFAULT_BASIS",
    "FeatureAnalysis",
    "analyze",
    "from_samples",
    "principal_components",
]


def _eigh_desc(S):
    """Eigenpairs of a symmetric matrix, descending, each vector's largest entry positive."""
    ev, U = np.linalg.eigh(0.5 * (S + S.T))
    ev, U = ev[::-1], U[:, ::-1]
    big = np.argmax(np.abs(U), axis=0)
    return ev, U * np.sign(U[big, np.arange(U.shape[1])])


def _views(x, y):
    x = _validate.as_real("x", x)
    y = _validate.as_real("y", y)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 1:
        raise ValueError(f"x must be a 2-D array [n, d] with n >= 2 rows; got shape {x.shape}")
    if y.shape != x.shape:
        raise ValueError(f"y must have the shape of x {x.shape} (paired views); got {y.shape}")
    with np.errstate(over="ignore", invalid="ignore"):
        x, y = x - x.mean(axis=0), y - y.mean(axis=0)
    _check_scale(x, y)
    return x, y


def _check_scale(x, y) -> None:
    """Refuse views whose second moments would overflow or underflow float64."""
    big = max(float(np.abs(x).max(initial=0.0)), float(np.abs(y).max(initial=0.0)))
    hi = np.sqrt(np.finfo(np.float64).max / (4.0 * x.size))
    if not big <= hi:
        raise ValueError(
            f"x and y must be below {hi:.3g} in magnitude after centring (their covariances "
            f"would overflow float64); got {big:.3g}: rescale the views"
        )
    if 0 < big < MIN_SCALE:
        raise ValueError(
            f"x and y must reach at least {MIN_SCALE:g} in magnitude after centring (their "
            f"covariances would underflow float64); got {big:.3g}: rescale the views"
        )


def _n_features(n_features, d):
    if n_features is None:
        return d
    if isinstance(n_features, bool) or int(n_features) != n_features or not 1 <= n_features <= d:
        raise ValueError(f"n_features must be None or an integer in [1, {d}]; got {n_features!r}")
    return int(n_features)


def principal_components(
    x: Float[ArrayLike, "n d"], y: Float[ArrayLike, "n d"], *, n_features: int | None = None
) -> Float[np.ndarray, "d k"]:
    """The top ``n_features`` eigenvectors ``Q`` ``[d, k]`` of the pooled ``(Cxx + Cyy) / 2``.

    ``from_samples(x, y, n_features=k)`` works in the coordinates ``x Q``; a
    feature ``u`` found there is the direction ``Q u`` of the original space
    (e.g. a pixel image). With ``power < 1`` the coordinates are rescaled
    components, ``Sxx`` is diagonal there, and feature ``i`` is column ``i`` of ``Q``.

    Examples:
        Views with variances 9 and 1 along the columns of a 30-degree rotation
        ``R = [[0.87, -0.5], [0.5, 0.87]]``; the components are those columns:

        >>> import numpy as np, jepa_flow as jf
        >>> c, s = np.cos(np.pi / 6), np.sin(np.pi / 6)
        >>> R = np.array([[c, -s], [s, c]])
        >>> x = np.random.default_rng(0).standard_normal((10000, 2)) * [3.0, 1.0] @ R.T
        >>> (jf.principal_components(x, x).round(2) + 0.0).tolist()
        [[0.87, -0.5], [0.5, 0.87]]
        >>> jf.principal_components(x, x, n_features=1).shape
        (2, 1)
    """
    x, y = _views(x, y)
    k = _n_features(n_features, x.shape[1])
    n = x.shape[0]
    _, Q = _eigh_desc((x.T @ x + y.T @ y) / (2 * n))
    return Q[:, :k]


def from_samples(
    x: Float[ArrayLike, "n d"],
    y: Float[ArrayLike, "n d"],
    *,
    n_features: int | None = None,
    power: float = 1.0,
    normalize: Literal["max", "trace"] | None = None,
    symmetric: bool = True,
    batch: int | None = None,
) -> Data:
    """A ``Data`` source from ``n`` paired views (theory §9).

    Args:
        x, y: ``[n, d]`` arrays, finite; row ``k`` of each is a view of item ``k``.
        n_features: keep the top ``k`` principal components of the pooled views
            (``x Q``, ``y Q`` with ``Q = principal_components(x, y, k)``);
            ``None`` keeps all ``d`` input coordinates.
        power: in [0, 1]; below 1 the views are expressed in the principal
            components of the pooled views, each rescaled so that its variance
            ``v`` becomes ``v^power`` (0: whitened). Every component's ``lam``
            scales like its ``var``, so ``rho`` is unchanged; real spectra that
            span decades are compressed to fit a training budget.
        normalize: ``None`` (keep units), ``"max"`` (largest variance of ``Sxx``
            becomes 1) or ``"trace"`` (mean variance 1); scales both views.
        symmetric: pool the views (module docstring); ``False`` uses them as given.
        batch: ``None`` for the exact loss over all rows (full-batch gradient
            descent), else rows per step, drawn with replacement.

    Returns a ``Data`` with ``model="samples"``, the moments in the input
    coordinates, ``U`` the eigenbasis of ``Sxx`` (descending variance), and
    ``lam``, ``var`` the feature parameters in it (see ``analyze``).

    Raises:
        ValueError: bad shapes or values, too few rows (``n < k + 1``), or an
            ``Sxx`` of deficient rank (d too large for n, or a constant
            direction), before anything is computed on the device.

    Examples:
        Pairs with a known per-feature structure: coordinate ``i`` has variance
        ``var_i`` in both views and correlation ``rho_i`` between them, so
        ``lam_i = rho_i var_i``; the moments of 20000 pairs recover them to
        sampling error (about 1%):

        >>> import numpy as np, jepa_flow as jf
        >>> rng = np.random.default_rng(0)
        >>> sd, rho = np.array([2.0, 1.0]), np.array([0.8, 0.5])  # var [4, 1], lam [3.2, 0.5]
        >>> x = sd * rng.standard_normal((20000, 2))
        >>> y = rho * x + np.sqrt(1 - rho**2) * sd * rng.standard_normal((20000, 2))
        >>> data = jf.from_samples(x, y)
        >>> data.var.round(2).tolist(), data.lam.round(2).tolist(), data.rho.round(2).tolist()
        ([4.03, 1.0], [3.24, 0.51], [0.8, 0.51])
        >>> data.model, data.X.shape
        ('samples', (20000, 2))
        >>> jf.from_samples(x, y, normalize="max").var.round(2).tolist()  # var / 4
        [1.0, 0.25]
        >>> jf.from_samples(x[:2], y[:2])
        Traceback (most recent call last):
        ...
        ValueError: x has n = 2 rows for 2 features: the covariance cannot have full rank; ...
    """
    x, y = _views(x, y)
    n, d = x.shape
    k = _n_features(n_features, d)
    if normalize not in NORMALIZE:
        raise ValueError(f"normalize must be one of {NORMALIZE}; got {normalize!r}")
    if not isinstance(symmetric, bool):
        raise ValueError(f"symmetric must be True or False; got {symmetric!r}")
    batch = _batch(batch)
    power = float(_validate.as_real("power", power))
    if not 0 <= power <= 1:
        raise ValueError(f"power must lie in [0, 1] (1: unchanged, 0: whitened); got {power}")
    if n < k + 1:
        raise ValueError(
            f"x has n = {n} rows for {k} features: the covariance cannot have full rank; "
            f"need n >= {k + 1} (and n >> {k} for accurate moments), or lower n_features"
        )
    if k < d or power != 1:
        ev, Q = _eigh_desc((x.T @ x + y.T @ y) / (2 * n))
        if not ev[k - 1] > RANK_TOL * ev[0]:
            raise ValueError(
                f"the pooled covariance of n = {n} pairs has rank "
                f"{int((ev > RANK_TOL * ev[0]).sum())} < {k}: d = {k} is too large for "
                f"n = {n}, or the views are constant along some direction; "
                "give more samples or lower n_features"
            )
        Q = Q[:, :k] * ev[:k] ** (0.5 * (power - 1.0))
        x, y = x @ Q, y @ Q
    Cxx, Cyy, Cyx = x.T @ x / n, y.T @ y / n, y.T @ x / n
    if symmetric:
        Sxx = Syy = 0.5 * (Cxx + Cyy)
        Syx = 0.5 * (Cyx + Cyx.T)
    else:
        Sxx, Syy, Syx = 0.5 * (Cxx + Cxx.T), 0.5 * (Cyy + Cyy.T), Cyx
    ev, U = _eigh_desc(Sxx)
    if not ev[-1] > RANK_TOL * ev[0]:
        rank = int((ev > RANK_TOL * ev[0]).sum())
        raise ValueError(
            f"Sxx estimated from n = {n} pairs has rank {rank} < {k}: d = {k} is too large "
            f"for n = {n}, or the views are constant along some direction; "
            "give more samples or lower n_features"
        )
    c = 1.0 if normalize is None else (1.0 / ev[0] if normalize == "max" else k / ev.sum())
    x, y = x * np.sqrt(c), y * np.sqrt(c)
    Sxx, Syy, Syx, ev = c * Sxx, c * Syy, c * Syx, c * ev
    lam = np.diag(U.T @ (0.5 * (Syx + Syx.T)) @ U).copy()
    return Data(
        Sxx=jnp.asarray(Sxx),
        Syx=jnp.asarray(Syx),
        Syy=jnp.asarray(Syy),
        U=jnp.asarray(U),
        lam=jnp.asarray(lam),
        var=jnp.asarray(ev.copy()),
        factor=jnp.zeros((0, k)),
        root=jnp.zeros((0, 0)),
        model="samples",
        batch=batch,
        diagonal=False,
        sampler="samples",
        X=jnp.asarray(x),
        Y=jnp.asarray(y),
        swap=symmetric,
    )


@register_result
@dataclasses.dataclass(frozen=True)
class FeatureAnalysis:
    """The per-feature view of a data source (theory §9, §11).

    Attributes:
        basis: ``[d, d]`` columns ``v_i``, the feature directions (input
            coordinates; each column's largest-magnitude entry > 0): for the
            default ``"pca"`` the orthonormal eigenvectors of ``Sxx`` in
            descending ``var``; otherwise those of ``basis_kind`` (theory §11).
        var: ``[d]`` ``v_i^T Sxx v_i`` (for ``"pca"``, the eigenvalues).
        lam: ``[d]`` ``v_i^T Syx v_i`` (the diagonal of ``B = V^T Syx_sym V``).
        offdiag: the relative Frobenius size ``|B - diag B|_F / |B|_F`` of the
            off-diagonal part of ``B``, or of ``V^T Sxx V`` where that is larger:
            0 when the basis diagonalizes ``Sxx`` and ``Syx`` (for ``"pca"``, the
            theory's assumption of one orthonormal basis; 0 by construction for
            ``"generalized"``, whose departure is its ``nonorthogonality``), up to 1.
        offdiag_feature: ``[d]`` per feature, the same for the rows of the matrix.
        commutator: ``|Sxx Syx - Syx Sxx|_F / (2 |Sxx|_F |Syx|_F)`` (basis-free, in [0, 1]).
        asymmetry: ``|Syx - Syx^T|_F / |Syx + Syx^T|_F`` (0 for pooled sources).
        view_mismatch: ``|Syy - Sxx|_F / |Sxx|_F`` (0 for pooled sources).
        n: number of pairs (``"samples"`` sources), else None.
        lam_stderr: ``[d]`` standard error of ``lam`` from the rows, treating
            them as independent (an underestimate for overlapping windows), or None.
        basis_kind: ``"pca"``, ``"generalized"``, ``"mae"`` or ``"lam"`` (theory §11).
        normalize: the generalized basis's column scale (``"dual"``, ``"unit"``,
            ``"sxx"``), else None.
        nonorthogonality: ``|Vn^T Vn - I|_F / sqrt(d)`` of the unit-normalized
            columns (0 for an orthonormal basis; theory §11.4).
        dual: ``[d, d]`` columns ``a_i`` with ``a_i^T v_j = delta_ij``; a
            feature's amplitude in a network is ``|Wbar a_i|`` (theory §11.2).

    Examples:
        A rotated source with one feature of negative ``lam``: the analysis
        finds the hidden rotation, and that feature is never learned:

        >>> import numpy as np, jepa_flow as jf
        >>> data = jf.gaussian(Sxx=[2.0, 1.0], Syx=[1.0, -0.5], U="random", seed=3)
        >>> fa = jf.analyze(data)
        >>> fa.d, fa.var.round(12).tolist(), fa.rho.round(6).tolist(), fa.learned.tolist()
        (2, [2.0, 1.0], [0.5, -0.5], [True, False])
        >>> bool(np.allclose(np.abs(fa.basis.T @ np.asarray(data.U)), np.eye(2)))  # up to signs
        True
        >>> float(fa.critical_time("jepa", 1, 1e-3)[1]), fa.n  # population source: no n
        (inf, None)
        >>> fa.basis_kind, fa.normalize, fa.nonorthogonality
        ('pca', None, 0.0)
    """

    basis: np.ndarray
    var: np.ndarray
    lam: np.ndarray
    offdiag: float
    offdiag_feature: np.ndarray
    commutator: float
    asymmetry: float
    view_mismatch: float
    n: int | None
    lam_stderr: np.ndarray | None
    basis_kind: str = "pca"
    normalize: str | None = None
    nonorthogonality: float = 0.0
    dual: np.ndarray | None = None

    @property
    def d(self) -> int:
        return int(self.var.size)

    @property
    def rho(self) -> np.ndarray:
        """``lam / var`` per feature."""
        return self.lam / self.var

    @property
    def learned(self) -> np.ndarray:
        """Features the per-feature theory learns (``lam > 0``)."""
        return self.lam > 0

    def critical_time(self, objective, depth, eps, fraction=0.5) -> np.ndarray:
        """Per-feature critical times ``[d]`` of the diagonal theory (theory §4; inf: never)."""
        return np.asarray(
            _critical_time(objective, self.lam, self.var, depth, eps, fraction=fraction)
        )

    def order(self, objective, depth, eps, fraction=0.5) -> np.ndarray:
        """Feature indices in predicted learning order (theory §10).

        Learned features (``0 < t* < inf``) first, earliest first; then those
        already at their level at the start (``t* = 0``), then never-learned
        ones. ``learned_mask(self.critical_time(...))`` tells them apart.
        """
        return learning_order(self.critical_time(objective, depth, eps, fraction))


def _offdiag(B, Cxx):
    """``(offdiag, offdiag_feature)``: of ``B`` and ``Cxx``, the less diagonal (relative)."""

    def rel(M):
        off = M - np.diag(np.diag(M))
        nM = np.linalg.norm(M)
        rows = np.linalg.norm(M, axis=1)
        return (
            float(np.linalg.norm(off) / nM) if nM > 0 else 0.0,
            np.linalg.norm(off, axis=1) / np.where(rows > 0, rows, 1.0),
        )

    (b, bf), (c, cf) = rel(B), rel(Cxx)
    return max(b, c), np.maximum(bf, cf)


def analyze(
    data: Data,
    *,
    objective: Literal["jepa", "mae"] | None = None,
    basis: Literal["pca", "generalized", "mae", "lam"] | None = None,
    normalize: Literal["dual", "unit", "sxx"] | None = None,
) -> FeatureAnalysis:
    """The feature analysis of any ``Data`` source (theory §9, §11); see ``FeatureAnalysis``.

    Args:
        data: a ``Data`` source.
        objective: the objective whose learning order the analysis is for: with
            no ``basis``, it picks ``DEFAULT_BASIS[objective]``, the basis whose
            per-feature theory orders the full-matrix flow best (experiment 10,
            theory §11.7: ``"jepa"``: generalized, ``sxx`` scale; ``"mae"``: the
            principal components). None (and no ``basis``): the principal components.
        basis: ``"pca"``, ``"generalized"``, ``"mae"`` or ``"lam"`` (theory §11).
        normalize: the generalized basis's column scale, ``"dual"`` (None),
            ``"unit"`` or ``"sxx"``; refused for the orthonormal bases.

    Examples:
        The pairs of the ``from_samples`` example share one basis for ``Sxx`` and
        ``Syx``, so the off-diagonal measure is 0 up to sampling error, and each
        ``lam`` is within two standard errors of its true value:

        >>> import numpy as np, jepa_flow as jf
        >>> rng = np.random.default_rng(0)
        >>> sd, rho = np.array([2.0, 1.0]), np.array([0.8, 0.5])
        >>> x = sd * rng.standard_normal((20000, 2))
        >>> y = rho * x + np.sqrt(1 - rho**2) * sd * rng.standard_normal((20000, 2))
        >>> a = jf.analyze(jf.from_samples(x, y))
        >>> round(a.offdiag, 3), round(a.commutator, 4), a.n
        (0.002, 0.0007, 20000)
        >>> a.asymmetry == a.view_mismatch == 0.0  # pooled views
        True
        >>> (np.abs(a.lam - [3.2, 0.5]) < 2 * a.lam_stderr).tolist()
        [True, True]

        ``Syx = [[0.5, 0.5], [0.5, 0.5]]`` with ``Sxx = diag(4, 1)``: half of the
        squared norm of ``B`` is off its diagonal, so ``offdiag = 1/sqrt(2)``;
        the generalized basis diagonalizes both, at a cost in orthogonality:

        >>> data = jf.gaussian(Sxx=[4.0, 1.0], Syx=[[0.5, 0.5], [0.5, 0.5]])
        >>> b = jf.analyze(data)
        >>> round(b.offdiag, 4), b.lam.tolist()
        (0.7071, [0.5, 0.5])
        >>> g = jf.analyze(data, basis="generalized")
        >>> g.rho.round(4).tolist(), round(g.offdiag, 12), round(g.nonorthogonality, 4)
        ([0.625, 0.0], 0.0, 0.5145)
    """
    if not isinstance(data, Data):
        raise ValueError(f"data must be a jepa_flow Data source; got {type(data).__name__}")
    if objective is not None and objective not in DEFAULT_BASIS:
        raise ValueError(
            f"objective must be one of {tuple(DEFAULT_BASIS)} or None; got {objective!r}"
        )
    if basis is None:
        basis, default_scale = DEFAULT_BASIS[objective] if objective else ("pca", None)
        normalize = default_scale if normalize is None else normalize
    if basis not in BASES:
        raise ValueError(f"basis must be one of {BASES}; got {basis!r}")
    Sxx, Syx, Syy = (np.asarray(a, float) for a in (data.Sxx, data.Syx, data.Syy))
    S = 0.5 * (Syx + Syx.T)
    fb = feature_basis(Sxx, Syx, basis=basis, normalize=normalize)
    V = fb.vectors
    offdiag, offdiag_feature = _offdiag(V.T @ S @ V, V.T @ Sxx @ V)
    scale = 2 * np.linalg.norm(Sxx) * np.linalg.norm(S)
    P = Sxx @ S
    comm = np.linalg.norm(P - P.T) / max(scale, 1e-300)  # S Sxx = (Sxx S)^T
    n = stderr = None
    if data.model == "samples":
        X, Y = np.asarray(data.X), np.asarray(data.Y)
        n = int(X.shape[0])
        prod = (X @ V) * (Y @ V)  # per row, x^T v y^T v (already symmetric in x, y)
        stderr = prod.std(axis=0) / np.sqrt(n)
    return FeatureAnalysis(
        basis=V,
        var=fb.var,
        lam=fb.lam,
        offdiag=offdiag,
        offdiag_feature=offdiag_feature,
        commutator=float(comm),
        asymmetry=float(np.linalg.norm(Syx - Syx.T) / max(np.linalg.norm(2 * S), 1e-300)),
        view_mismatch=float(np.linalg.norm(Syy - Sxx) / np.linalg.norm(Sxx)),
        n=n,
        lam_stderr=stderr,
        basis_kind=basis,
        normalize=fb.normalize,
        nonorthogonality=fb.nonorthogonality,
        dual=fb.dual,
    )
