"""Results by name: ``sel`` over the grid's values, ``to_xarray``, ``t_extra="auto"``."""

import dataclasses

import numpy as np
import pytest

import jepa_flow as jf

DATA = jf.gaussian(Sxx=[2.0, 1.0], Syx=[1.0, 0.8])


@pytest.fixture(scope="module")
def grid_run():
    cfg = jf.TrainConfig(
        objective="mae",
        depth=[1, 2],
        eta=[1e-2, 2e-2],
        seed=[3, 5],
        eps=1e-2,
        t_max=20.0,
        scale=1e-3,
        n_t=12,
    )
    r = jf.train(DATA, cfg)
    return r, jf.compare(r)


def test_sel_picks_members_by_value(grid_run):
    r, _ = grid_run
    one = r.sel(seed=5, depth=2, eta=2e-2)
    np.testing.assert_array_equal(one.t_star, r.t_star[1, 1, 1])
    np.testing.assert_array_equal(one.norm, r.norm[1, 1, 1])
    np.testing.assert_array_equal(one.level, r.level[1])
    np.testing.assert_array_equal(one.wbar, r.wbar[1, 1, 1])
    np.testing.assert_array_equal(one.status, r.status[1, 1, 1])
    assert one.dims == () and one.coords == {"seed": 5, "depth": 2, "eta": 2e-2}
    assert one.config is r.config and one.step is r.step
    # a list keeps its axis, in the order given; None keeps the whole axis
    some = r.sel(seed=[5, 3], eta=1e-2)
    assert some.dims == ("seed", "depth")
    np.testing.assert_array_equal(some.t_star, r.t_star[::-1, :, 0])
    np.testing.assert_array_equal(some.level, r.level)
    # eta matches to rounding: 0.1 * 0.2 is not exactly 0.02
    np.testing.assert_array_equal(r.sel(eta=0.1 * 0.2).loss, r.loss[:, :, 1])


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"depth": 3}, "depth=3 is not on the grid; its depth values are [1, 2]"),
        ({"seed": [3, 4]}, "seed=4 is not on the grid; its seed values are [3, 5]"),
        ({"eta": 0.015}, "eta=0.015 is not on the grid; its eta values are [0.01, 0.02]"),
    ],
)
def test_sel_refuses_values_off_the_grid(grid_run, kw, message):
    r, _ = grid_run
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        r.sel(**kw)


def test_comparison_sel(grid_run):
    r, c = grid_run
    one = c.sel(seed=3, depth=2, eta=1e-2)
    for name in ("t_star_theory", "t_star_training", "rel_error", "followed", "order_theory"):
        np.testing.assert_array_equal(getattr(one, name), getattr(c, name)[0, 1, 0])
    np.testing.assert_array_equal(one.curve_theory, c.curve_theory[0, 1, 0])
    assert one.order_agrees == c.order_agrees[0, 1, 0]
    assert one.captures_predicted == c.captures_predicted[0][1][0]
    np.testing.assert_array_equal(one.result.norm, r.norm[0, 1, 0])
    np.testing.assert_array_equal(one.lam, c.lam)  # per-feature parameters are the run's
    assert all(x.member[1] == 1 for x in c.sel(depth=2).captures)
    assert c.sel(eta=2e-2).captures_predicted.shape == (2, 2)


def test_to_xarray_labels_the_grid(grid_run):
    xr = pytest.importorskip("xarray")
    r, _ = grid_run
    ds = r.to_xarray()
    assert isinstance(ds, xr.Dataset)
    assert ds["t_star"].dims == ("seed", "depth", "eta", "feature")
    assert ds["W"].dims == ("seed", "depth", "eta", "layer", "out", "in")
    np.testing.assert_array_equal(ds["t_star"].sel(seed=5, depth=2, eta=2e-2), r.t_star[1, 1, 1])
    np.testing.assert_array_equal(ds["step"], r.step)
    np.testing.assert_array_equal(ds["level"].sel(depth=1), r.level[0])
    assert jf.TrainConfig.from_dict(__import__("json").loads(ds.attrs["config"])) == r.config


def test_to_xarray_without_xarray_says_how_to_install(grid_run, monkeypatch):
    import builtins

    real = builtins.__import__

    def no_xarray(name, *args, **kwargs):
        if name == "xarray":
            raise ImportError("no module named xarray")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_xarray)
    with pytest.raises(ImportError, match=r"pip install 'jepa_flow\[xarray\]'"):
        grid_run[0].to_xarray()


def test_auto_records_make_train_then_compare_the_whole_path():
    cfg = jf.TrainConfig(objective="jepa", depth=[1, 2], eta=0.05, eps=1e-2, t_max=600.0)
    assert cfg.t_extra == "auto"
    whole = jf.compare(jf.train(DATA, cfg))
    explicit = dataclasses.replace(cfg, t_extra=jf.record_times(DATA, cfg))
    three_calls = jf.compare(jf.train(DATA, explicit))
    assert whole.config == three_calls.config == explicit  # the resolved times are recorded
    assert len(whole.config.t_extra) == 200
    for f in dataclasses.fields(jf.Comparison):
        a, b = getattr(whole, f.name), getattr(three_calls, f.name)
        if hasattr(a, "shape"):  # numpy or JAX arrays
            np.testing.assert_array_equal(a, b, err_msg=f.name)
        elif f.name != "result":
            assert a == b, f.name
    np.testing.assert_array_equal(whole.result.t, three_calls.result.t)
    # the records are dense over the rises: more than the log-spaced ones alone
    sparse = jf.train(DATA, dataclasses.replace(cfg, t_extra=()))
    assert whole.result.step.size > sparse.step.size + 100
    np.testing.assert_array_equal(whole.result.t_star, sparse.t_star)


def test_t_extra_is_checked():
    with pytest.raises(ValueError, match="t_extra must be 'auto' or a list"):
        jf.TrainConfig(steps=1, t_extra="dense")
    with pytest.raises(ValueError, match="t_extra must be >= 0"):
        jf.TrainConfig(steps=1, t_extra=[-1.0])
    cfg = jf.TrainConfig(steps=1)
    assert jf.TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="data must be a jepa_flow Data"):
        jf.record_times(cfg, DATA)  # the old argument order is refused, not misread
