"""Real two-view data sets shipped inside installed wheels (theory §9); nothing is downloaded.

Each ``*_pairs`` function returns paired views ``(x, y)``, float64 ``[n, d]``,
deterministic under ``seed``; ``load_dataset(name, **options)`` wraps one in
``from_samples``. The data sets:

- ``"patches"`` (``patch_pairs``): ``p x p`` grey patches of the two photos of
  scikit-learn's ``load_sample_images`` (grey = mean of RGB, scaled to [0, 1]);
  ``y`` is the same patch shifted by ``shift`` pixels in a random one of the
  four axis directions; optional independent pixel noise of std ``noise``.
- ``"digits"`` (``digit_pairs``): scikit-learn's ``load_digits`` 8 x 8 digits
  (scaled to [0, 1]): two augmented views of one digit, each shifted by an
  independent random offset in ``{-shift .. shift}^2`` (zero fill) plus
  independent pixel noise of std ``noise``.
- ``"membrane"`` (``series_pairs``): a recorded membrane-potential trace of
  12000 samples shipped with matplotlib (``mpl-data/sample_data/membrane.dat``):
  ``x`` is a window of ``window`` consecutive samples, ``y`` the window ``lag``
  samples later (default: the next window); optional noise of std ``noise``.

``from_npz(path)`` reads a user's ``.npz`` holding arrays ``x`` and ``y``.
"""

from __future__ import annotations

import os
from typing import Any, Literal

import numpy as np
from jaxtyping import Float

from .._core import _validate
from .._core._budget import DEFAULT_MAX_MEMORY, parse_size
from .._core._io import load_npz
from ._data import Data
from ._real import from_samples

DATASETS = ("patches", "digits", "membrane")
SOURCE_OPTIONS = ("n_features", "power", "normalize", "symmetric", "batch")


def _int(name, value, lo, hi=None):
    ok = not isinstance(value, bool) and np.ndim(value) == 0
    ok = ok and float(value) == int(value) and value >= lo and (hi is None or value <= hi)
    if not ok:
        rng = f"[{lo}, {hi}]" if hi is not None else f">= {lo}"
        raise ValueError(f"{name} must be an integer {rng}; got {value!r}")
    return int(value)


# the largest noise std accepted: the shipped views are of order 1 (|x| <= 1.4)
MAX_NOISE = 1e6


def _noise(noise):
    noise = float(_validate.as_real("noise", noise))
    if not 0 <= noise <= MAX_NOISE:
        raise ValueError(
            f"noise must lie in [0, {MAX_NOISE:g}] (noise std; the views are of order 1); "
            f"got {noise:g}"
        )
    return noise


def _grey_images():
    from sklearn.datasets import load_sample_images

    return [np.asarray(im, float).mean(axis=2) / 255.0 for im in load_sample_images().images]


def patch_pairs(
    *, p: int = 8, shift: int = 1, n: int = 20000, noise: float = 0.0, seed: int = 0
) -> tuple[Float[np.ndarray, "n d"], Float[np.ndarray, "n d"]]:
    """``n`` pairs of ``p x p`` grey photo patches and their ``shift``-pixel shifts.

    Args:
        p: patch side, 2 .. 32 (``d = p^2``).  shift: 0 .. 16 pixels.
        n: number of pairs, >= 2.  noise: pixel noise std, >= 0 (independent per view).
        seed: integer >= 0 (patch positions, directions and noise).

    Returns ``(x, y)``, ``[n, p^2]`` (row-major pixels).

    Examples:
        Each ``y`` is its ``x`` moved by ``shift`` pixels along one axis: the
        ``(rows, cols)`` move that maps the patch interiors onto each other:

        >>> import numpy as np, jepa_flow as jf
        >>> x, y = jf.patch_pairs(p=6, shift=1, n=5, seed=0)
        >>> x.shape, bool(0.0 <= x.min() <= x.max() <= 1.0)  # grey levels
        ((5, 36), True)
        >>> def moves(a, b):
        ...     steps = [(1, 0), (-1, 0), (0, 1), (0, -1)]
        ...     inner = lambda m: m[1:-1, 1:-1]
        ...     return [s for s in steps if np.array_equal(inner(np.roll(b, s, (0, 1))), inner(a))]
        >>> [moves(a, b) for a, b in zip(x.reshape(-1, 6, 6), y.reshape(-1, 6, 6))]
        [[(1, 0)], [(1, 0)], [(1, 0)], [(1, 0)], [(0, -1)]]
        >>> bool(np.array_equal(jf.patch_pairs(p=6, shift=1, n=5, seed=0)[1], y))  # seeded
        True
    """
    p = _int("p", p, 2, 32)
    shift = _int("shift", shift, 0, 16)
    n = _int("n", n, 2)
    noise = _noise(noise)
    seed = _int("seed", seed, 0)
    rng = np.random.default_rng(seed)
    images = _grey_images()
    which = rng.integers(len(images), size=n)
    direction = rng.integers(4, size=n)
    dr = np.array([shift, -shift, 0, 0])[direction]
    dc = np.array([0, 0, shift, -shift])[direction]
    x = np.empty((n, p * p))
    y = np.empty((n, p * p))
    ar = np.arange(p)
    for i, im in enumerate(images):
        sel = np.nonzero(which == i)[0]
        H, W = im.shape
        r = rng.integers(shift, H - p - shift + 1, size=sel.size)
        c = rng.integers(shift, W - p - shift + 1, size=sel.size)
        rows = (r[:, None] + ar)[:, :, None]
        cols = (c[:, None] + ar)[:, None, :]
        x[sel] = im[rows, cols].reshape(sel.size, -1)
        y[sel] = im[rows + dr[sel, None, None], cols + dc[sel, None, None]].reshape(sel.size, -1)
    if noise > 0:
        x += noise * rng.standard_normal(x.shape)
        y += noise * rng.standard_normal(y.shape)
    return x, y


