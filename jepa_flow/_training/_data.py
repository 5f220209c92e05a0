"""Data for training: exact population covariances or sampled minibatches.

One interface, ``Data``, for every source (theory §1, §2 and §5). Covariances
are given in the *feature basis* (where the theory's ``lam_i``, ``var_i`` are
the diagonals of ``Syx``, ``Sxx``) and a basis rotation ``U`` (orthogonal,
columns ``e_i``) maps them to the input basis the network sees::

    x = U x',  y = U y',  Sxx = U Sxx' U^T,  Syx = U Syx' U^T,  Syy = U Syy' U^T

``batch=None`` means the exact population loss (no sampling); an integer
draws that many fresh samples per step. Sources:

- ``gaussian(Sxx, Syx, Syy=Sxx)``: joint Gaussian of ``(x', y')`` with
  covariance ``[[Sxx, Syx^T], [Syx, Syy]]`` (must be PSD);
- ``noisy_views(s, nu, c)``: ``x' = z + n``, ``y' = z + n'``, ``z ~ N(0, diag s)``,
  ``n, n' ~ N(0, diag nu)`` correlated by ``c`` (theory §5):
  ``var = s + nu``, ``lam = s + c nu``;
- ``linear_dynamics(a, var)``: ``x' ~ N(0, diag var)``,
  ``y' = a x' + sqrt(var (1 - a^2)) xi`` (theory §5): ``lam = a var``, ``rho = a``;
- ``from_samples(x, y)`` (in ``jepa_flow._training._real``): paired rows of a
  real data set, with moments estimated from them; minibatches are rows of
  the data set itself (theory §9).

Minibatch sampler. The losses are quadratic, so a minibatch enters the
gradient only through its moment matrix ``C = (1/B) sum_b z_b z_b^T`` of
``z = (x, y)``: the minibatch loss is the population loss with ``C`` in place
of the covariances. For Gaussian data ``B C ~ Wishart(Sigma, B)``, which the
Bartlett decomposition samples exactly with ``2d (2d + 1) / 2`` random numbers
(``B C = (F T)(F T)^T``, ``F F^T = Sigma``, ``T`` lower triangular with
``T_ii^2 ~ chi2(B - i)``, ``T_ij ~ N(0, 1)`` below the diagonal) instead of
``2 d B``, and costs ``O(d^3)`` instead of ``O(B d^2)``. ``sampler="wishart"``
(the default when ``B >= 2d``) uses it; ``sampler="samples"`` draws the ``B``
samples themselves (from the generative model of the source). Both give the
same distribution of gradients, hence of SGD trajectories (not the same
random stream).

Random draws are made in float32 and used in the working dtype (float64 with
x64): drawing them is the cost of a minibatch step (about 1.5 times cheaper in
float32), and 24-bit noise changes nothing a minibatch average can show; all
other arithmetic is in the working dtype. So a seed draws the same minibatches
in float32 and float64 (docs/precision.md compares the two).
"""

from __future__ import annotations

from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import ArrayLike, Float

from .._core import _validate
from .._core._results import register_result

MODELS = ("gaussian", "noisy_views", "linear_dynamics")  # generative models; also "samples" (_real)


