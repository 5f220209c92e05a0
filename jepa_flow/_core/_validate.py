"""Argument checks that run before anything is traced or written.

Every public entry point converts its inputs with these helpers, so a bad value
fails fast with a ``ValueError`` that names the argument, shows the offending
value and states the allowed range, and no compilation or file write happens.
"""

from __future__ import annotations

import numbers

import numpy as np

OBJECTIVES = ("jepa", "mae")
METHODS = ("exact", "ode", "series")
MAX_DEPTH = 1024
TINY = float(np.finfo(np.float64).tiny)  # 2.2e-308, the smallest normal float64
# The messages of the value checks (``{name}``: the parameter), shared by the host
# checks below and the device checks of ``_checks``; the offending value follows.
MESSAGES = {
    "finite": "{name} must be finite (no NaN or inf)",
    "positive": "{name} must be > 0 (allowed range (0, inf))",
    "nonneg": "{name} must be >= 0 (allowed range [0, inf))",
    "depth": f"{{name}} must be an integer in [1, {MAX_DEPTH}]",
    "fraction": "{name} must lie in the open interval (0, 1)",
    "subnormal": f"{{name}} must be 0 or at least {TINY:.3g} in magnitude (subnormal float64 "
    "values are flushed to zero)",
}


def first_bad(arr: np.ndarray, bad: np.ndarray) -> str:
    """Describe the first offending entry of ``arr`` (value and index)."""
    idx = tuple(int(i) for i in np.argwhere(bad)[0])
    val = (arr[idx] if arr.ndim else arr[()]).item()
    where = f" at index {idx}" if arr.ndim else ""
    return f"got {val!r}{where}"


def check_objective(objective) -> str:
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}; got {objective!r}")
    return objective


def check_method(method) -> str:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}")
    return method


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def not_a_number(name: str, value) -> ValueError:
    return ValueError(f"{name} must be a real number or array of them; got {_short(value)}")


def as_real(name: str, value) -> np.ndarray:
    """``value`` as a float64 numpy array with every entry finite.

    Refuses ``None``, strings, booleans and complex numbers (which numpy would
    otherwise turn into NaN, a parsed number, 0/1 or an error), and integers too
    large for float64, each with a one-line ``ValueError`` naming ``name``.
    """
    if value is None or isinstance(value, (str, bytes)):
        raise not_a_number(name, value)
    try:
        raw = np.asarray(value)
    except (TypeError, ValueError, OverflowError) as err:  # ragged nested lists
        raise not_a_number(name, value) from err
    if raw.dtype.kind == "O":
        for item in raw.flat:
            if isinstance(item, (bool, np.bool_)) or not isinstance(item, numbers.Real):
                raise not_a_number(name, value)
    elif raw.dtype.kind not in "iuf":
        raise not_a_number(name, value)
    try:
        arr = np.asarray(raw, dtype=np.float64)
    except OverflowError:
        raise ValueError(
            f"{name} must be finite and within float64 range (|x| < 1.8e308); got {_short(value)}"
        ) from None
    except (TypeError, ValueError) as err:
        raise not_a_number(name, value) from err
    _raise_if(name, "finite", arr, ~np.isfinite(arr))
    return arr


def _raise_if(name: str, test: str, arr: np.ndarray, bad: np.ndarray) -> None:
    """Raise ``MESSAGES[test]`` for ``name``, with the first entry of ``arr`` marked ``bad``."""
    if bad.any():
        raise ValueError(f"{MESSAGES[test].format(name=name)}; {first_bad(arr, bad)}")


def as_positive(name: str, value) -> np.ndarray:
    arr = as_real(name, value)
    _raise_if(name, "positive", arr, arr <= 0)
    return arr


def as_nonnegative(name: str, value) -> np.ndarray:
    arr = as_real(name, value)
    _raise_if(name, "nonneg", arr, arr < 0)
    return arr


def as_depth(value) -> np.ndarray:
    arr = as_real("depth", value)
    _raise_if("depth", "depth", arr, (arr != np.round(arr)) | (arr < 1) | (arr > MAX_DEPTH))
    return arr


def as_fraction(value) -> np.ndarray:
    arr = as_real("fraction", value)
    _raise_if("fraction", "fraction", arr, (arr <= 0) | (arr >= 1))
    return arr


def check_rtol(value, lowest: float, dtype_name: str) -> float:
    """A relative tolerance: a real number in ``[lowest, 0.1]`` (``lowest`` follows the dtype)."""
    try:
        rtol = float(value)
    except (TypeError, ValueError) as err:
        raise ValueError(f"rtol must be a real number; got {value!r}") from err
    if not (lowest <= rtol <= 0.1):
        raise ValueError(
            f"rtol must lie in [{lowest:.3g}, 0.1] in {dtype_name} (16 machine epsilons "
            f"at least); got {value!r}"
        )
    return rtol


def as_times(value) -> np.ndarray:
    """Save times: a 1-D, non-negative, non-decreasing array."""
    arr = as_real("t", value)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"t must be a non-empty 1-D array of times; got shape {arr.shape}")
    bad = arr < 0
    if bad.any():
        raise ValueError(f"t must be >= 0 (allowed range [0, inf)); {first_bad(arr, bad)}")
    if np.any(np.diff(arr) < 0):
        raise ValueError("t must be non-decreasing")
    return arr


def broadcast_shape(shapes: dict[str, tuple]) -> tuple[int, ...]:
    """The shape named shapes broadcast to (numpy rules), or say which clash."""
    first, *rest = shapes.values()
    if all(s == first for s in rest):
        return tuple(first)
    try:
        return np.broadcast_shapes(*shapes.values())
    except ValueError as err:
        text = ", ".join(f"{k}: {tuple(s)}" for k, s in shapes.items())
        raise ValueError(f"parameter shapes do not broadcast together ({text})") from err


def broadcast(**arrays: np.ndarray) -> tuple[tuple[int, ...], dict[str, np.ndarray]]:
    """Broadcast named arrays together (numpy rules) or say which shapes clash."""
    shape = broadcast_shape({k: a.shape for k, a in arrays.items()})
    return shape, {k: np.broadcast_to(a, shape) for k, a in arrays.items()}


_ABSENT = object()  # "not a parameter of this function", unlike an explicit None


def _no_subnormal(name: str, arr: np.ndarray) -> np.ndarray:
    """Refuse subnormal values: XLA on CPU flushes them to zero, so they would be
    computed as 0 (``lam = var = 5e-324`` would give ``wbar* = 0`` instead of 1)."""
    _raise_if(name, "subnormal", arr, (arr != 0) & (np.abs(arr) < TINY))
    return arr


def feature_params(lam, var, depth, eps=_ABSENT, fraction=_ABSENT):
    """Check and broadcast the per-feature parameters shared by the public API.

    ``eps`` and ``fraction`` are checked when given (``None`` is refused);
    leave them out for functions that do not take them. Returns ``(shape,
    dict)`` with float64 arrays of the broadcast shape.
    """
    arrays = {"lam": as_real("lam", lam), "var": as_positive("var", var), "depth": as_depth(depth)}
    if eps is not _ABSENT:
        arrays["eps"] = as_positive("eps", eps)
    if fraction is not _ABSENT:
        arrays["fraction"] = as_fraction(fraction)
    for name in ("lam", "var", "eps", "fraction"):
        if name in arrays:
            _no_subnormal(name, arrays[name])
    return broadcast(**arrays)
