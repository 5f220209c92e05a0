"""One chunk of a balanced sweep: its kernel inputs and the jitted computation (theory §3-§5).

A chunk is rows ``lo:hi`` of one (objective, method) group. Its kernel
inputs (``lam, var, depth, eps, fraction``; A's then B's for a pair) come
from the numeric axes of the grid: each axis's value at a row is
``values[(row // stride) % length]`` (C order), and ``derived_features``
completes each feature's ``lam, rho, var``.

With ``jax_enable_x64`` on (float64, the command line's default), the inputs
are generated on the devices inside the jitted chunk (``device_function``):
the host sends the row range and, once per sweep, the axes' values, so the
devices never wait for inputs and nothing per row crosses to them. In float32
(``jax_enable_x64`` off: no int64 row indices, and float64 inputs to round)
they are generated on the host in float64 and rounded (``kernel_inputs``).
Both give the inputs of ``SweepConfig.rows``, bit for bit.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from .._core._batch import float_dtype
from .._core._devices import batch_sharding, over_devices
from .._theory._critical_time import critical_time_kernel
from .._theory._fixed_point import wbar_star

KERNEL_INPUTS = ("lam", "var", "depth", "eps", "fraction")
# Padding rows: an easy feature that starts at its level (t_star = 0).
_FILL = {"lam": 1.0, "var": 1.0, "depth": 1.0, "eps": 0.5, "fraction": 0.5}
# Entries of the axes' table sent to the devices (32 KiB): every grid whose axes
# hold fewer values shares one compiled chunk per (objective, method, padded size).
MIN_TABLE = 4096


def input_names(pair: bool) -> list[str]:
    """The kernel inputs' names: ``KERNEL_INPUTS``, or A's then B's for a pair."""
    if not pair:
        return list(KERNEL_INPUTS)
    feature = [f"{k}_{{}}" if k in ("lam", "var") else k for k in KERNEL_INPUTS]
    return [n.format("a") for n in feature] + [n.format("b") for n in feature]


def _feature(lam, rho, var):
    """Complete ``(lam, rho, var)`` of one feature from lam and one of rho, var."""
    if rho is not None:
        return lam, rho, lam / rho
    return lam, lam / var, var


def derived_features(cols: dict, pair: bool) -> dict[str, np.ndarray]:
    """Each feature's ``lam, rho, var`` from the axis columns that give it."""
    if not pair:
        lam, rho, var = _feature(cols["lam"], cols.get("rho"), cols.get("var"))
        return {"lam": lam, "rho": rho, "var": var}
    lam_a, rho_a, var_a = _feature(cols["lam_a"], cols.get("rho_a"), cols.get("var_a"))
    lam_b = cols["lam_b"] if "lam_b" in cols else cols["lam_ratio"] * lam_a
    rho_b = cols.get("rho_b")
    if "rho_ratio" in cols:
        rho_b = cols["rho_ratio"] * rho_a
    var_b = cols.get("var_b")
    if "var_ratio" in cols:
        var_b = cols["var_ratio"] * var_a
    lam_b, rho_b, var_b = _feature(lam_b, rho_b, var_b)
    return dict(lam_a=lam_a, rho_a=rho_a, var_a=var_a, lam_b=lam_b, rho_b=rho_b, var_b=var_b)


def in_dtype(inputs: list[np.ndarray]) -> list[np.ndarray]:
    """The float64 kernel inputs rounded to the working dtype (a no-op in float64)."""
    dtype = float_dtype()
    return [np.asarray(x, dtype) for x in inputs]


def _one_device(objective: str, method: str, pair: bool, rtol: float | None = None):
    """The computation on one device's slice of a chunk (vmapped inside the kernel).

    Takes the kernel inputs (``lam, var, depth, eps, fraction``; for a pair
    sweep those of A then those of B), each a 1-D float64 array, and returns
    the outputs named by ``OUTPUTS`` or ``PAIR_OUTPUTS``.
    """

    def one_device(*args):
        if not pair:
            t_star, ok = critical_time_kernel(objective, method, *args, rtol=rtol)
            return t_star, wbar_star(objective, args[0], args[1], args[2]), ok
        # A and B in one batch: one adaptive loop, not two in sequence.
        n = args[0].shape[0]
        both = [jnp.concatenate([x, y]) for x, y in zip(args[:5], args[5:])]
        t_star, ok = critical_time_kernel(objective, method, *both, rtol=rtol)
        w = wbar_star(objective, both[0], both[1], both[2])
        t_a, t_b, w_a, w_b = t_star[:n], t_star[n:], w[:n], w[n:]
        first = jnp.where(t_b < t_a, 1, jnp.where(t_a < t_b, 0, 2)).astype(jnp.int8)
        return t_a, t_b, w_a, w_b, first, t_b / t_a, ok[:n] & ok[n:]

    return one_device


