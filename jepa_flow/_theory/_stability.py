"""Stability of the learned state: convergence rate, capture and collapse (docs/theory.md §7).

The per-feature flow of §3 lives on the set of matrices that are diagonal in
the feature basis. These functions say how the dynamics behave near and off
that set:

- ``convergence_rate``: the linearized rate at which a feature settles on its
  fixed point, ``L var rho^(2L)`` (JEPA) or ``(L + 1) var rho^(2L/(L+1))``
  (MAE); gradient descent with step ``eta`` is stable only while
  ``eta * rate < 2`` (§8.4).
- ``capture_rate``: ``gamma_ij = var_j rho_i^(2L-1) (rho_j - rho_i)``, the
  growth rate of the entry that maps input feature ``j`` into the converged
  channel ``i`` under JEPA with a stop-gradient target (§7.1).
- ``capture_gain`` and ``predicted_captures``: whether that entry, seeded at a
  relative size ``delta0`` (``perturbation_size``), can reach
  ``CAPTURE_LEVEL`` before feature ``j`` is learned on its own (§10).
- ``collapses``: the depth-1 collapse condition ``v0^2 - w0^2 > rho^2`` and
  the predictor's limit ``sqrt(v0^2 - w0^2)`` (§7.2).
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import jax
import numpy as np
from jaxtyping import ArrayLike, Bool, Float, Int

from .._core import _validate

CAPTURE_LEVEL = 0.1  # an off-diagonal entry counts once it reaches this fraction of wbar*_j
CAPTURE_GAIN_MIN = 1.0  # at least one e-fold of growth, however large the seed
ROUNDING = 1e-16  # float64 rounding: the seed a rotated basis gives by itself


def convergence_rate(
    objective: Literal["jepa", "mae"],
    lam: Float[ArrayLike, "..."],
    var: Float[ArrayLike, "..."],
    depth: Int[ArrayLike, "..."],
) -> Float[np.ndarray, "..."]:
    """Linearized rate of convergence to the fixed point (docs/theory.md §7, §8.4).

    ``L var rho^(2L)`` for JEPA, ``(L + 1) var rho^(2L/(L+1))`` for MAE
    (``rho = lam / var``, clipped at 0: an unlearned feature has rate 0).

    Raises:
        ValueError: for an objective other than ``"jepa"`` or ``"mae"``.

    Examples:
        >>> float(convergence_rate("jepa", 1.0, 2.0, 1))
        0.5
    """
    _validate.check_objective(objective)
    lam, var, depth = (np.asarray(x, float) for x in (lam, var, depth))
    rho = np.clip(lam / var, 0.0, None)
    if objective == "jepa":
        return depth * var * rho ** (2 * depth)
    return (depth + 1) * var * rho ** (2 * depth / (depth + 1))


def capture_rate(
    lam: Float[ArrayLike, " d"], var: Float[ArrayLike, " d"], depth: int
) -> Float[np.ndarray, "d d"]:
    """``gamma[i, j] = var_j rho_i^(2L-1) (rho_j - rho_i)`` (docs/theory.md §7.1).

    The first-order growth rate (JEPA, stop-gradient target, balanced) of the
    entry mapping input feature ``j`` into the converged channel ``i``;
    positive when ``j`` has the higher influence. Under MAE the entry decays.

    Examples:
        The canonical pair at depth 1: theory §7.1 measured 0.15002:

        >>> capture_rate([1.0, 0.8], [2.0, 1.0], 1).round(4).tolist()
        [[0.0, 0.15], [-0.48, 0.0]]
    """
    lam, var = np.asarray(lam, float), np.asarray(var, float)
    rho = lam / var
    return var[None, :] * rho[:, None] ** (2 * depth - 1) * (rho[None, :] - rho[:, None])


def capture_gain(
    lam: Float[ArrayLike, " d"],
    var: Float[ArrayLike, " d"],
    depth: int,
    t_star: Float[ArrayLike, " d"],
) -> Float[np.ndarray, "d d"]:
    """``G[i, j] = gamma_ij (t*_j - t*_i)`` where ``rho_i < rho_j`` and ``t*_i < t*_j``, else 0.

    How many e-folds the capturing entry grows between channel ``i``'s
    convergence and feature ``j``'s own critical time (docs/theory.md §10).

    Examples:
        Canonical pair, depth 1: gamma = 0.15 over 1257.32 - 1008.43:

        >>> capture_gain([1.0, 0.8], [2.0, 1.0], 1, [1008.43, 1257.32]).round(2).tolist()
        [[0.0, 37.33], [0.0, 0.0]]
    """
    lam, var, t_star = (np.asarray(x, float) for x in (lam, var, t_star))
    rho = lam / var
    dt = t_star[None, :] - t_star[:, None]
    ok = (rho[:, None] < rho[None, :]) & (dt > 0) & np.isfinite(dt) & (rho[:, None] > 0)
    return np.where(ok, capture_rate(lam, var, depth) * np.where(ok, dt, 0.0), 0.0)


def perturbation_size(scale: float, eta: float, batch: int | None, rotated: bool) -> float:
    """Relative size ``delta0`` of the off-diagonal seed of a run (docs/theory.md §10).

    The largest of the initial noise ``scale``, the minibatch noise
    ``sqrt(eta / batch)`` and float64 rounding when the basis is rotated; 0
    (nothing can be captured: the diagonal set is invariant) otherwise.

    Examples:
        >>> perturbation_size(0.0, 0.01, 100, rotated=True)
        0.01
        >>> perturbation_size(0.0, 0.01, None, rotated=False)
        0.0
    """
    seeds = [float(scale), 0.0]
    if batch is not None:
        seeds.append(float(np.sqrt(eta / batch)))
    if rotated:
        seeds.append(ROUNDING)
    return max(seeds)


@dataclasses.dataclass(frozen=True)
class PredictedCapture:
    """A capture the theory predicts: channel ``channel`` recruits feature ``feature``.

    Attributes:
        channel, feature: feature indices ``i`` (learned first) and ``j``.
        gain: ``gamma_ij (t*_j - t*_i)``, the e-folds available.
        needed: ``max(1, log(CAPTURE_LEVEL / delta0))``, the e-folds needed.

    Examples:
        >>> c = PredictedCapture(channel=0, feature=1, gain=30.0, needed=16.1)
        >>> c.gain > c.needed
        True
    """

    channel: int
    feature: int
    gain: float
    needed: float


def predicted_captures(
    gain: Float[ArrayLike, "d d"], delta0: float
) -> tuple[PredictedCapture, ...]:
    """Pairs whose ``gain`` reaches ``max(1, log(CAPTURE_LEVEL / delta0))`` (docs/theory.md §10).

    Args:
        gain: ``capture_gain``'s e-folds ``[d, d]``.
        delta0: the relative size of the off-diagonal seed (``perturbation_size``), >= 0.

    Examples:
        >>> [c.feature for c in predicted_captures([[0.0, 30.0], [0.0, 0.0]], 1e-8)]
        [1]
        >>> predicted_captures([[0.0, 30.0], [0.0, 0.0]], 0.0)  # no seed: nothing to capture
        ()
    """
    if delta0 <= 0:
        return ()
    gain = np.asarray(gain, float)
    needed = max(CAPTURE_GAIN_MIN, float(np.log(CAPTURE_LEVEL / delta0)))
    return tuple(
        PredictedCapture(int(i), int(j), float(gain[i, j]), needed)
        for i, j in zip(*np.nonzero(gain >= needed))
    )


def collapses(
    v0: Float[ArrayLike, "..."], w0: Float[ArrayLike, "..."], rho: Float[ArrayLike, "..."]
) -> Bool[ArrayLike, "..."]:
    """Whether a JEPA feature collapses, ``v0^2 - w0^2 > rho^2`` (docs/theory.md §7.2).

    Stated at depth 1 in §7.2; it holds at any depth from a start with equal
    encoder layers (the fixed point ``v = rho`` needs ``w^2 = rho^2 - Delta > 0``;
    ``jepa_flow._theory._general``). Takes numpy or JAX arrays (traceable).

    Examples:
        >>> collapses([1.0, 0.5], [0.3, 0.5], 0.5).tolist()
        [True, False]
    """
    if not any(isinstance(x, jax.Array) for x in (v0, w0, rho)):
        v0, w0, rho = (np.asarray(x, float) for x in (v0, w0, rho))
    return v0**2 - w0**2 > rho**2


def collapsed_predictor(
    v0: Float[ArrayLike, "..."], w0: Float[ArrayLike, "..."]
) -> Float[np.ndarray, "..."]:
    """The predictor's limit after a collapse, ``v -> sqrt(v0^2 - w0^2)`` (docs/theory.md §7.2).

    Examples:
        >>> round(float(collapsed_predictor(1.0, 0.3)), 6)
        0.953939
    """
    v0, w0 = np.asarray(v0, float), np.asarray(w0, float)
    return np.sqrt(np.clip(v0**2 - w0**2, 0.0, None))
