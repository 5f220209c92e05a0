"""The one warning category of the library.

Every warning jepa_flow itself issues (a failed solve returned as NaN, a
trajectory cut short) is a ``JepaFlowWarning``, a ``RuntimeWarning``. The
command line shows these, one line each, and no other: numpy's floating-point
warnings, matplotlib's and JAX's are about internals a user cannot act on
(every input that would cause them is refused up front with its cause).
"""

from __future__ import annotations


class JepaFlowWarning(RuntimeWarning):
    """A warning of jepa_flow itself (shown by the command line; see the module docstring)."""
