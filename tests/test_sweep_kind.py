"""The sweep interface (issue 17): every kind through ``SweepKind``; results by name.

The grid's rows are checked against ``itertools.product`` of the axes (an
independent reference for the C order and the general flow's collapsed axes);
``sel`` and ``to_xarray`` against boolean masks over the flat columns.
"""

import itertools
import json
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest
from _helpers import PLAIN

import jepa_flow as jf
from jepa_flow._cli._sweep import plot_function
from jepa_flow._sweeps._config import KINDS
from jepa_flow._sweeps._general import GeneralSweepConfig
from jepa_flow._sweeps._kind import SweepKind
from jepa_flow._sweeps._store import Store

GENERAL = """
[sweep]
objective = ["jepa", "mae"]
flow = "general"
target = ["stopgrad", "ema"]
tau = [0.1, 1.0]
init_ratio = [1.0, 10.0]
depth = 1
lam = 1.0
rho = [0.5, 0.8]
eps = 1e-3
"""
TRAIN = """
[train]
objective = ["jepa", "mae"]
data = "gaussian"
lam = [1.0, 0.8]
var = [2.0, 1.0]
depth = [1, 2]
eta = [0.01, 0.1, 1.0]
batch = [16, "population"]
seed = {range = 2}
steps = 10
"""

VALIDITY = """
[validity]
objective = ["jepa", "ema", "mae"]
theta = [0.0, 10.0, 20.0]
depth = [1, 2]
eps = [1e-2, 1e-3]
seed = {range = 2}
d = 4
var = [1.0, 0.1]
rho = [0.3, 0.9]
"""


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    out = tmp_path_factory.mktemp("kind") / "run"
    jf.run_sweep(jf.parse_sweep_config(PLAIN), out, chunk_size=7)
    return out, jf.load_sweep(out)


@pytest.mark.parametrize("text", [PLAIN, GENERAL, TRAIN, VALIDITY])
def test_every_kind_implements_the_interface(text):
    config = jf.parse_sweep_config(text)
    assert isinstance(config, SweepKind) and type(config) in KINDS
    assert config.size == sum(config.group_sizes()) == config.grid.size
    for chunk_size in (1, 5, 1000):
        plan = config.chunk_plan(chunk_size)
        assert [c.index for c in plan] == list(range(len(plan)))
        for group, size in enumerate(config.group_sizes()):  # each group tiled, in order
            mine = [(c.lo, c.hi) for c in plan if c.group == group]
            assert mine[0][0] == 0 and mine[-1][1] == size
            assert all(a[1] == b[0] for a, b in zip(mine, mine[1:]))
    assert config.disk_bytes == config.size * sum(o.row_bytes() for o in config.outputs())
    rows, per_row = config.work(config.default_chunk())
    assert 0 < rows <= config.default_chunk() and per_row > 0
    assert config.describe().startswith(f"{config.size} ")
    if config.plot is not None:  # the kind names its figure; the command line calls it
        assert callable(plot_function(config.plot))


def test_parameters_follow_the_c_order_product_of_the_axes():
    config = jf.parse_sweep_config(PLAIN)
    names = [n for n, _ in config.axes]
    product = list(itertools.product(*(v for _, v in config.axes)))
    params = config.parameters()
    assert list(params) == names + ["rho"]
    for k, name in enumerate(names):
        np.testing.assert_array_equal(params[name], [row[k] for row in product])
    np.testing.assert_array_equal(params["rho"], params["lam"] / params["var"])
    rows = np.array([95, 0, 47, 48, 13])
    picked = config.parameters(["var", "rho", "objective"], rows=rows)
    for name in picked:
        np.testing.assert_array_equal(picked[name], params[name][rows])


def _general_reference():
    """``GENERAL``'s rows by hand: per (objective, target), the product of its axes."""
    rows = []
    for objective in ("jepa", "mae"):
        for target in ("stopgrad", "ema") if objective == "jepa" else ("none",):
            taus = (0.1, 1.0) if target == "ema" else (np.nan,)
            for init_ratio, tau, rho in itertools.product((1.0, 10.0), taus, (0.5, 0.8)):
                rows.append((objective, target, tau, init_ratio, rho))
    return rows


