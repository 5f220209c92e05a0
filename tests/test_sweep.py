"""Sweep engine: results against independent references, chunking, devices, resuming.

Tiny grids with ``method="exact"`` (fast to compile); one small ODE case.
Compiled chunk functions are shared between tests through the engine's cache
(same objective, method and chunk shape).
"""

import argparse
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from _helpers import PLAIN, compilations
from scipy.integrate import quad

import jepa_flow
from jepa_flow import critical_time, load_sweep, parse_sweep_config, run_sweep
from jepa_flow._sweeps import _load as _sweep_load
from jepa_flow._sweeps import _run as _sweep

CHUNK = 7  # 48 configurations per objective: 7 chunks each, the last one padded


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    out = tmp_path_factory.mktemp("plain") / "run"
    summary = run_sweep(parse_sweep_config(PLAIN), out, chunk_size=CHUNK)
    return out, summary, load_sweep(out)


def _quad_time(objective, lam, var, depth, eps, fraction=0.5):
    """Half time by adaptive quadrature of dt = du / (du/dt) in y = log u (theory §3)."""
    rho = lam / var
    u_star = rho if objective == "jepa" else rho ** (1 / (depth + 1))
    y0, y1 = np.log(eps) / depth, np.log(fraction) / depth + np.log(u_star)
    if y0 >= y1:
        return 0.0

    def dt_dy(y):
        u = np.exp(y)
        rate = (
            u ** (2 * depth) * (lam - var * u)
            if objective == "jepa"
            else (u**depth * (lam - var * u ** (depth + 1)))
        )
        return u / rate

    return quad(dt_dy, y0, y1, epsabs=0.0, epsrel=1e-12, limit=200)[0]


def test_plain_results_match_quadrature_and_fixed_points(plain):
    _, summary, r = plain
    assert summary.n_configs == 96 and summary.n_chunks == 14
    assert summary.computed == 96 and summary.skipped == 0 and summary.failed == 0
    assert len(r["t_star"]) == 96 and r["ok"].all()
    assert list(r["objective"][:48]) == ["jepa"] * 48 and list(r["objective"][48:]) == ["mae"] * 48
    never = r["lam"] <= 0
    assert np.all(np.isinf(r["t_star"][never])) and np.all(r["wbar_star"][never] == 0)
    rho, depth = r["lam"] / r["var"], r["depth"]
    jepa = r["objective"] == "jepa"
    wbar = np.where(jepa, rho**depth, np.abs(rho) ** (depth / (depth + 1)))
    np.testing.assert_allclose(r["wbar_star"][~never], wbar[~never], rtol=1e-14)
    ref = [
        _quad_time(o, lam, var, int(d), e)
        for o, lam, var, d, e in zip(r["objective"], r["lam"], r["var"], depth, r["eps"])
        if lam > 0
    ]
    np.testing.assert_allclose(r["t_star"][~never], ref, rtol=1e-9)
    assert np.sum(r["t_star"] == 0) > 0  # some features start at their level
    # MAE at depth 1: t* = (1/lam) [log(1/eps) + log((rho - eps^2)/3)/2]  (theory §4)
    sel = (~jepa) & (depth == 1) & ~never & (r["t_star"] > 0)
    lam, eps = r["lam"][sel], r["eps"][sel]
    closed = (np.log(1 / eps) + 0.5 * np.log((rho[sel] - eps**2) / 3)) / lam
    np.testing.assert_allclose(r["t_star"][sel], closed, rtol=1e-12)


def test_results_identical_across_chunk_sizes(plain, tmp_path):
    _, _, ref = plain
    run_sweep(parse_sweep_config(PLAIN), tmp_path / "one", chunk_size=64)
    r = load_sweep(tmp_path / "one")
    for key in ref:
        np.testing.assert_array_equal(r[key], ref[key], err_msg=key)


@pytest.mark.slow  # several devices or processes in subprocesses: second tier (make test-slow)
def test_results_identical_on_four_devices(plain, ode, tmp_path):
    """shard_map over 4 CPU devices (exact and ode), 2 rows each."""
    _, _, ref = plain
    (tmp_path / "c.toml").write_text(PLAIN)
    (tmp_path / "o.toml").write_text(ODE.format("ode"))
    code = textwrap.dedent(f"""
        import jax
        jax.config.update("jax_enable_x64", True)
        assert jax.local_device_count() == 4, jax.devices()
        from jepa_flow import run_sweep
        run_sweep({str(tmp_path / "c.toml")!r}, {str(tmp_path / "four")!r}, chunk_size={CHUNK})
        run_sweep({str(tmp_path / "o.toml")!r}, {str(tmp_path / "four_ode")!r}, chunk_size=8)
    """)
    env = {
        **os.environ,
        "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
        "JAX_PLATFORMS": "cpu",
    }
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=240)
    for got, want in (
        (load_sweep(tmp_path / "four"), ref),
        (load_sweep(tmp_path / "four_ode"), ode[0]),
    ):
        for key in want:
            np.testing.assert_array_equal(got[key], want[key], err_msg=key)