@register_result
class Data(eqx.Module):
    """A data source. Arrays are jax arrays of the working dtype; ``model``/``batch`` are static.

    Attributes:
        Sxx, Syx, Syy: covariances in the input basis, ``[d, d]``.
        U: the feature basis (columns ``e_j``), ``[d, d]``.
        lam, var: per-feature theory parameters (diagonals in the feature basis), ``[d]``.
        factor: ``[2d, 2d]`` square root of the joint feature-basis covariance
            (gaussian sampler), or per-feature sampler coefficients ``[k, d]``.
        root: ``[2d, 2d]`` square root ``F`` of the joint covariance of ``(x, y)``
            in the input basis (Wishart sampler).
        sampler: ``"wishart"`` or ``"samples"`` (see the module docstring).
        diagonal: whether the feature-basis covariances are diagonal (the
            per-feature theory is exact only then).
        X, Y: the training rows ``[n, d]`` of a ``"samples"`` source (centred
            paired views in the input basis; ``from_samples``), else None.
        swap: ``"samples"`` only: each drawn pair is presented as ``(y, x)``
            with probability 1/2, so the rows' distribution has the pooled
            ``Sxx = Syy`` and the symmetric ``Syx`` of the source (theory §9).

    Examples:
        >>> data = gaussian(Sxx=[2.0, 1.0], Syx=[1.0, 0.8], U="random", batch=64)
        >>> data.d, data.batch, data.sampler, data.diagonal
        (2, 64, 'wishart', True)
    """

    Sxx: jax.Array
    Syx: jax.Array
    Syy: jax.Array
    U: jax.Array
    lam: jax.Array
    var: jax.Array
    factor: jax.Array
    root: jax.Array
    model: str = eqx.field(static=True)
    batch: int | None = eqx.field(static=True)
    diagonal: bool = eqx.field(static=True)
    sampler: str = eqx.field(static=True)
    X: jax.Array | None = None
    Y: jax.Array | None = None
    swap: bool = eqx.field(static=True, default=False)

    @property
    def d(self) -> int:
        return int(self.Sxx.shape[0])

    @property
    def rho(self):
        return self.lam / self.var


def random_rotation(d: int, *, seed: int = 0) -> Float[np.ndarray, "d d"]:
    """A Haar-random orthogonal ``d x d`` matrix (QR of a Gaussian, signs fixed).

    Examples:
        >>> import numpy as np
        >>> U = random_rotation(3, seed=1)
        >>> bool(np.allclose(U.T @ U, np.eye(3)))
        True
        >>> bool(np.array_equal(U, random_rotation(3, seed=1)))  # seeded
        True
    """
    g = np.random.default_rng(seed).standard_normal((d, d))
    q, r = np.linalg.qr(g)
    return q * np.sign(np.diag(r))


def _rotation(U, d: int, seed: int) -> np.ndarray:
    if U is None or (isinstance(U, str) and U == "identity"):
        return np.eye(d)
    if isinstance(U, str):
        if U != "random":
            raise ValueError(
                f"U must be 'identity', 'random' or a d x d orthogonal matrix; got {U!r}"
            )
        return random_rotation(d, seed=seed)
    U = _validate.as_real("U", U)
    if U.shape != (d, d):
        raise ValueError(f"U must have shape ({d}, {d}) to match d = {d}; got {U.shape}")
    err = np.abs(U.T @ U - np.eye(d)).max()
    if err > 1e-10:
        raise ValueError(f"U must be orthogonal (|U^T U - I| <= 1e-10); got deviation {err:.3g}")
    return U


def _batch(batch):
    if batch is None:
        return None
    if isinstance(batch, bool) or int(batch) != batch or batch < 1:
        raise ValueError(f"batch must be None (population loss) or an integer >= 1; got {batch!r}")
    return int(batch)


def _matrix(name: str, value, d: int | None) -> np.ndarray:
    arr = _validate.as_real(name, value)
    if arr.ndim == 1:
        arr = np.diag(arr)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1] or (d is not None and arr.shape[0] != d):
        want = f"({d}, {d})" if d is not None else "(d, d)"
        raise ValueError(
            f"{name} must be a square matrix of shape {want} (or its diagonal); "
            f"got shape {arr.shape}"
        )
    return arr


def _sqrt_psd(C):
    lj, qj = np.linalg.eigh(0.5 * (C + C.T))
    return qj * np.sqrt(np.clip(lj, 0.0, None))


def _sampler(sampler, batch, d):
    if sampler not in ("auto", "wishart", "samples"):
        raise ValueError(f"sampler must be one of ('auto', 'wishart', 'samples'); got {sampler!r}")
    if sampler == "wishart" and batch is not None and batch < 2 * d:
        raise ValueError(f"sampler 'wishart' needs batch >= 2d = {2 * d}; got batch={batch}")
    if sampler == "auto":
        return "wishart" if batch is None or batch >= 2 * d else "samples"
    return sampler


