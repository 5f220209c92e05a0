"""Steps per second of the training engine against a plain per-step loop.

Two workloads, JEPA with a stop-gradient target on minibatches from a Gaussian
(float64, or float32 with ``JAX_ENABLE_X64=0``; plain SGD):

- one model:   d = 64, depth 4, batch 512;
- an ensemble: 32 models (seeds) of d = 16, depth 4, batch 128, in one vmapped call;
- real data: 16 models (seeds) of d = 64, depth 2, batch 256, trained on the
  rows of the 8 x 8 photo patches (``load_dataset("patches")``, minibatches of
  actual rows, theory §9); the baselines draw the same rows.

The engine (``jepa_flow.train``: scanned, vmapped, with log-spaced records and
per-step critical-time detection; minibatches drawn as exact Wishart moment
matrices, and also timed with explicit samples) is compared with the same
training written as a per-step loop with explicit samples: PyTorch if it is installed,
else a jitted JAX step called
from Python once per step (and once per model for the ensemble). Each timing
is of a second, already compiled call. Prints steps/s and the ratios.

Both baselines are measured when PyTorch is installed (``pip install torch``;
it is not a dependency of jepa_flow): the PyTorch loop with the faster of one
thread and one thread per core (more threads than a tiny model can use only
spin), which is the baseline the targets refer to, and the per-step jitted JAX
loop, printed alongside.

    python scripts/bench_train.py [--steps N] [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import os
import time

import jax
import numpy as np

# float64 unless JAX_ENABLE_X64=0 (scripts/bench_all.py --precision float32); the
# baselines run in the same precision
X64 = os.environ.get("JAX_ENABLE_X64", "1") != "0"
jax.config.update("jax_enable_x64", X64)

from _train_baselines import time_jax_loop, time_torch_loop  # scripts/_train_baselines.py

import jepa_flow as jf


def workload(d, batch, sampler="auto"):
    rng = np.random.default_rng(0)
    var = rng.uniform(0.5, 2.0, d)
    lam = var * rng.uniform(0.2, 0.9, d)
    return jf.gaussian(Sxx=var, Syx=lam, batch=batch, sampler=sampler)


def time_engine(data, depth, eta, n_models, steps):
    cfg = jf.TrainConfig(
        objective="jepa",
        depth=depth,
        eta=eta,
        eps=0.1,
        seed=range(n_models),
        steps=steps,
        n_t=60,
        t_extra=(),
    )
    jf.train(data, cfg)  # compile
    t0 = time.perf_counter()
    jf.train(data, cfg)
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2000, help="steps per model (default: 2000)")
    ap.add_argument("--quick", action="store_true", help="200 steps (smoke test)")
    ap.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    args = ap.parse_args()
    figures, ratios = {}, {}  # for --json
    steps = 200 if args.quick else args.steps
    try:
        import torch  # noqa: F401

        have_torch = True
    except ImportError:
        have_torch = False
    name = "PyTorch per-step loop" if have_torch else "per-step jitted JAX loop"
    print(f"device: {jax.devices()[0].platform}; baseline: {name}; {steps} steps per model")
    cases = [
        ("single d=64 L=4 batch=512", 64, 512, 1, 1e-3, 4),
        ("ensemble 32 x (d=16 L=4 batch=128)", 16, 128, 32, 1e-3, 4),
        ("real data: 16 x (patches d=64 L=2 batch=256, rows)", 64, 256, 16, 1e-2, 2),
    ]
    for label, d, batch, n_models, eta, depth in cases:
        if label.startswith("real data"):
            data = samples = jf.load_dataset("patches", p=8, normalize="max", batch=batch)
        else:
            data, samples = workload(d, batch), workload(d, batch, "samples")
        t_eng = time_engine(data, depth, eta, n_models, steps)
        t_smp = time_engine(samples, depth, eta, n_models, steps)
        base_steps = steps if n_models == 1 else max(steps // 4, 50)
        rates = {
            "per-step jitted JAX loop": n_models
            * base_steps
            / time_jax_loop(samples, depth, eta, n_models, base_steps)
        }
        if have_torch:
            import os

            for threads in sorted({1, os.cpu_count() or 1}):
                t = time_torch_loop(samples, depth, eta, n_models, base_steps, threads)
                rates[f"PyTorch loop, {threads} thread(s)"] = n_models * base_steps / t
        eng, smp = n_models * steps / t_eng, n_models * steps / t_smp
        figures[f"{label}: engine model-steps/s"] = eng
        figures[f"{label}: engine, explicit samples, model-steps/s"] = smp
        figures.update({f"{label}: {k} model-steps/s": r for k, r in rates.items()})
        ratios.update({f"{label}: engine / {k}": eng / r for k, r in rates.items()})
        how = "rows of the data set" if data.model == "samples" else "Wishart minibatches"
        print(f"{label}: engine {eng:,.0f} model-steps/s ({how}; {smp:,.0f} with explicit samples)")
        for key, base in rates.items():
            print(
                f"    vs {key}: {base:,.0f} model-steps/s; ratio {eng / base:.2f}x "
                f"({smp / base:.2f}x with explicit samples)"
            )
        torch_rates = [r for k, r in rates.items() if k.startswith("PyTorch")]
        base = max(torch_rates) if torch_rates else rates["per-step jitted JAX loop"]
        target = 1.0 if n_models == 1 else 10.0
        print(
            f"    target ratio >= {target:g}x against the {name} (its best set-up): "
            f"{eng / base:.2f}x, {'met' if eng / base >= target else 'NOT met'}"
        )
        ratios[f"{label}: engine / baseline (best)"] = eng / base
    if args.json:
        import json

        report = {
            "script": "bench_train",
            "params": {
                "steps": steps,
                "baseline": name,
                "precision": "float64" if X64 else "float32",
            },
        }
        with open(args.json, "w") as fh:
            json.dump({**report, "figures": figures, "ratios": ratios}, fh, indent=2)


if __name__ == "__main__":
    main()
