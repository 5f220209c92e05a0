"""Spreading a flat batch over the local devices.

A batch is split evenly over a one-axis ``Mesh`` of ``jax.local_devices()``
with ``jax.shard_map``, so each device runs its own vmapped solve (its own
while loop, no collectives: automatic sharding of a vmapped adaptive solve is
known to be far slower, ENGINEERING-NOTES). On a CPU, JAX shows one device
unless told otherwise; ``use_all_cpu_cores()`` (called by the ``jepa-flow``
command) exposes one device per core.
"""

from __future__ import annotations

import functools
import os

import jax
import numpy as np
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P


def use_all_cpu_cores() -> None:
    """Expose one CPU device per core.

    A no-op when the user already chose (``jax_num_cpu_devices`` set, or
    ``--xla_force_host_platform_device_count`` in ``XLA_FLAGS``) and once
    JAX's backends are running.
    """
    if jax.config.jax_num_cpu_devices != -1 or "device_count" in os.environ.get("XLA_FLAGS", ""):
        return
    try:
        jax.config.update("jax_num_cpu_devices", os.cpu_count() or 1)
    except RuntimeError:  # backends already initialized: keep what is there
        pass


def device_count() -> int:
    return jax.local_device_count()


def over_devices(fn, n_devices: int):
    """``fn`` (flat arrays in, flat arrays out) split over ``n_devices`` local devices."""
    if n_devices == 1:
        return fn
    mesh = Mesh(np.asarray(jax.local_devices()[:n_devices]), ("batch",))
    return jax.shard_map(fn, mesh=mesh, in_specs=P("batch"), out_specs=P("batch"),
                         check_vma=False)


@functools.cache
def jit_over_devices(fn, n_devices: int, static_argnums: tuple = ()):
    """Jitted ``over_devices(fn)``; cached so each combination compiles once per shape."""
    if static_argnums:
        def call(*args):
            static = args[: len(static_argnums)]
            return over_devices(functools.partial(fn, *static), n_devices)(
                *args[len(static_argnums):])
        return jax.jit(call, static_argnums=static_argnums)
    return jax.jit(over_devices(fn, n_devices))
