"""Flatten, pad and dtype handling at the boundary between numpy and jit.

Public functions broadcast their arguments, flatten them to one batch axis and
pad that axis to a bucket size (a power of two, at least 16; for large batches
the next multiple of an eighth of a power of two), so that calls with new
values, and with sizes in the same bucket, reuse one compiled function instead
of recompiling (swept values are traced arrays, never constants in a trace).

The working dtype is float64 when ``jax_enable_x64`` is on and float32
otherwise. Both are supported: tolerances, step limits and iteration counts
follow ``jnp.finfo(dtype)``, and the accuracy reached in float32 is measured
in docs/precision.md. Inputs are rounded to the dtype at this boundary.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

MIN_BUCKET = 16


def float_dtype():
    """float64 when ``jax_enable_x64`` is on, else float32 (both supported)."""
    return jnp.float64 if jax.config.jax_enable_x64 else jnp.float32


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
        with np.errstate(over="ignore"):  # out of the dtype's range: flagged by the kernels
            out[name] = jnp.asarray(flat.astype(dtype), dtype=dtype)
    return out, n
