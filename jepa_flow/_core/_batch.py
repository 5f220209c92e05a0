"""Flatten, pad and dtype handling at the boundary between numpy and jit.

Public functions broadcast their arguments, flatten them to one batch axis and
pad that axis to a bucket size (a power of two, at least 16; for large batches
the next multiple of an eighth of a power of two), so that calls with new
values, and with sizes in the same bucket, reuse one compiled function instead
of recompiling (swept values are traced arrays, never constants in a trace).
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np

MIN_BUCKET = 16
_warned_x64 = False


def float_dtype():
    """float64 when ``jax_enable_x64`` is on, else float32 (with a one-time warning)."""
    global _warned_x64
    if jax.config.jax_enable_x64:
        return jnp.float64
    if not _warned_x64:
        warnings.warn(
            "jepa_flow is running in float32, which does not reach the documented accuracy; "
            "call jax.config.update('jax_enable_x64', True) (or set JAX_ENABLE_X64=1) "
            "before using jax.",
            stacklevel=3,
        )
        _warned_x64 = True
    return jnp.float32


def bucket(n: int, multiple: int = 1) -> int:
    """The padded batch size for ``n`` members, rounded up to ``multiple``.

    A power of two up to 8192; above, a multiple of an eighth of the power of
    two below ``n`` (so at most 12.5 % of a large batch is padding, and sizes
    stay multiples of 1024 for the chunked ODE solve).
    """
    n = max(int(n), 1)
    if n <= 8192:
        size = max(MIN_BUCKET, 1 << (n - 1).bit_length())
    else:
        step = 1 << (n.bit_length() - 4)
        size = -(-n // step) * step
    return -(-size // multiple) * multiple


def flatten_padded(
    arrays: dict[str, np.ndarray], fill: dict[str, float], multiple: int = 1
) -> tuple[dict, int]:
    """Flatten same-shape arrays and pad them to ``bucket(size, multiple)`` with ``fill``."""
    n = next(iter(arrays.values())).size
    size = bucket(n, multiple)
    dtype = float_dtype()
    out = {}
    for name, arr in arrays.items():
        flat = np.full(size, fill[name], dtype=np.float64)
        flat[:n] = np.ravel(arr)
        out[name] = jnp.asarray(flat, dtype=dtype)
    return out, n
