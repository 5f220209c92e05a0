"""Training sweeps (a ``[train]`` table): parsing, SGD against the flow, resume, devices.

One small sweep (d = 2, depth 1, 4000 steps) is run once per module and
shared: 2 objectives x 2 batches x 2 etas x 2 seeds, with steps (so both etas
share one compiled call per (objective, batch)).
"""

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import jepa_flow as jf
from jepa_flow._sweeps import _train_run as _ts
from jepa_flow._sweeps._store import Store

BASE = """
[train]
objective = ["jepa", "mae"]
data = "gaussian"
lam = [1.0, 0.8]
var = [2.0, 1.0]
depth = 1
eta = [0.01, 1.2]
batch = [16, "population"]
seed = {range = 2}
steps = 4000
eps = 0.05
n_t = 24
"""
# Per-feature critical times of the canonical pair at depth 1, eps = 0.05, fraction 0.5
# (docs/theory.md §4.1, §4.2): closed forms, independent of training.
T_JEPA = [20.3944, 26.1063]
T_MAE = [2.0973, 2.9166]


def _config(text=BASE, **replace):
    for old, new in replace.items():
        text = text.replace(old, new)
    return jf.parse_sweep_config(text)


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    out = tmp_path_factory.mktemp("train_sweep") / "run"
    summary = jf.run_sweep(_config(), out)
    return out, summary, jf.load_sweep(out).columns()


# ---------------------------------------------------------------- parsing


def test_parse_counts_axes_and_defaults():
    config = _config()
    assert config.names == ("objective", "batch", "eta", "depth", "seed")
    assert config.shape == (2, 2, 2, 1, 2) and config.size == 16 and config.d == 2
    assert config.groups == [("jepa", 16), ("jepa", None), ("mae", 16), ("mae", None)]
    s = config.setting
    assert (s["fraction"], s["sampler"], s["rotation"], s["target"]) == (
        0.5,
        "moments",
        "identity",
        "stopgrad",
    )
    assert config.describe() == (
        "16 training runs (objective 2 x batch 2 x eta 2 x depth 1 x seed 2), d = 2 features"
    )
    params = config.parameters()
    assert params["batch"].tolist() == [16.0] * 4 + [np.inf] * 4 + [16.0] * 4 + [np.inf] * 4
    assert params["seed"].tolist() == [0, 1] * 8
    assert params["eta"].tolist() == ([0.01] * 2 + [1.2] * 2) * 4


