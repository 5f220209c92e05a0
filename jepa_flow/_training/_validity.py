"""Which per-feature theory predicts the full-matrix flow: the measurement of experiment 10.

For one configuration (covariances, objective, target, depth, ``eps``):

1. every theory's basis and critical times (``_theory._validity``);
2. the full-matrix flow (theory §6.4) from the balanced start, integrated once
   (``stiff_flow``) to ``t_end = T_FACTOR x`` the largest finite critical time
   any theory predicts, saved on a log grid of ``points_per_decade`` points
   per decade from ``min(T_START x t_end, T_BELOW x`` the earliest predicted
   time``)``, then sampled finely around each crossing (``refined_times``);
3. when each end singular direction is learned (``learned_directions``, level
   1/2: the ``FlowObservation``);
4. each direction ``b_k`` matched to the theory feature most aligned with it
   (``matched_times``, features scaled to unit norm) and the theory scored
   (``order_scores``: Spearman, first-``k`` overlap, median and worst relative
   time error over the directions learned in both): ``score_observation``.

Step 4 needs only the observation, so theories can be rescored without
integrating again. The observation also records how far the encoder strays
from diagonal in the generalized coordinates (``dual_offdiag``), the quantity
of the cited off-diagonal claim (theory §11.5). ``score_run`` scores the
theories against any recorded run (a trained model's ``Wbar(t)``).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .._core._results import register_result
from .._core._status import Status
from .._theory._stiff import stiff_flow
from .._theory._validity import (
    THEORIES,
    order_scores,
    rho_order_times,
    theory_basis,
    theory_times,
)
from ._directions import LearnedDirections, alignment, learned_directions, matched_times

T_FACTOR = 10.0  # t_end over the largest finite predicted critical time (preregistration)
T_START = 1e-6  # first saved time, relative to t_end ...
T_BELOW = 1e-2  # ... or this fraction of the earliest predicted time, if smaller
LEVEL = 0.5

__all__ = [
    "FlowObservation",
    "dual_offdiag",
    "observe_flow",
    "predictions",
    "score_observation",
    "score_run",
    "time_grid",
]


@register_result
@dataclasses.dataclass(frozen=True)
class FlowObservation:
    """What the full-matrix flow of one configuration learned, and when.

    Attributes:
        time: ``[d]`` learning time of each end singular direction (inf: never).
        s: ``[d]`` end singular values.  directions: ``[d, d]`` columns ``b_k``.
        t_end: the end time.  ok: the solve succeeded.
        offdiag: ``max dual_offdiag`` in the dual-normalized generalized
            coordinates up to the last finite ``time`` (NaN when none).
        nfev: field evaluations of the solve.
        status: the solve's ``Status`` code (``MAX_STEPS_REACHED``: a flow that
            did not settle within the step budget, stopped at ``t_reached``).
        method: the solver that gave the observation (``"LSODA"``, or ``"BDF"``
            where LSODA exhausted the budget).
    """

    time: np.ndarray
    s: np.ndarray
    directions: np.ndarray
    t_end: float
    ok: bool
    offdiag: float
    nfev: int
    status: int = int(Status.SUCCESSFUL)
    t_reached: float = float("nan")
    method: str = "LSODA"

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> FlowObservation:
        arrays = {k: np.asarray(d[k], float) for k in ("time", "s", "directions")}
        extra = {k: d[k] for k in ("status", "t_reached", "method") if k in d}
        extra.setdefault("t_reached", d["t_end"] if d["ok"] else float("nan"))
        return cls(
            **arrays, t_end=d["t_end"], ok=d["ok"], offdiag=d["offdiag"], nfev=d["nfev"], **extra
        )


def time_grid(times, points_per_decade=300) -> np.ndarray:
    """Save times: 0, then a log grid to ``T_FACTOR x`` the latest finite positive time.

    ``times``: every theory's critical times of the configuration (only finite
    positive ones count); without any, the grid of ``[1e-6, 1]``.

    Examples:
        >>> time_grid([1.0, 10.0, np.inf, 0.0], points_per_decade=2).round(6).tolist()[:3]
        [0.0, 0.0001, 0.000316]
    """
    t = np.asarray(times, float).ravel()
    t = t[(t > 0) & np.isfinite(t)]
    hi = T_FACTOR * t.max() if t.size else 1.0
    lo = min(T_START * hi, T_BELOW * t.min()) if t.size else T_START
    n = int(np.ceil(np.log10(hi / lo) * points_per_decade)) + 1
    return np.concatenate([[0.0], np.geomspace(lo, hi, n)])


def dual_offdiag(wbar, dual) -> np.ndarray:
    """``|offdiag(G)|_F / |diag(G)|_F`` per time, ``G = Wt^T Wt``, ``Wt = Wbar A`` (theory §11.5).

    ``wbar`` ``[T, d, d]``; ``dual`` ``[d, d]`` the dual vectors (columns
    ``a_i``, ``A = V^-T``), so column ``i`` of ``Wt`` is feature ``i``'s
    amplitude ``Wbar a_i``. A latent rotation leaves ``G`` unchanged.

    Examples:
        >>> import numpy as np
        >>> dual_offdiag(np.eye(2)[None], np.array([[1.0, 0.6], [0.0, 0.8]])).round(6).tolist()
        [0.6]
    """
    Wt = np.asarray(wbar) @ np.asarray(dual)
    G = np.swapaxes(Wt, -1, -2) @ Wt
    diag = np.einsum("...ii->...i", G)
    off = np.linalg.norm(G, axis=(-2, -1)) ** 2 - np.sum(diag**2, axis=-1)
    return np.sqrt(np.maximum(off, 0.0)) / np.linalg.norm(diag, axis=-1)


def refined_times(t, crossing, width=2.0, n=33) -> np.ndarray:
    """Extra times: ``n`` points around each finite crossing, ``width`` grid steps each side.

    ``learned_directions`` interpolates linearly between samples; near a
    crossing the flow's dense output is sampled finely, so the interpolation
    error falls far below the solver's tolerance.
    """
    pos = t[t > 0]
    step = np.exp(np.diff(np.log(pos)).max()) - 1.0 if pos.size > 1 else 0.01
    tc = crossing[np.isfinite(crossing) & (crossing > t[0])]
    extra = (tc[:, None] * (1.0 + width * step * np.linspace(-1.0, 1.0, n))).ravel()
    return np.setdiff1d(extra[(extra > t[0]) & (extra < t[-1])], t)


def observe_flow(
    objective, Sxx, Syx, depth, eps, t, *, target="stopgrad", tau=0.0, dual=None, max_steps=None
) -> FlowObservation:
    """Integrate the full-matrix flow once and find when each end direction is learned.

    ``t``: the save times (``time_grid``); ``dual``: the dual vectors of the
    generalized basis for ``offdiag`` (default: computed); ``max_steps``: the
    solver's step budget (``stiff_flow``). A solve that exhausts it with LSODA
    is repeated with BDF (LSODA can stay in its non-stiff method on a stiff
    flow); a flow that exhausts it with both has no end state, so nothing is
    observed (NaN times, ``status`` ``MAX_STEPS_REACHED``).
    """
    kw = {"target": target, "tau": tau, "max_steps": max_steps}
    flow = stiff_flow(objective, Sxx, Syx, depth, eps, t, **kw)
    if flow.status == Status.MAX_STEPS_REACHED:  # LSODA may fail to switch to its stiff method
        flow = stiff_flow(objective, Sxx, Syx, depth, eps, t, method="BDF", **kw)
    d = flow.wbar.shape[-1]
    if not flow.ok:
        nan = np.full(d, np.nan)
        return FlowObservation(
            nan,
            nan,
            np.full((d, d), np.nan),
            t[-1],
            False,
            np.nan,
            flow.nfev,
            flow.status,
            flow.t_reached,
            flow.method,
        )
    ld = learned_directions(t, flow.wbar, level=LEVEL)
    extra = refined_times(t, ld.time)
    t_all = np.concatenate([t, extra])
    order = np.argsort(t_all, kind="stable")
    t_all, wbar = t_all[order], np.concatenate([flow.wbar, flow.wbar_at(extra)])[order]
    ld = learned_directions(t_all, wbar, level=LEVEL)
    if dual is None:
        dual = theory_basis("gen-dual", Sxx, Syx).dual
    finite = ld.time[np.isfinite(ld.time)]
    off = float(dual_offdiag(wbar[t_all <= finite.max()], dual).max()) if finite.size else np.nan
    return FlowObservation(
        ld.time,
        ld.s,
        ld.directions,
        float(t[-1]),
        True,
        off,
        flow.nfev,
        flow.status,
        flow.t_reached,
        flow.method,
    )


def _unit(vectors) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=0)


def score_observation(time, directions, bases, t_star, k) -> dict:
    """Theory -> ``(feature, cosine, predicted, OrderScores)`` against observed directions.

    ``time`` ``[d]`` and ``directions`` ``[d, d]`` (columns) of a run's learned
    directions; ``bases``: theory -> ``FeatureBasis``; ``t_star``: theory ->
    ``[d]`` its critical times.
    """
    out = {}
    for name, basis in bases.items():
        align = alignment(_unit(basis.vectors), directions)
        feature, cosine, predicted, observed = matched_times(t_star[name], align, time)
        out[name] = (feature, cosine, predicted, order_scores(predicted, observed, k))
    return out


def score_run(t, wbar, bases, t_star, k) -> tuple[LearnedDirections, dict]:
    """``learned_directions`` of a run's ``Wbar(t)`` ``[T, d, d]`` and ``score_observation``."""
    ld = learned_directions(t, wbar, level=LEVEL)
    return ld, score_observation(ld.time, ld.directions, bases, t_star, k)


def predictions(
    Sxx,
    Syx,
    objective,
    depth,
    eps,
    *,
    target="stopgrad",
    tau=0.0,
    theories=THEORIES,
    exploratory=False,
):
    """Every theory's ``(bases, t_star)`` for one source: theory -> ``FeatureBasis``, and
    theory -> critical times ``[*shape(depth, eps), d]`` (``depth``/``eps`` broadcast);
    with ``exploratory``, also the ``EXPLORATORY`` theories (``rho_order_times``)."""
    bases = {n: theory_basis(n, Sxx, Syx) for n in theories}
    depth = np.asarray(depth)[..., None]
    eps = np.asarray(eps, float)[..., None]
    t_star = {
        n: theory_times(n, b, objective, depth, eps, target=target, tau=tau)
        for n, b in bases.items()
    }
    if exploratory and "gen-dual" in bases:
        bases["rho-order"] = bases["gen-dual"]
        t_star["rho-order"] = rho_order_times(t_star["gen-dual"])
    return bases, t_star
