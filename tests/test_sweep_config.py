"""Sweep configuration: grid expansion, ordering, pair ratios and TOML errors.

Pure numpy: nothing here compiles.
"""

import itertools

import numpy as np
import pytest

from jepa_flow import parse_sweep_config

PLAIN = """
[sweep]
objective = ["jepa", "mae"]
depth = [1, 2, 4]
lam = {logspace = [-2, 1, 4]}
rho = {linspace = [0.05, 0.95, 3]}
eps = 1e-3
"""


def test_grid_expansion_and_order():
    config = parse_sweep_config(PLAIN)
    assert config.names == ("objective", "method", "depth", "eps", "fraction", "lam", "rho")
    assert config.shape == (2, 1, 3, 1, 1, 4, 3)
    assert config.size == 72 and config.group_size == 36
    assert config.groups == [("jepa", "exact"), ("mae", "exact")]  # method defaults to exact
    values = dict(config.axes)
    np.testing.assert_allclose(values["lam"], [0.01, 0.1, 1.0, 10.0], rtol=1e-15)
    np.testing.assert_allclose(values["rho"], [0.05, 0.5, 0.95], rtol=1e-15)
    np.testing.assert_array_equal(values["fraction"], [0.5])  # default
    # rows follow itertools.product of the numeric axes (last axis fastest)
    rows = config.rows(0, config.group_size)
    expected = list(itertools.product([1, 2, 4], [1e-3], [0.5], values["lam"], values["rho"]))
    got = list(zip(rows["depth"], rows["eps"], rows["fraction"], rows["lam"], rows["rho"]))
    assert got == expected
    np.testing.assert_allclose(rows["var"], rows["lam"] / rows["rho"], rtol=1e-15)
    # a slice in the middle is the same rows
    part = config.rows(10, 17)
    for key in rows:
        np.testing.assert_array_equal(part[key], rows[key][10:17])


def test_pair_ratios_derive_feature_b():
    config = parse_sweep_config("""
[sweep]
objective = "jepa"
depth = [2, 3]
eps = 1e-3
fraction = [0.25, 0.5]
method = "ode"
[pair]
lam_a = 1.0
rho_a = 0.5
lam_ratio = [0.5, 2.0]
rho_ratio = {linspace = [0.5, 1.5, 3]}
""")
    assert config.pair and config.groups == [("jepa", "ode")]
    assert config.size == 2 * 2 * 2 * 3
    rows = config.rows(0, config.size)
    np.testing.assert_allclose(rows["var_a"], 2.0)
    np.testing.assert_allclose(rows["lam_b"], rows["lam_ratio"] * 1.0)
    np.testing.assert_allclose(rows["rho_b"], rows["rho_ratio"] * 0.5)
    np.testing.assert_allclose(rows["var_b"], rows["lam_b"] / rows["rho_b"])
    np.testing.assert_allclose(rows["rho_b"][:3], [0.25, 0.5, 0.75], rtol=1e-15)


def test_fingerprint_depends_on_values_only():
    same = PLAIN.replace("eps = 1e-3", "eps = 0.001  # same value").replace(
        "[1, 2, 4]", "[1.0, 2, 4.0]"
    )
    other = PLAIN.replace("eps = 1e-3", "eps = 1e-4")
    a, b, c = (parse_sweep_config(t) for t in (PLAIN, same, other))
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


BASE = {"objective": '"jepa"', "depth": "1", "eps": "1e-3", "lam": "1.0", "var": "2.0"}


def _toml(extra="", drop=(), pair=None, **over):
    table = {**BASE, **over}
    lines = ["[sweep]"] + [f"{k} = {v}" for k, v in table.items() if k not in drop]
    text = "\n".join(lines) + "\n" + extra
    if pair is not None:
        text += "\n[pair]\n" + "\n".join(f"{k} = {v}" for k, v in pair.items())
    return text


@pytest.mark.parametrize(
    "text, match",
    [
        (_toml(foo="1"), r"unknown key sweep\.foo"),
        (_toml() + "\n[other]\nx = 1", r"unknown table or key 'other'"),
        (_toml(lam="[]"), r"sweep\.lam: empty grid"),
        (_toml(lam="{linspace = [0, 1, 0]}"), r"sweep\.lam: linspace count n"),
        (_toml(lam="{range = [0, 1, 3]}"), r"sweep\.lam: a table must be"),
        (_toml(lam="{logspace = [0, 1]}"), r"sweep\.lam: logspace needs"),
        (_toml(lam='"big"'), r"sweep\.lam: values must be numbers"),
        (_toml(depth="[1, 2.5]"), r"sweep\.depth: depth must be an integer"),
        (_toml(depth="0"), r"sweep\.depth"),
        (_toml(var="[1.0, -1.0]"), r"sweep\.var: var must be > 0"),
        (_toml(eps="0"), r"sweep\.eps: eps must be > 0"),
        (_toml(fraction="1.0"), r"sweep\.fraction: fraction must lie"),
        (_toml(objective='"byol"'), r"sweep\.objective: objective must be one of"),
        (_toml(method='"euler"'), r"sweep\.method: method must be one of"),
        (_toml(objective='["jepa", "jepa"]'), r"sweep\.objective: repeated"),
        (_toml(rho="0.5"), r"give only one of rho, var"),
        (_toml(drop=("var",)), r"one of rho, var is required"),
        (_toml(drop=("eps",)), r"sweep\.eps is required"),
        (_toml(lam="[-1.0, 1.0]", rho="0.5", drop=("var",)), r"sweep\.lam must be > 0 when rho"),
        ("[sweep\n", r"not valid TOML"),
        ("x = 1", r"unknown table or key 'x'"),
        (
            _toml(pair={"lam_a": 1, "var_a": 2, "lam_b": 1, "var_b": 1}),
            r"sweep\.lam .*belong in \[pair\]",
        ),
        (
            _toml(drop=("lam", "var"), pair={"var_a": 2, "lam_b": 1, "var_b": 1}),
            r"pair\.lam_a is required",
        ),
        (
            _toml(drop=("lam", "var"), pair={"lam_a": 1, "var_a": 2, "lam_b": 1}),
            r"one of rho_b, var_b",
        ),
        (
            _toml(
                drop=("lam", "var"), pair={"lam_a": 1, "var_a": 2, "lam_b": 1, "var_b": 1, "mu": 2}
            ),
            r"unknown key pair\.mu",
        ),
        (
            _toml(drop=("lam", "var"), pair={"lam_a": 1, "var_a": 2, "lam_ratio": 0, "var_b": 1}),
            r"pair\.lam_ratio: lam_ratio must be > 0",
        ),
        (
            _toml(drop=("lam", "var"), pair={"lam_a": -1, "var_a": 2, "lam_b": 1, "rho_ratio": 1}),
            r"pair\.lam_a must be > 0",
        ),
    ],
)
def test_bad_configurations_name_the_key(text, match):
    with pytest.raises(ValueError, match=match):
        parse_sweep_config(text)
