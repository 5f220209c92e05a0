"""One way to save and load every typed result: a .json and a .npz, round trip exact."""

import dataclasses

import numpy as np

import jepa_flow as jf
from jepa_flow._core._results import _TYPES


def _same(a, b):
    """Field by field: arrays bit for bit, nested results recursively, the rest equal."""
    assert type(a) is type(b)
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if dataclasses.is_dataclass(x):
            _same(x, y)
        elif hasattr(x, "shape"):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=f.name)
        else:
            assert x == y, f.name


def test_every_public_result_type_can_be_saved():
    public = {
        name
        for name in jf.__all__
        if isinstance(getattr(jf, name), type) and dataclasses.is_dataclass(getattr(jf, name))
    }
    # a SweepResult is its directory, a SweepConfig (or another kind's) its TOML text
    kinds = {"SweepConfig", "TrainSweepConfig", "ValiditySweepConfig"}
    assert public - {"SweepResult"} - kinds <= set(_TYPES)


def test_round_trips(tmp_path):
    lam, var = np.array([1.0, 0.8]), np.array([2.0, 1.0])
    results = [
        jf.simulate("jepa", lam, var, 2, 1e-2, np.linspace(0.0, 50.0, 7)),
        jf.full_flow(
            "mae",
            jf.gaussian(Sxx=var, Syx=lam),
            1e-2 * np.eye(2)[None],
            1e-2 * np.eye(2),
            1,
            [1.0, 10.0],
            [0.3, 0.3],
        ),
        jf.general_critical_time("jepa", lam, var, 1, 1e-2, init_ratio=2.0),
        jf.analyze(jf.gaussian(Sxx=var, Syx=lam, U="random", seed=1)),
        jf.Departure(
            np.array([[[[0.01, np.inf]]]]),
            np.array([[[[1.0, 0.5]]]]),
            np.array([[[[False, True]]]]),
            np.zeros((1, 1, 1, 2)),
            threshold=0.05,
        ),
    ]
    for i, r in enumerate(results):
        jf.save_result(r, tmp_path / f"r{i}")
        _same(r, jf.load_result(tmp_path / f"r{i}"))