@functools.cache
def kernel_function(objective: str, method: str, pair: bool, devices: tuple, rtol):
    """``(dispatch, gather)`` for one chunk on ``devices`` (cached per arguments).

    ``dispatch(inputs)`` takes the kernel inputs as numpy arrays whose length
    is a multiple of ``len(devices)``, splits them evenly over the devices
    (device ``i`` gets the ``i``-th slice) and starts the computation
    asynchronously; ``gather(handle)`` waits and returns the outputs as numpy
    arrays in chunk order.

    The computation is a jitted ``jax.shard_map`` over a one-axis ``Mesh``:
    each device runs its own vmapped solve, with no collectives. ``rtol`` is
    the ODE tolerance (``sweep.rtol``; None: the default).
    """
    fn = jax.jit(over_devices(_one_device(objective, method, pair, rtol), devices))
    sharding = batch_sharding(devices)

    def dispatch(inputs):
        return fn(*(jax.device_put(x, sharding) for x in inputs))

    def gather(handle):
        return [np.asarray(x) for x in handle]

    return dispatch, gather


def kernel_inputs(config, lo: int, hi: int, padded: int) -> list[np.ndarray]:
    """Float64 kernel inputs for rows ``lo:hi`` of a group of ``config``, padded to ``padded``."""
    rows = config.rows(lo, hi)
    out = []
    for name in input_names(config.pair):
        buf = np.full(padded, _FILL[name.split("_")[0]], dtype=np.float64)
        buf[: hi - lo] = rows[name]
        out.append(buf)
    return out


def axis_table(numeric_axes) -> tuple[np.ndarray, np.ndarray]:
    """Every numeric axis's values in one float64 table, and each axis's geometry.

    Geometry, one row per axis: ``(offset, length, 1 / stride, 1 / length)``
    as float64 (``stride``: rows between two values of the axis). The table
    has ``MIN_TABLE`` entries, or the next power of two above the values, so
    grids share one compiled chunk unless their axes hold more values.
    """
    lengths = [len(values) for _, values in numeric_axes]
    strides = [float(np.prod(lengths[k + 1 :], dtype=np.int64)) for k in range(len(lengths))]
    offsets = np.cumsum([0] + lengths[:-1])
    table = np.zeros(max(MIN_TABLE, 1 << (sum(lengths) - 1).bit_length()), dtype=np.float64)
    for (_, values), offset in zip(numeric_axes, offsets):
        table[offset : offset + len(values)] = values
    geometry = [offsets, lengths, 1 / np.asarray(strides), 1 / np.asarray(lengths, float)]
    return table, np.asarray(geometry, dtype=np.float64).T


def _axis_index(row, length, inv_stride, inv_length):
    """``(row // stride) % length`` of float64 integers, without integer division.

    ``floor((x + 0.5) / m)`` is ``x // m`` for integers ``x, m``: the quotient
    is at least ``0.5 / m`` from an integer, and the float64 error of ``(x +
    0.5) * (1 / m)`` stays below that for ``x < 2**51`` (sweeps have at most
    1e12 rows). Vectorizes where int64 division does not.
    """
    quotient = jnp.floor((row + 0.5) * inv_stride)
    return quotient - jnp.floor((quotient + 0.5) * inv_length) * length


@functools.cache
def device_function(objective, method, pair, devices: tuple, rtol, names: tuple, padded: int):
    """The jitted chunk with its inputs generated on the devices (float64 only).

    ``fn(lo, n, table, geometry)`` computes rows ``lo:lo + n`` of a group
    (``padded`` rows, the last ones padding) from ``axis_table``'s table and
    geometry of the numeric axes ``names``; device ``i`` generates and solves
    the ``i``-th slice. Returns the outputs as ``_one_device`` does.
    """
    one_device = _one_device(objective, method, pair, rtol)
    per_device = padded // len(devices)

    def chunk(lo, n, table, geometry):
        first = lo
        if len(devices) > 1:
            first = lo + per_device * jax.lax.axis_index("batch").astype(jnp.int64)
        row = first + jnp.arange(per_device, dtype=jnp.int64)
        at = row.astype(jnp.float64)  # exact: rows < 1e12
        cols = {}
        for k, name in enumerate(names):
            index = geometry[k, 0] + _axis_index(at, *(geometry[k, j] for j in (1, 2, 3)))
            cols[name] = table[index.astype(jnp.int64)]
        cols.update(derived_features(cols, pair))
        valid = row < lo + n
        inputs = [jnp.where(valid, cols[k], _FILL[k.split("_")[0]]) for k in input_names(pair)]
        return one_device(*inputs)

    if len(devices) > 1:
        mesh = batch_sharding(devices).mesh
        chunk = jax.shard_map(
            chunk,
            mesh=mesh,
            in_specs=(PartitionSpec(),) * 4,
            out_specs=PartitionSpec("batch"),
            check_vma=False,
        )
    return jax.jit(chunk)


def on_devices(arrays, devices: tuple) -> list:
    """``arrays`` copied whole onto every device of ``devices`` (replicated)."""
    if len(devices) == 1:
        return [jax.device_put(x, devices[0]) for x in arrays]
    sharding = NamedSharding(batch_sharding(devices).mesh, PartitionSpec())
    return [jax.device_put(x, sharding) for x in arrays]


def inputs_on_devices() -> bool:
    """Whether chunks generate their inputs on the devices (float64: int64 row indices)."""
    return np.dtype(float_dtype()) == np.float64
