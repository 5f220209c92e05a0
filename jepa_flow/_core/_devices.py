"""Spreading a flat batch over the local devices.

A batch is split evenly over a one-axis ``Mesh`` of ``jax.local_devices()``
with ``jax.shard_map``, so each device runs its own vmapped solve (its own
while loop, no collectives: automatic sharding of a vmapped adaptive solve is
known to be far slower). On a CPU, JAX shows one device
unless told otherwise; ``use_all_cpu_cores()`` (called by the ``jepa-flow``
command) exposes one device per core.
"""

from __future__ import annotations

import os

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
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


def local_devices() -> tuple:
    return tuple(jax.local_devices())


def batch_sharding(devices) -> NamedSharding:
    """Arrays split along their first axis over ``devices`` (a one-axis mesh)."""
    return NamedSharding(Mesh(np.asarray(devices), ("batch",)), P("batch"))


def over_devices(fn, devices):
    """``fn`` (flat arrays in, flat arrays out) with its batch split over ``devices``.

    One device: ``fn`` itself. Several: ``jax.shard_map`` over a one-axis mesh,
    each device running ``fn`` on its slice. Inputs' lengths must be a multiple
    of ``len(devices)``.
    """
    if len(devices) == 1:
        return fn
    return jax.shard_map(
        fn,
        mesh=batch_sharding(devices).mesh,
        in_specs=P("batch"),
        out_specs=P("batch"),
        check_vma=False,
    )
