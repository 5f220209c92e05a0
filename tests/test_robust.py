"""Reliable on any input: one-line errors, budgets, writability probes, the directory lock.

The CLI is called in-process (``jepa_flow._cli.main``); nothing here compiles a
solver except the lock tests' tiny sweep.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import jepa_flow as jf
from jepa_flow._cli import main
from jepa_flow._core import _budget, _io
from jepa_flow._core._lock import LOCK_NAME, DirectoryLocked, locked_dir

TINY_SWEEP = """
[sweep]
objective = "jepa"
depth = [1, 2]
lam = [0.5, 1.0]
rho = 0.5
eps = 1e-3
"""


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("jepa-flow: error: "), err
    assert "Traceback" not in err
    return lines[0]


# -- library: None, huge ints, strings, booleans ---------------------------------


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: jf.critical_time("jepa", 1.0, 2.0, 1, None), "eps"),
        (lambda: jf.critical_time("jepa", 1.0, 2.0, 1, 1e-3, fraction=None), "fraction"),
        (lambda: jf.critical_time("jepa", None, 2.0, 1, 1e-3), "lam"),
        (lambda: jf.fixed_point("mae", 1.0, None, 1), "var"),
        (lambda: jf.fixed_point("mae", 1.0, 2.0, None), "depth"),
        (lambda: jf.simulate("jepa", 1.0, 2.0, 1, None, [0.0, 1.0]), "eps"),
        (lambda: jf.simulate("jepa", 1.0, 2.0, 1, 1e-3, None), "t"),
        (lambda: jf.critical_time("jepa", 10**400, 2.0, 1, 1e-3), "lam"),
        (lambda: jf.critical_time("jepa", 1.0, -(10**400), 1, 1e-3), "var"),
        (lambda: jf.critical_time("jepa", "1", 2.0, 1, 1e-3), "lam"),
        (lambda: jf.critical_time("jepa", 1.0, 2.0, True, 1e-3), "depth"),
        (lambda: jf.critical_time("jepa", [1.0, None], 2.0, 1, 1e-3), "lam"),
        (lambda: jf.critical_time("jepa", 1.0, 2.0, 1, 1e-3, fraction=0.5j), "fraction"),
    ],
)
def test_bad_values_are_one_line_value_errors(call, name):
    with pytest.raises(ValueError) as info:
        call()
    message = str(info.value)
    assert message.startswith(name + " ") and "\n" not in message, message


def test_huge_but_representable_ints_are_numbers():
    t = jf.critical_time("jepa", 10**300, 10**300, 1, 1e-3)  # rho = 1
    exact = jf.critical_time("jepa", 1.0, 1.0, 1, 1e-3)
    np.testing.assert_allclose(float(t) * 1e300, float(exact), rtol=1e-12)  # time ~ 1 / var


# -- budgets ------------------------------------------------------------------------


def test_parse_size():
    assert _budget.parse_size("x", "4G") == 4 * 2**30
    assert _budget.parse_size("x", "1.5KiB") == 1536
    assert _budget.parse_size("x", "500mb") == 500 * 2**20
    assert _budget.parse_size("x", 1000) == 1000
    for bad in ("", "4Q", "-1G", "0", None, True, "inf", float("nan")):
        with pytest.raises(ValueError, match="^x "):
            _budget.parse_size("x", bad)


def test_budget_error_names_parameter_and_estimate():
    with pytest.raises(_budget.BudgetError, match=r"about 8\.0 GiB .* raise max_memory") as info:
        _budget.check_budget("a job", memory=8 * 2**30, max_memory="4G")
    assert info.value.param == "max_memory" and info.value.limit == 4 * 2**30
    _budget.check_budget("a job", memory=8 * 2**30, max_memory="9G")  # raised: accepted


def test_huge_logspace_is_refused_without_being_generated():
    text = TINY_SWEEP.replace("lam = [0.5, 1.0]", "lam = {logspace = [-2, 1, 1000000000]}")
    start = time.perf_counter()
    with pytest.raises(_budget.BudgetError, match="GiB of memory") as info:
        jf.parse_sweep_config(text)
    assert time.perf_counter() - start < 1.0  # 8 GB would take many seconds to fill
    assert info.value.param == "max_memory"


def test_huge_grid_is_refused_with_its_disk_estimate():
    text = TINY_SWEEP.replace("depth = [1, 2]", "depth = [1, 2, 3, 4, 5, 6, 7, 8]")
    text = text.replace("lam = [0.5, 1.0]", "lam = {logspace = [-2, 1, 100000]}")
    text = text.replace("rho = 0.5", "rho = {linspace = [0.1, 0.9, 100000]}")
    with pytest.raises(_budget.BudgetError, match=r"80,000,000,000 configurations") as info:
        jf.parse_sweep_config(text)
    assert info.value.param == "max_disk"
    assert info.value.estimate == 8e10 * 17  # 1.2 TiB


def test_budget_table_and_arguments_raise_the_budget():
    text = TINY_SWEEP.replace("lam = [0.5, 1.0]", "lam = {logspace = [-2, 1, 1000]}")
    jf.parse_sweep_config(text)  # 2000 configurations: fine by default
    with pytest.raises(_budget.BudgetError, match="disk space"):
        jf.parse_sweep_config(text, max_disk="1K")
    tight = text + '\n[budget]\ndisk = "1K"\n'
    with pytest.raises(_budget.BudgetError):
        jf.parse_sweep_config(tight)
    a = jf.parse_sweep_config(tight, max_disk="1M")  # the argument overrides the table
    assert a.fingerprint() == jf.parse_sweep_config(text).fingerprint()  # budget not identity
    with pytest.raises(ValueError, match="budget.disk must be a size"):
        jf.parse_sweep_config(text + '\n[budget]\ndisk = "lots"\n')
    with pytest.raises(ValueError, match="unknown key budget.time"):
        jf.parse_sweep_config(text + "\n[budget]\ntime = 1\n")


# -- the CLI: one line, exit 2, nothing written ------------------------------------


def test_simulate_too_many_save_points_is_refused_before_anything(tmp_path, capsys):
    out = tmp_path / "o"
    argv = ["simulate", "--lam", "1", "--var", "2", "--n-t", "100000000", "--out", str(out)]
    assert main(argv) == 2
    line = _one_error_line(capsys)
    assert "GiB of memory" in line and "--max-memory" in line
    assert not out.exists()


def test_reproduce_out_is_a_file(tmp_path, capsys):
    f = tmp_path / "f"
    f.write_text("x")
    assert main(["reproduce", "--out", str(f), "--only", "1", "--level", "tiny"]) == 2
    assert "is not a directory" in _one_error_line(capsys)
    assert main(["reproduce", "--out", str(f / "sub"), "--only", "1", "--level", "tiny"]) == 2
    assert "is a file, not a directory" in _one_error_line(capsys)
    assert f.read_text() == "x"


def _unwritable_dir():
    for d in ("/sys", "/proc"):
        try:
            _io.check_writable(d)
        except ValueError:
            return d
    pytest.skip("no unwritable directory available")


@pytest.mark.parametrize("command", ["simulate", "sweep", "reproduce", "demo"])
def test_unwritable_out_is_refused_first(tmp_path, capsys, command):
    out = os.path.join(_unwritable_dir(), "jepa_flow_out")
    (tmp_path / "c.toml").write_text(TINY_SWEEP)
    argv = {
        "simulate": ["simulate", "--lam", "1", "--var", "2", "--out", out],
        "sweep": ["sweep", str(tmp_path / "c.toml"), "--out", out],
        "reproduce": ["reproduce", "--out", out, "--level", "tiny", "--only", "1"],
        "demo": ["demo", "--out", out],
    }[command]
    start = time.perf_counter()
    assert main(argv) == 2
    assert "not writable" in _one_error_line(capsys)
    assert time.perf_counter() - start < 5  # refused before computing (was 15-19 s)


def test_every_exception_is_one_line(monkeypatch, capsys):
    from jepa_flow._cli import _core

    for exc, words in [
        (RuntimeError("boom\nsecond line"), "unexpected RuntimeError: boom second line"),
        (MemoryError(), "out of memory"),
        (PermissionError(13, "Permission denied", "/x/y"), "Permission denied: '/x/y'"),
        (ValueError("bad\nvalue"), "bad value"),
    ]:

        def fail(args, exc=exc):
            raise exc

        monkeypatch.setattr(_core, "_run_critical_time", fail)
        monkeypatch.delenv("JEPA_FLOW_DEBUG", raising=False)
        assert main(["critical-time", "--lam", "1", "--var", "2"]) == 2
        assert words in _one_error_line(capsys)
        monkeypatch.setenv("JEPA_FLOW_DEBUG", "1")
        with pytest.raises(type(exc)):
            main(["critical-time", "--lam", "1", "--var", "2"])


def test_warnings_are_one_line(monkeypatch, capsys):
    import warnings

    from jepa_flow._cli import _core
    from jepa_flow._core._warn import JepaFlowWarning

    def warn(args):
        warnings.warn("the ODE solve failed\nfor 1 of 2 members", JepaFlowWarning, stacklevel=2)
        warnings.warn("overflow encountered in exp", RuntimeWarning, stacklevel=2)  # numpy's
        warnings.warn("Data has no positive values", UserWarning, stacklevel=2)  # matplotlib's
        return 0

    monkeypatch.setattr(_core, "_run_critical_time", warn)
    monkeypatch.delenv("JEPA_FLOW_DEBUG", raising=False)

    def show(message, category, filename, lineno, file=None, line=None):
        # what Python does outside pytest (which records warnings instead)
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = show
        assert main(["critical-time", "--lam", "1", "--var", "2"]) == 0
    assert capsys.readouterr().err == (
        "jepa-flow: warning: the ODE solve failed for 1 of 2 members\n"
    )


# -- the output-directory lock ---------------------------------------------------------


def test_lock_refuses_a_second_holder_and_is_removed(tmp_path):
    with locked_dir(tmp_path / "d") as d:
        assert (d / LOCK_NAME).read_text().strip() == str(os.getpid())
        with pytest.raises(DirectoryLocked, match=rf"in use by another .*pid {os.getpid()}"):
            with locked_dir(d):
                pass
    assert not (tmp_path / "d" / LOCK_NAME).exists()
    with locked_dir(tmp_path / "d"):  # free again
        pass


@pytest.mark.parametrize("command", ["sweep", "simulate", "reproduce"])
def test_second_process_on_same_out_is_refused(tmp_path, capsys, command):
    out = tmp_path / "out"
    (tmp_path / "c.toml").write_text(TINY_SWEEP)
    argv = {
        "sweep": ["sweep", str(tmp_path / "c.toml"), "--out", str(out), "--no-plot"],
        "simulate": ["simulate", "--lam", "1", "--var", "2", "--out", str(out)],
        "reproduce": ["reproduce", "--out", str(out), "--level", "tiny", "--only", "1"],
    }[command]
    with locked_dir(out):
        assert main(argv) == 2
        assert "in use by another jepa-flow process" in _one_error_line(capsys)
    assert os.listdir(out) == []  # nothing written by the refused run


def test_kill_9_releases_the_lock(tmp_path):
    code = (
        "import sys, time; from jepa_flow._core._lock import locked_dir\n"
        "with locked_dir(sys.argv[1]):\n    print('locked', flush=True); time.sleep(60)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(DirectoryLocked):
            with locked_dir(tmp_path):
                pass
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert (tmp_path / LOCK_NAME).exists()  # left behind, but no longer locked
    with locked_dir(tmp_path):
        pass


# -- files ---------------------------------------------------------------------------------


def test_npz_is_deterministic_and_readable(tmp_path):
    arrays = {"a": np.arange(5.0), "b": np.array(["jepa", "mae"]), "c": np.float64(3.5)}
    one = _io.npz_bytes(arrays)
    time.sleep(2.1)  # zip timestamps have a 2 s resolution
    assert _io.npz_bytes(arrays) == one
    assert _io.npz_bytes(arrays, compress=False) != one
    _io.write_npz_atomic(tmp_path / "x.npz", **arrays)
    with np.load(tmp_path / "x.npz") as z:
        assert sorted(z.files) == ["a", "b", "c"]
        np.testing.assert_array_equal(z["a"], arrays["a"])
        np.testing.assert_array_equal(z["b"], arrays["b"])
        assert z["c"] == 3.5


def test_progress_bar_only_on_a_terminal(tmp_path, capsys):
    import jax

    assert jax.config.jax_enable_x64
    (tmp_path / "c.toml").write_text(TINY_SWEEP)
    jf.run_sweep(str(tmp_path / "c.toml"), tmp_path / "out", progress=True)
    assert capsys.readouterr().err == ""  # stderr is captured, not a terminal


# -- hostile inputs of issue 18: one line naming the input, nothing written ---------------

_SIZES = ["abc", "-1", "0", "nan", "inf", "1e-300"]


@pytest.mark.parametrize("flag", ["--max-disk", "--max-memory"])
@pytest.mark.parametrize("command", ["train", "compare", "simulate", "demo", "sweep"])
def test_budget_flags_are_sizes_on_every_command(tmp_path, capsys, command, flag):
    (tmp_path / "c.toml").write_text(TINY_SWEEP)
    base = {
        "train": ["train", "--steps", "4"],
        "compare": ["compare", "--steps", "4"],
        "simulate": ["simulate", "--lam", "1", "--var", "2"],
        "demo": ["demo"],
        "sweep": ["sweep", str(tmp_path / "c.toml")],
    }[command]
    out = tmp_path / "out"
    for value in _SIZES:
        assert main([*base, flag, value, "--out", str(out)]) == 2
        line = _one_error_line(capsys)
        assert f"argument {flag}: must be a" in line and repr(value) in line, line
    assert not out.exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--steps", "4"],
        ["compare", "--steps", "4"],
        ["simulate", "--lam", "1", "--var", "2"],
        ["demo"],
    ],
)
def test_a_disk_budget_of_one_byte_writes_nothing(tmp_path, capsys, argv):
    out = tmp_path / "out"
    assert main([*argv, "--max-disk", "1", "--out", str(out)]) == 2
    assert "of disk space, more than the budget of 1 B" in _one_error_line(capsys)
    assert not out.exists()


def _hostile_files(tmp_path):
    np.save(tmp_path / "a.npy", np.eye(2))
    (tmp_path / "a.npy").rename(tmp_path / "renamed.npz")
    (tmp_path / "text.npz").write_text("not a zip")
    (tmp_path / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 2))
    np.savez(tmp_path / "huge.npz", x=1e200 * x, y=1e200 * (x + rng.standard_normal(x.shape)))
    bom = b"\xef\xbb\xbf" + TINY_SWEEP.encode()
    (tmp_path / "bom.toml").write_bytes(bom)
    os.mkfifo(tmp_path / "fifo")


@pytest.mark.parametrize(
    "argv, words",
    [
        (["sweep", "/dev/urandom"], "CONFIG.toml '/dev/urandom' is not a regular file (a charac"),
        (["sweep", "{tmp}/fifo"], "is not a regular file (a pipe)"),
        (["sweep", "{tmp}"], "is not a regular file (a directory)"),
        (["sweep", "{tmp}/bom.toml", "--max-disk", "1"], "disk space"),  # the BOM is accepted
        (["train", "--data", "{tmp}/renamed.npz"], "--data '{tmp}/renamed.npz' is a .npy array"),
        (["train", "--data", "{tmp}/text.npz"], "is not a .npz archive (not a zip file)"),
        (["train", "--data", "{tmp}/fifo.npz"], "--data '{tmp}/fifo.npz' cannot be read"),
        (
            ["train", "--data", "{tmp}/huge.npz"],
            "x and y must be below 6.7e+152 in magnitude",
        ),  # sqrt(max / 400)
        (["train", "--data", "digits", "--noise", "1e300"], "--noise must lie in [0, 1e+06]"),
        (["train", "--target", "frozen", "--teacher", "{tmp}/passwd"], "is not a .npy array"),
        (["train", "--target", "frozen", "--teacher", "/dev/urandom"], "not a regular file"),
        (["train", "--eta", "1e300"], "--eta must be at most the default --t-max (3 x the"),
        (["train", "--t-max", "1e-300"], "--eta must be at most t_max = 1e-300"),
        (["train", "--momentum", "0.5", "--steps", "4"], "--momentum is not used by this run"),
        (
            ["simulate", "--lam", "1e300", "0.8", "--var", "2", "1", "--depth", "1", "4"],
            "wbar* (the fixed point) of feature A (lam = 1e+300, var = 2) at depth 4 (JEPA)",
        ),
        (["simulate", "--lam", "1", "--var", "2", "--t-max", "1e300"], "beyond the largest"),
        (
            ["simulate", "--lam", "1", "--var", "2", "--eps", "1e-300", "--depth", "8"],
            "the critical time of feature A (lam = 1, var = 2) at depth 8 (JEPA)",
        ),
    ],
)
def test_hostile_inputs_are_one_line_before_anything_is_written(tmp_path, capsys, argv, words):
    _hostile_files(tmp_path)
    out = tmp_path / "out"
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main([*argv, "--out", str(out), *(["--no-progress"] * (argv[0] == "train"))]) == 2
    assert words.replace("{tmp}", str(tmp_path)) in _one_error_line(capsys)
    assert not out.exists()


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--rtol", "1e-3"], "--rtol applies to --method ode only (--method exact has no tol"),
        (["--lam", "1e300", "--depth", "4"], "wbar* (the fixed point) of feature A"),
    ],
)
def test_critical_time_refuses_ignored_options_and_overflow(capsys, argv, words):
    base = {"--lam": ["--lam", "1"], "--var": ["--var", "2"]}
    given = {a for a in argv if a.startswith("--")}
    argv = [*argv, *(x for k, v in base.items() if k not in given for x in v)]
    assert main(["critical-time", *argv]) == 2
    assert words in _one_error_line(capsys)


def test_initial_overflow_names_the_start_not_the_learning_rate(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["train", "--eps", "1e300", "--steps", "4", "--no-progress", "--out", str(out)]
    assert main(argv) == 2
    assert "the initial weights are too large: lower eps or the init scale" in (
        _one_error_line(capsys)
    )
    assert not out.exists()


def test_exact_sweep_out_of_range_says_what_failed(tmp_path, capsys):
    text = TINY_SWEEP.replace("lam = [0.5, 1.0]", "lam = {logspace = [-300, 300, 4]}")
    text = text.replace("rho = 0.5", "rho = {logspace = [-300, 300, 4]}")
    (tmp_path / "c.toml").write_text(text)
    assert main(["sweep", str(tmp_path / "c.toml"), "--out", str(tmp_path / "o"), "--no-plot"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""  # no numpy warning reaches the user
    assert "configurations not computed (NaN, ok=False: a time or fixed point outside the " in (
        captured.out
    )
    assert "ODE" not in captured.out
