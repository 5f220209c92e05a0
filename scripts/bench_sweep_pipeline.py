"""The sweep pipeline's own limit: rows/s and peak memory with a trivial kernel.

    python scripts/bench_sweep_pipeline.py                      # 1e7 and 1e8 rows, /dev/shm
    python scripts/bench_sweep_pipeline.py --rows 1e6 --repeats 1        # smoke run
    python scripts/bench_sweep_pipeline.py --out-dir /tmp       # onto the disk instead

A balanced sweep (JEPA, lam log-spaced x rho linearly spaced, the last axis
fastest) runs through the real engine (``run_sweep``: chunk plan, inputs
generated per chunk, dispatch, gather, the writer thread, column files,
markers), with the critical-time kernel replaced by a trivial one (three
element-wise operations on the inputs), so what is timed is everything but
the kernel. Each size runs in its own subprocess, compiled first (one chunk),
then timed ``--repeats`` times into fresh directories; a second subprocess
reads one column back (``load_sweep(out)["t_star"]``, summed so that every
row is touched). Peak resident memory is each subprocess's
``resource.getrusage(RUSAGE_SELF).ru_maxrss``.

Baselines measured in the same run, in the same subprocess: ``compute``, the
same chunks dispatched and gathered with no writing (inputs and trivial
kernel only), and ``disk``, the same bytes written with ``os.pwrite`` into
one file in ``--out-dir``, synced as the sweep's writer syncs, with no
computing. The pipeline overlaps the two,
so its rate is at best the lower of theirs; ``overlap`` is the pipeline's
rate over that bound. Timings are medians with min and max, next to the
load average (``os.getloadavg``): on a shared machine they only mean
something beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

TARGET = 5e7  # rows/s: issue 16, the pipeline's own limit on a 2-core CPU


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", default="1e7,1e8", help="comma-separated sweep sizes")
    p.add_argument(
        "--out-dir",
        default="/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir(),
        help="where the sweeps are written (default /dev/shm: memory, not the disk)",
    )
    p.add_argument("--repeats", type=int, default=3, help="timed runs per size")
    p.add_argument("--chunk-size", type=int, default=None, help="default: the library's")
    p.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    p.add_argument("--child", choices=("run", "read"), help=argparse.SUPPRESS)
    p.add_argument("--dir", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def config_text(rows: int) -> str:
    n_rho = 1000
    n_lam = max(1, round(rows / n_rho))
    return f"""
