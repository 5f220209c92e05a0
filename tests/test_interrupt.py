"""kill -9 at several points, then the same command: identical to an uninterrupted run.

Each command runs in a subprocess. ``FAULT`` (``RUNNER`` below)
makes the process send itself SIGKILL at a chosen atomic write, so the kill
points are exact and repeatable:

(a) ``before:1``: before the first output file (only the directory and its
    lock file exist);
(b) after some files (sweep: the first two chunks; simulate: ``trajectory.npz``;
    reproduce: the first figure);
(c) during the final write (the temporary file is complete but not yet renamed).

The killed runs are chained, (a) then (b) then (c), each resuming what the
previous one left; a last, uninterrupted run of the same command must then
leave a directory equal, file for file and byte for byte, to that of one
uninterrupted run (reproduce's JSON files are compared without their
``seconds`` timings). Every subprocess shares one persistent JAX compilation
cache, so only the first run of each command compiles.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

# the second tier (make test-slow, in CI's .ci/run): about 50 s of subprocesses, each
# command killed three times and rerun
pytestmark = pytest.mark.slow

SWEEP = """
[sweep]
objective = "jepa"
depth = [1, 2]
lam = {logspace = [-1, 0, 3]}
rho = [0.25, 0.5]
eps = 1e-3
"""

COMMANDS = {
    # 12 configurations in 4 chunks of 3: writes config.toml, 3 columns, manifest.json,
    # then each chunk's rows into the columns and its marker chunks/chunk_NNNNNN.done
    "sweep": (
        ["sweep", "{dir}/sweep.toml", "--out", "{out}", "--chunk-size", "3", "--no-plot"],
        ["before:1", "after:chunk_000001.done", "tmp:chunk_000003.done"],
    ),
    # writes inputs.json, trajectory.npz, summary.json, dynamics.png, critical_times.png
    "simulate": (
        ["simulate", "--objective", "jepa", "--lam", "1", "0.5", "--var", "2", "1"]
        + ["--depth", "1", "2", "--n-t", "16", "--out", "{out}"],
        ["before:1", "after:trajectory.npz", "tmp:critical_times.png"],
    ),
    # writes inputs.json, train.npz, train.json, train.png
    "train": (
        ["train", "--lam", "1", "0.6", "--var", "1.25", "1", "--depth", "1", "--eta", "0.05"]
        + ["--steps", "40", "--n-t", "6", "--no-progress", "--out", "{out}"],
        ["before:1", "after:train.npz", "tmp:train.png"],
    ),
    # the cheapest experiment; its last write is claims.json
    "reproduce": (
        ["reproduce", "--level", "tiny", "--only", "5", "--out", "{out}"],
        ["before:1", "after:1", "tmp:claims.json"],
    ),
}

# The CLI in a process that kills itself (SIGKILL, as kill -9 would) at one atomic
# write, chosen by FAULT="POINT:WHICH": WHICH is the write's number (1, 2, ...) or the
# file's name; POINT is "before" (nothing of that file written), "tmp" (temporary file
# complete, not yet renamed into place) or "after" (renamed). Every atomic write goes
# through tempfile.mkstemp (prefix ".NAME.") and os.replace, which this wraps: the
# fault injection lives here, not in the library.
RUNNER = """
import os, signal, sys, tempfile
point, _, which = os.environ.get("FAULT", "").partition(":")
count = [0]
real_mkstemp, real_replace = tempfile.mkstemp, os.replace

def hit(at, name):
    if point == at and which in (str(count[0]), name):
        os.kill(os.getpid(), signal.SIGKILL)

def mkstemp(*args, **kwargs):
    prefix = kwargs.get("prefix", "")
    if prefix.startswith(".") and not prefix.startswith(".jepa-flow-probe"):
        count[0] += 1
        hit("before", prefix[1:-1])
    return real_mkstemp(*args, **kwargs)

def replace(src, dst, *args, **kwargs):
    hit("tmp", os.path.basename(dst))
    real_replace(src, dst, *args, **kwargs)
    hit("after", os.path.basename(dst))

tempfile.mkstemp, os.replace = mkstemp, replace
from jepa_flow._cli import main
sys.exit(main())
"""


def _run(args, fault, cache):
    env = {
        **os.environ,
        "JAX_COMPILATION_CACHE_DIR": str(cache),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
        "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
        "FAULT": fault or "",
        "JEPA_FLOW_DEBUG": "1",
    }
    return subprocess.run(
        [sys.executable, "-c", RUNNER, *args], env=env, capture_output=True, text=True
    )


def _strip_seconds(obj):
    if isinstance(obj, dict):
        return {k: _strip_seconds(v) for k, v in obj.items() if not k.startswith("seconds")}
    if isinstance(obj, list):
        return [_strip_seconds(v) for v in obj]
    return obj


def _contents(out: Path, timings: bool) -> dict:
    files = {}
    for p in sorted(out.rglob("*")):
        if p.is_file():
            data = p.read_bytes()
            if not timings and p.suffix == ".json":
                data = json.dumps(_strip_seconds(json.loads(data)), sort_keys=True).encode()
            files[str(p.relative_to(out))] = data
    return files


def _chain(name, tmp: Path, cache: Path) -> list[str]:
    """Run command ``name`` once cleanly and once through its kill points; return problems."""
    argv, faults = COMMANDS[name]

    def args(out):
        return [a.format(dir=tmp, out=out) for a in argv]

    problems = []
    ref = _run(args(tmp / f"{name}_ref"), None, cache)
    if ref.returncode != 0:
        return [f"{name}: the uninterrupted run failed: {ref.stderr[-2000:]}"]
    out = tmp / f"{name}_killed"
    for fault in faults:
        killed = _run(args(out), fault, cache)
        if killed.returncode != -signal.SIGKILL:
            problems.append(f"{name} {fault}: exit {killed.returncode}, not killed")
    final = _run(args(out), None, cache)
    if final.returncode != 0:
        return problems + [f"{name}: the run after the kills failed: {final.stderr[-2000:]}"]
    timings = name != "reproduce"
    want, got = _contents(tmp / f"{name}_ref", timings), _contents(out, timings)
    if sorted(want) != sorted(got):
        problems.append(f"{name}: files differ: {sorted(want)} != {sorted(got)}")
    else:
        problems += [f"{name}: {f} differs" for f in want if want[f] != got[f]]
    return problems


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
def test_kill_and_rerun_equals_uninterrupted(tmp_path):
    (tmp_path / "sweep.toml").write_text(SWEEP)
    cache = tmp_path / "jax_cache"
    results = {}

    def work(name):
        try:
            results[name] = _chain(name, tmp_path, cache)
        except Exception as err:  # reported below, with the command's name
            results[name] = [f"{name}: {err!r}"]

    threads = [threading.Thread(target=work, args=(n,)) for n in COMMANDS]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    problems = [p for n in COMMANDS for p in results[n]]
    assert not problems, "\n".join(problems)
    # a killed run leaves its lock file; the finished run removes it
    assert not list(tmp_path.rglob(".jepa-flow.lock"))
    assert not list(tmp_path.rglob(".*.tmp"))