def _make(model, Sxx, Syx, Syy, U, factor, batch, sampler="auto") -> Data:
    d = Sxx.shape[0]
    root = np.kron(np.eye(2), U) @ _sqrt_psd(np.block([[Sxx, Syx.T], [Syx, Syy]]))
    diagonal = bool(
        np.allclose(Sxx, np.diag(np.diag(Sxx)), atol=0, rtol=0)
        and np.allclose(Syx, np.diag(np.diag(Syx)), atol=0, rtol=0)
    )
    return Data(
        Sxx=jnp.asarray(U @ Sxx @ U.T),
        Syx=jnp.asarray(U @ Syx @ U.T),
        Syy=jnp.asarray(U @ Syy @ U.T),
        U=jnp.asarray(U),
        lam=jnp.asarray(np.diag(Syx).copy()),
        var=jnp.asarray(np.diag(Sxx).copy()),
        factor=jnp.asarray(factor),
        root=jnp.asarray(root),
        model=model,
        batch=batch,
        diagonal=diagonal,
        sampler=_sampler(sampler, batch, d),
    )


# a feature-basis covariance: its diagonal [d] or the matrix [d, d]
Covariance = Float[ArrayLike, " d"] | Float[ArrayLike, "d d"]
# the feature basis: "identity", "random" (seeded) or an orthogonal matrix
Basis = Literal["identity", "random"] | Float[ArrayLike, "d d"] | None
Sampler = Literal["auto", "wishart", "samples"]


def gaussian(
    *,
    Sxx: Covariance,
    Syx: Covariance,
    Syy: Covariance | None = None,
    batch: int | None = None,
    U: Basis = None,
    seed: int = 0,
    sampler: Sampler = "auto",
) -> Data:
    """Joint Gaussian views with feature-basis covariances ``Sxx``, ``Syx``, ``Syy`` (theory §1).

    Keyword-only, so the two matrices cannot be swapped by position. In the
    feature basis the theory's ``var_j`` and ``lam_j`` are the diagonals of
    ``Sxx`` and ``Syx`` (docs/theory.md §2).

    Args:
        Sxx: ``[d, d]`` symmetric positive definite input covariance (a 1-D
            array means its diagonal, the features' ``var``).
        Syx: ``[d, d]`` cross-covariance ``E[y x^T]`` (or its diagonal, the
            features' ``lam``).
        Syy: ``[d, d]`` symmetric target covariance, default ``Sxx``; the joint
            covariance ``[[Sxx, Syx^T], [Syx, Syy]]`` must be PSD.
        batch: ``None`` for the exact population loss, else samples per step.
        U: ``None``/``"identity"``, ``"random"`` (seeded by ``seed``) or an orthogonal matrix.
        sampler: ``"auto"``, ``"wishart"`` or ``"samples"`` (module docstring).

    Examples:
        The canonical pair A, B of docs/theory.md §4:

        >>> data = gaussian(Sxx=[2.0, 1.0], Syx=[1.0, 0.8])
        >>> data.lam.tolist(), data.var.tolist(), data.rho.tolist()
        ([1.0, 0.8], [2.0, 1.0], [0.5, 0.8])
        >>> gaussian(Sxx=[1.0, -1.0], Syx=[1.0, 1.0])
        Traceback (most recent call last):
        ...
        ValueError: Sxx must be positive definite; smallest eigenvalue -1
    """
    Sxx = _matrix("Sxx", Sxx, None)
    d = Sxx.shape[0]
    if not np.allclose(Sxx, Sxx.T, rtol=1e-12, atol=1e-14):
        raise ValueError(
            f"Sxx must be symmetric; got |Sxx - Sxx^T| = {np.abs(Sxx - Sxx.T).max():.3g}"
        )
    ev = np.linalg.eigvalsh(Sxx)
    if ev.min() <= 0:
        raise ValueError(f"Sxx must be positive definite; smallest eigenvalue {ev.min():.6g}")
    Syx = _matrix("Syx", Syx, d)
    Syy = Sxx if Syy is None else _matrix("Syy", Syy, d)
    if not np.allclose(Syy, Syy.T, rtol=1e-12, atol=1e-14):
        raise ValueError(
            f"Syy must be symmetric; got |Syy - Syy^T| = {np.abs(Syy - Syy.T).max():.3g}"
        )
    joint = np.block([[Sxx, Syx.T], [Syx, Syy]])
    joint = 0.5 * (joint + joint.T)
    lj, qj = np.linalg.eigh(joint)
    if lj.min() < -1e-10 * max(1.0, lj.max()):
        raise ValueError(
            "the joint covariance [[Sxx, Syx^T], [Syx, Syy]] must be positive semi-definite; "
            f"smallest eigenvalue {lj.min():.6g} (lower |Syx| or raise Syy)"
        )
    factor = qj * np.sqrt(np.clip(lj, 0.0, None))
    return _make("gaussian", Sxx, Syx, Syy, _rotation(U, d, seed), factor, _batch(batch), sampler)