@pytest.mark.slow  # several devices or processes in subprocesses: second tier (make test-slow)
def test_two_processes_split_the_chunks(plain, tmp_path):
    """jax.distributed on CPU: two local processes, each runs every other chunk."""
    import socket

    _, _, ref = plain
    (tmp_path / "c.toml").write_text(PLAIN)
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        port = sock.getsockname()[1]
    code = textwrap.dedent(f"""
        import jax
        jax.config.update("jax_enable_x64", True)
        from jepa_flow._sweeps._run import maybe_initialize_distributed, run_sweep
        maybe_initialize_distributed()
        assert jax.process_count() == 2
        summary = run_sweep({str(tmp_path / "c.toml")!r}, {str(tmp_path / "two")!r},
                            chunk_size={CHUNK})
        assert summary.computed == 48, summary  # 7 of the 14 chunks each
    """)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code],
            env={
                **os.environ,
                "JAX_PLATFORMS": "cpu",
                "JAX_COORDINATOR_ADDRESS": f"localhost:{port}",
                "JAX_NUM_PROCESSES": "2",
                "JAX_PROCESS_ID": str(i),
            },
        )
        for i in range(2)
    ]
    assert [p.wait(timeout=240) for p in procs] == [0, 0]
    r = load_sweep(tmp_path / "two")
    for key in ref:
        np.testing.assert_array_equal(r[key], ref[key], err_msg=key)


