"""Full-matrix deep linear JEPA and MAE (docs/theory.md §1 and §6).

Parameters are a PyTree ``Params(W, V)``: ``W`` stacks the encoder layers,
``W[0] = W_1`` (applied first to ``x``) ... ``W[L-1] = W_L``, each d x d, and
``V`` is the predictor (JEPA) or decoder (MAE). The end-to-end encoder is
``Wbar = W_L ... W_1``.

Depth padding. To run several depths in one compiled (vmapped) call, every
member carries ``n_layers = max(depth)`` layers; a member of depth ``L`` has
its layers ``L .. n_layers-1`` set to the identity and their gradients and
updates masked to zero (``layer_mask``), so they stay exactly ``I``. In IEEE
arithmetic ``I @ A == A`` bit for bit, so a padded member computes exactly
what an unpadded one would; it only pays for ``n_layers`` matrix products.

Losses, with ``E = Wbar`` and ``E_T`` the JEPA target (``SG(E)``, an EMA
copy, or a frozen teacher)::

    JEPA:  loss = 1/2 E|| V E x - E_T y ||^2
                = 1/2 tr(V E Sxx E^T V^T) - tr(E_T Syx E^T V^T) + 1/2 tr(E_T Syy E_T^T)
    MAE:   loss = 1/2 E|| V E x - y ||^2
                = 1/2 tr(V E Sxx E^T V^T) - tr(Syx E^T V^T) + 1/2 tr(Syy)

The population forms are exact expectations (the gradient-descent
counterpart of the flow); the minibatch forms average over samples.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .._theory._layers import Params, layer_mask, wbar

OBJECTIVES = ("jepa", "mae")
INITS = ("balanced", "random")


def mask_layers(params: Params, mask) -> Params:
    """Zero the padded layers' entries of a gradient or update PyTree."""
    return Params(W=params.W * mask[:, None, None], V=params.V)


def init_params(kind: str, key, d: int, depth, n_layers: int, eps, scale) -> Params:
    """Initial parameters of one member (``depth`` may be traced).

    ``"balanced"`` (theory §2): ``W_a = V = eps^(1/L) I + scale * N(0, 1)``, so
    ``Wbar(0) = eps I`` when ``scale = 0``; a small ``scale`` seeds the
    off-diagonal perturbations of theory §7.
    ``"random"``: every entry of ``W_a`` and ``V`` is ``scale * N(0, 1)``.
    Padded layers ``a >= depth`` are exactly ``I`` in both cases.
    """
    eye = jnp.eye(d)
    kw, kv = jax.random.split(key)
    noise_w = scale * jax.random.normal(kw, (n_layers, d, d))
    noise_v = scale * jax.random.normal(kv, (d, d))
    if kind == "balanced":
        u0 = eps ** (1.0 / depth)
        W, V = u0 * eye + noise_w, u0 * eye + noise_v
    else:
        W, V = noise_w, noise_v
    real = layer_mask(depth, n_layers)[:, None, None]
    return Params(W=real * W + (1.0 - real) * eye, V=V)


def population_loss(objective: str, params: Params, E_T, Sxx, Syx, Syy):
    """The exact expected loss (theory §1) from the covariances (input basis).

    ``E_T`` is the JEPA target encoder (pass ``jax.lax.stop_gradient(Wbar)``
    for the stop-gradient target); it is ignored for MAE.
    """
    E = wbar(params.W)
    P = params.V @ E  # the prediction map x -> V E x
    quad = 0.5 * jnp.sum((P @ Sxx) * P)
    if objective == "jepa":
        return quad - jnp.sum((E_T @ Syx) * P) + 0.5 * jnp.sum((E_T @ Syy) * E_T)
    return quad - jnp.sum(Syx * P) + 0.5 * jnp.trace(Syy)


def minibatch_loss(objective: str, params: Params, E_T, X, Y):
    """``1/(2B) sum_b || V E x_b - target_b ||^2`` over the rows of ``X``, ``Y`` (``[B, d]``).

    The target is ``E_T y`` (JEPA) or ``y`` (MAE).
    """
    P = params.V @ wbar(params.W)
    target = Y @ E_T.T if objective == "jepa" else Y
    return 0.5 * jnp.sum((X @ P.T - target) ** 2) / X.shape[0]