def noisy_views(
    s: Float[ArrayLike, " d"],
    nu: Float[ArrayLike, " d"],
    c: Float[ArrayLike, " d"] = 0.0,
    *,
    batch: int | None = None,
    U: Basis = None,
    seed: int = 0,
    sampler: Sampler = "auto",
) -> Data:
    """Static noisy views (theory §5): ``var = s + nu``, ``lam = s + c nu``, ``rho = lam/var``.

    Args:
        s: latent signal variances ``[d]``, >= 0.  nu: noise variances ``[d]``, >= 0
            with ``s + nu > 0``.  c: noise correlation across views, in [-1, 1].

    Examples:
        Noise lowers the influence, not the covariance:

        >>> data = noisy_views([1.0, 1.0], [0.0, 3.0])
        >>> data.lam.tolist(), data.rho.tolist()
        ([1.0, 1.0], [1.0, 0.25])
    """
    s = _validate.as_real("s", s)
    nu = _validate.as_real("nu", nu)
    _, p = _validate.broadcast(
        s=np.atleast_1d(s), nu=np.atleast_1d(nu), c=np.atleast_1d(_validate.as_real("c", c))
    )
    s, nu, c = p["s"], p["nu"], p["c"]
    if (s < 0).any() or (nu < 0).any() or ((s + nu) <= 0).any():
        raise ValueError("noisy_views needs s >= 0, nu >= 0 and s + nu > 0 for every feature")
    if (np.abs(c) > 1).any():
        raise ValueError(f"c must lie in [-1, 1]; got {c}")
    var = s + nu
    factor = np.stack([np.sqrt(s), np.sqrt(nu), c, np.sqrt(1.0 - c**2)])
    return _make(
        "noisy_views",
        np.diag(var),
        np.diag(s + c * nu),
        np.diag(var),
        _rotation(U, s.size, seed),
        factor,
        _batch(batch),
        sampler,
    )


def linear_dynamics(
    a: Float[ArrayLike, " d"],
    var: Float[ArrayLike, " d"],
    *,
    batch: int | None = None,
    U: Basis = None,
    seed: int = 0,
    sampler: Sampler = "auto",
) -> Data:
    """Temporal views ``x = x_t``, ``y = x_(t+1) = a x_t + noise`` (theory §5).

    Args:
        a: per-feature autoregression ``[d]`` with ``|a| < 1`` (``rho = a``).
        var: stationary variances ``[d]``, > 0 (``lam = a var``).

    Examples:
        >>> data = linear_dynamics([0.9, 0.5], [1.0, 2.0])
        >>> data.lam.tolist(), data.rho.tolist()
        ([0.9, 1.0], [0.9, 0.5])
    """
    _, p = _validate.broadcast(
        a=np.atleast_1d(_validate.as_real("a", a)),
        var=np.atleast_1d(_validate.as_positive("var", var)),
    )
    a, var = p["a"], p["var"]
    if (np.abs(a) >= 1).any():
        raise ValueError(f"a must satisfy |a| < 1 (stationary dynamics); got {a}")
    factor = np.stack([np.sqrt(var), a, np.sqrt(var * (1.0 - a**2))])
    return _make(
        "linear_dynamics",
        np.diag(var),
        np.diag(a * var),
        np.diag(var),
        _rotation(U, a.size, seed),
        factor,
        _batch(batch),
        sampler,
    )


def _normal(key, shape):
    """Standard normals drawn in float32, returned in the working dtype."""
    return jax.random.normal(key, shape, dtype=jnp.float32).astype(jnp.result_type(float))


