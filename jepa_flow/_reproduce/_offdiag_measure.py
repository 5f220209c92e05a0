"""Experiment 10's measurements: every theory against the full-matrix flow, trained models and MLPs.

One *row* per configuration (source, objective, depth, eps): the source's
labels, how far it is from commuting, and per theory its ``OrderScores``
(``_training._validity``). Rows are computed group by group (objective,
depth, eps), each group cached as JSON under ``out/cache/`` so that an
interrupted run resumes where it stopped (the cache is removed when the
experiment finishes, unless ``keep_cache``).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import time

import numpy as np

from .._core._io import write_bytes_atomic
from .._core._status import Status
from .._theory._validity import THEORIES
from .._training._datasets import digit_pairs, patch_pairs, series_pairs
from .._training._real import analyze, from_samples
from .._training._synthetic import noncommuting
from .._training._validity import (
    T_FACTOR,
    FlowObservation,
    observe_flow,
    predictions,
    score_observation,
    time_grid,
)

# objective label -> (objective, target)
OBJECTIVES = {"jepa": ("jepa", "stopgrad"), "ema": ("jepa", "ema"), "mae": ("mae", "stopgrad")}
LOADERS = {"patches": patch_pairs, "digits": digit_pairs, "membrane": series_pairs}
SCORES = ("spearman", "overlap", "median_error", "max_error", "n")


def jsonable(x):
    """Arrays to lists and non-finite floats to ``None``/``"inf"`` (as ``write_json_atomic``)."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if hasattr(x, "tolist"):
        return jsonable(np.asarray(x).tolist())
    if isinstance(x, float) and not np.isfinite(x):
        return None if np.isnan(x) else ("inf" if x > 0 else "-inf")
    return x


def as_float(x):
    """Inverse of ``jsonable`` for numbers: ``None`` -> NaN, ``"inf"`` -> inf (nested lists)."""
    if isinstance(x, list):
        return np.array([as_float(v) for v in x], float)
    if x is None:
        return np.nan
    if isinstance(x, str):
        return float(x)
    return float(x)


def write_compact_json(path, obj) -> None:
    """Atomic JSON without indentation (large tables); gzip-compressed, reproducibly (no
    time stamp), when ``path`` ends in ``.gz``."""
    data = (json.dumps(jsonable(obj), separators=(",", ":"), allow_nan=False) + "\n").encode()
    if str(path).endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    write_bytes_atomic(path, data)


# -- sources -------------------------------------------------------------------------------


def synthetic_sources(p):
    """``[(labels, Sxx, Syx)]`` of the synthetic family at the level's parameters."""
    d, out = p["d"], []
    for name, sp in p["spectra"].items():
        var = np.geomspace(sp["var"][0], sp["var"][1], d)
        rho = np.linspace(sp["rho"][0], sp["rho"][1], d)
        for seed in p["seeds"]:
            for theta in p["theta_deg"]:
                data = noncommuting(var, rho, np.deg2rad(theta), seed=seed)
                labels = {"spectrum": name, "seed": seed, "theta": theta}
                out.append((labels, np.asarray(data.Sxx), np.asarray(data.Syx)))
    return out


def real_sources(p):
    """``[(labels, Sxx, Syx)]`` of the shipped data sets (loaders' defaults)."""
    out = []
    for name in p["sets"]:
        x, y = LOADERS[name]()
        for k in p["n_features"]:
            for power in p["power"]:
                data = from_samples(x, y, n_features=k, power=power, normalize="max")
                labels = {"set": name, "n_features": k, "power": power}
                out.append((labels, np.asarray(data.Sxx), np.asarray(data.Syx)))
    return out


def source_measures(Sxx, Syx) -> dict:
    """How far a source is from commuting: PCA ``offdiag``, commutator, generalized basis."""
    from .._theory._validity import theory_basis
    from .._training._data import gaussian

    a = analyze(gaussian(Sxx=Sxx, Syx=Syx, Syy=Sxx))
    g = theory_basis("gen-dual", Sxx, Syx)
    return {
        "offdiag": a.offdiag,
        "commutator": a.commutator,
        "nonorthogonality": g.nonorthogonality,
        "max_cosine": g.max_cosine,
    }


# -- one group of flows ---------------------------------------------------------------------


