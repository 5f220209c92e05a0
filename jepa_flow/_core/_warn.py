"""The one warning category of the library.

Every warning jepa_flow itself issues (a failed solve returned as NaN, a
trajectory cut short) is a ``JepaFlowWarning``, a ``RuntimeWarning``. The
command line shows these, one line each, and no other: numpy's floating-point
warnings, matplotlib's and JAX's are about internals a user cannot act on
(every input that would cause them is refused up front with its cause).
"""

from __future__ import annotations


class JepaFlowWarning(RuntimeWarning):
    """A warning of jepa_flow itself (shown by the command line; see the module docstring).

    Examples:
        A member outside the float range (``rho = 1e-300 / 1e300`` underflows) is
        returned as NaN and counted in one warning, which a caller can filter by
        this category:

        >>> import warnings, jepa_flow as jf
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always", jf.JepaFlowWarning)
        ...     t = jf.critical_time("jepa", [1.0, 1e-300], [2.0, 1e300], 1, 1e-3)
        >>> [w.category.__name__ for w in caught], bool(t[1] != t[1])
        (['JepaFlowWarning'], True)
    """
