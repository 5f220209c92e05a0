"""One chunk of a training sweep: a vmapped ``train`` call and its ``compare`` (theory §8.4, §10).

``run_chunk`` trains the members of rows ``lo:hi`` of one ``(objective,
batch)`` group of a ``TrainSweepConfig`` (``_train``) in one call, their
seeds padded so the members split evenly over the devices, compares them with
the theory and returns the outputs row by row (seed fastest).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .._training._compare import compare
from .._training._config import TrainConfig
from .._training._train import diverged_members, train


def _take_seeds(result, n: int):
    """The ``TrainResult`` of its first ``n`` seeds (the padding for the devices dropped)."""
    if result.t_star.shape[0] == n:
        return result
    cut = {}
    for f in ("t", "loss", "sv", "norm", "diag", "offdiag", "latent", "t_star"):
        x = getattr(result, f)
        cut[f] = None if x is None else x[:n]
    for f in ("W0", "V0", "W", "V"):
        cut[f] = getattr(result, f)[:n]
    config = dataclasses.replace(result.config, seed=result.config.seed[:n])
    return dataclasses.replace(result, config=config, **cut)


def _padded_seeds(seeds: tuple, members_per_seed: int, n_devices: int) -> tuple:
    """``seeds`` plus unused ones until the members split evenly over the devices."""
    seeds = list(seeds)
    extra = max(seeds) + 1
    while (len(seeds) * members_per_seed) % n_devices:
        seeds.append(extra)
        extra += 1
    return tuple(seeds)


def run_chunk(config, group: int, lo: int, hi: int, devices) -> dict:
    """Train and compare rows ``lo:hi`` of ``group`` of the ``TrainSweepConfig`` ``config``.

    Returns the outputs by name, rows in sweep order.
    """
    objective, batch = config.groups[group]
    s = config.setting
    m = config.members_per_eta
    etas = config.axis("eta")[lo // m : hi // m]
    depths, seeds = config.axis("depth"), config.axis("seed")
    n_dev = len(devices)
    padded = _padded_seeds(seeds, len(depths) * len(etas), n_dev)
    tc = TrainConfig(
        objective=objective,
        depth=depths,
        eta=etas,
        seed=padded,
        t_max=s.get("t_max"),
        steps=s.get("steps"),
        eps=s["eps"],
        scale=s["scale"],
        target=s["target"] if objective == "jepa" else "stopgrad",
        tau=s["tau"] if objective == "jepa" else 0.0,
        fraction=s["fraction"],
        n_t=s["n_t"],
        t_extra=(),  # the records of n_t only, whatever TrainConfig's default
        keep_latent=True,
    )
    data = config.data_source(batch)
    result = train(data, tc, devices=devices if n_dev > 1 else None, on_divergence="keep")
    result = _take_seeds(result, len(seeds))
    diverged = diverged_members(result)  # [S, D, E]
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        c = compare(result)
    seen = np.zeros(diverged.shape, np.int32)
    for cap in c.captures:
        seen[cap.member] += 1
    seen[diverged] = 0  # entries blowing up before the NaN are no capture

    def rows(x):  # [S, D, E, ...] -> [E * D * S, ...] (seed fastest)
        x = np.asarray(x)
        order = (2, 1, 0) + tuple(range(3, x.ndim))
        return np.ascontiguousarray(x.transpose(order).reshape(-1, *x.shape[3:]))

    dv = diverged[..., None]
    t_theory = np.asarray(c.t_star_reference, np.float64)
    followed = c.followed.all(axis=-1) & ~diverged
    return {
        "t_train": rows(np.where(dv, np.nan, c.t_star_training)),
        "t_theory": rows(t_theory),
        "use_full": rows(c.use_full),
        "rel_error": rows(np.where(dv, np.nan, c.rel_error)),
        "order_match": rows(c.order_agrees & ~diverged),
        "captures_seen": rows(seen),
        "followed": rows(followed),
        "diverged": rows(diverged),
        "ok": rows(~diverged & ~np.isnan(t_theory).any(axis=-1)),
    }
