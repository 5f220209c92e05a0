"""Theory versus training: ``compare(result)`` (docs/theory.md §3-§4, §6-§7, §10).

``compare`` takes a ``TrainResult`` and, for each member of its grid, reads
the run's own configuration (``result.config``: ``eps``, ``init``, ``scale``,
``fraction``, target, ...) and computes

- the balanced per-feature flow (``simulate`` / ``critical_time``, §3-§4),
  exact where the start is balanced and diagonal in the feature basis ``U``;
  for a frozen teacher, MAE's flow with ``lam -> c lam`` (§6.3);
- the full-matrix flow (§6.4) with diffrax, from the member's own initial
  state, which stays exact when a converged channel recruits a
  higher-influence feature (capture, §7.1), for any target and start. It is
  integrated where the per-feature theory is not exact (or everywhere with
  ``full=True``); a discrete EMA with step ``eta`` is compared with the
  continuous EMA of time constant ``tau - eta`` (§6.2).

Capture is *predicted* for feature ``j`` when a feature ``i`` of lower
influence is learned first and the entry mapping ``j`` into channel ``i``,
seeded at ``delta0`` (``perturbation_size``), can grow to ``CAPTURE_LEVEL``
before ``j`` is learned (§10). It is *seen* when ``|e_i^T Wbar e_j|``
(``i != j``) rises above ``CAPTURE_LEVEL * wbar*_j`` after channel ``i``'s own
feature was learned and before feature ``j``'s per-feature critical time.

The reference for a feature's critical time is the most accurate theory
available for it: the per-feature theory where it is exact, else the
full-matrix flow (exact for any covariances, target and start): where
capture is predicted, the target is an EMA, the teacher is not diagonal in
``U``, the start is not balanced, or the covariances are not diagonal in
``U``. ``Comparison.reference`` records which, per member. The per-feature
theory is computed in ``U``, where it is exact; wherever it is not, the
reference is the full-matrix flow, itself exact, so no basis theory of
theory §11 is needed here (experiment 10 measures how well those predict
the flow, for ``analyze``). The learning orders of training and
reference are compared by Spearman's rank correlation and the first-``TOP_K``
overlap over the features learned in both (``order_scores``, theory §10).

A member is trusted only where training followed its reference to the end:
against the per-feature theory, its final singular values are the theory's
to ``FOLLOW_TOL`` times the largest ``wbar*`` (basis-invariant, so a capture,
which rotates latent channels, is not mistaken for a failure); against the
full-matrix flow, ``||Wbar e_j|(t_end) - reference(t_end)| <= FOLLOW_TOL
wbar*_j``. Elsewhere (a run that oscillates at a large ``eta``, stalls or has
not converged) its relative errors are NaN and its order never counts as
agreeing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from .._core._grid import GRID, Selection, select, take_grid
from .._core._results import register_result
from .._theory._critical_time import critical_time
from .._theory._fullflow import full_flow
from .._theory._order import learning_order, rel_error
from .._theory._simulate import simulate
from .._theory._stability import (
    CAPTURE_LEVEL,
    PredictedCapture,
    capture_gain,
    perturbation_size,
    predicted_captures,
)
from .._theory._targets import ema_flow_tau, frozen_teacher_lam
from .._theory._validity import order_scores
from ._config import TrainConfig
from ._records import record_slots
from ._train import TrainResult, teacher_diagonal

FOLLOW_TOL = 0.1  # |training - reference| at the end, as a fraction of wbar*
TOP_K = 2  # the first-k overlap of the learning orders
REFERENCES = ("per-feature theory", "full-matrix flow")

register_result(PredictedCapture)


@register_result
@dataclasses.dataclass(frozen=True)
class Capture:
    """A capture seen in a trajectory: channel ``channel`` recruited feature ``feature``.

    Attributes:
        member: ``(seed, depth, eta)`` indices of the member in the grid.
        channel, feature: the latent channel ``i`` and the input feature ``j``.
        t: flow time at which ``|e_i^T Wbar e_j|`` first reached
            ``CAPTURE_LEVEL * wbar*_j`` (interpolated in log t).
        size: the entry's largest value over the run, relative to ``wbar*_j``.

    Examples:
        A capture of the canonical pair, docs/theory.md §7.1:

        >>> c = Capture(member=(0, 0, 0), channel=0, feature=1, t=1080.0, size=0.9)
        >>> (c.channel, c.feature)
        (0, 1)
    """

    member: tuple[int, int, int]
    channel: int
    feature: int
    t: float
    size: float


def seen_captures(t, latent, wbar_star, t_learned, t_own, member=(0, 0, 0)) -> list[Capture]:
    """Off-diagonal entries ``|M_ij|`` rising above ``CAPTURE_LEVEL * wbar*_j`` from below.

    ``t``: ``[T]``, ``latent``: ``U^T Wbar U`` ``[T, d, d]``, ``wbar_star``: ``[d]``.
    The time is interpolated linearly in log t between the two samples. With
    ``t_learned`` (when each channel's own feature was learned) and ``t_own``
    (each feature's per-feature critical time) only captures proper are kept:
    channel ``i`` already learned (``t >= t_learned[i]``) recruits feature ``j``
    before its own time (``t < t_own[j]``); later mixing of learned channels is
    not a capture.
    """
    out = []
    A = np.abs(latent)
    d = A.shape[-1]
    for i in range(d):
        for j in range(d):
            lvl = CAPTURE_LEVEL * wbar_star[j]
            if i == j or not np.isfinite(lvl) or lvl <= 0 or A[0, i, j] >= lvl:
                continue
            above = np.nonzero(A[:, i, j] >= lvl)[0]
            if above.size == 0:
                continue
            k = above[0]
            a0, a1 = A[k - 1, i, j], A[k, i, j]
            t0, t1 = max(t[k - 1], 1e-300), t[k]
            f = (lvl - a0) / (a1 - a0)
            tc = float(np.exp(np.log(t0) + f * (np.log(t1) - np.log(t0)))) if t0 > 0 else t1
            if not (t_learned[i] <= tc < t_own[j]):
                continue
            size = float(A[:, i, j].max() / wbar_star[j])
            out.append(Capture(tuple(int(x) for x in member), i, j, tc, size))
    return out


@register_result
@dataclasses.dataclass(frozen=True)
class Comparison:
    """A training run against the theory, member by member (axes ``[S, D, E, ...]``).

    Per member (seed, depth, eta) and feature ``j`` (``[S, D, E, d]``):

    Attributes:
        result: the compared ``TrainResult`` (its ``config`` says how it was made).
        lam, var, rho: the per-feature theory's parameters ``[d]`` (for a frozen
            teacher, ``lam`` is already ``c lam``).
        t_star_theory: per-feature critical time (docs/theory.md §4).
        t_star_full: the full-matrix flow's (§6.4), NaN where not integrated.
        t_star_training: the trained model's (``result.t_star``).
        use_full: whether the full-matrix flow is the reference (see module docs).
        t_star_reference: the reference critical time.
        rel_error: training against the reference (NaN where not ``followed``).
        rel_error_theory, rel_error_full: training against each (NaN where not
            ``followed``).
        followed: training ended within ``FOLLOW_TOL * wbar*_j`` of the reference.
        order_theory, order_training: learning orders (§10) ``[S, D, E, d]``.
        order_agrees: ``[S, D, E]``, False wherever a feature was not ``followed``.
        captures_predicted: per member ``[S, D, E]`` tuple of ``PredictedCapture``.
        captures, captures_full: ``Capture`` events seen in training and in the
            full-matrix flow (empty when ``result.latent`` was not kept).
        curve_theory, curve_full: ``|Wbar e_j|`` of the per-feature and
            full-matrix flows at ``result.t``, ``[S, D, E, R, d]``.
        reference: ``[S, D, E]`` which theory is the member's reference:
            ``"per-feature theory"`` or ``"full-matrix flow"`` (any feature on it).
        rank_correlation: ``[S, D, E]`` Spearman's correlation of training's
            critical times with the reference's, over features learned in both
            (``0 < t* < inf``); NaN below 3 such features or where a feature
            was not ``followed``.
        top_k_overlap: ``[S, D, E]`` fraction of the reference's first ``TOP_K``
            learned features among training's first ``TOP_K`` (same features, same NaN).

    Examples:
        MAE, canonical pair, depth 1; ``summary()`` is what the CLI writes:

        >>> import jepa_flow as jf
        >>> data = jf.gaussian(Sxx=[2.0, 1.0], Syx=[1.0, 0.8])
        >>> c = jf.compare(jf.train(data, jf.TrainConfig(objective="mae", eta=1e-3, t_max=12.0)))
        >>> m = c.sel(seed=0, depth=1, eta=1e-3)  # the one member, by its grid values
        >>> m.t_star_theory.round(4).tolist(), m.order_theory.tolist()
        ([6.0119, 7.8086], [0, 1])
        >>> sorted(c.summary())[:4]
        ['axes', 'batch', 'captures', 'captures_full']
    """

    result: TrainResult
    lam: np.ndarray
    var: np.ndarray
    rho: np.ndarray
    t_star_theory: np.ndarray
    t_star_full: np.ndarray
    t_star_training: np.ndarray
    use_full: np.ndarray
    t_star_reference: np.ndarray
    rel_error: np.ndarray
    rel_error_theory: np.ndarray
    rel_error_full: np.ndarray
    followed: np.ndarray
    order_theory: np.ndarray
    order_training: np.ndarray
    order_agrees: np.ndarray
    captures_predicted: tuple
    captures: tuple
    captures_full: tuple
    curve_theory: np.ndarray
    curve_full: np.ndarray
    reference: np.ndarray | None = None
    rank_correlation: np.ndarray | None = None
    top_k_overlap: np.ndarray | None = None

    @property
    def config(self) -> TrainConfig:
        """The compared run's configuration."""
        return self.result.config

    def sel(
        self,
        *,
        seed: int | Sequence[int] | None = None,
        depth: int | Sequence[int] | None = None,
        eta: float | Sequence[float] | None = None,
    ) -> Selection:
        """Members by their grid values, as ``TrainResult.sel``: arrays indexed along the grid.

        ``result`` is the ``TrainResult``'s selection, ``captures_predicted``
        an object array (or, for one member, its tuple), and ``captures`` /
        ``captures_full`` keep the events of the selected members (their
        ``member`` still indexes the whole grid).

        Examples:
            >>> import jepa_flow as jf
            >>> data = jf.gaussian(Sxx=[2.0, 1.0], Syx=[1.0, 0.8])
            >>> cfg = jf.TrainConfig(objective="mae", depth=[1, 2], eta=1e-3, t_max=12.0)
            >>> c = jf.compare(jf.train(data, cfg))
            >>> c.sel(seed=0, depth=1, eta=1e-3).t_star_theory.round(4).tolist()
            [6.0119, 7.8086]
            >>> c.sel(eta=1e-3).order_theory.shape  # [seed, depth, feature]
            (1, 2, 2)
        """
        special = {
            "result": lambda r, _: r.sel(seed=seed, depth=depth, eta=eta),
            "captures_predicted": _select_predicted,
            "captures": _select_seen,
            "captures_full": _select_seen,
        }
        selection = {"seed": seed, "depth": depth, "eta": eta}
        return select(self, self.result.coords, selection, special)

    def summary(self) -> dict:
        """The comparison as JSON values (no curves): configuration, times, errors, events."""
        r = self.result
        return {
            "config": self.config.to_dict(),
            "data": r.data.model,
            "batch": r.data.batch,
            "lam": self.lam,
            "var": self.var,
            "rho": self.rho,
            "axes": "[seed, depth, eta, feature]",
            "n_steps": self.config.n_steps,
            **{
                k: getattr(self, k)
                for k in (
                    "t_star_theory",
                    "t_star_full",
                    "t_star_training",
                    "use_full",
                    "rel_error",
                    "rel_error_theory",
                    "rel_error_full",
                    "followed",
                    "order_theory",
                    "order_training",
                    "order_agrees",
                    "reference",
                    "rank_correlation",
                    "top_k_overlap",
                )
            },
            "captures_predicted": [
                {"member": m, **dataclasses.asdict(c)}
                for m, cs in np.ndenumerate(_object_grid(self.captures_predicted))
                for c in cs
            ],
            "captures": [dataclasses.asdict(c) for c in self.captures],
            "captures_full": [dataclasses.asdict(c) for c in self.captures_full],
        }


def _select_predicted(nested, positions):
    return take_grid(_object_grid(nested), positions)  # one member: its tuple


def _select_seen(events, positions):
    keep = [np.atleast_1d(positions[k]) for k in GRID]
    return tuple(c for c in events if all(i in k for i, k in zip(c.member, keep)))


def _object_grid(nested) -> np.ndarray:
    """Nested tuples ``[S][D][E]`` of event tuples as an object array ``[S, D, E]``."""
    S, D, E = len(nested), len(nested[0]), len(nested[0][0])
    out = np.empty((S, D, E), dtype=object)
    for s in range(S):
        for b in range(D):
            for e in range(E):
                out[s, b, e] = nested[s][b][e]
    return out


def _per_feature_theory(r: TrainResult):
    """``(objective, lam, var)`` of the per-feature flow the run should follow (§3, §6.3)."""
    cfg, data = r.config, r.data
    lam, var = np.asarray(data.lam), np.asarray(data.var)
    if cfg.objective == "jepa" and cfg.target == "frozen":
        return "mae", frozen_teacher_lam(lam, teacher_diagonal(data, r.teacher)), var
    return cfg.objective, lam, var


def _per_feature_exact(r: TrainResult) -> bool:
    """Whether the per-feature theory is exact for this run (no capture considered)."""
    cfg, data = r.config, r.data
    teacher_diag = True
    if cfg.target == "frozen":
        M = np.asarray(data.U).T @ np.asarray(r.teacher) @ np.asarray(data.U)
        teacher_diag = bool(np.array_equal(M, np.diag(np.diag(M))))
    ema = cfg.target == "ema" and cfg.tau > 0
    balanced = cfg.init == "balanced"
    return balanced and data.diagonal and teacher_diag and not ema


def _followed(r: TrainResult, use_full, curve_th, curve_full, wstar) -> np.ndarray:
    """Whether each trained feature ended near its reference (module docstring, §10).

    Against the per-feature theory the test is basis-invariant: the run's final
    singular values of ``Wbar`` against the theory's values at the end, sorted
    (a capture rotates the latent channels and mixes the columns ``Wbar e_j``
    but keeps the singular values, §7.1), for the whole member. Against the
    full-matrix flow, started from the same state, it is ``|Wbar e_j|``
    feature by feature.
    """
    tol = FOLLOW_TOL * np.where(np.isfinite(wstar), wstar, 0.0)[None, :, None, :]  # [1, D, 1, d]
    sv_run = np.sort(r.sv[..., -1, :], axis=-1)
    sv_theory = np.sort(curve_th[..., -1, :], axis=-1)
    scale = tol.max(axis=-1)  # [1, D, 1]
    per_member = np.all(np.abs(sv_run - sv_theory) <= scale[..., None], axis=-1)  # [S, D, E]
    by_feature = np.abs(r.norm[..., -1, :] - curve_full[..., -1, :]) <= tol
    return np.where(use_full, by_feature, per_member[..., None])


def _order_scores(t_training, t_reference, followed):
    """Per member ``[S, D, E]``: Spearman and first-``TOP_K`` overlap (``order_scores``),
    NaN where a feature was not followed."""
    grid = t_training.shape[:-1]
    spearman, overlap = np.full(grid, np.nan), np.full(grid, np.nan)
    for m in np.ndindex(*grid):
        if followed[m].all():
            s = order_scores(t_reference[m], t_training[m], TOP_K)
            spearman[m], overlap[m] = s.spearman, s.overlap
    return spearman, overlap


def compare(result: TrainResult, *, full: bool | None = None) -> Comparison:
    """Compare every member of a training run with the theory, at the run's own settings.

    The only way from a ``TrainResult`` to the theory: the per-feature
    critical times and curves use ``result.config`` (``eps``, ``fraction``,
    target, teacher, ...); the full-matrix flow starts from each member's own
    recorded initial state ``result.W0``, ``result.V0``.

    Args:
        result: a ``TrainResult`` from ``train``. Curves are sampled at its
            records (dense over the rises under the default
            ``TrainConfig(t_extra="auto")``); seen captures need ``keep_latent``.
        full: integrate the full-matrix flow for every member (True), for
            none (False: the per-feature theory is then the reference
            everywhere, captures are still predicted), or where it is the
            reference (None, default).

    Returns:
        A ``Comparison``.

    Examples:
        The canonical pair at depth 1: t* = 1008.43 and 1257.32, docs/theory.md §4:

        >>> import jepa_flow as jf
        >>> data = jf.gaussian(Sxx=[2.0, 1.0], Syx=[1.0, 0.8])
        >>> cfg = jf.TrainConfig(objective="jepa", depth=1, eta=0.05, t_max=2000.0)
        >>> c = jf.compare(jf.train(data, cfg))
        >>> c.sel(seed=0, depth=1, eta=0.05).t_star_theory.round(2).tolist()
        [1008.43, 1257.32]
        >>> bool(c.rel_error.max() < 1e-3), bool(c.order_agrees.all())
        (True, True)
    """
    if not isinstance(result, TrainResult):
        raise ValueError(f"result must be a TrainResult from train(); got {type(result).__name__}")
    r, cfg = result, result.config
    obj_th, lam, var = _per_feature_theory(r)
    grids = _Grids.empty(r)
    for b in range(r.t_star.shape[1]):
        _compare_depth(r, b, obj_th, lam, var, full, grids)
    t_tr, t_th_all, t_full, use_full = r.t_star, grids.t_theory, grids.t_full, grids.use_full
    ref = np.where(use_full, t_full, t_th_all)
    wstar = r.level / cfg.fraction  # [D, d]
    followed = _followed(r, use_full, grids.curve_theory, grids.curve_full, wstar)

    def trusted(x):
        return np.where(followed, x, np.nan)

    order_th, order_tr = learning_order(ref), learning_order(t_tr)
    spearman, overlap = _order_scores(t_tr, ref, followed)
    return Comparison(
        result=r,
        lam=lam,
        var=var,
        rho=lam / var,
        t_star_theory=t_th_all,
        t_star_full=t_full,
        t_star_training=t_tr,
        use_full=use_full,
        t_star_reference=ref,
        rel_error=trusted(rel_error(t_tr, ref)),
        rel_error_theory=trusted(rel_error(t_tr, t_th_all)),
        rel_error_full=trusted(rel_error(t_tr, t_full)),
        followed=followed,
        order_theory=order_th,
        order_training=order_tr,
        order_agrees=np.all(order_th == order_tr, axis=-1) & followed.all(axis=-1),
        captures_predicted=tuple(tuple(tuple(x) for x in row) for row in grids.predicted),
        captures=tuple(grids.seen),
        captures_full=tuple(grids.seen_full),
        curve_theory=grids.curve_theory,
        curve_full=grids.curve_full,
        reference=np.where(use_full.any(axis=-1), REFERENCES[1], REFERENCES[0]),
        rank_correlation=spearman,
        top_k_overlap=overlap,
    )


@dataclasses.dataclass
class _Grids:
    """What ``compare`` fills member by member (``[S, D, E, ...]``) and the events it sees."""

    t_theory: np.ndarray
    t_full: np.ndarray
    use_full: np.ndarray
    curve_theory: np.ndarray
    curve_full: np.ndarray
    predicted: list
    seen: list
    seen_full: list

    @classmethod
    def empty(cls, r: TrainResult) -> _Grids:
        S, D, E, d = r.t_star.shape
        return cls(
            t_theory=np.empty((S, D, E, d)),
            t_full=np.full((S, D, E, d), np.nan),
            use_full=np.zeros((S, D, E, d), bool),
            curve_theory=np.empty_like(r.norm),
            curve_full=np.full_like(r.norm, np.nan),
            predicted=[[[() for _ in range(E)] for _ in range(D)] for _ in range(S)],
            seen=[],
            seen_full=[],
        )


def _theory_curve(r: TrainResult, obj_th, lam, var, L, t) -> np.ndarray:
    """The per-feature flow's ``wbar`` at the records ``t`` ``[R, d]``.

    The save times are padded (last time repeated) to the run's fixed record
    count: runs of any length share one compiled trajectory (a training sweep's etas).
    """
    t_pad = np.pad(t, (0, max(record_slots(r.config) - t.size, 0)), mode="edge")
    return np.asarray(simulate(obj_th, lam, var, L, r.config.eps, t_pad).wbar)[: t.size]


def _predicted(r: TrainResult, gain, e: int):
    """Captures predicted for learning rate ``e`` and the features they capture ``[d]``."""
    cfg, d = r.config, r.data.d
    rotated = not np.array_equal(np.asarray(r.data.U), np.eye(d))
    scale = cfg.scale if cfg.init == "balanced" else 1.0
    pred = predicted_captures(gain, perturbation_size(scale, r.eta[e], r.data.batch, rotated))
    captured = np.zeros(d, bool)
    captured[[c.feature for c in pred]] = True
    return pred, captured


def _compare_depth(r: TrainResult, b: int, obj_th, lam, var, full, grids: _Grids) -> None:
    """Every member of depth index ``b``: theory, predicted captures, full flow where needed."""
    cfg, d = r.config, r.data.d
    S, _, E = r.t_star.shape[:3]
    L = int(r.depth[b])
    exact = _per_feature_exact(r)
    flow_tau = ema_flow_tau(cfg.tau, r.eta) if cfg.target == "ema" else np.zeros(r.eta.size)
    wstar = r.level[b] / cfg.fraction
    t_th = np.asarray(critical_time(obj_th, lam, var, L, cfg.eps, fraction=cfg.fraction))
    gain = capture_gain(lam, var, L, t_th) if obj_th == "jepa" else np.zeros((d, d))
    for e in range(E):
        t = r.t[0, b, e]
        th = _theory_curve(r, obj_th, lam, var, L, t)
        pred, captured = _predicted(r, gain, e)
        need_full = (captured | (not exact)) & (full is not False)
        for s in range(S):
            member = (s, b, e)
            grids.predicted[s][b][e] = pred
            grids.t_theory[member] = t_th
            grids.curve_theory[member] = th
            grids.use_full[member] = need_full
            if full is False or (full is None and not need_full.any()):
                continue
            ff = full_flow(
                cfg.objective,
                r.data,
                r.W0[member],
                r.V0[member],
                L,
                t,
                r.level[b],
                target=cfg.target,
                tau=float(flow_tau[e]),
                teacher=r.teacher,
            )
            grids.curve_full[member] = np.asarray(ff.norm)
            if bool(ff.ok):
                grids.t_full[member] = np.asarray(ff.t_star)
            if r.latent is not None:
                latent = np.asarray(ff.latent)
                t_own = grids.t_full[member]
                grids.seen_full += seen_captures(t, latent, wstar, t_own, t_th, member)
        if r.latent is not None:
            for s in range(S):
                member = (s, b, e)
                t_own = r.t_star[member]
                grids.seen += seen_captures(t, r.latent[member], wstar, t_own, t_th, member)
