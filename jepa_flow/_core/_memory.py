"""Giving memory back between independent jobs run in one process.

JAX keeps every compiled executable (and the traced jaxprs behind it) for the
life of the process, and glibc keeps freed heap pages mapped. A long run of
independent jobs in one process (``jepa-flow reproduce``: ten experiments,
each compiling its own solvers and training loops for its own shapes) grows
by every job's compilations; the full run reached 9.4 GB that way.
``release_memory`` drops them between jobs: the next job compiles what it
needs (results are unchanged, compilation is deterministic), and the
process's resident size returns to about what one job needs.
"""

from __future__ import annotations

import ctypes
import gc


def rss_bytes() -> int:
    """This process's resident set size (``VmRSS``), in bytes; 0 where ``/proc`` is absent."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _malloc_trim() -> None:
    """Return freed heap pages to the system (glibc only; a no-op elsewhere)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def release_memory() -> None:
    """Close every matplotlib figure, drop JAX's compilation caches, collect and trim."""
    import sys

    import jax

    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")
    jax.clear_caches()
    gc.collect()
    _malloc_trim()
