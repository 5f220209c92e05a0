"""Element-wise value checks that run where the data lives.

A public numerical function checks the *types* and *shapes* of its arguments
on the host, in constant time per argument (``as_input``), and every *value*
inside its compiled function: each check below is element-wise, so it fuses
with the computation and costs no pass of its own, and the compiled function
returns the earliest violated check as one integer (``violation_code``:
``NONE`` when every value is allowed). Only when that integer names a check
does the host look at the values again (``describe``) to write the one-line
message of ``_validate``: the parameter, its allowed range, the first
offending value and its index. Under ``jax.jit`` or ``jax.vmap`` (traced
arguments) the same integer raises through ``equinox.branched_error_if``
(``raise_if_traced``), and the message names the parameter and its range.

Checks are ``(name, test)`` pairs in a fixed order (``plan``): each
parameter's finiteness and range in argument order, then the subnormal checks;
the message is the first check, in that order, that any element violates,
as it was when the checks ran on the host one after the other.

Values are tested on their bit patterns where the device's arithmetic would
flush a subnormal to zero (``x > 0`` is False for ``5e-324`` on a CPU that
sets denormals-are-zero): a finite float is ``> 0`` exactly when its bits, read
as a signed integer, are ``> 0``.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from . import _validate

# parameter kind -> its tests, in order
KINDS = {
    "real": ("finite",),
    "positive": ("finite", "positive"),
    "nonneg": ("finite", "nonneg"),
    "depth": ("finite", "depth"),
    "fraction": ("finite", "fraction"),
}
NONE = 2**30  # violation code of an allowed value


def plan(kinds: dict[str, str], subnormal=()) -> tuple[tuple[str, str], ...]:
    """The checks of parameters ``{name: kind}``, in reporting order.

    Examples:
        >>> plan({"lam": "real", "var": "positive"}, subnormal=("lam", "var"))
        (('lam', 'finite'), ('var', 'finite'), ('var', 'positive'), ('lam', 'subnormal'), \
('var', 'subnormal'))
    """
    checks = tuple((name, test) for name, kind in kinds.items() for test in KINDS[kind])
    return checks + tuple((name, "subnormal") for name in subnormal)


def message(check: tuple[str, str]) -> str:
    """The message of a check, without the offending value."""
    name, test = check
    return _validate.MESSAGES[test].format(name=name)


def _bits(x):
    """``x``'s bit patterns as signed integers of its width (numpy or jax)."""
    if isinstance(x, (np.ndarray, np.generic)):
        return np.asarray(x).view(np.int64 if x.dtype.itemsize == 8 else np.int32)
    return jax.lax.bitcast_convert_type(x, jnp.int64 if x.dtype.itemsize == 8 else jnp.int32)


def violated(test: str, x):
    """Where ``x`` (a float numpy or jax array) fails ``test``: a bool mask."""
    xp = np if isinstance(x, (np.ndarray, np.generic)) else jnp
    if test == "finite":
        return ~xp.isfinite(x)
    if test == "depth":
        return (x != xp.round(x)) | (x < 1) | (x > _validate.MAX_DEPTH)
    bits = _bits(x)
    if test == "positive":
        return bits <= 0
    if test == "fraction":
        return (bits <= 0) | (x >= 1)
    if test == "nonneg":
        return (bits < 0) & (bits != xp.iinfo(bits.dtype).min)  # -0.0 is allowed
    if x.dtype.itemsize != 8:  # "subnormal": in float64 only (a float32 value is normal there)
        return xp.zeros(x.shape, bool)
    magnitude = bits & xp.iinfo(bits.dtype).max
    return (magnitude != 0) & (magnitude < _bits(np.float64(_validate.TINY)))


def violation_code(checks, arrays: dict):
    """Element-wise: the index in ``checks`` of the first check each element fails, or
    ``NONE`` (arrays of one broadcast shape, numpy or jax; reduce with ``min``)."""
    xp = np if all(isinstance(a, np.ndarray) for a in arrays.values()) else jnp
    shape = xp.broadcast_shapes(*(a.shape for a in arrays.values())) if arrays else ()
    code = xp.full(shape, NONE, np.int32)
    for k in reversed(range(len(checks))):
        name, test = checks[k]
        code = xp.where(violated(test, arrays[name]), np.int32(k), code)
    return code


def describe(check: tuple[str, str], value) -> ValueError:
    """The one-line error for ``check``, naming the first element of ``value`` that fails it.

    ``value`` is the argument as it went to the device (read back here: this
    runs only when a check failed).
    """
    arr = np.asarray(jax.device_get(value), dtype=np.float64)
    bad = violated(check[1], arr)
    if not bad.any():  # not expected: the device saw the same values
        return ValueError(message(check))
    return ValueError(f"{message(check)}; {_validate.first_bad(arr, bad)}")


def raise_if_traced(outputs, code, checks):
    """``outputs``, raising the first failed check's message at run time (under jit/vmap)."""
    if not checks:
        return outputs
    first = jnp.min(code, initial=NONE)
    index = jnp.minimum(first, len(checks) - 1)
    return eqx.branched_error_if(outputs, first != NONE, index, [message(c) for c in checks])


def is_traced(value) -> bool:
    return isinstance(value, jax.core.Tracer)


def as_input(name: str, value, x64: bool):
    """``(array, checked)``: ``value`` ready for the device, in constant time for arrays.

    JAX arrays (and tracers) and numpy arrays whose dtype the device holds
    without loss stay as they are (``checked`` False: their values are checked
    on the device). Anything else (lists, Python numbers, object arrays) goes
    through ``_validate.as_real``; without x64, float64 values are checked
    here before they are rounded to float32 (``checked`` True), since the
    rounding would turn ``1e-50`` into an invalid 0 and ``1e300`` into inf
    (both are valid inputs that the kernels flag as out of the float range).
    Refuses non-numeric input with the one-line message of ``_validate``.
    """
    if isinstance(value, jax.Array):
        if value.dtype.kind not in "iuf":
            raise _validate.not_a_number(name, value)
        return value, False
    if isinstance(value, np.ndarray) and value.dtype.kind in "iuf":
        if x64 or value.dtype.itemsize <= 4:
            return value, False
    arr = _validate.as_real(name, value)
    return arr, not x64


def check_on_host(checks, arrays: dict) -> None:
    """Run ``checks`` on host (numpy) arrays and raise the first failure's message."""
    for check in checks:
        name, test = check
        if violated(test, arrays[name]).any():
            raise describe(check, arrays[name])
