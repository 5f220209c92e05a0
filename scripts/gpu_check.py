"""One command for a GPU: the numerical core tests and the benchmarks at accelerator sizes.

    python scripts/gpu_check.py            # make gpu-check: accelerator sizes, < 8 minutes
    python scripts/gpu_check.py --small    # make gpu-check SMALL=1: CPU sizes, < 3 minutes

Runs, each part in its own subprocess with a time limit (a part that fails or
runs out of time is recorded as such and the others still run):

1. the numerical core test files in float64 (``JEPA_FLOW_TEST_X64=1``) and the
   precision-generic ones in float32 (``JEPA_FLOW_TEST_X64=0``), by pytest,
   with the outcome of every test;
2. the benchmarks: ``critical_time`` (exact and ode) on 1e8 configurations,
   its host overhead (``bench_overhead.py``'s measure) at 1e7, a 1e8-row
   exact sweep through the public ``run_sweep``, an ensemble of 4096 d = 16
   models and a d = 1024 model trained (fractions of the matmul peak measured
   in the same process, as in ``bench_train_flops.py``), and the full-matrix
   flow at d = 256.

Every run sets ``NVIDIA_TF32_OVERRIDE=0`` and ``JAX_DEFAULT_MATMUL_PRECISION=highest``
(no TF32 anywhere, whatever a library asks for). The report, with the device,
the versions, every figure and the test outcomes, is rewritten after each part
to ``results/bench/<device>.json`` under the key ``"gpu_check"`` (the rest of an
existing ``make bench`` report there is kept); ``--small`` writes
``runs/gpu-check/<device>-small.json`` instead (git-ignored: CPU-size figures
are a check that the command works, not results).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"
ENV = {"NVIDIA_TF32_OVERRIDE": "0", "JAX_DEFAULT_MATMUL_PRECISION": "highest"}
# test files: float64 (the numerical core) and float32 (the precision-generic ones;
# test_precision.py runs its own float32 child and so sits in the float64 list)
TESTS_F64 = ["test_exact.py", "test_ode.py", "test_general_flow.py", "test_compose.py",
             "test_matmul_precision.py", "test_precision.py", "test_train.py"]  # fmt: skip
TESTS_F32 = ["test_compose.py", "test_matmul_precision.py"]
SMALL_TESTS_F64 = ["test_compose.py", "test_matmul_precision.py"]
SMALL_TESTS_F32 = ["test_matmul_precision.py"]
# part -> (sizes at accelerator scale, sizes at CPU scale, time limit in s, small limit)
PARTS = {
    "critical_time": ({"n": 10**8}, {"n": 2 * 10**5}, 150, 60),
    "overhead": ({"n": 10**7}, {"n": 10**5}, 120, 60),
    "sweep": ({"rows": 10**8}, {"rows": 10**5}, 150, 60),
    "ensemble": (
        {"members": 4096, "d": 16, "steps": 200},
        {"members": 256, "d": 16, "steps": 40},
        120,
        60,
    ),  # fmt: skip
    "large_model": (
        {"members": 1, "d": 1024, "steps": 20},
        {"members": 1, "d": 64, "steps": 100},
        120,
        60,
    ),  # fmt: skip
    "full_flow": ({"d": 256}, {"d": 16}, 120, 60),
}


def worker(part: str, sizes: dict) -> dict:
    """Run one benchmark part in this process (``--worker``); its figures."""
    import jax

    jax.config.update("jax_enable_x64", True)
    import gpu_check_parts  # scripts/gpu_check_parts.py

    return getattr(gpu_check_parts, part)(**sizes)


def run_part(part: str, small: bool) -> dict:
    full, cpu, limit, small_limit = PARTS[part]
    sizes = cpu if small else full
    cmd = [sys.executable, __file__, "--worker", part, json.dumps(sizes)]
    return _subprocess(cmd, small_limit if small else limit, parse_json=True) | {"sizes": sizes}


def run_tests(files: list[str], x64: bool, limit: int, workers: int = 0) -> dict:
    """pytest on ``files`` in one precision; every test's outcome (junit XML). With
    ``workers`` > 0, that many pytest-xdist processes share the device (each allocating
    device memory as it needs it: ``XLA_PYTHON_CLIENT_PREALLOCATE=false``)."""
    import tempfile
    import xml.etree.ElementTree as ET

    with tempfile.TemporaryDirectory() as tmp:
        xml = Path(tmp) / "junit.xml"
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", str(workers),
               f"--junitxml={xml}", *(str(ROOT / "tests" / f) for f in files)]  # fmt: skip
        env = {"JEPA_FLOW_TEST_X64": "1" if x64 else "0"}
        if workers:
            env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
        out = _subprocess(cmd, limit, env=env)
        cases = []
        if xml.exists():
            for case in ET.parse(xml).getroot().iter("testcase"):
                tags = {child.tag for child in case}
                outcome = next((t for t in ("failure", "error", "skipped") if t in tags), "passed")
                name = f"{case.get('classname')}::{case.get('name')}"
                seconds = float(case.get("time", 0))
                cases.append({"test": name, "outcome": outcome, "seconds": seconds})
    counts = {k: sum(c["outcome"] == k for c in cases) for k in ("passed", "failure", "error")}
    failed = [c["test"] for c in cases if c["outcome"] in ("failure", "error")]
    return out | {"files": files, "counts": counts, "failed": failed, "cases": cases}


def _subprocess(cmd, limit, env=None, parse_json=False) -> dict:
    """Run ``cmd`` with the TF32-free environment: status, seconds, output tail (and the
    JSON it printed last, for a worker)."""
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=limit, cwd=ROOT,
                              env=dict(os.environ, **ENV, **(env or {})))  # fmt: skip
        status = "ok" if proc.returncode == 0 else f"exit {proc.returncode}"
        stdout, stderr = proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as err:
        status, stdout, stderr = f"timed out after {limit} s", err.stdout or "", err.stderr or ""
        stdout = stdout.decode() if isinstance(stdout, bytes) else stdout
        stderr = stderr.decode() if isinstance(stderr, bytes) else stderr
    out = {"status": status, "seconds": round(time.perf_counter() - t0, 1)}
    if parse_json and status == "ok":
        out["figures"] = json.loads(stdout.strip().splitlines()[-1])
    elif status != "ok":
        out["output_tail"] = (stdout + stderr)[-3000:]
    return out


def device_report() -> dict:
    sys.path.insert(0, str(SCRIPTS))
    from bench_all import device_info, versions

    return {"device": device_info(), "versions": versions()}


def write(report: dict, path: Path) -> None:
    """The report under ``"gpu_check"`` of ``path`` (other keys of an existing file kept)."""
    old = json.loads(path.read_text()) if path.exists() else {}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(old | {"gpu_check": report}, indent=2) + "\n")
    tmp.replace(path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="CPU sizes (CI): under 3 minutes")
    ap.add_argument("--out", help="report path (default: see the module docstring)")
    ap.add_argument("--skip-tests", action="store_true", help="benchmarks only")
    ap.add_argument(
        "--parts",
        help="comma-separated benchmark parts to run (default: all); the "
        "report's other parts and tests are kept from an existing report",
    )
    ap.add_argument("--worker", nargs=2, metavar=("PART", "SIZES"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker[0], json.loads(args.worker[1]))))
        return 0
    t0 = time.perf_counter()
    info = device_report()
    name = info["device"]["name"]
    default = f"runs/gpu-check/{name}-small.json" if args.small else f"results/bench/{name}.json"
    path = ROOT / (args.out or default)
    parts = list(PARTS) if args.parts is None else [p for p in args.parts.split(",") if p]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        ap.error(f"--parts: unknown {', '.join(unknown)}; allowed: {', '.join(PARTS)}")
    report = info | {"date": datetime.date.today().isoformat(), "small": args.small,
                     "environment": ENV, "parts": {}, "tests": {}}  # fmt: skip
    if args.parts is not None and path.exists():  # a rerun of some parts: keep the rest
        old = json.loads(path.read_text()).get("gpu_check", {})
        report["parts"] = old.get("parts", {})
        report["tests"] = old.get("tests", {})
        report["invocations"] = old.get("invocations", [])
    for part in parts:
        print(f"[gpu-check] {part} ...", flush=True)
        report["parts"][part] = run_part(part, args.small)
        print(f"[gpu-check] {part}: {json.dumps(report['parts'][part])[:400]}", flush=True)
        write(report, path)
    if not args.skip_tests:
        lists = (SMALL_TESTS_F64, SMALL_TESTS_F32) if args.small else (TESTS_F64, TESTS_F32)
        for precision, files, x64 in (("float64", lists[0], True), ("float32", lists[1], False)):
            print(f"[gpu-check] tests in {precision}: {' '.join(files)}", flush=True)
            # on a GPU the float64 files took over 300 s in one process (compilation on
            # the host), 147 s in 8 (an H200, 2026-12-04)
            res = run_tests(files, x64, 150 if args.small else 300, 0 if args.small else 8)
            report["tests"][precision] = res
            print(f"[gpu-check] tests in {precision}: {res['status']}, {res['counts']}, "
                  f"failed: {res['failed']}", flush=True)  # fmt: skip
            write(report, path)
    report["seconds"] = round(time.perf_counter() - t0, 1)  # of this invocation
    ran = {"parts": parts, "tests": not args.skip_tests, "seconds": report["seconds"]}
    report["invocations"] = report.get("invocations", []) + [ran]
    write(report, path)
    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    print(f"[gpu-check] wrote {shown} in {report['seconds']} s")
    bad = [p for p, r in report["parts"].items() if r["status"] != "ok"]
    bad += [p for p, r in report["tests"].items() if r["status"] != "ok"]
    print(f"[gpu-check] {'all parts ok' if not bad else 'NOT ok: ' + ', '.join(bad)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