def _uniform(key, shape):
    """Uniforms in (0, 1) drawn in float32, returned in the working dtype."""
    u = jax.random.uniform(key, shape, dtype=jnp.float32, minval=jnp.finfo(jnp.float32).tiny)
    return u.astype(jnp.result_type(float))


def sample(data: Data, key, batch: int):
    """Draw ``batch`` pairs ``(X, Y)``, each ``[batch, d]``, in the input basis."""
    d = data.d
    f = data.factor
    if data.model == "samples":  # rows of the data set, drawn with replacement
        k_row, k_swap = jax.random.split(key)
        idx = jax.random.randint(k_row, (batch,), 0, data.X.shape[0])
        X, Y = data.X[idx], data.Y[idx]
        if data.swap:
            flip = jax.random.bernoulli(k_swap, 0.5, (batch, 1))
            X, Y = jnp.where(flip, Y, X), jnp.where(flip, X, Y)
        return X, Y
    if data.model == "gaussian":
        z = _normal(key, (batch, 2 * d)) @ f.T
        Xf, Yf = z[:, :d], z[:, d:]
    elif data.model == "noisy_views":
        g = _normal(key, (3, batch, d))
        z = f[0] * g[0]
        n1 = f[1] * g[1]
        n2 = f[1] * (f[2] * g[1] + f[3] * g[2])
        Xf, Yf = z + n1, z + n2
    else:
        g = _normal(key, (2, batch, d))
        Xf = f[0] * g[0]
        Yf = f[1] * Xf + f[2] * g[1]
    return Xf @ data.U.T, Yf @ data.U.T


def chi2(key, df):
    """Exact ``chi2(df)`` draws (``df > 0``, any shape) by vectorized Marsaglia-Tsang rejection.

    ``chi2(df) = 2 Gamma(df / 2)``; ``Gamma(a) = Gamma(a + 1) U^(1/a)`` (so ``a + 1 >= 1``);
    all entries draw fresh candidates each round until every one is accepted
    (about one round for the large ``df`` of a minibatch). Much cheaper under
    ``vmap`` than ``jax.random.chisquare``, which splits a key per element.
    """
    a = 0.5 * df
    dd = a + 1.0 - 1.0 / 3.0
    c = 1.0 / jnp.sqrt(9.0 * dd)
    k_boost, key = jax.random.split(key)

    def body(state):
        i, out, done = state
        kx, ku = jax.random.split(jax.random.fold_in(key, i))
        x = _normal(kx, df.shape)
        u = _uniform(ku, df.shape)
        v = (1.0 + c * x) ** 3
        ok = (v > 0) & (
            jnp.log(u) < 0.5 * x**2 + dd - dd * v + dd * jnp.log(jnp.where(v > 0, v, 1.0))
        )
        return i + 1, jnp.where(~done & ok, dd * v, out), done | ok

    _, g, _ = jax.lax.while_loop(
        lambda s: ~jnp.all(s[2]), body, (0, jnp.zeros_like(a), jnp.zeros(df.shape, bool))
    )
    u = _uniform(k_boost, df.shape)
    return 2.0 * g * jnp.exp(jnp.log(u) / a)


def sample_moments(data: Data, key, batch: int):
    """Minibatch moments ``(Cxx, Cyx, Cyy)`` of ``batch`` samples, drawn as one Wishart matrix.

    ``B C = (F T)(F T)^T`` with ``T`` from the Bartlett decomposition of
    ``Wishart(I, B)`` (needs ``B >= 2d``); distributed exactly as the moments
    ``(1/B) sum_b z_b z_b^T`` of ``B`` samples ``z = (x, y)``.
    """
    d, p = data.d, 2 * data.d
    k_off, k_diag = jax.random.split(key)
    rows, cols = np.tril_indices(p, -1)
    T = jnp.zeros((p, p)).at[rows, cols].set(_normal(k_off, (rows.size,)))
    T = T + jnp.diag(jnp.sqrt(chi2(k_diag, batch - jnp.arange(p, dtype=T.dtype))))
    A = data.root @ T
    C = A @ A.T / batch
    return C[:d, :d], C[d:, :d], C[d:, d:]
