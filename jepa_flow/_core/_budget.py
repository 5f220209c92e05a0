"""Memory and disk budgets: estimate a job's size before starting it.

Every job that can grow with its inputs (``simulate``/``demo`` save points,
sweep grids, training steps and records) estimates the memory it will hold and
the bytes it will write, and refuses to start when an estimate exceeds the
budget, with the estimate in the message. The defaults are deliberately
modest, so that a typo (``n = 1e9`` instead of ``1e3``) fails in milliseconds
instead of after minutes of swapping; a user raises them explicitly:

- Python: ``max_memory=`` / ``max_disk=`` (bytes, or a size string such as
  ``"16G"``) on ``run_study``, ``parse_sweep_config``/``run_sweep``;
- CLI: ``--max-memory SIZE`` / ``--max-disk SIZE``;
- sweep TOML: a ``[budget]`` table with ``memory = "16G"`` and ``disk = "1T"``.

Defaults: ``DEFAULT_MAX_MEMORY`` = 4 GiB, ``DEFAULT_MAX_DISK`` = 20 GiB.

Usage (e.g. for training)::

    from jepa_flow._core._budget import check_budget
    check_budget("training records", memory=n_records * record_bytes, max_memory=max_memory)

A refusal is a ``BudgetError`` (a ``ValueError``) whose ``param`` attribute is
the Python parameter that raises the limit (``"max_memory"`` or
``"max_disk"``); the CLI prints it with the matching flag.
"""

from __future__ import annotations

import math
import re

DEFAULT_MAX_MEMORY = 4 * 2**30
DEFAULT_MAX_DISK = 20 * 2**30

_UNITS = {"": 1, "B": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40, "P": 2**50}
_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([KMGTP]?)(?:I?B)?\s*$", re.I)


class BudgetError(ValueError):
    """A job whose estimated memory or disk use exceeds its budget (a ``ValueError``).

    Raised by ``parse_sweep_config`` and ``run_sweep`` (and the CLI) before
    anything is computed or written; pass a larger ``max_memory=`` or
    ``max_disk=`` (bytes, or a size such as ``"16G"``) to allow the job.

    Attributes:
        param: the parameter that sets the limit, ``"max_memory"`` or ``"max_disk"``.
        estimate: the estimated bytes.
        limit: the budget in bytes.
        what: the job, in words.

    Examples:
        >>> import jepa_flow as jf
        >>> err = jf.BudgetError("the sweep", 5e9, 2**30, "max_memory")
        >>> print(err)  # doctest: +NORMALIZE_WHITESPACE
        the sweep would need about 4.7 GiB of memory, more than the budget of 1.0 GiB;
        reduce the job or raise max_memory
        >>> err.param, err.limit
        ('max_memory', 1073741824)
    """

    def __init__(self, what: str, estimate: float, limit: int, param: str, hint: str = ""):
        self.what, self.estimate, self.limit, self.param, self.hint = (
            what,
            estimate,
            limit,
            param,
            hint,
        )
        super().__init__(self.message(param))

    def message(self, raise_with: str) -> str:
        """The refusal, saying that ``raise_with`` raises the limit."""
        kind = "memory" if self.param == "max_memory" else "disk space"
        return (
            f"{self.what} would need about {format_size(self.estimate)} of {kind}, more than "
            f"the budget of {format_size(self.limit)}{self.hint}; reduce the job or raise "
            f"{raise_with}"
        )


def format_size(n: float) -> str:
    """``1536`` -> ``'1.5 KiB'``; ``inf`` -> ``'inf'``."""
    if not math.isfinite(n):
        return "inf"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError  # pragma: no cover


def parse_size(name: str, value) -> int:
    """A size in bytes from an int, a float or a string like ``"16G"``, ``"500MB"``, ``"2TiB"``.

    Raises ``ValueError`` naming ``name`` for anything else, a size below 1
    byte (``0``, ``1e-300``) or an infinite one.
    """
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{name} must be a size such as 4G or 500M; got {value!r}")
    if isinstance(value, (int, float)):
        size = float(value)
    elif isinstance(value, str) and (m := _SIZE.match(value)):
        size = float(m.group(1)) * _UNITS[m.group(2).upper()]
    else:
        raise ValueError(
            f"{name} must be a size such as 4G, 500M or 1T (bytes if no unit); got {value!r}"
        )
    if not (math.isfinite(size) and size >= 1):
        raise ValueError(f"{name} must be a finite size of at least 1 byte; got {value!r}")
    return int(min(size, 2**62))


def resolve(max_memory=None, max_disk=None) -> tuple[int, int]:
    """``(max_memory, max_disk)`` in bytes, the defaults where ``None``."""
    mem = DEFAULT_MAX_MEMORY if max_memory is None else parse_size("max_memory", max_memory)
    disk = DEFAULT_MAX_DISK if max_disk is None else parse_size("max_disk", max_disk)
    return mem, disk


def check_budget(
    what: str, *, memory: float = 0, disk: float = 0, max_memory=None, max_disk=None, hint=""
) -> None:
    """Refuse ``what`` when its estimated ``memory`` or ``disk`` bytes exceed the budgets.

    ``max_memory``/``max_disk`` default to ``DEFAULT_MAX_MEMORY``/``DEFAULT_MAX_DISK``
    and accept a size string. Raises ``BudgetError``.
    """
    mem_limit, disk_limit = resolve(max_memory, max_disk)
    if memory > mem_limit:
        raise BudgetError(what, memory, mem_limit, "max_memory", hint)
    if disk > disk_limit:
        raise BudgetError(what, disk, disk_limit, "max_disk", hint)


def check_free_space(path, need: float, what: str) -> None:
    """Refuse when the file system holding ``path`` (or its nearest existing parent)
    has less than ``need`` bytes free."""
    import shutil
    from pathlib import Path

    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        free = shutil.disk_usage(p).free
    except OSError:
        return
    if need > free:
        raise ValueError(
            f"{what} would write about {format_size(need)}, but only {format_size(free)} "
            f"is free on the file system of {str(p)!r}"
        )
