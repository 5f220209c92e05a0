"""The scipy baseline the benchmarks measure against: one ``solve_ivp`` call per feature.

The balanced flow in the clock of docs/theory.md §8.1 (``dy/ds = rho - exp(q y)``,
``dtau/ds = exp(-r (y - y0))``), integrated until ``y`` reaches the level with a
terminal event. The exponents and the level come from the theory layer, so the
baseline and the library integrate the same equation; only the solver differs.
"""

from __future__ import annotations

import numpy as np
from scipy.integrate import solve_ivp

from jepa_flow._theory._fixed_point import clock_exponents, log_u_level


def scipy_clock_time(objective, lam, var, depth, eps, method="DOP853", rtol=1e-12, fraction=0.5):
    """Critical time of one feature by ``solve_ivp`` in the clock (0 if already at the level)."""
    rho = lam / var
    q, r = (float(x) for x in clock_exponents(objective, depth))
    y0 = np.log(eps) / depth
    y_level = float(log_u_level(objective, np.log(rho), depth, fraction))
    if y0 >= y_level:
        return 0.0

    def field(s, state):
        return [rho - np.exp(q * state[0]), np.exp(-r * (state[0] - y0))]

    def event(s, state):
        return state[0] - y_level

    event.terminal, event.direction = True, 1.0
    s1 = 4.0 * (y_level - y0) / (rho * -np.expm1(q / depth * np.log(fraction))) + 1.0 / rho
    sol = solve_ivp(field, (0.0, s1), [y0, 0.0], method=method, rtol=rtol, atol=rtol, events=event)
    return sol.y_events[0][0][1] * np.exp(-r * y0) / var
