"""Closed forms against independent references.

The table of docs/theory.md §4, scipy quadrature and scipy's 2F1.
"""

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.special import hyp2f1

import jepa_flow as jf
from jepa_flow._theory._exact import hyp2f1_1b

# theory §4, canonical example (verified there by full-matrix gradient descent to 1e-4);
# columns: depth, JEPA t*_A, JEPA t*_B, MAE t*_A, MAE t*_B.
CANONICAL = np.array(
    [
        [1, 1008.43, 1257.32, 6.0119, 7.8086],
        [2, 11669.2, 14020.9, 30.213, 38.022],
        [3, 26853.3, 29707.2, 49.392, 61.901],
        [4, 43985.9, 43056.4, 59.018, 73.857],
        [8, 161832, 81656.4, 60.419, 75.471],
    ]
)
LAM_AB = np.array([1.0, 0.8])
VAR_AB = np.array([2.0, 1.0])


@pytest.mark.parametrize("method", ["exact", "ode"])
def test_canonical_table(method):
    depth = CANONICAL[:, :1]
    jepa = np.asarray(jf.critical_time("jepa", LAM_AB, VAR_AB, depth, 1e-3, method=method))
    mae = np.asarray(jf.critical_time("mae", LAM_AB, VAR_AB, depth, 1e-3, method=method))
    # the table is printed to 5-6 significant digits
    np.testing.assert_allclose(jepa, CANONICAL[:, 1:3], rtol=6e-6)
    np.testing.assert_allclose(mae, CANONICAL[:, 3:5], rtol=2e-5)


def test_learning_order_reverses_with_depth_for_jepa_only():
    depth = np.arange(1, 9)[:, None]
    jepa = np.asarray(jf.critical_time("jepa", LAM_AB, VAR_AB, depth, 1e-3))
    mae = np.asarray(jf.critical_time("mae", LAM_AB, VAR_AB, depth, 1e-3))
    b_first = jepa[:, 1] < jepa[:, 0]
    assert list(b_first) == [False] * 3 + [True] * 5  # flips at depth 4
    assert np.all(mae[:, 0] < mae[:, 1])  # MAE learns A (larger lam) first at every depth


@pytest.mark.parametrize(("eps", "flip"), [(1e-2, 3), (1e-4, 6), (1e-6, 9), (1e-9, 13)])
def test_flip_depth_grows_with_log_inverse_eps(eps, flip):
    depth = np.arange(1, 20)[:, None]
    t = np.asarray(jf.critical_time("jepa", LAM_AB, VAR_AB, depth, eps))
    assert int(depth[np.argmax(t[:, 1] < t[:, 0]), 0]) == flip  # theory §4


def _quad_time(objective, lam, var, depth, eps, fraction):
    """t(u_p) = integral du / f(u), integrated in y = log u with scipy's adaptive quadrature."""
    rho = lam / var
    u_star = rho if objective == "jepa" else rho ** (1 / (depth + 1))
    y0, yp = np.log(eps) / depth, np.log(fraction) / depth + np.log(u_star)

    def integrand(y):
        u = np.exp(y)
        f = (
            u ** (2 * depth) * (lam - var * u)
            if objective == "jepa"
            else u**depth * (lam - var * u ** (depth + 1))
        )
        return u / f

    # split near the end, where 1/f varies fastest
    mid = yp - 0.5 * (yp - y0) / depth
    a = quad(integrand, y0, mid, epsabs=0, epsrel=1e-13, limit=500)[0]
    b = quad(integrand, mid, yp, epsabs=0, epsrel=1e-13, limit=500)[0]
    return a + b


CASES = [  # objective, lam, var, depth, eps, fraction
    ("jepa", 1.0, 2.0, 1, 1e-3, 0.5),
    ("jepa", 3e-3, 3e-3 / 7.0, 3, 1e-6, 0.9),
    ("jepa", 250.0, 25.0, 16, 1e-6, 0.5),
    ("jepa", 0.02, 2.0, 2, 1e-6, 0.2),
    ("jepa", 1.0, 0.5, 6, 1e-4, 0.99),
    ("mae", 1.0, 2.0, 1, 1e-3, 0.5),
    ("mae", 0.5, 1.0, 2, 1e-6, 0.95),
    ("mae", 700.0, 70.0, 16, 1e-6, 0.5),
    ("mae", 1e-3, 0.1, 5, 1e-5, 0.3),
    ("mae", 2.0, 0.4, 9, 1e-3, 0.999),
]


