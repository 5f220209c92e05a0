"""Benchmark: the training engine's floating-point throughput against the matmul peak.

The peak is measured in the same run, right before and after each timed pair of
runs (the machine is shared): a large ``jnp.dot`` (``--peak-n``, 1024 by default)
in the working precision at ``precision=HIGHEST``, the best of 3 calls. Each
workload trains with ``jepa_flow.train`` (JEPA, stop-gradient target, plain
SGD, ``matmul_precision="highest"``):

- ensembles of d = 16, depth 4, population loss, 16 .. 4096 members;
- ensembles of d = 16, depth 4, Wishart minibatches of 128 rows (256 members);
- one model (and 8) at d = 64, 256 and 1024, depth 2, population loss.

Its time per step is the marginal one, ``(T(s2) - T(s1)) / (s2 - s1)`` from two
runs of ``s1`` and ``s2 = 3 s1`` steps (already compiled, two records each), so
that initialization, the records and the results' shaping cancel. Its
floating-point work per step is counted from the lowered single step: ``2 m n
k`` for every ``dot_general`` (a matrix product, forward and backward, the
crossing detection's ``Wbar U`` included; element-wise work is not counted).
Achieved FLOP/s divided by the peak is the fraction printed, in wall time and in
process CPU time (the latter barely moves when other processes load the
machine; both count every thread of this process). Targets on a CPU:
at least 50 % for d >= 64 and for ensembles of d = 16 with >= 256 members.

    python scripts/bench_train_flops.py [--quick] [--repeats 3] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time

import jax

X64 = os.environ.get("JAX_ENABLE_X64", "1") != "0"
jax.config.update("jax_enable_x64", X64)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import jepa_flow as jf  # noqa: E402
from jepa_flow._training import _engine, _train  # noqa: E402

DTYPE = jnp.float64 if X64 else jnp.float32
DOT = re.compile(
    r"stablehlo\.dot_general[^\n]*?contracting_dims = \[([\d, ]*)\] x[^\n]*?"
    r": \(tensor<([\dx]+)x\w+>, tensor<[\dx]+x\w+>\) -> tensor<([\dx]+)x\w+>"
)


def dot_flops(text: str) -> int:
    """``2 * (output elements) * (contracted size)`` summed over the module's dot_generals."""
    total = 0
    for contract, lhs, out in DOT.findall(text):
        lhs_dims = [int(x) for x in lhs.split("x")]
        k = int(np.prod([lhs_dims[int(i)] for i in contract.split(",") if i.strip()] or [1]))
        total += 2 * int(np.prod([int(x) for x in out.split("x")])) * k
    return total


def clock(fn):
    """``(wall, process CPU)`` seconds of ``fn()``, blocked on."""
    t0, c0 = time.perf_counter(), time.process_time()
    jax.block_until_ready(fn())
    return np.array([time.perf_counter() - t0, time.process_time() - c0])


def peak_dot(n: int):
    """A function returning the ``(wall, CPU time)`` FLOP/s of an ``n x n`` product at
    HIGHEST precision (the best of 3 calls each)."""
    a = jax.random.normal(jax.random.PRNGKey(0), (n, n), DTYPE)
    dot = jax.jit(lambda x, y: jnp.dot(x, y, precision=jax.lax.Precision.HIGHEST))
    jax.block_until_ready(dot(a, a))

    def measure():
        best = np.min([clock(lambda: dot(a, a)) for _ in range(3)], axis=0)
        return 2 * n**3 / best

    return measure


def data_for(d, batch=None):
    rng = np.random.default_rng(0)
    var = rng.uniform(0.5, 2.0, d)
    return jf.gaussian(Sxx=var, Syx=var * rng.uniform(0.2, 0.9, d), batch=batch)


def step_flops(data, cfg) -> int:
    """Dot FLOPs of one step of every member (the engine's vmapped step, lowered)."""
    (st, data, shared, consts, slots), _ = _train.prepared(data, cfg)
    members, _ = jax.eval_shape(lambda: _engine.compiled_run(st, True)(data, shared, consts, slots))
    members = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), members)

    def one_step(members):
        with jax.default_matmul_precision(st.precision):
            step = jax.vmap(
                lambda m, c: _engine._step(st, data, shared, jnp.asarray(1), m, c), in_axes=(0, 0)
            )
            return step(members, consts)

    return dot_flops(jax.jit(one_step).lower(members).as_text())


