"""Property-based tests (hypothesis) of the public functions, the TOML parser and the CLI.

Generated valid and invalid inputs: signs, zeros, NaN, inf, subnormal and huge
magnitudes, huge Python ints, shapes that do and do not broadcast, ints,
bools, strings, None. Valid inputs must give results that obey the theory's
invariants; invalid ones a ``ValueError`` (library) or exit code 2 with one
stderr line and nothing written (CLI), never another exception.

The number of examples comes from a hypothesis profile chosen by the
``JEPA_FLOW_HYPOTHESIS`` environment variable: ``ci`` (default, 30 examples
per test, for ``make test``) or ``fuzz`` (1000). ``scripts/fuzz_cli.py`` runs
the CLI on thousands of generated command lines and counts the outcomes.
"""

from __future__ import annotations

import math
import os
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

import jepa_flow as jf
from jepa_flow._cli import main

settings.register_profile(
    "ci",
    max_examples=30,
    deadline=None,
    derandomize=True,  # the same examples on every run: CI never fails by chance
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "fuzz",
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile(os.environ.get("JEPA_FLOW_HYPOTHESIS", "ci"))
# the expected failures' tests: a few examples in make test (each can take seconds)
FEW = settings(max_examples=min(5, settings.default.max_examples))

OBJECTIVES = st.sampled_from(["jepa", "mae"])
# every finite float but the subnormals (refused: XLA flushes them to zero): signs,
# zeros, tiny and huge magnitudes
FINITE = st.floats(allow_nan=False, allow_infinity=False, allow_subnormal=False)
POSITIVE = st.floats(min_value=2.2250738585072014e-308, max_value=1.7976931348623157e308)
FRACTION_ANY = st.floats(0.0, 1.0, exclude_min=True, exclude_max=True, allow_subnormal=False)
# within 1e-12 of 1 the closed forms can return NaN or inf (fraction = 1 - 2**-53: NaN for
# mae and jepa at depth 1); tested separately below, as an expected failure
FRACTION = st.floats(2.2250738585072014e-308, 1.0 - 1e-12)
SUBNORMAL = st.sampled_from([5e-324, -5e-324, 1e-310, 2.2e-308])
DEPTH = st.integers(1, 1024) | st.integers(1, 64).map(float) | st.integers(1, 8).map(np.int64)
# normal magnitudes (no subnormals, nothing near overflow), either sign
NORMAL_POS = st.floats(min_value=1e-100, max_value=1e100)
NORMAL = NORMAL_POS | NORMAL_POS.map(lambda x: -x) | st.just(0.0)
MODERATE = st.floats(min_value=1e-6, max_value=1e6)

# values that no numeric parameter accepts
NOT_A_NUMBER = st.sampled_from(
    [None, "1", "", "abc", True, False, 1j, [1.0, None], [[1.0], [1.0, 2.0]], {}, object()]
)
NON_FINITE = st.sampled_from([math.nan, math.inf, -math.inf, 10**400, -(10**400)])


def _flat(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64).ravel()


def _rho_ok(lam, var) -> bool:
    with np.errstate(all="ignore"):
        rho = np.asarray(lam, float) / np.asarray(var, float)
    return bool(np.all(np.isfinite(rho)))


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


# -- critical_time and fixed_point: valid inputs --------------------------------------


def _flagged(fn, *args, **kwargs):
    """``fn(...)`` as a float, and whether a warning flagged it outside the float range.

    A time that overflows float64, or that the method cannot compute, comes back
    as NaN with a RuntimeWarning that says why (docs/precision.md); never silently.
    """
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        t = float(fn(*args, **kwargs))
    return t, any("returned as NaN" in str(w.message) for w in rec)


def _check_exact(objective, lam, var, depth, eps, fraction):
    assume(_rho_ok(lam, var))
    t, flagged = _flagged(
        jf.critical_time, objective, lam, var, depth, eps, fraction=fraction, method="exact"
    )
    if flagged:
        assert np.isnan(t)
        return
    assert t == 0 or t == math.inf or (math.isfinite(t) and t > 0), t
    if lam <= 0:
        assert t == math.inf


@given(OBJECTIVES, NORMAL, NORMAL_POS, DEPTH, NORMAL_POS, FRACTION)
def test_exact_critical_time_is_zero_positive_or_inf(objective, lam, var, depth, eps, fraction):
    _check_exact(objective, lam, var, depth, eps, fraction)


@example("mae", 1.0, 1 / 17, 1, 2**-7, 1 - 2**-53)
@given(OBJECTIVES, FINITE, POSITIVE, DEPTH, POSITIVE, FRACTION_ANY)
def test_exact_critical_time_on_extreme_valid_inputs(objective, lam, var, depth, eps, fraction):
    _check_exact(objective, lam, var, depth, eps, fraction)


def _check_series(objective, lam, var, depth, eps):
    assume(_rho_ok(lam, var))
    t, flagged = _flagged(jf.critical_time, objective, lam, var, depth, eps, method="series")
    if flagged:
        assert np.isnan(t)
        return
    assert t == 0 or t == math.inf or (math.isfinite(t) and t > 0), t


@given(OBJECTIVES, FINITE, POSITIVE, DEPTH, st.floats(1e-300, 1.0))
def test_series_critical_time_is_zero_positive_or_inf(objective, lam, var, depth, eps):
    # the series is the small-eps asymptotics (theory §4.3): eps well below the level
    w_star = float(jf.fixed_point(objective, lam, var, depth))
    assume(lam <= 0 or eps < 1e-2 * w_star)
    _check_series(objective, lam, var, depth, eps)


@example("mae", 17.0, 1.0, 1, 2.0)
@given(OBJECTIVES, FINITE, POSITIVE, DEPTH, POSITIVE)
def test_series_critical_time_at_any_eps(objective, lam, var, depth, eps):
    _check_series(objective, lam, var, depth, eps)


def _check_ode_vs_exact(objective, lam, var, depth, eps, fraction):
    exact = float(
        jf.critical_time(objective, lam, var, depth, eps, fraction=fraction, method="exact")
    )
    ode = float(
        _quiet(jf.critical_time, objective, lam, var, depth, eps, fraction=fraction, method="ode")
    )
    assert not np.isnan(exact)
    assert ode == 0 or ode == math.inf or np.isnan(ode) or ode > 0
    if math.isfinite(exact) and math.isfinite(ode) and exact > 0:
        assert abs(ode - exact) <= 1e-6 * exact, (ode, exact)
    elif not np.isnan(ode):  # 0 and inf on the same members
        assert ode == exact


@given(
    OBJECTIVES,
    st.floats(0.1, 10),
    st.floats(0.1, 10),
    st.integers(1, 8),
    st.floats(1e-8, 0.9),
    FRACTION,
)
def test_ode_agrees_with_exact(objective, lam, var, depth, eps, fraction):
    _check_ode_vs_exact(objective, lam, var, depth, eps, fraction)


@FEW
@example("jepa", 1307.0, 1.0, 1, 0.5, 0.5)
@given(OBJECTIVES, MODERATE, MODERATE, st.integers(1, 8), st.floats(1e-8, 0.9), FRACTION)
def test_ode_agrees_with_exact_wide(objective, lam, var, depth, eps, fraction):
    _check_ode_vs_exact(objective, lam, var, depth, eps, fraction)


@pytest.mark.xfail(
    strict=False,
    reason="the ODE critical time on extreme valid inputs (subnormal or huge magnitudes) may "
    "still fail or return NaN until the 'ode' rewrite of jepa_flow/_theory lands",
)
@pytest.mark.skipif(
    settings.default.max_examples < 100,
    reason="extreme ODE solves take up to a minute for 5 examples; JEPA_FLOW_HYPOTHESIS=fuzz",
)
@given(OBJECTIVES, FINITE, POSITIVE, DEPTH, POSITIVE, FRACTION)
def test_ode_on_extreme_valid_inputs(objective, lam, var, depth, eps, fraction):
    assume(_rho_ok(lam, var))
    ode = float(
        _quiet(jf.critical_time, objective, lam, var, depth, eps, fraction=fraction, method="ode")
    )
    assert ode == 0 or ode == math.inf or (math.isfinite(ode) and ode > 0), ode


@given(OBJECTIVES, MODERATE, MODERATE, st.integers(1, 16), st.floats(1e-12, 1e-2), FRACTION)
def test_critical_time_decreases_with_lam_at_fixed_rho(objective, lam, rho, depth, eps, fraction):
    lams = np.array([lam, 2 * lam, 10 * lam])
    t = _flat(jf.critical_time(objective, lams, lams / rho, depth, eps, fraction=fraction))
    if np.all(t == 0) or np.all(np.isinf(t)):
        return
    assert np.all(np.diff(t) < 0), t
    # scaling lam and var by c scales gradient-flow time by 1 / c (theory §3); near the
    # fixed point the time's condition number grows like 1 / (1 - fraction)
    rtol = 1e-10 + 1e-15 / (1.0 - fraction)
    np.testing.assert_allclose(t[1:] * lams[1:] / lam, t[0], rtol=rtol)


@given(OBJECTIVES, FINITE, POSITIVE, st.integers(1, 1024))
def test_fixed_point_zeroes_the_vector_field(objective, lam, var, depth):
    # rho itself must be a normal float64: XLA flushes a subnormal rho to 0 (lam=1,
    # var=4.49e307 gives wbar* = 0 for mae instead of 1.5e-154; noted for the ode rewrite)
    assume(_rho_ok(lam, var) and (lam <= 0 or lam / var > 1e-300))
    w = float(jf.fixed_point(objective, lam, var, depth))
    if lam <= 0:
        assert w == 0
        return
    power = 1 if objective == "jepa" else depth + 1
    log10_w = depth * (math.log10(lam) - math.log10(var)) / power
    if log10_w < -300 or log10_w > 300:  # wbar* under- or overflows float64
        assert w == 0 or w == math.inf or (math.isfinite(w) and w > 0)
        return
    assert math.isfinite(w) and w > 0, w
    log_u = math.log(w) / depth
    # JEPA du/dt = u^(2L) (lam - var u); MAE du/dt = u^L (lam - var u^(L+1)) (theory §3):
    # zero where log(var) + power log(u) = log(lam); checked in logs (no overflow)
    residual = math.log(var) + power * log_u - math.log(lam)
    assert abs(residual) <= 1e-9, (lam, var, w, residual)


@given(
    OBJECTIVES,
    st.lists(MODERATE, min_size=1, max_size=3),
    st.lists(MODERATE, min_size=1, max_size=3),
    st.sampled_from([(1,), (2,), (3,), (2, 1), (1, 3), ()]),
)
def test_shapes_broadcast_or_are_refused(objective, lam, var, depth_shape):
    depth = np.ones(depth_shape)
    lam, var = np.array(lam), np.array(var)
    try:
        shape = np.broadcast_shapes(lam.shape, var.shape, depth.shape)
    except ValueError:
        with pytest.raises(ValueError, match="do not broadcast"):
            jf.critical_time(objective, lam, var, depth, 1e-3)
        return
    t = np.asarray(jf.critical_time(objective, lam, var, depth, 1e-3))
    assert t.shape == shape
    w = np.asarray(jf.fixed_point(objective, lam, var, depth))
    assert w.shape == shape
    np.testing.assert_allclose(
        w, np.broadcast_to((lam / var) ** (1.0 if objective == "jepa" else 0.5), shape), rtol=1e-13
    )


def test_fixed_point_of_a_tiny_rho():
    w = float(jf.fixed_point("mae", 1.0, 4.494232837155791e307, 1))
    np.testing.assert_allclose(w, math.sqrt(1.0 / 4.494232837155791e307), rtol=1e-12)


# -- invalid inputs: a ValueError, never another exception ----------------------------

BAD = {
    "objective": st.sampled_from(["JEPA", "", None, 1, "ema"]),
    "lam": NOT_A_NUMBER | NON_FINITE | SUBNORMAL,
    "var": NOT_A_NUMBER | NON_FINITE | SUBNORMAL | st.floats(max_value=0.0) | st.just(0),
    "depth": NOT_A_NUMBER
    | NON_FINITE
    | st.sampled_from([0, -1, 1025, 1.5, 2**70])
    | st.floats(0.01, 0.99),
    "eps": NOT_A_NUMBER | NON_FINITE | SUBNORMAL | st.floats(max_value=0.0),
    "fraction": NOT_A_NUMBER
    | NON_FINITE
    | st.floats(max_value=0.0)
    | st.floats(min_value=1.0)
    | st.just(0),
    "method": st.sampled_from(["EXACT", None, "", "rk4", 0]),
}


@given(st.sampled_from(sorted(BAD)), st.data())
def test_critical_time_refuses_bad_values(name, data):
    args = dict(objective="jepa", lam=1.0, var=2.0, depth=2, eps=1e-3, fraction=0.5)
    args["method"] = data.draw(st.sampled_from(["exact", "ode", "series"]))
    args[name] = data.draw(BAD[name])
    with pytest.raises(ValueError) as info:
        jf.critical_time(**args)
    assert "\n" not in str(info.value)


@given(st.sampled_from(["objective", "lam", "var", "depth"]), st.data())
def test_fixed_point_refuses_bad_values(name, data):
    args = dict(objective="mae", lam=1.0, var=2.0, depth=2)
    args[name] = data.draw(BAD[name])
    with pytest.raises(ValueError):
        jf.fixed_point(**args)


T5 = [0.0, 0.5, 1.0, 2.0, 4.0]  # one save-time shape: one compilation


@settings(max_examples=10)
@given(st.sampled_from(["objective", "lam", "var", "depth", "eps", "t"]), st.data())
def test_simulate_refuses_bad_values(name, data):
    args = dict(objective="jepa", lam=1.0, var=2.0, depth=2, eps=1e-3, t=T5)
    bad_t = st.sampled_from([None, [], [1.0, 0.5], [-1.0, 1.0], [0.0, math.nan], "0 1", [[0.0]]])
    args[name] = data.draw(bad_t if name == "t" else BAD[name])
    with pytest.raises(ValueError):
        jf.simulate(**args)


@settings(max_examples=10)
@example("jepa", 3.0, 0.125, 3, 0.0625)  # steepness 3e7 at the half level
@given(OBJECTIVES, st.floats(0.1, 10), st.floats(0.1, 10), st.integers(1, 3), st.floats(1e-4, 0.1))
def test_simulate_reaches_half_at_the_exact_critical_time(objective, lam, var, depth, eps):
    w_star = float(jf.fixed_point(objective, lam, var, depth))
    assume(eps < 0.3 * w_star)
    t_half = float(jf.critical_time(objective, lam, var, depth, eps))
    t = [0.0, 0.25 * t_half, 0.5 * t_half, t_half, 2 * t_half]
    traj = jf.simulate(objective, lam, var, depth, eps, t)
    w = _flat(traj.wbar)
    assert np.all(np.isfinite(w)) and bool(traj.ok)
    np.testing.assert_allclose(w[0], eps, rtol=1e-12)
    assert np.all(np.diff(w) > 0) and w[-1] < w_star * (1 + 1e-9)  # rises towards wbar*
    # independent of the closed form; a time error dt (float64 resolves t to about 1e-13
    # relative here) moves wbar by its steepness d log wbar / d log t, which the per-feature
    # ODE of theory §3 gives at the half level
    L, wh = depth, 0.5 * w_star
    if objective == "jepa":
        rate = L * wh ** (3 - 1 / L) * (lam - var * wh ** (1 / L))
    else:
        rate = L * wh ** (2 - 1 / L) * (lam - var * wh ** (1 + 1 / L))
    steep = t_half * rate / wh
    np.testing.assert_allclose(w[3], wh, rtol=1e-5 + 1e-12 * steep)


# -- the TOML parser -------------------------------------------------------------------


def _toml_value(x) -> str:
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, str):
        return '"' + x.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(x, float):
        return (
            "nan"
            if math.isnan(x)
            else ("inf" if x == math.inf else ("-inf" if x == -math.inf else repr(x)))
        )
    if isinstance(x, list):
        return "[" + ", ".join(_toml_value(v) for v in x) + "]"
    if isinstance(x, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in x.items()) + "}"
    return str(x)