def test_chunk_plan_steps_share_a_call_t_max_splits_the_etas():
    steps = _config()
    assert steps.chunk_plan(4096) == [(0, 0, 0, 4), (1, 1, 0, 4), (2, 2, 0, 4), (3, 3, 0, 4)]
    assert steps.chunk_plan(2) == [(i, i // 2, 2 * (i % 2), 2 * (i % 2) + 2) for i in range(8)]
    t_max = _config(**{"steps = 4000": "t_max = 40.0"})
    # each eta runs its own ceil(t_max / eta) steps: one eta per chunk
    assert t_max.chunk_plan(4096) == steps.chunk_plan(2)
    assert t_max.fingerprint() != steps.fingerprint()


def test_eta_logspace_seed_list_and_other_data():
    config = _config(
        **{
            "eta = [0.01, 1.2]": "eta = {logspace = [-3, -1, 3]}",
            "seed = {range = 2}": "seed = [3, 7]",
            'data = "gaussian"\nlam = [1.0, 0.8]\nvar = [2.0, 1.0]': (
                'data = "noisy_views"\ns = [1.0, 1.0, 1.0]\nnu = [0.0, 1.0, 3.0]'
            ),
        }
    )
    np.testing.assert_allclose(config.axis("eta"), [1e-3, 1e-2, 1e-1], rtol=1e-15)
    assert config.axis("seed") == (3, 7) and config.d == 3
    data = config.data_source(None)
    np.testing.assert_allclose(data.rho, [1.0, 0.5, 0.25])


@pytest.mark.parametrize(
    "old, new, message",
    [
        ("steps = 4000", "steps = 4000\nwidth = 3", "unknown key train.width"),
        ("steps = 4000", "", "exactly one of t_max"),
        ("steps = 4000", "steps = 4000\nt_max = 3.0", "exactly one of t_max"),
        ('data = "gaussian"', 'data = "images"', "train.data must be one of"),
        ("var = [2.0, 1.0]", "var = [2.0, 1.0, 3.0]", "same length"),
        ("var = [2.0, 1.0]", "", "train.var is required"),
        ("var = [2.0, 1.0]", "var = [2.0, 1.0]\ns = [1.0, 1.0]", "train.s does not apply"),
        ("eta = [0.01, 1.2]", "eta = [0.01, 0.0]", "train.eta must be > 0"),
        ("depth = 1", "depth = [1, 65]", r"train.depth must be integers in \[1, 64\]"),
        ("depth = 1", "depth = 1.5", "train.depth must be integers"),
        ('batch = [16, "population"]', 'batch = [16, "all"]', "train.batch values must be"),
        ('batch = [16, "population"]', "batch = [2, 16]", "below 2d = 4"),
        ('batch = [16, "population"]', "batch = [16, 16]", "repeated"),
        ("seed = {range = 2}", "seed = {range = 0}", "train.seed: range must be"),
        ("seed = {range = 2}", "seed = -1", r"train.seed must be integers in \[0, "),
        ("objective = [", 'objective = ["byol", ', "train.objective must be one of"),
        ("n_t = 24", "n_t = 1", r"train.n_t must be an integer in \[2, 10000\]"),
        ("eps = 0.05", "eps = 0.0", "train.eps must be a finite number > 0"),
        ("eps = 0.05", 'eps = 0.05\nrotation = "haar"', "train.rotation must be one of"),
        ("eps = 0.05", "eps = 0.05\ntau = 2.0", "tau applies to target = 'ema' only"),
        ("eps = 0.05", 'eps = 0.05\ntarget = "ema"\ntau = 1.0', r"tau must be 0 or >= max"),
        ("eps = 0.05", "eps = 0.05\nfraction = 1.0", r"train.fraction must lie in \(0, 1\)"),
        ("[train]", "[sweep]\nlam = 1\n[train]", "takes only .train. and .budget."),
        ("n_t = 24", "n_t = 24\n[budget]\ndisk = '100'", "disk"),
    ],
)
def test_bad_tables_are_refused_naming_the_key(old, new, message):
    assert old in BASE
    with pytest.raises(ValueError, match=message):
        _config(**{old: new})


def test_bad_data_parameters_name_the_source():
    with pytest.raises(ValueError, match="train.data = 'noisy_views': noisy_views needs s >= 0"):
        _config(
            **{'data = "gaussian"\nlam = [1.0, 0.8]': 'data = "noisy_views"\ns = [1.0, -1.0]'}
            | {"var = [2.0, 1.0]": "nu = [1.0, 1.0]"}
        )
    with pytest.raises(ValueError, match="train.rotation does not apply to the real data set"):
        _config(
            **{
                'data = "gaussian"\nlam = [1.0, 0.8]\nvar = [2.0, 1.0]': (
                    'data = "membrane"\nrotation = "random"'
                )
            }
        )


# ---------------------------------------------------------------- running


def test_small_eta_population_follows_the_theory_and_large_eta_departs(swept):
    out, summary, r = swept
    assert summary.n_configs == 16 and summary.n_chunks == 4 and summary.computed == 16
    pop_small = (r["batch"] == np.inf) & (r["eta"] == 0.01)
    for objective, theory in (("jepa", T_JEPA), ("mae", T_MAE)):
        rows = pop_small & (r["objective"] == objective)
        np.testing.assert_allclose(r["t_theory"][rows], [theory, theory], rtol=1e-4)
        assert (r["rel_error"][rows] < 1e-2).all()
        np.testing.assert_allclose(r["t_train"][rows], r["t_theory"][rows], rtol=1e-2)
        assert r["order_match"][rows].all() and r["followed"][rows].all()
    # eta = 1.2 on the population loss: JEPA is 7 % late, MAE stops following its flow
    big = (r["batch"] == np.inf) & (r["eta"] == 1.2)
    jepa, mae = big & (r["objective"] == "jepa"), big & (r["objective"] == "mae")
    assert (r["rel_error"][jepa] > 0.05).all()
    assert not r["followed"][mae].any() and np.isnan(r["rel_error"][mae]).all()
    # SGD (batch 16) at eta = 0.01 follows to a few percent
    assert (r["rel_error"][(r["batch"] == 16) & (r["eta"] == 0.01)] < 0.06).all()
    assert not r["use_full"].any() and (r["captures_seen"] == 0).all()


def test_diverged_members_do_not_abort_their_chunk(swept):
    _, summary, r = swept
    # batch 16 at eta = 1.2 diverges (both objectives); the same chunks' eta = 0.01 rows finish
    bad = (r["batch"] == 16) & (r["eta"] == 1.2)
    assert r["diverged"].tolist() == bad.tolist()
    assert np.isnan(r["t_train"][bad]).all() and np.isnan(r["rel_error"][bad]).all()
    assert not r["ok"][bad].any() and not r["order_match"][bad].any()
    assert r["ok"][~bad].all() and np.isfinite(r["t_train"][~bad]).all()
    assert summary.failed == int(bad.sum()) == 4


def test_same_seed_same_run_and_population_ignores_the_seed(swept):
    _, _, r = swept
    pop = (r["batch"] == np.inf) & ~r["diverged"]
    t = r["t_train"][pop].reshape(-1, 2, 2)  # [.., seed, feature]
    np.testing.assert_array_equal(t[:, 0], t[:, 1])  # balanced start: the seed draws nothing
    sgd = (r["batch"] == 16) & (r["eta"] == 0.01)
    t = r["t_train"][sgd].reshape(-1, 2, 2)
    assert (t[:, 0] != t[:, 1]).all()  # minibatches differ by seed


def _forget_chunk(out: Path, index: int) -> dict[str, bytes]:
    """Remove chunk ``index``'s marker and scramble its rows; the column files' bytes before."""
    store = Store(out)
    before = {p.name: p.read_bytes() for p in (out / "columns").iterdir()}
    (out / "chunks" / f"chunk_{index:06d}.done").unlink()
    lo, n = store.starts[index], store.plan[index].rows
    for path in (out / "columns").iterdir():
        column = np.load(path, mmap_mode="r+")
        column[lo : lo + n] = np.ones_like(column[lo : lo + n])  # not what the run writes
        column.flush()
        del column
    return before


def test_resume_after_deleting_a_chunk_gives_the_same_bytes(swept):
    out, _, _ = swept
    before = _forget_chunk(out, 2)
    with pytest.raises(ValueError, match="1 of 4 chunks are missing"):
        jf.load_sweep(out)
    summary = jf.run_sweep(_config(), out)
    assert summary.skipped == 3 and summary.computed == 4
    assert {p.name: p.read_bytes() for p in (out / "columns").iterdir()} == before


def test_refuses_a_changed_configuration(swept):
    out, _, r = swept
    with pytest.raises(ValueError, match="different sweep configuration"):
        jf.run_sweep(_config(**{"steps = 4000": "steps = 4001"}), out)
    with pytest.raises(ValueError, match="different sweep configuration"):
        jf.run_sweep(_config(**{"seed = {range = 2}": "seed = {range = 3}"}), out)
    with pytest.raises(ValueError, match="chunk_size 2 differs"):
        jf.run_sweep(_config(), out, chunk_size=2)
    np.testing.assert_array_equal(jf.load_sweep(out)["t_train"], r["t_train"])


def test_figure_and_departure(swept):
    out, _, r = swept
    from jepa_flow._plotting._sweep_figure import write_sweep_figure
    from jepa_flow._plotting._train_sweep import boundary

    grid = jf.departure(jf.load_sweep(out))
    # [objective, batch, eta, depth]: eta = 0.01 stays within 5 % (median over seeds), 1.2 departs
    departed = np.zeros((2, 2, 2, 1), bool)
    departed[:, :, 1] = True
    assert grid.departed.tolist() == departed.tolist() and grid.threshold == 0.05
    np.testing.assert_allclose(grid.order_fraction[..., 0], [[[1, 0], [1, 1]], [[1, 0], [1, 0]]])
    err = r["rel_error"].reshape(2, 2, 2, 1, 2, 2).max(axis=-1)  # worst feature per run
    np.testing.assert_allclose(grid.median_error[:, :, 0], np.median(err[:, :, 0], axis=-1))
    strict = jf.departure(jf.load_sweep(out), threshold=1e-12)  # every cell has some error
    assert strict.departed.all() and strict.threshold == 1e-12
    # an L-shaped departed region [batch, eta]: its two inner edges
    assert boundary([[True, True], [False, True]]) == [
        ((0.5, 0.5), (0.5, 1.5)),
        ((-0.5, 0.5), (0.5, 0.5)),
    ]
    assert write_sweep_figure(out) == ["train_sweep.png"]
    assert (out / "train_sweep.png").stat().st_size > 10_000


def test_results_by_name_and_over_the_axes(swept):
    out, _, r = swept
    res = jf.load_sweep(out)
    picked = res.sel(objective="mae", batch=np.inf, eta=1.2)  # batch inf: the population loss
    mask = (r["objective"] == "mae") & np.isinf(r["batch"]) & (r["eta"] == 1.2)
    assert mask.sum() == 2 and picked["t_train"].shape == (2, 2)
    np.testing.assert_array_equal(picked["t_train"], r["t_train"][mask])
    xr = pytest.importorskip("xarray")
    ds = res.to_xarray()
    assert isinstance(ds, xr.Dataset) and ds["t_train"].dims[-1] == "feature"
    assert ds["t_train"].shape == (2, 2, 2, 1, 2, 2)  # objective, batch, eta, depth, seed, feature
    np.testing.assert_array_equal(ds["t_train"].values.reshape(-1, 2), r["t_train"])


DEVICES = textwrap.dedent("""
    import sys
    import jax
    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_num_cpu_devices", 3)
    import jepa_flow as jf
    assert jax.local_device_count() == 3
    summary = jf.run_sweep(jf.parse_sweep_config(sys.argv[1]), sys.argv[2])
    assert summary.computed == 4 and summary.skipped == 3
""")


@pytest.mark.slow  # several devices or processes in subprocesses: second tier (make test-slow)
def test_three_devices_write_the_bytes_of_one(swept, tmp_path):
    """Chunk 0 (JEPA, batch 16, one run diverging) redone on 3 devices by resuming.

    Its 4 runs are padded with 2 unused seeds to 6 (2 per device), then dropped.
    """
    out, _, _ = swept
    shutil.copytree(out, tmp_path / "three")
    before = _forget_chunk(tmp_path / "three", 0)
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    subprocess.run(
        [sys.executable, "-c", DEVICES, BASE, str(tmp_path / "three")],
        check=True,
        env=env,
        timeout=300,
    )
    after = {p.name: p.read_bytes() for p in (tmp_path / "three" / "columns").iterdir()}
    assert after == before


def test_padded_seeds_split_evenly():
    assert _ts._padded_seeds((0, 1, 2), 2, 2) == (0, 1, 2)
    assert _ts._padded_seeds((0, 1, 2), 1, 2) == (0, 1, 2, 3)
    assert _ts._padded_seeds((5,), 3, 4) == (5, 6, 7, 8)


def test_cli_counts_before_running_resumes_and_refuses(swept, tmp_path, capsys):
    from jepa_flow._cli import main

    out, _, r = swept
    config = tmp_path / "train.toml"
    config.write_text(BASE)
    assert main(["sweep", str(config), "--out", str(out)]) == 0  # finished: nothing to compute
    printed = capsys.readouterr().out
    assert printed.startswith("sweep: [train], 16 training runs (objective 2 x batch 2")
    assert "(4 already done); computed 0" in printed and "train_sweep.png" in printed
    config.write_text(BASE.replace("batch = [16", "batch = [3"))
    assert main(["sweep", str(config), "--out", str(tmp_path / "new")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "train.batch 3 is below 2d = 4" in err
    assert not (tmp_path / "new").exists()