def fractions_of_peak(data, cfg, flops, s1, repeats, peak):
    """Per repeat, the fraction of the peak reached in wall time and in process CPU time,
    and the seconds per step: the step's time is the marginal one between runs of ``s1``
    and ``3 s1`` steps, the peak is measured right before and after them."""
    import dataclasses

    short, long = (dataclasses.replace(cfg, steps=s) for s in (s1, 3 * s1))
    for c in (short, long):
        jax.block_until_ready(jf.train(data, c).W)  # compile
    out = []
    for _ in range(repeats):
        before = peak()
        spent = [clock(lambda c=c: jf.train(data, c).W) for c in (short, long)]
        per_step = np.maximum(spent[1] - spent[0], 1e-9) / (2 * s1)
        out.append((flops / per_step / (0.5 * (before + peak())), per_step))
    fractions, seconds = (np.array(x) for x in zip(*out))
    return fractions, seconds  # [repeat, (wall, CPU time)] each


WORKLOADS = [  # label, d, depth, members, batch, first run's steps (full, quick)
    ("ensemble 16 x d=16 L=4, population", 16, 4, 16, None, (2000, 200)),
    ("ensemble 256 x d=16 L=4, population", 16, 4, 256, None, (400, 40)),
    ("ensemble 4096 x d=16 L=4, population", 16, 4, 4096, None, (40, 4)),
    ("ensemble 256 x d=16 L=4, Wishart batch 128", 16, 4, 256, 128, (400, 40)),
    ("single d=64 L=2, population", 64, 2, 1, None, (2000, 200)),
    ("ensemble 8 x d=64 L=2, population", 64, 2, 8, None, (500, 50)),
    ("single d=256 L=2, population", 256, 2, 1, None, (200, 20)),
    ("single d=1024 L=2, population", 1024, 2, 1, None, (6, 2)),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a tenth of the steps (smoke test)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--peak-n", type=int, default=1024)
    ap.add_argument("--only", nargs="+", help="workloads whose label contains one of these")
    ap.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    args = ap.parse_args()
    peak = peak_dot(args.peak_n)
    precision = "float64" if X64 else "float32"
    print(f"matmul peak: {args.peak_n}^2 jnp.dot, {precision}, HIGHEST, measured around each "
          "workload's runs; fractions of it in wall time and in process CPU time (robust to "
          "other processes' load): median (min - max) over repeats")  # fmt: skip
    figures, ratios = {"peak GFLOP/s (wall)": peak()[0] / 1e9}, {}
    for label, d, depth, members, batch, steps in WORKLOADS:
        if args.only and not any(o in label for o in args.only):
            continue
        data = data_for(d, batch)
        cfg = jf.TrainConfig(depth=depth, eta=1e-3, eps=0.1, seed=range(members), steps=10, n_t=2)
        flops = step_flops(data, cfg)
        s1 = steps[1] if args.quick else steps[0]
        fr, _ = fractions_of_peak(data, cfg, flops, s1, args.repeats, peak)
        med = np.median(fr, axis=0)
        print(f"{label}: {flops / members / 1e6:.3g} MFLOP per member-step; fraction of peak: "
              f"wall {100 * med[0]:.1f} % ({100 * fr[:, 0].min():.1f} - "
              f"{100 * fr[:, 0].max():.1f}), CPU time {100 * med[1]:.1f} % "
              f"({100 * fr[:, 1].min():.1f} - {100 * fr[:, 1].max():.1f})", flush=True)  # fmt: skip
        ratios[f"{label}: fraction of matmul peak (wall)"] = float(med[0])
        ratios[f"{label}: fraction of matmul peak (CPU time)"] = float(med[1])
        figures[f"{label}: MFLOP per member-step"] = flops / members / 1e6
    if args.json:
        report = {"script": "bench_train_flops", "params": {"precision": precision,
                  "peak_n": args.peak_n, "quick": args.quick, "repeats": args.repeats}}  # fmt: skip
        with open(args.json, "w") as fh:
            json.dump({**report, "figures": figures, "ratios": ratios}, fh, indent=2)


if __name__ == "__main__":
    main()
