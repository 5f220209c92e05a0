"""Fuzz the ``jepa-flow`` command line: thousands of generated command lines, in process.

Each command line mixes valid and invalid tokens (signs, zeros, NaN, inf,
subnormal and huge magnitudes, huge integers, strings, empty values, missing
and repeated flags, unwritable or file ``--out``, budgets such as ``abc`` or
``1e-300``, and files that are not what they claim: ``/dev/urandom``, a FIFO,
a directory, a renamed ``.npy``, text as ``.npz``, a sweep TOML with a
byte-order mark, views scaled by 1e200) for every subcommand, runs
``jepa_flow._cli.main`` on it and sorts the outcome:

- ``ok``: exit 0;
- ``error``: exit 2 with exactly one stderr line ``jepa-flow: error: ...`` and
  nothing written under ``--out``;
- ``usage``: argparse's one-line usage error (exit 2), also nothing written;
- ``unexpected``: exit 2, but the one line is the CLI's catch-all for an
  exception nobody anticipated (a bug behind a clean message);
- ``bad``: anything else (a traceback escaping ``main``, several lines, another
  exit code, files written by a failed run, a numpy or matplotlib warning
  printed to the user);
- ``timeout``: still running after ``--timeout`` seconds (e.g. a valid but
  enormous job that no budget refused), stopped by an alarm.

Prints the counts per subcommand and outcome, and the first examples of
``unexpected`` and ``bad``. The expensive valid runs (simulate, train) are kept
small (tiny shapes and step counts), so most of the time goes to compilations.

    .venv/bin/python scripts/fuzz_cli.py --n 3000 --seed 0
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import random
import shutil
import signal
import sys
import tempfile
import time
import traceback
import warnings
from collections import Counter, defaultdict
from pathlib import Path

NUMBERS = ["1", "0.5", "2", "0.8", "1e-3", "3"]  # valid-looking values
ODD = [
    "0", "-1", "-0", "nan", "inf", "-inf", "1e400", "-1e400", "5e-324", "1e-310", "1e308",
    "1e-308", "10" * 40, "abc", "", "None", "True", "0x10", "1,2", " ", "1e", "--", "1.5",
]  # fmt: skip
FLAGS = {
    "critical-time": [
        "--lam", "--var", "--rho", "--depth", "--eps", "--fraction", "--objective", "--method",
        "--rtol",
    ],
    "simulate": [
        "--lam", "--var", "--rho", "--depth", "--eps", "--n-t", "--t-max", "--objective",
        "--max-memory", "--max-disk",
    ],
    "demo": ["--n-t", "--max-memory", "--max-disk"],
    "train": [
        "--lam", "--var", "--depth", "--eta", "--steps", "--t-max", "--eps", "--batch",
        "--seed", "--momentum", "--rotation-seed", "--tau", "--scale", "--records",
        "--max-memory", "--max-disk", "--data", "--noise", "--teacher", "--n-features",
    ],
    "compare": [
        "--lam", "--var", "--depth", "--eta", "--steps", "--eps", "--batch", "--seed",
        "--max-memory", "--max-disk", "--data", "--teacher",
    ],
    "sweep": ["--chunk-size", "--max-memory", "--max-disk"],
    "reproduce": ["--only", "--level"],
}  # fmt: skip
CHOICES = {
    "--objective": ["jepa", "mae", "JEPA", "ema"],
    "--method": ["exact", "ode", "series", "rk4"],
    "--level": ["tiny", "quick", "huge"],
}
SWEEPS = [
    "[sweep]\nobjective='jepa'\ndepth=[1,2]\neps=1e-3\nlam=[0.5,1]\nrho=0.5\n",
    "[sweep]\nobjective='jepa'\ndepth=1\neps=1e-3\nlam={logspace=[-1,0,1000000000]}\nrho=0.5\n",
    "[sweep]\nobjective='mae'\ndepth=0\neps=1e-3\nlam=1\nrho=0.5\n",
    "[sweep]\nobjective='jepa'\ndepth=1\neps=nan\nlam=1\nrho=0.5\n",
    "[sweep]\nobjective='jepa'\n",
    "[sweep]\nobjective='jepa'\ndepth=1\neps=1e-3\nlam=1\nrho=0.5\n[budget]\ndisk='x'\n",
    "not toml [[",
    "",
]


def hostile_files(tmp: Path) -> None:
    """Files that are not what they claim: a renamed .npy, text as .npz, a FIFO, huge views."""
    import numpy as np

    np.save(tmp / "a.npy", np.eye(2))
    (tmp / "renamed.npz").write_bytes((tmp / "a.npy").read_bytes())
    (tmp / "text.npz").write_text("not a zip")
    x = np.random.default_rng(0).standard_normal((40, 2))
    np.savez(tmp / "huge.npz", x=1e200 * x, y=1e200 * x[::-1])
    os.mkfifo(tmp / "fifo.npz")


# paths a user may pass as a file: devices, pipes, directories, files of the wrong kind
FILES = [
    "/dev/urandom", "/dev/null", "/etc/passwd", "/", "{tmp}/fifo.npz", "{tmp}/renamed.npz",
    "{tmp}/text.npz", "{tmp}/huge.npz", "{tmp}/a.npy", "{tmp}/missing.npz",
]  # fmt: skip


def _value(rng: random.Random, flag: str) -> list[str]:
    if flag in ("--data", "--teacher"):
        pool = FILES + (["gaussian", "digits", "patches"] if flag == "--data" else [])
        return [rng.choice(pool)]
    if flag == "--noise":
        return [rng.choice(["0.1", "0", "-1", "1e300", "nan", "1e6"])]
    if flag in CHOICES and rng.random() < 0.7:
        return [rng.choice(CHOICES[flag])]
    if flag in ("--steps", "--n-t", "--records"):
        pool = ["4", "16", "100000000", "1000000000000", "0", "-5", "1e8", "x"]
        return [rng.choice(pool)]
    if flag in ("--max-memory", "--max-disk"):
        pool = ["1K", "16G", "0", "-1G", "lots", "1e400", "", "abc", "-1", "nan", "inf"]
        return [rng.choice([*pool, "1e-300", "1"])]
    if flag == "--only":  # never a valid experiment: a reproduction takes minutes
        return [rng.choice(["10", "0", "x", "-1"])]
    n = rng.choice([0, 1, 1, 1, 1, 2, 2])
    return [rng.choice(NUMBERS if rng.random() < 0.8 else ODD) for _ in range(n)]


def command_line(rng: random.Random, tmp: Path) -> tuple[list[str], Path | None]:
    command = rng.choice(list(FLAGS))
    argv = [command]
    out = tmp / "out"
    if command == "sweep":
        text = rng.choice(SWEEPS)
        (tmp / "c.toml").write_bytes(
            (b"\xef\xbb\xbf" if rng.random() < 0.2 else b"") + text.encode()
        )
        config = rng.choice(["c.toml", "c.toml", "missing.toml", "fifo.npz", "/dev/urandom", "/"])
        argv.append(str(tmp / config))  # an absolute name replaces tmp
    for flag in FLAGS[command]:
        if rng.random() < (0.8 if flag in ("--lam", "--var") else 0.3):
            argv += [flag, *(v.replace("{tmp}", str(tmp)) for v in _value(rng, flag))]
    if command in ("simulate", "demo", "sweep", "reproduce") or (
        command in ("train", "compare") and rng.random() < 0.5
    ):
        target = rng.choice([out, out, out, tmp / "file", Path("/sys/jepa_flow_fuzz")])
        argv += ["--out", str(target)]
    if command == "reproduce":  # a reproduction takes minutes: keep each one invalid
        argv += rng.choice([["--only", "10"], ["--level", "huge"], ["--only", "x"]])
    if command == "demo" and rng.random() < 0.9:  # a valid demo takes seconds: few of them
        argv += rng.choice([["--max-memory", "1K"], ["--n-t", "1"], ["--max-disk", "0"]])
    if command in ("train", "compare") and "--steps" not in argv:
        argv += ["--steps", "8"]
    if command in ("sweep", "train", "compare"):
        argv.append("--no-progress")
    if rng.random() < 0.05:  # a stray token
        argv.insert(rng.randrange(1, len(argv) + 1), rng.choice(ODD))
    return argv, out


class FuzzTimeout(BaseException):
    """Raised by the alarm; a BaseException, so that the CLI's handlers let it through."""