def test_general_grid_holds_tau_only_where_it_applies():
    config = jf.parse_sweep_config(GENERAL)
    assert isinstance(config, GeneralSweepConfig)
    ref = _general_reference()
    params = config.parameters()
    assert config.size == len(ref) == 16
    for k, name in enumerate(("objective", "target", "tau", "init_ratio", "rho")):
        np.testing.assert_array_equal(params[name], [row[k] for row in ref], err_msg=name)
    np.testing.assert_array_equal(params["c"], np.nan)  # no frozen target: never applies
    grid = config.grid
    ema = grid.rows({"target": grid.positions("target", "ema")})
    assert ema.tolist() == [i for i, row in enumerate(ref) if row[1] == "ema"]
    cube = grid.embed(params["tau"], np.nan)  # over the axes; NaN where absent
    assert cube.shape == grid.shape
    at = {n: grid.positions(n, v)[0] for n, v in (("objective", "jepa"), ("target", "ema"))}
    index = [at.get(n, 0) for n in grid.names]
    index[grid.names.index("tau")] = grid.positions("tau", 1.0)[0]
    assert cube[tuple(index)] == 1.0
    index[grid.names.index("target")] = grid.positions("target", "stopgrad")[0]
    assert np.isnan(cube[tuple(index)])  # stopgrad has no tau = 1.0 cell


def test_result_is_a_read_only_mapping_of_columns(plain):
    out, res = plain
    assert isinstance(res, Mapping) and len(res) == len(list(res)) == 11
    assert list(res) == [*res.config.parameter_names, "t_star", "wbar_star", "ok"]
    assert dict(res.items()).keys() == set(res.names) and "t_star" in res and "x" not in res
    with pytest.raises(KeyError, match="no column 'x'"):
        res["x"]
    with pytest.raises(TypeError):
        res["t_star"] = 0  # read-only
    assert res.get("x") is None and res["t_star"].shape == (96,)


def test_sel_picks_rows_by_axis_values(plain):
    _, res = plain
    full = res.columns()
    got = res.sel(objective="mae", depth=3, lam=[0.3, 4.0])
    mask = (full["objective"] == "mae") & (full["depth"] == 3) & np.isin(full["lam"], [0.3, 4.0])
    assert mask.sum() == 12 and set(got) == set(full)
    for name in full:
        np.testing.assert_array_equal(got[name], full[name][mask], err_msg=name)
    with pytest.raises(ValueError, match="depth = 2 is not on the grid; its values: 1.0, 3.0"):
        res.sel(depth=2)
    with pytest.raises(ValueError, match="no axis 'rho'"):
        res.sel(rho=0.5)  # derived, not an axis


def test_to_xarray_lays_the_columns_over_the_axes(plain):
    pytest.importorskip("xarray")
    _, res = plain
    ds = res.to_xarray()
    assert tuple(ds["t_star"].dims) == res.config.names
    np.testing.assert_array_equal(ds["t_star"].values.ravel(), res["t_star"])
    np.testing.assert_array_equal(ds["rho"].values.ravel(), res["rho"])
    point = dict(objective="mae", method="exact", depth=3, eps=0.2, lam=4.0, var=2.0)
    np.testing.assert_array_equal(ds["t_star"].sel(point).values, res.sel(**point)["t_star"][0])


def test_to_xarray_without_xarray_says_how_to_install_it(plain, monkeypatch):
    monkeypatch.setitem(sys.modules, "xarray", None)  # import xarray raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'jepa_flow\[xarray\]'"):
        plain[1].to_xarray()


def test_store_reads_rows_across_chunk_boundaries(plain):
    out, res = plain
    store = Store(out)
    assert len(store.plan) == 14 and store.starts.tolist()[:8] == [0, 7, 14, 21, 28, 35, 42, 48]
    rows = np.array([95, 0, 6, 7, 47, 48, 13, 13])
    for name in store.outputs:
        np.testing.assert_array_equal(store.rows(name, rows), res[name][rows], err_msg=name)


# ---------------------------------------------------------------- inputs on the devices

PAIR_RATIOS = """
[sweep]
objective = "jepa"
depth = [1, 4]
eps = 1e-3
[pair]
lam_a = [1.0, 2.0]
rho_a = 0.5
lam_ratio = {linspace = [0.5, 1.5, 7]}
rho_ratio = [0.6, 1.8, 1.1]
"""
HUGE = """
[sweep]
objective = "jepa"
depth = 2
lam = {logspace = [-2, 1, 1000000]}
rho = {linspace = [0.05, 0.95, 1000000]}
eps = 1e-3
"""