@pytest.mark.parametrize("case", CASES)
def test_exact_time_matches_quadrature(case):
    objective, lam, var, depth, eps, fraction = case
    ref = _quad_time(objective, lam, var, depth, eps, fraction)
    got = float(jf.critical_time(objective, lam, var, depth, eps, fraction=fraction))
    assert got == pytest.approx(ref, rel=1e-10)


def test_mae_depth_one_closed_form():
    lam, var = np.array([1.0, 0.8, 3.0]), np.array([2.0, 1.0, 0.5])
    eps = np.array([1e-3, 1e-5, 0.1])
    rho = lam / var
    ref = (np.log(1 / eps) + 0.5 * np.log((rho - eps**2) / 3)) / lam  # theory §4
    got = np.asarray(jf.critical_time("mae", lam, var, 1, eps))
    np.testing.assert_allclose(got, ref, rtol=1e-13)


def test_hyp2f1_against_scipy():
    b = np.array([2.0, 1.0, 2 / 3, 0.5, 2 / 9, 2 / 17, 2 / 101])[:, None]
    z = np.array([0.0, 1e-8, 0.2, 0.5, 0.5000001, 0.7, 0.9, 0.999, 1 - 1e-9])[None, :]
    ref = hyp2f1(1.0, b, 1.0 + b, z)
    np.testing.assert_allclose(np.asarray(hyp2f1_1b(b, z)), ref, rtol=2e-14)


def test_fixed_points_zero_the_vector_field():
    lam = np.array([0.3, 1.0, 5.0])
    var = np.array([1.0, 0.25, 2.0])
    depth = np.arange(1, 6)[:, None]
    for objective in ("jepa", "mae"):
        wbar = np.asarray(jf.fixed_point(objective, lam, var, depth))
        u = wbar ** (1.0 / depth)
        # the vector field's factor that vanishes (the powers of u do not), relative to lam
        g = (lam - var * u) if objective == "jepa" else (lam - var * u ** (depth + 1))
        np.testing.assert_allclose(g / lam, 0.0, atol=1e-14)
        assert np.all(wbar > 0)
    rho = lam / var
    np.testing.assert_allclose(jf.fixed_point("jepa", lam, var, depth), rho**depth, rtol=1e-14)
    np.testing.assert_allclose(
        jf.fixed_point("mae", lam, var, depth), rho ** (depth / (depth + 1)), rtol=1e-14
    )
    np.testing.assert_array_equal(np.asarray(jf.fixed_point("jepa", [-1.0, 0.0], 1.0, 2)), 0.0)


@pytest.mark.parametrize("method", ["exact", "series", "ode"])
def test_unlearned_and_already_reached(method):
    # lam <= 0: never learned; eps at or above the level: time 0.
    for objective in ("jepa", "mae"):
        t = np.asarray(
            jf.critical_time(
                objective, [-1.0, 0.0, 1.0, 1.0], 1.0, 2, [1e-3, 1e-3, 0.5, 4.0], method=method
            )
        )
        assert np.isinf(t[0]) and np.isinf(t[1])
        assert t[2] == 0.0 and t[3] == 0.0  # u0 = sqrt(0.5) >= u_p; u0 above u*


def test_time_increases_with_fraction():
    fractions = np.linspace(0.05, 0.95, 19)
    for objective in ("jepa", "mae"):
        t = np.asarray(jf.critical_time(objective, 1.0, 2.0, 3, 1e-4, fraction=fractions))
        assert np.all(np.diff(t) > 0)


def test_series_converges_as_eps_shrinks():
    eps = np.array([1e-3, 1e-6, 1e-9, 1e-12])
    for objective in ("jepa", "mae"):
        for depth in (1, 2, 4, 8):
            exact = np.asarray(jf.critical_time(objective, 1.0, 2.0, depth, eps))
            series = np.asarray(jf.critical_time(objective, 1.0, 2.0, depth, eps, method="series"))
            err = np.abs(series / exact - 1)
            assert np.all(np.diff(err) < 0) or err[-1] < 1e-12, (objective, depth, err)
            # MAE at depth 1 converges only like 1/log(1/eps) (the O(1) term)
            assert err[-1] < (0.04 if (objective, depth) == ("mae", 1) else 2e-6)
    # and the MAE depth-1 error is exactly the O(1) term over the leading one
    e = 1e-12
    exact = float(jf.critical_time("mae", 1.0, 2.0, 1, e))
    assert exact - float(jf.critical_time("mae", 1.0, 2.0, 1, e, method="series")) == (
        pytest.approx(0.5 * np.log((0.5 - e**2) / 3), rel=1e-9)
    )
