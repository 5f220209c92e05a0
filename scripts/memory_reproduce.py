"""Peak resident memory of ``jepa-flow reproduce``, experiment by experiment.

Runs the experiments in one process, as ``jepa-flow reproduce`` does (same
precision, devices and matplotlib backend), into a temporary directory, while a
thread samples this process's resident set size (``VmRSS`` of
``/proc/self/status``) every 20 ms. Prints, per experiment, the peak during it,
the RSS when it ended (what stays behind for the next ones), and the process's
overall peak (``VmHWM``, the kernel's own high-water mark), against the 4 GiB
budget of every other command. Linux only.

    .venv/bin/python scripts/memory_reproduce.py --level quick
    .venv/bin/python scripts/memory_reproduce.py --level full --only 6 8
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time

BUDGET = 4 * 2**30


def _status(key: str) -> int:
    """``VmRSS``/``VmHWM`` of this process in bytes."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


class Sampler(threading.Thread):
    """The largest RSS seen since the last ``reset``."""

    def __init__(self, every: float = 0.02):
        super().__init__(daemon=True)
        self.every, self.peak, self.stop = every, 0, threading.Event()

    def reset(self) -> None:
        self.peak = _status("VmRSS")

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, _status("VmRSS"))
            time.sleep(self.every)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--level", choices=("full", "quick", "tiny"), default="quick")
    parser.add_argument("--only", type=int, nargs="+", default=None)
    args = parser.parse_args()

    import jax
    import matplotlib

    matplotlib.use("Agg")
    jax.config.update("jax_enable_x64", True)
    from jepa_flow._core._devices import use_all_cpu_cores

    use_all_cpu_cores()
    from jepa_flow._reproduce import EXPERIMENTS, reproduce

    gib = 2.0**30
    sampler = Sampler()
    sampler.start()
    print(f"level {args.level}; after imports: RSS {_status('VmRSS') / gib:.2f} GiB", flush=True)
    print(f"{'experiment':>10} {'seconds':>8} {'peak GiB':>9} {'end GiB':>8}", flush=True)
    with tempfile.TemporaryDirectory() as out:
        for n in args.only or sorted(EXPERIMENTS):
            sampler.reset()
            start = time.perf_counter()
            reproduce(out, level=args.level, only=[n], log=lambda m: None)
            seconds = time.perf_counter() - start
            peak, end = max(sampler.peak, _status("VmRSS")), _status("VmRSS")
            print(f"{n:>10} {seconds:>8.0f} {peak / gib:>9.2f} {end / gib:>8.2f}", flush=True)
    sampler.stop.set()
    hwm = _status("VmHWM")
    verdict = "within" if hwm <= BUDGET else "OVER"
    print(f"process peak (VmHWM) {hwm / gib:.2f} GiB: {verdict} the 4 GiB budget")
    return 0 if hwm <= BUDGET else 1


if __name__ == "__main__":
    sys.exit(main())
