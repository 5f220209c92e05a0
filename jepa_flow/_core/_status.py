"""``Status``: the outcome of one member of a solve, shared by every solver.

Critical times (``critical_time``, ``general_critical_time``), trajectories
(``simulate``), the full-matrix flow (``full_flow``) and training (``train``)
report, per member (and feature), one ``Status`` code in an integer array.
The codes are ordered: every code below ``MAX_STEPS_REACHED`` is an outcome
(the member's value is meaningful: a time, 0 or inf), every code from it on
is a failure (the value is NaN, or the run diverged). ``ok`` is that test.
"""

from __future__ import annotations

import enum

import numpy as np

__all__ = ["Status", "crossing_status", "failure_counts_message", "failure_message", "status_ok"]


class Status(enum.IntEnum):
    """Outcome of one member of a solve, with a message (``Status.X.message``).

    Codes below ``MAX_STEPS_REACHED`` are outcomes (``ok``); the others are
    failures. An array of codes compares with the members directly
    (``result.status == jf.Status.NEVER_LEARNED``).

    Examples:
        >>> import jepa_flow as jf
        >>> jf.Status.NEVER_LEARNED.message
        'never learned: lam <= 0, or the feature collapses (the time is inf)'
        >>> jf.Status.NEVER_LEARNED.ok, jf.Status.MAX_STEPS_REACHED.ok
        (True, False)
        >>> jf.Status(4).name
        'MAX_STEPS_REACHED'
    """

    SUCCESSFUL = 0
    STARTS_ABOVE_LEVEL = 1
    NEVER_LEARNED = 2
    NOT_REACHED = 3
    MAX_STEPS_REACHED = 4
    OUT_OF_RANGE = 5
    FAILED = 6
    DIVERGED = 7

    @property
    def ok(self) -> bool:
        """Whether the member's value is meaningful (not a failure)."""
        return self < Status.MAX_STEPS_REACHED

    @property
    def message(self) -> str:
        """What the code means, in words (``{dtype}``: the working float type)."""
        return _MESSAGES[self].replace("{dtype}", "working dtype's")

    def describe(self, dtype: str) -> str:
        """``message`` with the float type named (``"float64"``, ``"float32"``)."""
        return _MESSAGES[self].replace("{dtype}", dtype)


_MESSAGES = {
    Status.SUCCESSFUL: "successful: the level was reached at a finite, positive time",
    Status.STARTS_ABOVE_LEVEL: "starts at or above the level (the time is 0)",
    Status.NEVER_LEARNED: "never learned: lam <= 0, or the feature collapses (the time is inf)",
    Status.NOT_REACHED: "not reached within the run or the integration horizon (the time is inf)",
    Status.MAX_STEPS_REACHED: "not reached within the solver's step budget",
    Status.OUT_OF_RANGE: "outside the {dtype} range (the time overflows, or lam, var, eps or "
    "rho = lam / var is not a normal {dtype} number)",
    Status.FAILED: "not computable by the method (a NaN or negative result, e.g. the series "
    "far outside its small-eps regime, or a level within rounding of the fixed point)",
    Status.DIVERGED: "diverged: the training loss went NaN or overflowed",
}


def status_ok(status):
    """``status < MAX_STEPS_REACHED`` elementwise: numpy or JAX arrays of codes alike."""
    return status < int(Status.MAX_STEPS_REACHED)


def failure_message(status, where: str, dtype: str) -> str | None:
    """One line counting the failed members of ``status`` by reason; None when none failed.

    Examples:
        >>> print(failure_message(np.array([0, 4, 6, 6]), "critical_time", "float64")[:75])
        critical_time: 3 of 4 members returned as NaN: 1 not reached within the sol
    """
    status = np.asarray(status)
    counts = np.bincount(np.ravel(status), minlength=len(Status))
    return failure_counts_message(counts, status.size, where, dtype)


def failure_counts_message(counts, n: int, where: str, dtype: str) -> str | None:
    """``failure_message`` from the members' counts per code (``counts[code]``, ``n`` members)."""
    failures = [code for code in Status if not code.ok and code < len(counts) and counts[code]]
    if not failures:
        return None
    bad = int(sum(counts[code] for code in failures))
    reasons = "; ".join(f"{int(counts[code])} {code.describe(dtype)}" for code in failures)
    return f"{where}: {bad} of {n} members returned as NaN: {reasons}"


def crossing_status(t_star, level, xp=np):
    """The ``Status`` of first-crossing times ``t_star`` of ``level`` (same shapes).

    ``NEVER_LEARNED`` where the level is not finite (``wbar* = 0``),
    ``STARTS_ABOVE_LEVEL`` where ``t_star == 0``, ``NOT_REACHED`` where it is
    inf, ``SUCCESSFUL`` elsewhere. ``xp``: ``numpy`` or ``jax.numpy``.

    Examples:
        >>> crossing_status(np.array([2.0, 0.0, np.inf, np.inf]), np.array([1, 1, 1, np.inf]))
        array([0, 1, 3, 2])
    """
    code = xp.where(xp.isinf(t_star), int(Status.NOT_REACHED), int(Status.SUCCESSFUL))
    code = xp.where(t_star == 0, int(Status.STARTS_ABOVE_LEVEL), code)
    return xp.where(xp.isfinite(level), code, int(Status.NEVER_LEARNED))