def _alarm(signum, frame):
    raise FuzzTimeout


def classify(argv, code, err, escaped, out: Path, file: Path) -> str:
    lines = err.strip().splitlines()
    if escaped is not None or file.read_text() != "x":
        return "bad"
    if any("encountered in" in line or "matplotlib" in line for line in lines):
        return "bad"  # a numpy or matplotlib warning reached the user
    lines = [line for line in lines if not line.startswith("jepa-flow: warning: ")]
    if code == 0:
        return "ok"
    if code != 2 or len(lines) != 1 or not lines[0].startswith("jepa-flow: error: "):
        return "bad"
    if out.exists():
        return "bad"  # a failed run wrote something
    if "unexpected" in lines[0]:
        return "unexpected"
    return "usage" if "argument" in lines[0] or "usage" in lines[0] else "error"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=3000, help="command lines to try")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--show", type=int, default=5, help="examples shown per bad outcome")
    parser.add_argument("--timeout", type=int, default=60, help="seconds per command line")
    args = parser.parse_args()

    import jax

    jax.config.update("jax_enable_x64", True)
    from jepa_flow._cli import main as cli

    rng = random.Random(args.seed)
    counts: dict[str, Counter] = defaultdict(Counter)
    examples: dict[str, list] = defaultdict(list)
    start = time.perf_counter()
    for i in range(args.n):
        tmp = Path(tempfile.mkdtemp(prefix="jepa-flow-fuzz-"))
        file = tmp / "file"
        file.write_text("x")
        hostile_files(tmp)
        argv, out = command_line(rng, tmp)
        stderr, escaped = io.StringIO(), None
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            with warnings.catch_warnings():  # the CLI chooses which warnings to show
                signal.signal(signal.SIGALRM, _alarm)
                signal.alarm(args.timeout)
                try:
                    code = cli(argv)
                except FuzzTimeout as err:
                    code, escaped = None, err
                except BaseException as err:  # noqa: BLE001 - the point is to see it
                    code, escaped = None, err
                    stderr.write(traceback.format_exc())
                finally:
                    signal.alarm(0)
        if isinstance(escaped, FuzzTimeout):
            outcome = "timeout"
        else:
            outcome = classify(argv, code, stderr.getvalue(), escaped, out, file)
        counts[argv[0]][outcome] += 1
        if outcome in ("bad", "unexpected", "timeout") and len(examples[outcome]) < args.show:
            examples[outcome].append((argv, code, stderr.getvalue().strip()[-600:]))
        shutil.rmtree(tmp, ignore_errors=True)
        if (i + 1) % 250 == 0:
            print(f"{i + 1} command lines, {time.perf_counter() - start:.0f} s", file=sys.stderr)

    outcomes = ("ok", "error", "usage", "unexpected", "timeout", "bad")
    print(f"{args.n} generated command lines (seed {args.seed}), "
          f"{time.perf_counter() - start:.0f} s")  # fmt: skip
    print(f"{'command':<15}" + "".join(f"{o:>12}" for o in outcomes))
    for command in FLAGS:
        print(f"{command:<15}" + "".join(f"{counts[command][o]:>12}" for o in outcomes))
    total = sum(counts.values(), Counter())
    print(f"{'total':<15}" + "".join(f"{total[o]:>12}" for o in outcomes))
    for outcome in ("unexpected", "timeout", "bad"):
        for argv, code, err in examples[outcome]:
            print(f"\n[{outcome}] exit {code}: jepa-flow {' '.join(argv)}\n  {err}")
    return 1 if total["bad"] else 0


if __name__ == "__main__":
    sys.exit(main())