ANY_VALUE = st.recursive(
    st.none().map(lambda _: 0)
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats()
    | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.fixed_dictionaries({"linspace": st.lists(inner, max_size=4)})
        | st.fixed_dictionaries({"logspace": st.lists(inner, max_size=4)})
    ),
    max_leaves=6,
)
GOOD_GRID = st.one_of(
    st.floats(0.05, 5.0),
    st.lists(st.floats(0.05, 5.0), min_size=1, max_size=4, unique=True),
    st.tuples(st.floats(-2, 0), st.floats(0, 1), st.integers(1, 5)).map(
        lambda s: {"logspace": list(s)}
    ),
)


@given(
    st.lists(OBJECTIVES, min_size=1, max_size=2, unique=True),
    st.lists(st.integers(1, 12), min_size=1, max_size=3),
    GOOD_GRID,
    GOOD_GRID,
    st.sampled_from(["rho", "var"]),
    st.floats(1e-6, 0.5),
)
def test_valid_sweep_configs_parse_to_their_grid(objectives, depths, lam, second, key, eps):
    text = (
        f"[sweep]\nobjective = {_toml_value(objectives)}\ndepth = {_toml_value(depths)}\n"
        f"eps = {eps!r}\nlam = {_toml_value(lam)}\n{key} = {_toml_value(second)}\n"
    )
    if key == "rho" and isinstance(second, dict):
        text = text.replace(f"{key} = ", "var = ")  # keep rho <= 1 irrelevant; any > 0 is valid
    config = jf.parse_sweep_config(text)

    def count(v):
        return v["logspace"][2] if isinstance(v, dict) else (len(v) if isinstance(v, list) else 1)

    assert config.size == len(objectives) * len(depths) * count(lam) * count(second)
    rows = config.rows(0, config.group_size)
    assert np.all(rows["var"] > 0) and np.all(np.isfinite(rows["rho"]))


