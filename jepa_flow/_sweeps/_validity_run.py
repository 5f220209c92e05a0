"""One chunk of a validity sweep: full-matrix flows and every theory scored against them.

``run_chunk`` computes rows ``lo:hi`` of one objective's group of a
``ValiditySweepConfig`` (``_validity``), one configuration after another:
the source ``noncommuting(var, rho, theta, seed=seed)`` (built once per
``(spectrum, theta, seed)``), every theory's basis and critical times
(``predictions``), the full-matrix flow once on ``time_grid``'s save times
(``observe_flow``) and the scores of each theory against its learned
directions (``score_observation``): the functions experiment 10 calls
(``_training._validity``), in the same order.
"""

from __future__ import annotations

import numpy as np

from .._training._real import analyze
from .._training._synthetic import noncommuting
from .._training._validity import observe_flow, predictions, score_observation, time_grid

# objective label -> (objective, target) of the flow and the theories
OBJECTIVES = {"jepa": ("jepa", "stopgrad"), "ema": ("jepa", "ema"), "mae": ("mae", "stopgrad")}
SCORES = ("spearman", "overlap", "median_error", "max_error")


def configuration(config, objective, spectrum, theta, depth, eps, seed, *, source=None) -> dict:
    """The outputs of one configuration of ``config`` (a ``ValiditySweepConfig``) by name.

    ``objective`` is the sweep's label (``jepa``, ``ema``, ``mae``); ``theta``
    in degrees; ``source``: the ``noncommuting`` source when already built.
    """
    flow_objective, target = OBJECTIVES[objective]
    if source is None:
        var, rho = config.spectrum(spectrum)
        source = noncommuting(var, rho, np.deg2rad(theta), seed=seed)
    Sxx, Syx = np.asarray(source.Sxx), np.asarray(source.Syx)
    tau = config.tau if target == "ema" else 0.0
    theories = tuple(config.theories)
    # every theory's times set the flow's horizon (the preregistration's t_end), whichever
    # are scored, so a theory's scores do not depend on the others; gen-dual's dual vectors
    # give the flow's offdiag_dual
    bases, t_star = predictions(Sxx, Syx, flow_objective, depth, eps, target=target, tau=tau)
    t = time_grid(np.concatenate(list(t_star.values())), config.points_per_decade)
    kw = {"target": target, "tau": tau, "dual": bases["gen-dual"].dual}
    obs = observe_flow(flow_objective, Sxx, Syx, depth, eps, t, **kw)
    scored = score_observation(
        obs.time, obs.directions, {n: bases[n] for n in theories}, t_star, config.k
    )
    out = {s: np.array([getattr(scored[n][3], s) for n in theories], float) for s in SCORES}
    out["n"] = np.array([scored[n][3].n for n in theories], np.int32)
    out["nonorthogonality"] = float(bases["gen-dual"].nonorthogonality)
    out["offdiag"] = float(analyze(source).offdiag)
    out["offdiag_dual"] = float(obs.offdiag)
    out["n_learned"] = int(np.isfinite(obs.time).sum())
    out["ok"] = bool(obs.ok)
    return out


def run_chunk(config, group: int, lo: int, hi: int) -> dict:
    """Rows ``lo:hi`` of ``group`` (one objective) of ``config``: outputs by name, sweep order."""
    grid = config.grid
    start = config.group_starts()[group]
    cols = grid.columns(grid.names, start + lo, start + hi)
    sources, rows = {}, []
    for i in range(hi - lo):
        spectrum, theta, seed = (
            str(cols["spectrum"][i]),
            float(cols["theta"][i]),
            int(cols["seed"][i]),
        )
        key = (spectrum, theta, seed)
        if key not in sources:
            var, rho = config.spectrum(spectrum)
            sources[key] = noncommuting(var, rho, np.deg2rad(theta), seed=seed)
        rows.append(
            configuration(
                config,
                str(cols["objective"][i]),
                spectrum,
                theta,
                int(cols["depth"][i]),
                float(cols["eps"][i]),
                seed,
                source=sources[key],
            )
        )
    return {name: np.stack([np.asarray(r[name]) for r in rows]) for name in rows[0]}