def _shifted(images, dr, dc):
    """Each ``images[k]`` (``[n, h, w]``) shifted by ``(dr[k], dc[k])`` pixels, zero fill."""
    n, h, w = images.shape
    pad = int(max(np.abs(dr).max(initial=0), np.abs(dc).max(initial=0)))
    big = np.pad(images, ((0, 0), (pad, pad), (pad, pad)))
    rows = (pad - dr[:, None] + np.arange(h))[:, :, None]
    cols = (pad - dc[:, None] + np.arange(w))[:, None, :]
    return big[np.arange(n)[:, None, None], rows, cols]


def digit_pairs(
    *, shift: int = 1, noise: float = 0.1, n: int = 10000, seed: int = 0
) -> tuple[Float[np.ndarray, "n d"], Float[np.ndarray, "n d"]]:
    """``n`` pairs of augmented views of scikit-learn's 8 x 8 digits (``d = 64``).

    Args:
        shift: largest shift per axis, 0 .. 3 pixels (each view independently).
        noise: pixel noise std, >= 0 (pixels in [0, 1]).
        n: number of pairs, >= 2 (digits drawn with replacement).  seed: integer >= 0.

    Examples:
        Without shifts the views differ only by their independent noise, of
        std ``noise * sqrt(2) = 0.141``; without noise either they are equal:

        >>> import numpy as np, jepa_flow as jf
        >>> x, y = jf.digit_pairs(shift=0, noise=0.1, n=2000, seed=0)
        >>> x.shape, round(float((y - x).std()), 3)
        ((2000, 64), 0.141)
        >>> x, y = jf.digit_pairs(shift=0, noise=0.0, n=100, seed=0)
        >>> bool(np.array_equal(x, y)), float(x.min()), float(x.max())  # pixels in [0, 1]
        (True, 0.0, 1.0)
    """
    shift = _int("shift", shift, 0, 3)
    noise = _noise(noise)
    n = _int("n", n, 2)
    seed = _int("seed", seed, 0)
    from sklearn.datasets import load_digits

    images = load_digits().images / 16.0
    rng = np.random.default_rng(seed)
    items = images[rng.integers(images.shape[0], size=n)]
    views = []
    for _ in range(2):
        dr, dc = rng.integers(-shift, shift + 1, size=(2, n))
        v = _shifted(items, dr, dc).reshape(n, -1)
        views.append(v + noise * rng.standard_normal(v.shape) if noise > 0 else v)
    return views[0], views[1]


def membrane_trace() -> np.ndarray:
    """The 12000-sample membrane-potential recording shipped with matplotlib (float64)."""
    from matplotlib import cbook

    with cbook.get_sample_data("membrane.dat", asfileobj=True) as f:
        return np.frombuffer(f.read(), dtype="<f4").astype(float)


def series_pairs(
    *,
    window: int = 16,
    lag: int | None = None,
    stride: int = 1,
    noise: float = 0.0,
    seed: int = 0,
) -> tuple[Float[np.ndarray, "n d"], Float[np.ndarray, "n d"]]:
    """Windows of the membrane trace and the windows ``lag`` samples later (slow features).

    Args:
        window: samples per window, 2 .. 256 (``d = window``).
        lag: offset of ``y`` after ``x``, 1 .. 1024; default ``window`` (the next window).
        stride: samples between successive pairs, >= 1 (1: every start).
        noise: std of independent noise added to each view, >= 0.  seed: integer >= 0.

    Examples:
        Every window start of the 12000 samples: ``12000 - lag - window + 1``
        pairs, and ``y[k]`` is ``x[k + lag]``:

        >>> import numpy as np, jepa_flow as jf
        >>> x, y = jf.series_pairs(window=16)  # lag = window
        >>> x.shape, bool(np.array_equal(y[:-16], x[16:]))
        ((11969, 16), True)
        >>> x, y = jf.series_pairs(window=4, lag=1, stride=10)
        >>> x.shape, bool(np.array_equal(y[:, :-1], x[:, 1:]))  # overlapping windows
        ((1200, 4), True)
    """
    window = _int("window", window, 2, 256)
    lag = window if lag is None else _int("lag", lag, 1, 1024)
    stride = _int("stride", stride, 1)
    noise = _noise(noise)
    seed = _int("seed", seed, 0)
    s = membrane_trace()
    starts = np.arange(0, s.size - lag - window + 1, stride)
    idx = starts[:, None] + np.arange(window)
    x, y = s[idx], s[idx + lag]
    if noise > 0:
        rng = np.random.default_rng(seed)
        x = x + noise * rng.standard_normal(x.shape)
        y = y + noise * rng.standard_normal(y.shape)
    return x, y