@given(
    st.dictionaries(
        st.sampled_from(
            ["objective", "depth", "eps", "lam", "rho", "var", "fraction", "method", "bogus"]
        ),
        ANY_VALUE,
        max_size=8,
    ),
    st.sampled_from(["sweep", "pair", "budget", "other"]),
)
def test_sweep_config_never_raises_anything_but_value_error(table, name):
    text = f"[{name}]\n" + "".join(f"{k} = {_toml_value(v)}\n" for k, v in table.items())
    try:
        config = jf.parse_sweep_config(text)
    except ValueError as err:
        assert "\n" not in str(err).strip() or "TOML" in str(err)
        return
    assert config.size >= 1


@given(st.text(max_size=200))
def test_sweep_config_random_text(text):
    try:
        jf.parse_sweep_config(text)
    except ValueError:
        pass


# -- the CLI, in process ---------------------------------------------------------------

NUMBER_TOKENS = st.sampled_from(
    ["1", "0", "-1", "0.5", "1e-3", "nan", "inf", "-inf", "1e400", "5e-324", "1e308", "abc", "",
     "10" * 40, "1.5", "2", "True", "None", "0x10"]
)  # fmt: skip


def _argv(data, tmp) -> list[str]:
    command = data.draw(
        st.sampled_from(["critical-time", "simulate", "sweep", "demo", "reproduce"])
    )
    out = str(tmp / "out")
    argv = [command]
    if command in ("critical-time", "simulate"):
        for flag in (
            "--lam",
            "--var",
            "--rho",
            "--depth",
            "--eps",
            "--fraction",
            "--n-t",
            "--t-max",
            "--method",
            "--objective",
        ):
            if data.draw(st.booleans()):
                argv += [flag] + data.draw(st.lists(NUMBER_TOKENS, min_size=0, max_size=2))
        if command == "simulate":
            argv += [
                "--out",
                out,
                "--n-t",
                data.draw(st.sampled_from(["16", "1", "100000000", "x"])),
            ]
    elif command == "sweep":
        (tmp / "c.toml").write_text(data.draw(st.sampled_from([
            "[sweep]\nobjective='jepa'\ndepth=1\neps=1e-3\nlam={logspace=[-1,0,1000000000]}\nrho=0.5\n",
            "[sweep]\nobjective='jepa'\ndepth=0\neps=1e-3\nlam=1\nrho=0.5\n",
            "[sweep]\nobjective='jepa'\n",
            "not toml [[",
        ])))  # fmt: skip
        argv += [str(tmp / "c.toml"), "--out", out]
        argv += data.draw(st.sampled_from([[], ["--chunk-size", "0"], ["--max-disk", "lots"]]))
    elif command == "demo":
        bad = [["--n-t", "1"], ["--n-t", "1e9"], ["--max-memory", "-1"], ["--n-t", "100000000"]]
        argv += ["--out", out] + data.draw(st.sampled_from(bad))
    else:
        argv += ["--out", data.draw(st.sampled_from([str(tmp / "file"), "/sys/jf", out]))]
        argv += data.draw(st.sampled_from([["--only", "10"], ["--only", "x"], ["--level", "huge"]]))
    return argv


@given(st.data())
def test_cli_on_generated_command_lines(tmp_path_factory, capsys, data):
    tmp = tmp_path_factory.mktemp("cli")
    (tmp / "file").write_text("x")
    argv = _argv(data, tmp)
    code = main(argv)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    if code == 0:
        assert argv[0] in ("critical-time", "simulate")
        return
    assert code == 2, (argv, code, err)
    assert len(lines) == 1 and lines[0].startswith("jepa-flow: error: "), (argv, err)
    assert "unexpected" not in lines[0], (argv, err)  # every failure is an anticipated one
    assert not (tmp / "out").exists(), argv  # nothing written
    assert (tmp / "file").read_text() == "x"
