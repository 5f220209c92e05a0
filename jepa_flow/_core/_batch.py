"""Batched public computations: from the user's arguments to one compiled call.

``run(program, values)`` takes the arguments of a public numerical function
(``critical_time``, ``general_critical_time``, ``simulate``, ``fixed_point``)
to its compiled ``Program`` with as little host work as possible: types and
shapes are checked on the host in constant time, JAX arrays stay on their
device, and the values are checked inside the compiled function
(``_core._checks``), which returns the first failed check and the members'
status counts as one small integer vector, the only thing read back. Outputs
stay JAX arrays. The same functions trace under ``jax.jit`` and ``jax.vmap``.

Host (numpy) batches of up to ``SMALL`` members are broadcast, flattened and
padded to a bucket size on the host (a power of two, at least 16; above 8192
the next multiple of an eighth of a power of two), so that calls with new
values, and with sizes in the same bucket, reuse one compiled function
instead of recompiling (swept values are traced arrays, never constants in a
trace). Larger batches, and JAX arrays of any size, go to the compiled
function as they are and are broadcast and padded inside it: one compilation
per shape, as with ``jax.jit`` (padding a large batch on the host would cost
more than everything else the call does outside its computation).

The working dtype is float64 when ``jax_enable_x64`` is on and float32
otherwise. Both are supported: tolerances, step limits and iteration counts
follow ``jnp.finfo(dtype)``, and the accuracy reached in float32 is measured
in docs/precision.md. Inputs are rounded to the dtype inside the compiled
function (float64 host values in float32 runs are checked before rounding).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from . import _checks, _validate
from ._devices import local_devices, over_devices

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


# Batches up to this many members are padded to ``bucket`` sizes on their way in, so
# that calls of similar sizes share one compiled function; a larger batch goes to
# its compiled function as it is (one compilation per shape), since padding it
# would cost a pass over its memory.
SMALL = 1 << 16


@dataclasses.dataclass(frozen=True)
class Program:
    """A batched public computation, static and hashable (the compile-cache key).

    ``kernel(flat, *extras) -> (outputs, status)`` maps a dict of flat,
    checked arrays of one length ``n`` (``params`` order; ``extras`` are
    unbatched arrays) to a tuple of ``[n, ...]`` arrays and an integer status
    per member in ``[0, n_status)`` (or None). The status is not returned:
    ``needs_counts(outputs)`` (a reduction over an output, such as "is any
    time NaN") comes back with the result, and only where it is True does a
    second call run the kernel again to count the members of each status for
    the caller's warning (the common case costs one pass over an output that
    exists anyway, instead of writing and reducing a status array). ``finish(outputs)``
    runs inside the compiled function on the outputs reshaped to
    ``[*shape, ...]``. Two programs with the same ``key`` compute the same
    thing (the kernel and finish are not compared).
    """

    key: tuple
    params: tuple  # ((name, kind), ...): kinds of ``_checks.KINDS``
    fill: tuple  # ((name, padding value), ...), in ``params`` order
    kernel: Callable = dataclasses.field(compare=False)
    subnormal: tuple = ()  # names checked for float64 subnormals
    n_status: int = 0
    needs_counts: Callable | None = dataclasses.field(default=None, compare=False)
    multiple: int = 1  # a large batch is padded to a multiple of this (per device)
    finish: Callable | None = dataclasses.field(default=None, compare=False)
    # padding of the extras to bucket sizes, on the bucketed path only
    pad_extras: Callable | None = dataclasses.field(default=None, compare=False)
    multi_device: bool = True  # split over the local devices (kernels without extras)


def run(program: Program, values: dict, extras=()):
    """``program`` on ``values`` (its parameters): ``(outputs, counts, n)``.

    Types and shapes are checked here (constant time per argument), values
    inside the compiled function, which returns the first failed check and
    the status counts as one small integer vector: the only thing read back
    (and only ``outputs`` and ``counts``, a numpy array, come out; ``counts``
    is None under ``jax.jit``/``jax.vmap``, where a failed check raises at
    run time through ``equinox``). ``n`` is the number of members.
    """
    x64 = bool(jax.config.jax_enable_x64)
    raw, on_host = {}, set()
    for name, _ in program.params:
        raw[name], checked = _checks.as_input(name, values[name], x64)
        if checked:
            on_host.add(name)
    shapes = {name: np.shape(x) for name, x in raw.items()}
    shape = _validate.broadcast_shape(shapes)
    n = math.prod(shape)
    checks = _plan(program.params, program.subnormal)
    if on_host:  # float64 values rounded to float32: checked before the rounding
        _checks.check_on_host([c for c in checks if c[0] in on_host], raw)
        with np.errstate(over="ignore", under="ignore"):
            raw.update({k: raw[k].astype(np.float32) for k in on_host})
        checks = tuple(c for c in checks if c[0] not in on_host)
    if any(_checks.is_traced(x) for x in (*raw.values(), *extras)):
        outputs, code, _ = _body(program, checks, (), raw, extras, pad=False)
        return _checks.raise_if_traced(outputs, code, checks), None, n
    devices = local_devices() if program.multi_device else local_devices()[:1]
    if n < 64 * len(devices):  # small batches: one device is quicker
        devices = devices[:1]
    bucketed = n <= SMALL and all(isinstance(x, np.ndarray) for x in raw.values())
    if bucketed:
        inputs = _stack_padded(program, raw, shape, n, len(devices))
        compiled = functools.partial(_flat_program, program, checks, devices)
        extras = program.pad_extras(extras) if program.pad_extras else extras
    else:
        inputs, compiled = raw, functools.partial(_shaped_program, program, checks, devices)
    outputs, summary = compiled(False)(inputs, *extras)
    first, worth_counting = jax.device_get(summary)  # waits for the result: one transfer
    if first != _checks.NONE:
        check = checks[first]
        raise _checks.describe(check, raw[check[0]])
    counts = None
    if worth_counting:  # members to warn about: their status counted (a second run)
        counts = jax.device_get(compiled(True)(inputs, *extras, n=n))
    if bucketed:
        outputs = _unpad(program, shape, outputs)
    return outputs, counts, n


@functools.cache
def _plan(params, subnormal):
    return _checks.plan(dict(params), subnormal)


def _stack_padded(program, raw, shape, n, n_devices) -> np.ndarray:
    """The (host) parameters broadcast, flattened, padded to a bucket, stacked ``[k, size]``."""
    stacked = np.empty((len(program.fill), bucket(n, n_devices)), float_dtype())
    with np.errstate(over="ignore", under="ignore"):  # out of float32's range: flagged later
        for row, (name, fill) in zip(stacked, program.fill):
            row[n:] = fill
            row[:n].reshape(shape)[...] = raw[name]
    return stacked


@functools.partial(jax.jit, static_argnames=("program", "shape"))
def _unpad(program, shape, outputs):
    """The first ``prod(shape)`` members of padded outputs, shaped, finished."""
    n = math.prod(shape)
    outputs = tuple(o[:n].reshape(shape + o.shape[1:]) for o in outputs)
    return program.finish(outputs) if program.finish else outputs


def _kernel(program, devices):
    """The kernel, split over ``devices`` when there are several."""
    return over_devices(program.kernel, devices) if len(devices) > 1 else program.kernel


def _summary(program, code, outputs):
    """``[first failed check (or NONE), needs_counts(outputs) (or 0)]`` as int32."""
    first = jnp.min(code, initial=_checks.NONE)
    worth = program.needs_counts(outputs) if program.needs_counts else jnp.zeros((), bool)
    return jnp.stack([first.astype(jnp.int32), worth.astype(jnp.int32)])


def _counts(program, status, n):
    """Members of each status among the first ``n`` (the rest is padding)."""
    real = (jnp.arange(status.shape[0]) < n)[:, None]
    hits = (status[:, None] == jnp.arange(program.n_status)) & real
    return jnp.sum(hits, axis=0, dtype=jnp.int32)


_JITTED = []  # every jitted program made here (``compiled_count``)


def _registered(fn):
    _JITTED.append(fn)
    return fn


def compiled_count() -> int:
    """How many compilations the programs hold, all together (tests: new values and
    sizes in a bucket must not add any)."""
    return sum(fn._cache_size() for fn in _JITTED)


@functools.cache
def _flat_program(program, checks, devices, count):
    """Jitted: checks and kernel on stacked, padded rows (one compilation per bucket):
    ``(outputs, summary)``, or with ``count`` the status counts of the first ``n``."""
    kernel = _kernel(program, devices)

    def flat_program(stacked, *extras, n=None):
        flat = {name: stacked[i] for i, (name, _) in enumerate(program.params)}
        code = _checks.violation_code(checks, flat)
        outputs, status = kernel(flat, *extras)
        if count:
            return _counts(program, status, n)
        return outputs, _summary(program, code, outputs)

    return _registered(jax.jit(flat_program))


@functools.cache
def _shaped_program(program, checks, devices, count):
    """Jitted: broadcast, checks, kernel and reshape of arguments as given (per shape);
    returns as ``_flat_program``."""

    def shaped_program(raw, *extras, n=None):
        outputs, code, status = _body(program, checks, devices, raw, extras, pad=True)
        if count:
            return _counts(program, status, n)
        return outputs, _summary(program, code, outputs)

    return _registered(jax.jit(shaped_program))


def _body(program, checks, devices, raw, extras, pad):
    """Broadcast and flatten ``raw`` (padded to the program's multiple when ``pad``), check,
    run the kernel, reshape: ``(outputs, violation code, status)``. Traceable."""
    dtype = float_dtype()
    shape = jnp.broadcast_shapes(*(jnp.shape(raw[name]) for name, _ in program.params))
    n = math.prod(shape)
    m = program.multiple * max(len(devices), 1)
    size = max(-(-n // m), 1) * m if pad else n
    flat = {}
    for name, fill in program.fill:
        x = jnp.broadcast_to(jnp.asarray(raw[name]).astype(dtype), shape).ravel()
        flat[name] = jnp.pad(x, (0, size - n), constant_values=fill) if size > n else x
    code = _checks.violation_code(checks, flat)
    outputs, status = _kernel(program, devices)(flat, *extras)
    outputs = tuple(o[:n].reshape(shape + o.shape[1:]) for o in outputs)
    return (program.finish(outputs) if program.finish else outputs), code, status
