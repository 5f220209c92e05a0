"""Deep linear networks as PyTrees: layers, the end-to-end encoder, depth padding.

``Params(W, V)``: ``W`` stacks the encoder layers, ``W[0] = W_1`` (applied
first to ``x``) ... ``W[L-1] = W_L``, each d x d, and ``V`` is the predictor
(JEPA) or decoder (MAE); ``Wbar = W_L ... W_1`` (docs/theory.md §1).

Several depths run in one compiled call by giving every member
``n_layers = max(depth)`` layers, those at ``a >= depth`` fixed to the
identity (``layer_mask`` marks the real ones). The full-matrix flow of the
theory layer and the training engine both use these.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from .._core._results import register_result


@register_result
class Params(eqx.Module):
    """Encoder layers ``W`` (``[n_layers, d, d]``, ``W[0] = W_1``) and predictor/decoder ``V``.

    Examples:
        A depth-2 balanced start with ``Wbar(0) = eps I``, eps = 0.01:

        >>> import numpy as np
        >>> p = Params(W=np.stack([0.1 * np.eye(2)] * 2), V=0.1 * np.eye(2))
        >>> np.diag(wbar(p.W)).round(6).tolist()
        [0.01, 0.01]
    """

    W: Float[Array, "layers d d"]
    V: Float[Array, "d d"]


def wbar(W: Float[Array, "layers d d"]) -> Float[Array, "d d"]:
    """End-to-end encoder ``Wbar = W_L ... W_1`` (padded identity layers are no-ops)."""
    E = W[0]
    for a in range(1, W.shape[0]):
        E = W[a] @ E
    return E


def layer_mask(depth, n_layers: int) -> Float[Array, " layers"]:
    """1.0 for the member's real layers ``a < depth``, 0.0 for padded identity layers."""
    return (jnp.arange(n_layers) < depth).astype(jnp.result_type(float))