def test_resume_after_interruption(plain, tmp_path, monkeypatch):
    _, _, ref = plain
    out = tmp_path / "run"
    write = _sweep._write_chunk
    calls = []

    def interrupted(writer, chunk, outputs):  # on the writer thread
        if len(calls) == 5:
            raise KeyboardInterrupt  # Ctrl-C while the sixth chunk is written
        calls.append(chunk)
        write(writer, chunk, outputs)

    monkeypatch.setattr(_sweep, "_write_chunk", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(parse_sweep_config(PLAIN), out, chunk_size=CHUNK)
    monkeypatch.setattr(_sweep, "_write_chunk", write)
    assert len(list((out / "chunks").glob("chunk_*.done"))) == 5
    with pytest.raises(ValueError, match="9 of 14 chunks are missing"):
        load_sweep(out)
    # a kill -9 during a write leaves a temporary file behind: it must be ignored
    stale = out / "chunks" / ".chunk_000006.done.abc.tmp"
    stale.write_bytes(b"half a file")
    summary = run_sweep(parse_sweep_config(PLAIN), out)  # chunk size read from the run
    assert not stale.exists()
    assert summary.skipped == 5 and summary.computed == 96 - 5 * CHUNK
    r = load_sweep(out)
    for key in ref:
        np.testing.assert_array_equal(r[key], ref[key], err_msg=key)
    again = run_sweep(parse_sweep_config(PLAIN), out)
    assert again.skipped == 14 and again.computed == 0


def test_slice_reads_the_same_rows_and_plots(plain):
    out, _, r = plain
    full, sub, part = _sweep_load.load_sweep_slice(out, {"depth", "lam", "var"})
    assert sub.size == 48 and full.size == 96
    sel = r["eps"] == 1e-3  # eps is held at its first value
    for key in part:
        np.testing.assert_array_equal(part[key], r[key][sel], err_msg=key)
    from jepa_flow._plotting._sweep_figure import write_sweep_figure

    assert write_sweep_figure(out) == ["critical_time.png"]
    assert (out / "critical_time.png").stat().st_size > 10_000


def test_resume_after_kill_9(plain, tmp_path):
    """SIGKILL between writing a chunk's temporary file and renaming it."""
    _, _, ref = plain
    out = tmp_path / "killed"
    code = textwrap.dedent(f"""
        import os, signal
        import jax
        jax.config.update("jax_enable_x64", True)
        from jepa_flow import parse_sweep_config, run_sweep
        from jepa_flow._core import _io
        replace, calls = os.replace, []

        def killing_replace(src, dst):
            if str(dst).endswith(".done"):
                if len(calls) == 3:
                    os.kill(os.getpid(), signal.SIGKILL)
                calls.append(dst)
            replace(src, dst)

        _io.os.replace = killing_replace
        run_sweep(parse_sweep_config({PLAIN!r}), {str(out)!r}, chunk_size={CHUNK})
    """)
    proc = subprocess.run([sys.executable, "-c", code], check=False, timeout=240)
    assert proc.returncode == -9
    assert len(list((out / "chunks").glob("chunk_*.done"))) == 3
    assert len(list((out / "chunks").glob(".chunk_*.tmp"))) == 1
    summary = run_sweep(parse_sweep_config(PLAIN), out)
    assert summary.skipped == 3
    r = load_sweep(out)
    for key in ref:
        np.testing.assert_array_equal(r[key], ref[key], err_msg=key)


def test_refuses_a_different_configuration(plain):
    out, _, ref = plain
    with pytest.raises(ValueError, match="different sweep configuration"):
        run_sweep(parse_sweep_config(PLAIN.replace("0.2]", "0.3]")), out)
    with pytest.raises(ValueError, match="chunk_size 8 differs"):
        run_sweep(parse_sweep_config(PLAIN), out, chunk_size=8)
    np.testing.assert_array_equal(load_sweep(out)["t_star"], ref["t_star"])  # untouched


def test_refuses_a_directory_that_is_not_a_sweep(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty"):
        run_sweep(parse_sweep_config(PLAIN), tmp_path, chunk_size=CHUNK)
    with pytest.raises(ValueError, match="not a sweep directory"):
        load_sweep(tmp_path)


def test_new_values_reuse_the_compiled_chunk(plain, tmp_path):
    with compilations() as compiles:  # the fixture's run compiled both objectives' chunks
        config = parse_sweep_config(PLAIN.replace("4.0]", "5.0]").replace("0.2]", "0.1]"))
        run_sweep(config, tmp_path / "new", chunk_size=CHUNK)
    assert compiles == []  # same chunk shape: no new compilation


# theory §4, canonical pair: A = (lam 1, var 2), B = (lam 0.8, var 1), eps = 1e-3.
TABLE = {
    "jepa": [
        (1008.43, 1257.32),
        (11669.2, 14020.9),
        (26853.3, 29707.2),
        (43985.9, 43056.4),
        (161832, 81656.4),
    ],
    "mae": [
        (6.0119, 7.8086),
        (30.213, 38.022),
        (49.392, 61.901),
        (59.018, 73.857),
        (60.419, 75.471),
    ],
}
PAIR = """
[sweep]
objective = ["jepa", "mae"]
depth = [1, 2, 3, 4, 8]
eps = 1e-3
[pair]
lam_a = 1.0
var_a = 2.0
lam_b = 0.8
var_b = 1.0
"""


def test_pair_sweep_reproduces_the_canonical_table(tmp_path):
    run_sweep(parse_sweep_config(PAIR), tmp_path / "pair", chunk_size=CHUNK)
    r = load_sweep(tmp_path / "pair")
    ref = np.array(TABLE["jepa"] + TABLE["mae"])
    np.testing.assert_allclose(r["t_star_a"], ref[:, 0], rtol=2e-5)
    np.testing.assert_allclose(r["t_star_b"], ref[:, 1], rtol=2e-5)
    assert r["first"].tolist() == [0, 0, 0, 1, 1] + [0] * 5  # JEPA flips at depth 4
    np.testing.assert_allclose(r["t_ratio"], r["t_star_b"] / r["t_star_a"], rtol=0)
    np.testing.assert_allclose(r["wbar_star_b"][:5], 0.8 ** np.array([1, 2, 3, 4, 8]), rtol=1e-14)


def test_phase_boundary_matches_direct_critical_times(tmp_path):
    config = parse_sweep_config("""
[sweep]
objective = ["jepa", "mae"]
depth = [1, 4]
eps = 1e-3
[pair]
lam_a = 1.0
var_a = 2.0
lam_ratio = {linspace = [0.5, 1.5, 20]}  # avoids B = A exactly (a tie)
rho_b = [0.3, 0.5, 0.7, 0.9]
""")
    run_sweep(config, tmp_path / "phase", chunk_size=CHUNK)
    r = load_sweep(tmp_path / "phase")
    # At fixed rho, t* scales as 1/lam: B is first iff lam_b > lam_b* = t_B(lam 1) / t_A.
    flips = 0
    for objective in ("jepa", "mae"):
        for depth in (1, 4):
            t_a = critical_time(objective, 1.0, 2.0, depth, 1e-3)
            for rho_b in (0.3, 0.5, 0.7, 0.9):
                boundary = critical_time(objective, 1.0, 1.0 / rho_b, depth, 1e-3) / t_a
                sel = (r["objective"] == objective) & (r["depth"] == depth) & (r["rho_b"] == rho_b)
                expect = np.where(r["lam_b"][sel] > boundary, 1, 0)
                assert r["first"][sel].tolist() == expect.tolist()
                flips += 0 < expect.sum() < expect.size
    assert flips >= 12  # the boundary crosses most columns of the grid


ODE = """
[sweep]
objective = "jepa"
depth = [1, 3]
eps = 1e-3
lam = [0.5, 2.0]
rho = [0.3, 0.8]
method = "{}"
"""


@pytest.fixture(scope="module")
def ode(tmp_path_factory):
    out = tmp_path_factory.mktemp("ode")
    for method in ("ode", "exact"):
        run_sweep(parse_sweep_config(ODE.format(method)), out / method, chunk_size=8)
    return load_sweep(out / "ode"), load_sweep(out / "exact")


def test_ode_sweep_matches_exact(ode):
    r_ode, r_exact = ode
    assert r_ode["ok"].all() and list(r_ode["method"]) == ["ode"] * 8
    np.testing.assert_allclose(r_ode["t_star"], r_exact["t_star"], rtol=1e-9)


def test_series_sweep_matches_the_asymptotic_formulas(tmp_path):
    text = """
[sweep]
objective = ["jepa", "mae"]
depth = [1, 2, 5]
eps = 1e-4
lam = [0.5, 3.0]
rho = [0.4, 0.9]
method = "series"
"""
    run_sweep(parse_sweep_config(text), tmp_path / "series", chunk_size=CHUNK)
    r = load_sweep(tmp_path / "series")
    ref = []
    for o, lam, rho, d, e in zip(r["objective"], r["lam"], r["rho"], r["depth"], r["eps"]):
        if o == "jepa":  # theory §4: (1/lam) sum_n eps^(-n/L) / (n rho^(2L-1-n))
            n = np.arange(1, 2 * d)
            ref.append(np.sum(e ** (-n / d) / (n * rho ** (2 * d - 1 - n))) / lam)
        else:
            ref.append(np.log(1 / e) / lam if d == 1 else e ** (-(d - 1) / d) / ((d - 1) * lam))
    np.testing.assert_allclose(r["t_star"], ref, rtol=1e-13)


def test_jepa_flow_sweep_command(tmp_path, capsys):
    """Through ``jepa-flow`` itself, once the core subcommands are in the tree."""
    pytest.importorskip("jepa_flow._cli._core")
    from jepa_flow._cli import main

    (tmp_path / "c.toml").write_text(PAIR)
    out = str(tmp_path / "run")
    assert main(["sweep", str(tmp_path / "c.toml"), "--out", out, "--no-progress"]) == 0
    assert load_sweep(out)["first"].tolist() == [0, 0, 0, 1, 1] + [0] * 5
    (tmp_path / "bad.toml").write_text(PAIR + "\nextra = 1\n")
    assert main(["sweep", str(tmp_path / "bad.toml"), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("jepa-flow: error: unknown key pair.extra") and "\n" not in err


def test_cli_runs_plots_and_reports(tmp_path, capsys):
    from jepa_flow._cli import _sweep as _cli_sweep

    parser = argparse.ArgumentParser()
    _cli_sweep.register(parser.add_subparsers())
    (tmp_path / "c.toml").write_text(PAIR)
    out = tmp_path / "cli"
    args = parser.parse_args(
        [
            "sweep",
            str(tmp_path / "c.toml"),
            "--out",
            str(out),
            "--chunk-size",
            str(CHUNK),
            "--no-progress",
        ]
    )
    assert args.func(args) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("sweep: 10 configurations in 2 chunks (0 already done)")
    assert (out / "phase.png").stat().st_size > 10_000
    assert (out / "config.toml").read_text() == PAIR
    manifest = (out / "manifest.json").read_text()
    assert f'"jepa_flow_version": "{jepa_flow.__version__}"' in manifest
    (tmp_path / "bad.toml").write_text(PAIR.replace("eps = 1e-3", "eps = -1"))
    bad = parser.parse_args(["sweep", str(tmp_path / "bad.toml"), "--out", str(tmp_path / "x")])
    with pytest.raises(ValueError, match=r"sweep\.eps"):
        bad.func(bad)
    assert not (tmp_path / "x").exists()
