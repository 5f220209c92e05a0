"""Run every benchmark script several times and write one JSON report per device.

    python scripts/bench_all.py                    # make bench: 5 repeats, full sizes
    python scripts/bench_all.py --repeats 3 --small   # small sizes (checks the report format)
    python scripts/bench_all.py --precision float64 float32   # every script in both
    python scripts/bench_all.py --table results/bench/cpu-2core.json   # the docs' table
    python scripts/bench_all.py --update-docs      # docs/benchmarks.md from the committed reports

Each of ``scripts/bench_critical_time.py``, ``bench_sweep.py``,
``bench_train.py``, ``bench_train_sweep.py``, ``bench_sweep_pipeline.py``,
``bench_general_flow.py``, ``bench_overhead.py`` (time outside compiled code)
and ``bench_train_flops.py`` (training's fraction of the matmul peak)
(float64 only: its scipy references and collapse checks assume it) measures
its own baseline in the same run and writes its figures and ratios with
``--json``; this script runs each ``--repeats`` times in a fresh process, one
after the other (never concurrently), and writes
``results/bench/<device>.json``: the device kind and count, the versions of
jax, jaxlib, diffrax, equinox, optax, numpy, scipy (and torch when
installed), the sizes, and per precision (``"runs": {"float64": ...,
"float32": ...}``) for each script its precision and for each figure and
ratio its median, minimum, maximum, relative spread ((max - min) / median)
and every run's value.

``--precision float64 float32`` runs every script in each precision (the
scripts read ``JAX_ENABLE_X64``: 0 runs them in float32, their baselines in the
same precision where they can: PyTorch follows it, scipy stays float64); the
default is float64 only, since each precision costs a full ``make bench`` on
a 2-core CPU (``make bench PRECISION="float64 float32"`` for both).

``--table`` prints the performance table of docs/benchmarks.md (markdown)
from reports; ``--update-docs [REPORT ...]`` rewrites that page's generated
tables (between its ``<!-- bench-...:start/end -->`` markers) from the
reports (default: ``DOC_REPORTS``, the committed ones), through
``scripts/doc_tables.py``, which tests/test_doc_facts.py also runs to check
that the page matches the reports. ``--update-readme`` is the former name of
``--update-docs`` (the tables left the README).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = {
    "bench_critical_time": ([], ["--n-exact", "65536", "--n-ode", "4096", "--n-scipy", "10"]),
    "bench_sweep": ([], ["--configs", "20000", "--scipy-sample", "10"]),
    "bench_train": ([], ["--quick"]),
    "bench_train_sweep": (["--repeats", "1"], ["--quick", "--dims", "2", "--batches", "64"]),
    "bench_general_flow": (
        ["--repeats", "3", "--n-scipy", "20"],
        ["--n", "4096", "--n-ema", "1024", "--n-scipy", "4", "--repeats", "1"]
        + ["--memory-configs", "0"],
    ),
    "bench_overhead": (["--repeats", "5"], ["--repeats", "2", "--max", "1e4"]),
    "bench_train_flops": (["--repeats", "3"], ["--quick", "--repeats", "1"]),
    "bench_sweep_pipeline": (["--repeats", "1"], ["--rows", "1e6", "--repeats", "1"]),
}
# Scripts whose references (scipy at 1e-12, collapse checks) assume float64: run in float64 only.
FLOAT64_ONLY = {"bench_general_flow"}
PACKAGES = ("jax", "jaxlib", "diffrax", "equinox", "optax", "numpy", "scipy", "torch")

# The benchmark table of docs/benchmarks.md: (what, script, "figures" or "ratios", key, format,
# target)
TABLE = [
    ("`critical_time(method=\"exact\")`, configurations/s", "bench_critical_time", "figures",
     "exact configs/s", "{:,.3g}", ">= 2e6"),
    ("`critical_time(method=\"ode\")`, configurations/s", "bench_critical_time", "figures",
     "ode configs/s", "{:,.3g}", ""),
    ("ode against scipy `solve_ivp` per configuration, paper's ODE (fastest method)",
     "bench_critical_time", "ratios", "ode / scipy paper ODE (fastest)", "{:.0f}x", ">= 500x"),
    ("ode against scipy on the clock formulation (fastest method)", "bench_critical_time",
     "ratios", "ode / scipy clock ODE (fastest)", "{:.0f}x", ""),
    ("ode's Gauss-Legendre rule against an adaptive diffrax (Dopri8) integral of the same "
     "quantity", "bench_critical_time", "ratios", "ode / ode diffrax", "{:.1f}x", ""),
    ("sweep `method=\"exact\"`, configurations/s", "bench_sweep", "figures", "exact configs/s",
     "{:,.3g}", ">= 2e6"),
    ("sweep `method=\"ode\"`, configurations/s", "bench_sweep", "figures", "ode configs/s",
     "{:,.3g}", ">= 2e5"),
    ("sweep `method=\"ode\"` against a scipy `solve_ivp` loop per configuration",
     "bench_sweep", "ratios", "ode / scipy", "{:.0f}x", ">= 500x"),
    ("sweep, peak resident memory (MiB)", "bench_sweep", "figures", "peak RSS MiB", "{:.0f}",
     "< 2048"),
    ("training ensemble 32 x (d 16, L 4, batch 128) against the per-step baseline",
     "bench_train", "ratios", "ensemble 32 x (d=16 L=4 batch=128): engine / baseline (best)",
     "{:.1f}x", ">= 10x"),
    ("training, one model (d 64, L 4, batch 512) against the per-step baseline", "bench_train",
     "ratios", "single d=64 L=4 batch=512: engine / baseline (best)", "{:.1f}x", ">= 1x"),
    ("training sweep grid, explicit samples, worst cell against the PyTorch loop",
     "bench_train_sweep", "ratios", "min over cells: engine samples / PyTorch (best)", "{:.1f}x",
     ">= 10x"),
    ("training sweep grid, Wishart moments, worst cell against the PyTorch loop",
     "bench_train_sweep", "ratios", "min over cells: engine wishart / PyTorch (best)", "{:.1f}x",
     ">= 10x"),
    ("general flow, stop-gradient (unbalanced starts), configurations/s", "bench_general_flow",
     "figures", "stop-gradient configs/s", "{:,.3g}", ">= 5e4"),
    ("general flow, stop-gradient, against scipy on the unreduced flow", "bench_general_flow",
     "ratios", "stop-gradient / scipy unreduced flow", "{:.0f}x", ">= 300x"),
    ("general flow, stop-gradient, against scipy on the same reduced integral and rtol",
     "bench_general_flow", "ratios", "stop-gradient / scipy same integral", "{:.0f}x", ""),
    ("general flow, EMA target, configurations/s", "bench_general_flow", "figures",
     "EMA configs/s", "{:,.3g}", ">= 5e4"),
    ("general flow, EMA target, against scipy on the unreduced flow", "bench_general_flow",
     "ratios", "EMA / scipy unreduced flow", "{:.0f}x", ">= 300x"),
    ("general flow, EMA target, against scipy on the same reduced flow and rtol",
     "bench_general_flow", "ratios", "EMA / scipy same flow", "{:.0f}x", ""),
    ("general sweep of 10^7 rows, peak resident memory (GiB)", "bench_general_flow", "figures",
     "general sweep peak RSS GiB", "{:.2f}", "< 2"),
    ("`critical_time` (exact) at 10^7 configurations, ns per configuration outside compiled "
     "code", "bench_overhead", "figures", "critical_time exact n=1e+07: overhead ns/config",
     "{:.1f}", "<= 5"),
    ("`train`, 1000 d = 16 models x 1000 steps, ns per member-step outside compiled code",
     "bench_overhead", "figures", "train n=1e+06: overhead ns/config", "{:.3f}", "<= 5"),
    ("training, ensemble 256 x (d 16, L 4), fraction of the matmul peak", "bench_train_flops",
     "ratios", "ensemble 256 x d=16 L=4, population: fraction of matmul peak (wall)", "{:.0%}",
     ">= 50 %"),
    ("training, ensemble 4096 x (d 16, L 4), fraction of the matmul peak", "bench_train_flops",
     "ratios", "ensemble 4096 x d=16 L=4, population: fraction of matmul peak (wall)", "{:.0%}",
     ">= 50 %"),
    ("training, one model d 1024 (L 2), fraction of the matmul peak", "bench_train_flops",
     "ratios", "single d=1024 L=2, population: fraction of matmul peak (wall)", "{:.0%}",
     ">= 50 %"),
]  # fmt: skip
# The reports docs/benchmarks.md is generated from, in order (a row comes from the first
# report that has it): CPU float64, the float64/float32 run, then the idle-machine
# general-flow run before the training-sweep run (whose general-flow rows ran under load).
DOC_REPORTS = (
    "results/bench/cpu-2core.json",
    "results/bench/cpu-2core-float64-float32.json",
    "results/bench/general_flow/cpu-2core.json",
    "results/bench/sweeps/cpu-2core.json",
)


def device_info() -> dict:
    """The device the scripts run on, as JAX sees it (in a subprocess: no JAX state here)."""
    code = (
        "import json, os, jax; d = jax.devices(); "
        "print(json.dumps({'platform': d[0].platform, 'kind': d[0].device_kind, "
        "'count': len(d), 'cpu_cores': os.cpu_count()}))"
    )
    info = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True,
                                     text=True, check=True).stdout)  # fmt: skip
    if info["platform"] == "cpu":
        info["name"] = f"cpu-{info['cpu_cores']}core"
        info["count"] = info["cpu_cores"]  # the scripts use one device per core
    else:
        kind = re.sub(r"[^a-z0-9]+", "-", info["kind"].lower()).strip("-")
        info["name"] = f"{kind}-x{info['count']}"
    return info


def versions() -> dict:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def summarize(values: list[float]) -> dict:
    med = statistics.median(values)
    lo, hi = min(values), max(values)
    return {
        "median": med,
        "min": lo,
        "max": hi,
        "rel_spread": (hi - lo) / abs(med) if med else None,
        "runs": values,
    }


def run_all(repeats: int, small: bool, only, precision: str = "float64") -> dict:
    """Every script ``repeats`` times in ``precision`` (``JAX_ENABLE_X64`` in its environment)."""
    results = {}
    env = dict(os.environ, JAX_ENABLE_X64="1" if precision == "float64" else "0")
    for name, (full_args, small_args) in SCRIPTS.items():
        if (only and name not in only) or (precision != "float64" and name in FLOAT64_ONLY):
            continue
        runs = []
        for i in range(repeats):
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "out.json"
                cmd = [sys.executable, str(ROOT / "scripts" / f"{name}.py"),
                       *(small_args if small else full_args), "--json", str(path)]  # fmt: skip
                print(f"[{name} {precision} {i + 1}/{repeats}] {' '.join(cmd[1:])}", flush=True)
                proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
                if proc.returncode != 0:
                    raise SystemExit(f"{name} failed:\n{proc.stderr[-3000:]}")
                print(proc.stdout.rstrip(), flush=True)
                runs.append(json.loads(path.read_text()))
        entry = {"precision": precision, "params": runs[0]["params"], "repeats": repeats}
        for part in ("figures", "ratios"):
            keys = [k for k in runs[0][part] if all(k in r[part] for r in runs)]
            entry[part] = {k: summarize([float(r[part][k]) for r in runs]) for k in keys}
        results[name] = entry
    return results


def by_precision(report: dict) -> dict[str, dict]:
    """``{precision: {script: entry}}`` of a report (one written before ``"runs"`` had one)."""
    if "runs" in report:
        return report["runs"]
    return {report["precision"]: report["scripts"]}


def table(*reports: dict) -> str:
    """The performance table of docs/benchmarks.md (markdown) from one or more reports.

    One row per figure and precision, taken from the first report that has it;
    one line per report says where and how it was measured.
    """
    lines = []
    for report in reports:
        dev, runs = report["device"], by_precision(report)
        scripts = sorted({name for entries in runs.values() for name in entries})
        lines.append(
            f"Measured with `scripts/bench_all.py` on {dev['name']} ({dev['kind']}, "
            f"{dev['count']} device(s)), {', '.join(runs)}, jax {report['versions'].get('jax')}, "
            f"{report['date']}, {report['sizes']} sizes, {', '.join(scripts)}: median of "
            f"{report['repeats']} run(s) (min - max)."
        )
        lines.append("")
    lines += [
        "| what | precision | median | min - max | target | met |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for what, script, part, key, fmt, target in TABLE:
        done = set()
        for report in reports:
            for precision, scripts in by_precision(report).items():
                entry = scripts.get(script, {}).get(part, {}).get(key)
                if entry is None or precision in done:
                    continue
                done.add(precision)
                lo, hi, med = fmt.format(entry["min"]), fmt.format(entry["max"]), entry["median"]
                lines.append(
                    f"| {what} | {precision} | {fmt.format(med)} | {lo} - {hi} | {target} "
                    f"| {verdict(med, target)} |"
                )
    return "\n".join(lines)


def verdict(value: float, target: str) -> str:
    """``yes``, ``**no**`` (the median misses ``target``, e.g. ``>= 10x``), or empty."""
    if not target:
        return ""
    op, _, number = target.partition(" ")
    bound = float(number.rstrip("x"))
    met = {">=": value >= bound, ">": value > bound, "<=": value <= bound, "<": value < bound}[op]
    return "yes" if met else "**no**"


def precision_table(report: dict) -> str:
    """float32 against float64 measured in one run (a ``--precision float64 float32`` report)."""
    runs = by_precision(report)
    lines = [
        "| what | float64 | float32 | float32 / float64 |",
        "| --- | --- | --- | --- |",
    ]
    for what, script, part, key, fmt, _ in TABLE:
        e64 = runs.get("float64", {}).get(script, {}).get(part, {}).get(key)
        e32 = runs.get("float32", {}).get(script, {}).get(part, {}).get(key)
        if e64 is None or e32 is None:
            continue
        cells = [
            f"{fmt.format(e['median'])} ({fmt.format(e['min'])} - {fmt.format(e['max'])})"
            for e in (e64, e32)
        ]
        lines.append(f"| {what} | {cells[0]} | {cells[1]} | {e32['median'] / e64['median']:.2g} |")
    return "\n".join(lines)


# The GPU report (one run of each script, written by hand from their output):
# (what, script, part, key, format)
GPU_TABLE = [
    ("`critical_time(method=\"exact\")`, configurations/s", "bench_critical_time", "figures",
     "exact configs/s", "{:,.3g}"),
    ("`critical_time(method=\"ode\")`, configurations/s", "bench_critical_time", "figures",
     "ode configs/s", "{:,.3g}"),
    ("ode, max relative error against exact", "bench_critical_time", "figures",
     "ode max rel. error vs exact", "{:.2g}"),
    ("ode against scipy `solve_ivp` per configuration (paper's ODE, host CPU)",
     "bench_critical_time", "ratios", "ode / scipy paper ODE (fastest)", "{:.0f}x"),
    ("sweep of 10^8 configurations, `method=\"exact\"`, seconds", None, "figures",
     "exact paper grid seconds for 1e8", "{:.3g}"),
    ("sweep of 10^8 configurations, `method=\"ode\"`, seconds", None, "figures",
     "ode paper grid seconds for 1e8", "{:.3g}"),
    ("training ensemble 32 x (d 16, L 4, batch 128) against a per-step jitted JAX loop",
     "bench_train", "ratios", "ensemble 32 x (d=16 L=4 batch=128): engine / per-step jitted "
     "JAX loop", "{:.1f}x"),
]  # fmt: skip


def gpu_table(report: dict) -> str:
    """The GPU figures of a report whose scripts ran once (plain numbers, no spread)."""
    dev, scripts = report["device"], report["scripts"]
    lines = [
        f"Measured on {dev['name']} ({dev['kind']}), {report['precision']}, jax "
        f"{report['versions'].get('jax')}, {report['date']}: {report['how']}.",
        "",
        "| what | value |",
        "| --- | --- |",
    ]
    for what, script, part, key, fmt in GPU_TABLE:
        for name, entry in scripts.items():
            if (script is None or name == script) and key in entry.get(part, {}):
                lines.append(f"| {what} | {fmt.format(entry[part][key])} |")
                break
    lines.append("")
    lines += [f"- Tests, {what}: {outcome}." for what, outcome in report.get("tests", {}).items()]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5, help="runs of each script (default 5)")
    ap.add_argument("--small", action="store_true", help="small sizes: checks the format only")
    ap.add_argument("--only", nargs="+", choices=sorted(SCRIPTS), help="run only these scripts")
    ap.add_argument(
        "--precision",
        nargs="+",
        choices=("float64", "float32"),
        default=["float64"],
        help="run every script in each of these precisions (default: float64; "
        "--precision float64 float32 doubles the time)",
    )
    ap.add_argument(
        "--out",
        default=None,
        help="report directory (default results/bench; runs/bench with --small, git-ignored)",
    )
    ap.add_argument(
        "--table", metavar="REPORT", nargs="+", help="print the docs' table of these reports"
    )
    ap.add_argument(
        "--update-docs",
        "--update-readme",
        metavar="REPORT",
        nargs="*",
        help="rewrite the tables of docs/benchmarks.md from these reports "
        "(default: the committed ones, DOC_REPORTS)",
    )
    args = ap.parse_args()
    if args.table:
        print(table(*(json.loads(Path(p).read_text()) for p in args.table)))
        return 0
    if args.update_docs is not None:
        sys.path.insert(0, str(ROOT / "scripts"))
        from doc_tables import write_docs

        for path in write_docs(ROOT, bench_reports=args.update_docs or None):
            print(f"rewrote {path}")
        return 0
    if args.repeats < 1:
        ap.error("--repeats must be >= 1")
    precisions = list(dict.fromkeys(args.precision))  # in the given order, once each
    device = device_info()
    report = {
        "device": device,
        "precisions": precisions,
        "versions": versions(),
        "date": datetime.date.today().isoformat(),
        "repeats": args.repeats,
        "sizes": "small (format check only)" if args.small else "default",
        # every script in each precision; each entry records its precision
        "runs": {p: run_all(args.repeats, args.small, args.only, p) for p in precisions},
    }
    out = Path(args.out or ROOT / ("runs" if args.small else "results") / "bench")
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{device['name']}.json"
    if path.exists():  # keep scripts/gpu_check.py's section of the same device's report
        old = json.loads(path.read_text())
        report.update({k: old[k] for k in ("gpu_check",) if k in old})
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {path}\n")
    print(table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