[sweep]
objective = "jepa"
depth = 1
lam = {{logspace = [-2, 1, {n_lam}]}}
rho = {{linspace = [0.05, 0.95, {n_rho}]}}
eps = 1e-3
"""


def _trivial_kernel():
    """Replace the critical-time kernel by three element-wise operations (same outputs)."""
    from jepa_flow._sweeps import _balanced_chunk

    def one_device(objective, method, pair, rtol=None):
        def kernel(lam, var, depth, eps, fraction):
            return lam + var, depth * eps, fraction > 0

        return kernel

    _balanced_chunk._one_device = one_device


def _compute_only(config, chunk_size: int) -> float:
    """Seconds to dispatch and gather every chunk, double-buffered, writing nothing."""
    import jax

    devices = tuple(jax.local_devices())
    padded = -(-chunk_size // len(devices)) * len(devices)
    dispatch, gather = config.chunk_function(0, devices)
    start, pending = time.perf_counter(), None
    for chunk in config.chunk_plan(chunk_size):
        handle = dispatch(chunk, padded)
        if pending is not None:
            gather(pending)
        pending = handle
    gather(pending)
    return time.perf_counter() - start


def _disk_only(out_dir: str, rows: int, chunk_size: int, row_bytes: int) -> float:
    """Seconds to pwrite ``rows`` rows of ``row_bytes`` into one file, chunk by chunk.

    Synced as often as the sweep's writer syncs when it is behind (every
    ``Writer.MAX_PENDING`` chunks, and at the end).
    """
    import numpy as np

    from jepa_flow._sweeps._store import Writer

    block = np.ones(chunk_size * row_bytes, np.uint8)
    fd, path = tempfile.mkstemp(dir=out_dir, suffix=".bench")
    try:
        start = time.perf_counter()
        for k, lo in enumerate(range(0, rows, chunk_size)):
            n = min(chunk_size, rows - lo) * row_bytes
            os.pwrite(fd, memoryview(block)[:n], lo * row_bytes)
            if (k + 1) % Writer.MAX_PENDING == 0:
                os.fdatasync(fd)
        os.fdatasync(fd)
        return time.perf_counter() - start
    finally:
        os.close(fd)
        os.unlink(path)


def child_run(args) -> dict:
    import jax

    jax.config.update("jax_enable_x64", os.environ.get("JAX_ENABLE_X64", "1") != "0")
    import numpy as np

    import jepa_flow as jf

    _trivial_kernel()
    rows = int(float(args.rows))
    config = jf.parse_sweep_config(config_text(rows), max_disk="1T")
    chunk_size = args.chunk_size or config.default_chunk()
    devices = tuple(jax.local_devices())
    padded = -(-chunk_size // len(devices)) * len(devices)
    dispatch, gather = config.chunk_function(0, devices)  # compile, outside the timings
    gather(dispatch(config.chunk_plan(chunk_size)[0], padded))
    pipeline, compute, disk = [], [], []
    for k in range(args.repeats):
        out = os.path.join(args.dir, f"sweep{k}")
        result = jf.run_sweep(config, out, chunk_size=chunk_size)
        pipeline.append(result.seconds)
        shutil.rmtree(out) if k < args.repeats - 1 else None
        compute.append(_compute_only(config, chunk_size))
        precision = np.dtype(jax.numpy.zeros(()).dtype).name
        row_bytes = sum(o.row_bytes(precision) for o in config.outputs())
        disk.append(_disk_only(args.dir, config.size, chunk_size, row_bytes))
    return {
        "rows": config.size,
        "chunk_size": chunk_size,
        "seconds": {"pipeline": pipeline, "compute": compute, "disk": disk},
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }


def child_read(args) -> dict:
    import numpy as np

    import jepa_flow as jf

    start = time.perf_counter()
    result = jf.load_sweep(os.path.join(args.dir, f"sweep{args.repeats - 1}"))
    total = float(np.sum(result["t_star"]))  # every row touched
    return {
        "seconds": time.perf_counter() - start,
        "checksum": total,
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }


def _child(mode: str, args, rows: str, where: str) -> dict:
    argv = [sys.executable, __file__, "--child", mode, "--rows", rows, "--dir", where]
    argv += ["--repeats", str(args.repeats)]
    if args.chunk_size:
        argv += ["--chunk-size", str(args.chunk_size)]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.exit(f"{mode} {rows}: failed\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _rate(rows: int, seconds: list[float]) -> dict:
    rates = sorted(rows / s for s in seconds)
    return {"median": statistics.median(rates), "min": rates[0], "max": rates[-1]}


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.child:
        fn = child_run if args.child == "run" else child_read
        print(json.dumps(fn(args)))
        return 0
    params = {"rows": args.rows, "out_dir": args.out_dir, "repeats": args.repeats}
    report = {"params": params, "figures": {}, "ratios": {}, "sizes": {}}
    print(f"sweep pipeline, trivial kernel, into {args.out_dir} ({args.repeats} repeats)")
    for rows in args.rows.split(","):
        figures = measure(args, rows)
        n = f"{figures['rows']:.0e}"
        report["sizes"][n] = figures
        rates = figures["rows_per_s"]
        for part in ("pipeline", "compute", "disk"):
            report["figures"][f"{n} rows: {part} rows/s"] = rates[part]["median"]
        report["figures"][f"{n} rows: peak RSS GiB, run"] = figures["peak_rss_gib_run"]
        report["figures"][f"{n} rows: peak RSS GiB, read one column"] = figures[
            "peak_rss_gib_read_one_column"
        ]
        report["ratios"][f"{n} rows: pipeline / min(compute, disk)"] = figures["overlap"]
        report["ratios"][f"{n} rows: pipeline / target 5e7 rows/s"] = (
            rates["pipeline"]["median"] / TARGET
        )
        p = rates["pipeline"]
        print(
            f"{n} rows: pipeline {p['median']:.3g} rows/s [{p['min']:.3g}, {p['max']:.3g}] "
            f"({p['median'] / TARGET:.2f}x the 5e7 target); compute only "
            f"{rates['compute']['median']:.3g}, disk only {rates['disk']['median']:.3g} "
            f"(overlap {figures['overlap']:.2f}); peak RSS: run {figures['peak_rss_gib_run']:.2f} "
            f"GiB, reading one column {figures['peak_rss_gib_read_one_column']:.2f} GiB "
            f"({figures['read_one_column_s']:.2f} s); load average {figures['load_average']:.1f}"
        )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=2)
    return 0


def measure(args, rows: str) -> dict:
    """One size: a run subprocess and a read subprocess in a fresh directory."""
    where = tempfile.mkdtemp(dir=args.out_dir, prefix="bench_pipeline.")
    try:
        load = os.getloadavg()[0]
        run = _child("run", args, rows, where)
        read = _child("read", args, rows, where)
        load = (load + os.getloadavg()[0]) / 2
    finally:
        shutil.rmtree(where, ignore_errors=True)
    rates = {k: _rate(run["rows"], v) for k, v in run["seconds"].items()}
    bound = min(rates["compute"]["median"], rates["disk"]["median"])
    return {
        "rows": run["rows"],
        "chunk_size": run["chunk_size"],
        "rows_per_s": rates,
        "overlap": rates["pipeline"]["median"] / bound,
        "peak_rss_gib_run": run["peak_rss_gib"],
        "peak_rss_gib_read_one_column": read["peak_rss_gib"],
        "read_one_column_s": read["seconds"],
        "load_average": load,
    }


if __name__ == "__main__":
    sys.exit(main())