def test_axis_index_is_integer_division_up_to_1e12_rows():
    from jepa_flow._sweeps._balanced_chunk import _axis_index

    rng = np.random.default_rng(0)
    row = np.concatenate([rng.integers(0, 10**12, 4000), 10**12 - 1 - np.arange(50)])
    for stride, length in [(1, 7), (3, 1), (10**6, 10**6), (999_983, 1_000_003), (10**12, 1)]:
        got = _axis_index(row.astype(float), float(length), 1 / stride, 1 / length)
        np.testing.assert_array_equal(np.asarray(got), (row // stride) % length)


@pytest.mark.parametrize("text", [PLAIN, PAIR_RATIOS, HUGE])
def test_inputs_made_on_the_device_are_the_hosts_bit_for_bit(text, monkeypatch):
    """The chunk's generated inputs (an identity kernel) against ``kernel_inputs`` on the host."""
    import jax

    from jepa_flow._sweeps import _balanced_chunk as chunk

    monkeypatch.setattr(chunk, "_one_device", lambda *args: lambda *inputs: inputs)
    config = jf.parse_sweep_config(text, budget=False)
    devices = tuple(jax.local_devices())
    table = chunk.on_devices(chunk.axis_table(config.numeric_axes), devices)
    names = tuple(n for n, _ in config.numeric_axes)
    make = chunk.device_function.__wrapped__  # uncached: the identity kernel
    m = config.group_size
    for padded in (16, 40):
        fn = make("jepa", "exact", config.pair, devices, None, names, padded)
        starts = list(range(0, min(m, 400), padded - 3)) + [m // 2 + 5, m - 7]
        for lo in starts:
            n = min(padded, m - lo)
            got = fn(np.int64(lo), np.int64(n), *table)
            for g, r in zip(got, chunk.kernel_inputs(config, lo, lo + n, padded)):
                np.testing.assert_array_equal(np.asarray(g), r, err_msg=f"rows {lo}:{lo + n}")


# ---------------------------------------------------------------- the store


def test_columns_are_memory_mapped_and_read_only(plain):
    out, res = plain
    column = jf.load_sweep(out)["t_star"]
    assert isinstance(column, np.memmap) and str(column.filename).endswith("columns/t_star.npy")
    with pytest.raises(ValueError, match="read-only"):
        column[0] = 1.0
    np.testing.assert_array_equal(np.load(out / "columns" / "t_star.npy"), res["t_star"])


def _as_version_0_1(out: Path) -> None:
    """Rewrite a finished sweep directory in 0.1's layout: one .npz per chunk, no columns."""
    from jepa_flow._core import _io

    store = Store(out)
    for chunk, start in zip(store.plan, store.starts):
        rows = {name: store.column(name)[start : start + chunk.rows] for name in store.outputs}
        _io.write_npz_atomic(out / "chunks" / f"chunk_{chunk.index:06d}.npz", False, **rows)
        (out / "chunks" / f"chunk_{chunk.index:06d}.done").unlink()
    shutil.rmtree(out / "columns")
    manifest = json.loads((out / "manifest.json").read_text())
    del manifest["layout"]
    _io.write_json_atomic(out / "manifest.json", manifest)


def test_directories_of_version_0_1_are_read_and_resumed(plain, tmp_path):
    out, res = plain
    old = tmp_path / "old"
    shutil.copytree(out, old)
    _as_version_0_1(old)
    chunk = old / "chunks" / "chunk_000005.npz"
    written = chunk.read_bytes()
    chunk.unlink()  # interrupted: resumed in its own layout
    summary = jf.run_sweep(jf.parse_sweep_config(PLAIN), old)
    assert summary.computed == 7 and summary.skipped == 13 and not (old / "columns").exists()
    assert chunk.read_bytes() == written
    again = jf.load_sweep(old)
    for name in res:
        np.testing.assert_array_equal(again[name], res[name], err_msg=name)
    np.testing.assert_array_equal(again.sel(depth=3)["ok"], res.sel(depth=3)["ok"])


def test_the_committed_departure_sweep_still_loads_and_resumes():
    import jax

    from jepa_flow._sweeps._run import can_resume

    if not jax.config.jax_enable_x64:
        pytest.skip("written in float64")
    path = Path(__file__).parents[1] / "results" / "8_capture_collapse" / "departure_sweep"
    config = jf.parse_sweep_config((path / "config.toml").read_text(), budget=False)
    assert can_resume(config, path)
    res = jf.load_sweep(path)
    assert Store(path).layout == "npz" and res["t_train"].shape == (720, 2)
    assert res.failed == int((~res["ok"]).sum())