def _row(labels, obs: FlowObservation, scored) -> dict:
    scores = {n: {s: getattr(v[3], s) for s in SCORES} for n, v in scored.items()}
    return {
        **labels,
        "ok": obs.ok,
        "status": obs.status,
        "t_end": obs.t_end,
        "t_reached": obs.t_reached,
        "offdiag_dual": obs.offdiag,
        "n_learned": int(np.isfinite(obs.time).sum()),
        "nfev": obs.nfev,
        "scores": scores,
        "observation": obs.as_dict(),
    }


def observe_group(sources, label, depth, eps, p) -> list[dict]:
    """The flow observations of one (objective, depth, eps) over ``sources`` (what is cached)."""
    objective, target = OBJECTIVES[label]
    out = []
    for labels, Sxx, Syx in sources:
        bases, t_star = predictions(Sxx, Syx, objective, depth, eps, target=target, tau=p["tau"])
        t = time_grid(np.concatenate(list(t_star.values())), p["points_per_decade"])
        kw = {"target": target, "tau": p["tau"], "dual": bases["gen-dual"].dual}
        kw["max_steps"] = p.get("max_steps")
        obs = observe_flow(objective, Sxx, Syx, depth, eps, t, **kw)
        out.append({**labels, "observation": obs.as_dict()})
    return out


def score_group(sources, observed, label, depth, eps, p) -> list[dict]:
    """Rows of one group: every theory scored against the cached observations."""
    objective, target = OBJECTIVES[label]
    rows = []
    for (labels, Sxx, Syx), cached in zip(sources, observed):
        assert all(cached[k] == v for k, v in labels.items()), (labels, cached)
        o = cached["observation"]
        obs = FlowObservation.from_dict(
            {**o, **{k: as_float(o[k]) for k in ("time", "s", "directions", "offdiag", "t_end")}}
        )
        bases, t_star = predictions(
            Sxx, Syx, objective, depth, eps, target=target, tau=p["tau"], exploratory=True
        )
        scored = score_observation(obs.time, obs.directions, bases, t_star, p["k"])
        rows.append(_row({**labels, "objective": label, "depth": depth, "eps": eps}, obs, scored))
    return rows


def _key(kind, label, depth, eps, sources) -> str:
    h = hashlib.sha1()
    for labels, Sxx, Syx in sources:
        h.update(json.dumps(labels, sort_keys=True).encode())
        h.update(np.ascontiguousarray(Sxx).tobytes() + np.ascontiguousarray(Syx).tobytes())
    return f"{kind}_{label}_L{depth}_eps{eps:g}_{h.hexdigest()[:12]}"


def measure_grid(kind, sources, p, cache, log=print) -> list[dict]:
    """Every (objective, depth, eps) of the grid over ``sources``: the flows through the
    cache (one file per group), the scores recomputed from the cached observations."""
    rows = []
    cache.mkdir(parents=True, exist_ok=True)
    for label in p["objectives"]:
        for depth in p["depths"]:
            for eps in p["eps"]:
                path = cache / (_key(kind, label, depth, eps, sources) + ".json")
                if not path.exists():
                    t0 = time.perf_counter()
                    write_compact_json(path, observe_group(sources, label, depth, eps, p))
                    seconds = time.perf_counter() - t0
                    log(f"    {kind} {label} L={depth} eps={eps:g}: {seconds:.1f} s")
                observed = json.loads(path.read_text())
                rows += score_group(sources, observed, label, depth, eps, p)
    return rows


def strip(rows) -> list[dict]:
    """Rows without their observations (what ``synthetic.json.gz`` keeps)."""
    return [{k: v for k, v in r.items() if k != "observation"} for r in rows]


_LABELS = ("spectrum", "seed", "theta", "set", "n_features", "power", "objective", "depth", "eps")


def failed(rows) -> list[dict]:
    """The rows whose solve failed (``Status.FAILED``)."""
    return [r for r in rows if r.get("status") == Status.FAILED]


def unsettled(rows) -> list[dict]:
    """The labels and ``t_reached`` of the flows stopped by the step budget (theory §11.8)."""
    return [
        {k: r[k] for k in _LABELS + ("t_reached",) if k in r}
        for r in rows
        if r.get("status") == Status.MAX_STEPS_REACHED
    ]


def horizon(row) -> float:
    """A trained model's horizon: ``T_FACTOR x`` the flow's last learning time (or its t_end)."""
    obs = np.asarray(row["observation"]["time"], float)
    finite = obs[np.isfinite(obs)]
    return float(min(T_FACTOR * finite.max(), float(row["t_end"]))) if finite.size else 1.0


__all__ = ["OBJECTIVES", "SCORES", "THEORIES", "measure_grid", "real_sources"]
