"""Per-step training loops, the baselines of ``bench_train.py`` and ``bench_train_sweep.py``.

Each function trains ``n_models`` models (seeds ``0 .. n_models - 1``) of one
depth and one learning rate, one model after another, one Python-level call
per SGD step, from the balanced start ``W_a = V = eps^(1/L) I``, and returns
the wall time in seconds of an already compiled run:

- ``time_jax_loop``: a jitted JAX step (draw, ``value_and_grad``, ``optax.sgd``);
- ``time_torch_loop``: the same step in PyTorch (``torch.optim.SGD``), in JAX's working precision
  (float64 when ``jax_enable_x64`` is on, float32 otherwise).

``objective`` is ``"jepa"`` (stop-gradient target) or ``"mae"``. With
``moments=False`` the loss is the mean over ``data.batch`` explicit samples
(``minibatch_loss``); with ``moments=True`` it is the population form of the
loss with the minibatch's moment matrices in place of the covariances
(``population_loss``): the JAX step draws them as one Wishart matrix
(``sample_moments``, as the engine does), the PyTorch step the obvious way,
by drawing the ``B`` samples and forming ``Z^T Z / B``.

PyTorch is not a dependency of jepa_flow; ``time_torch_loop`` imports it.
"""

from __future__ import annotations

import time

import jax
import numpy as np
import optax

from jepa_flow._training._data import sample, sample_moments
from jepa_flow._training._model import init_params, minibatch_loss, population_loss, wbar


def time_jax_loop(data, depth, eta, n_models, steps, *, objective="jepa", moments=False, eps=0.1):
    """Per-step jitted step called from Python (one model after another)."""
    opt = optax.sgd(eta)

    @jax.jit
    def step(params, opt_state, key):
        key, sub = jax.random.split(key)
        if moments:
            C = sample_moments(data, sub, data.batch)
        else:
            X, Y = sample(data, sub, data.batch)

        def loss_fn(p):
            E_T = jax.lax.stop_gradient(wbar(p.W))
            if moments:
                return population_loss(objective, p, E_T, *C)
            return minibatch_loss(objective, p, E_T, X, Y)

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, key, loss

    def run():
        for m in range(n_models):
            key = jax.random.PRNGKey(m)
            params = init_params("balanced", key, data.d, depth, depth, eps, 0.0)
            opt_state = opt.init(params)
            for _ in range(steps):
                params, opt_state, key, loss = step(params, opt_state, key)
            loss.block_until_ready()

    p0 = init_params("balanced", jax.random.PRNGKey(0), data.d, depth, depth, eps, 0.0)
    step(p0, opt.init(p0), jax.random.PRNGKey(0))  # compile
    t0 = time.perf_counter()
    run()
    return time.perf_counter() - t0


def time_torch_loop(
    data, depth, eta, n_models, steps, threads=1, *, objective="jepa", moments=False, eps=0.1
):  # pragma: no cover
    """The same per-step loop in PyTorch, in JAX's working precision, with ``threads`` threads."""
    import torch

    torch.set_num_threads(threads)
    torch.set_default_dtype(torch.float64 if jax.config.jax_enable_x64 else torch.float32)
    d, B = data.d, data.batch
    rows = data.model == "samples"
    if rows:
        Xs, Ys = torch.tensor(np.asarray(data.X)), torch.tensor(np.asarray(data.Y))
    else:
        factor = torch.tensor(np.asarray(data.factor))
        U = torch.tensor(np.asarray(data.U))
    t0 = time.perf_counter()
    for m in range(n_models):
        torch.manual_seed(m)
        u0 = eps ** (1 / depth)
        Ws = [torch.nn.Parameter(u0 * torch.eye(d)) for _ in range(depth)]
        V = torch.nn.Parameter(u0 * torch.eye(d))
        opt = torch.optim.SGD([*Ws, V], lr=eta)
        for _ in range(steps):
            if rows:  # rows drawn with replacement, each pair swapped with probability 1/2
                idx = torch.randint(Xs.shape[0], (B,))
                flip = torch.rand(B, 1) < 0.5
                X0, Y0 = Xs[idx], Ys[idx]
                X, Y = torch.where(flip, Y0, X0), torch.where(flip, X0, Y0)
            else:
                z = torch.randn(B, 2 * d) @ factor.T
                X, Y = z[:, :d] @ U.T, z[:, d:] @ U.T
            E = Ws[0]
            for W in Ws[1:]:
                E = W @ E
            P = V @ E
            if moments:  # the loss from the minibatch's moment matrices (population form)
                Z = torch.cat([X, Y], dim=1)
                C = Z.T @ Z / B
                Cxx, Cyx, Cyy = C[:d, :d], C[d:, :d], C[d:, d:]
                loss = 0.5 * ((P @ Cxx) * P).sum()
                if objective == "jepa":
                    E_T = E.detach()
                    loss = loss - ((E_T @ Cyx) * P).sum() + 0.5 * ((E_T @ Cyy) * E_T).sum()
                else:
                    loss = loss - (Cyx * P).sum() + 0.5 * torch.trace(Cyy)
            else:
                target = Y @ E.detach().T if objective == "jepa" else Y
                loss = 0.5 * ((X @ P.T - target) ** 2).sum() / B
            opt.zero_grad()
            loss.backward()
            opt.step()
    return time.perf_counter() - t0
