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

import zipfile

import numpy as np

from .._core import _validate
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


def _noise(noise):
    noise = float(_validate.as_real("noise", noise))
    if noise < 0:
        raise ValueError(f"noise must be >= 0 (pixel noise std); got {noise}")
    return noise


def _grey_images():
    from sklearn.datasets import load_sample_images

    return [np.asarray(im, float).mean(axis=2) / 255.0 for im in load_sample_images().images]


def patch_pairs(*, p=8, shift=1, n=20000, noise=0.0, seed=0):
    """``n`` pairs of ``p x p`` grey photo patches and their ``shift``-pixel shifts.

    Args:
        p: patch side, 2 .. 32 (``d = p^2``).  shift: 0 .. 16 pixels.
        n: number of pairs, >= 2.  noise: pixel noise std, >= 0 (independent per view).
        seed: integer >= 0 (patch positions, directions and noise).

    Returns ``(x, y)``, ``[n, p^2]`` (row-major pixels).
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


def digit_pairs(*, shift=1, noise=0.1, n=10000, seed=0):
    """``n`` pairs of augmented views of scikit-learn's 8 x 8 digits (``d = 64``).

    Args:
        shift: largest shift per axis, 0 .. 3 pixels (each view independently).
        noise: pixel noise std, >= 0 (pixels in [0, 1]).
        n: number of pairs, >= 2 (digits drawn with replacement).  seed: integer >= 0.
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


def series_pairs(*, window=16, lag=None, stride=1, noise=0.0, seed=0):
    """Windows of the membrane trace and the windows ``lag`` samples later (slow features).

    Args:
        window: samples per window, 2 .. 256 (``d = window``).
        lag: offset of ``y`` after ``x``, 1 .. 1024; default ``window`` (the next window).
        stride: samples between successive pairs, >= 1 (1: every start).
        noise: std of independent noise added to each view, >= 0.  seed: integer >= 0.
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


def load_dataset(name, **options) -> Data:
    """A shipped data set as a ``Data`` source (module docstring).

    ``options``: the data set's own (see ``patch_pairs``, ``digit_pairs``,
    ``series_pairs``) and those of ``from_samples`` (``n_features``, ``power``,
    ``normalize``, ``symmetric``, ``batch``). Unknown names raise ``ValueError``.
    """
    if name not in DATASETS:
        raise ValueError(f"name must be one of {DATASETS}; got {name!r}")
    own, src = _split(name, options, _LOADER_OPTIONS[name])
    x, y = _LOADERS[name](**own)
    return from_samples(x, y, **src)


def from_npz(path, **options) -> Data:
    """A ``Data`` source from a ``.npz`` file holding arrays ``x`` and ``y`` (``[n, d]``).

    ``options`` are those of ``from_samples``. Raises ``ValueError`` when the
    file cannot be read or lacks ``x`` or ``y``.
    """
    _, src = _split("npz", options, ())
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in ("x", "y") if k not in z.files]
            if missing:
                raise ValueError(
                    f"path {str(path)!r} must hold arrays 'x' and 'y'; missing {missing} "
                    f"(has {z.files})"
                )
            x, y = z["x"], z["y"]
    except (OSError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(f"path {str(path)!r} is not a readable .npz file: {err}") from err
    return from_samples(x, y, **src)