_LOADERS = {"patches": patch_pairs, "digits": digit_pairs, "membrane": series_pairs}
_LOADER_OPTIONS = {
    "patches": ("p", "shift", "n", "noise", "seed"),
    "digits": ("shift", "noise", "n", "seed"),
    "membrane": ("window", "lag", "stride", "noise", "seed"),
}


def _split(name, options, allowed):
    unknown = sorted(set(options) - set(allowed) - set(SOURCE_OPTIONS))
    if unknown:
        raise ValueError(
            f"unknown option(s) {unknown} for data set {name!r}; "
            f"allowed: {sorted(allowed) + sorted(SOURCE_OPTIONS)}"
        )
    own = {k: v for k, v in options.items() if k in allowed}
    return own, {k: v for k, v in options.items() if k in SOURCE_OPTIONS}


def load_dataset(name: Literal["patches", "digits", "membrane"], **options: Any) -> Data:
    """A shipped data set as a ``Data`` source (module docstring).

    ``options``: the data set's own (see ``patch_pairs``, ``digit_pairs``,
    ``series_pairs``) and those of ``from_samples`` (``n_features``, ``power``,
    ``normalize``, ``symmetric``, ``batch``). Unknown names raise ``ValueError``.

    Examples:
        The membrane trace in windows of 4 every 10 samples, largest variance 1:

        >>> import jepa_flow as jf
        >>> data = jf.load_dataset("membrane", window=4, stride=10, normalize="max")
        >>> data.model, data.d, data.X.shape, float(data.var[0])
        ('samples', 4, (1200, 4), 1.0)
        >>> jf.load_dataset("digits", window=4)
        Traceback (most recent call last):
        ...
        ValueError: unknown option(s) ['window'] for data set 'digits'; allowed: ['n', ...]
    """
    if name not in DATASETS:
        raise ValueError(f"name must be one of {DATASETS}; got {name!r}")
    own, src = _split(name, options, _LOADER_OPTIONS[name])
    x, y = _LOADERS[name](**own)
    return from_samples(x, y, **src)


def from_npz(
    path: str | os.PathLike, *, max_bytes: int = DEFAULT_MAX_MEMORY, **options: Any
) -> Data:
    """A ``Data`` source from a ``.npz`` file holding arrays ``x`` and ``y`` (``[n, d]``).

    ``options`` are those of ``from_samples``. Raises ``ValueError`` when the
    file is not a regular file, is larger than ``max_bytes`` (bytes or a size
    such as ``"8G"``; default the 4 GiB memory budget) unpacked, cannot be
    read as a ``.npz`` archive, or lacks ``x`` or ``y``.

    Examples:
        A round trip gives the source of ``from_samples`` on the same arrays:

        >>> import os, tempfile
        >>> import numpy as np, jepa_flow as jf
        >>> x = np.random.default_rng(0).standard_normal((100, 3))
        >>> y = x + 0.5 * np.random.default_rng(1).standard_normal((100, 3))
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = os.path.join(tmp, "views.npz")
        ...     np.savez(path, x=x, y=y)
        ...     data = jf.from_npz(path, normalize="trace")
        ...     np.savez(path, x=x)
        ...     jf.from_npz(path)
        Traceback (most recent call last):
        ...
        ValueError: path '...views.npz' must hold arrays 'x' and 'y'; missing ['y'] (has ['x'])
        >>> ref = jf.from_samples(x, y, normalize="trace")
        >>> bool(np.array_equal(data.Syx, ref.Syx)), float(data.var.mean())  # trace: mean 1
        (True, 1.0)
    """
    _, src = _split("npz", options, ())
    z = load_npz(path, "path", parse_size("max_bytes", max_bytes))
    missing = [k for k in ("x", "y") if k not in z]
    if missing:
        raise ValueError(
            f"path {str(path)!r} must hold arrays 'x' and 'y'; missing {missing} (has {list(z)})"
        )
    return from_samples(z["x"], z["y"], **src)
