"""The jitted core of ``train``: one member's step, vmapped, scanned in chunks.

One train step is ``value_and_grad`` of the loss, ``optimizer.update`` and
``optax.apply_updates``, written for one member (``_step``) and ``vmap``-ed
over the members; ``lax.scan`` runs ``chunk`` steps per call, recording at the
shared log-spaced steps (``lax.cond`` on the unbatched step counter, so a
record costs nothing on other steps); a ``lax.while_loop`` over the chunks
runs the whole training in one compiled call (``compiled_run``: nothing on
the host per step; it stops after a chunk in which a member diverged), or,
with a progress bar, a Python loop calls one chunk at a time. Everything static
(objective, target, optimizer, init kind, layers, batch, chunk) is in
``Static``; every swept value is a traced array, so new values reuse the
compiled functions (cached per ``Static``).

Per step, the first crossing of ``|Wbar e_j|`` over the member's level is
detected and interpolated linearly between the two steps (state ``k - 1`` and
``k``), giving the training critical time ``eta * (k - 1 + frac)``.
"""

from __future__ import annotations

import dataclasses
import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from ._data import sample, sample_moments
from ._model import (
    Params,
    init_params,
    layer_mask,
    mask_layers,
    minibatch_loss,
    population_loss,
    wbar,
)

DIVERGED = 1e150  # |loss| above this (or NaN/inf) counts as divergence (float64)
DIVERGED_F32 = 1e30  # the same in float32 (whose largest number is 3.4e38)


def diverged_threshold(dtype) -> float:
    """The ``|loss|`` above which a member counts as diverged, for the working dtype."""
    return DIVERGED if jnp.finfo(dtype).bits == 64 else DIVERGED_F32


class DivergenceError(ValueError):
    """Training diverged (NaN or overflow in the loss); lower the learning rate.

    Examples:
        >>> import jepa_flow as jf
        >>> data = jf.gaussian(Sxx=[1.0, 2.0], Syx=[0.5, 1.0])
        >>> cfg = jf.TrainConfig(objective="mae", depth=2, eta=5.0, eps=0.5, steps=300)
        >>> try:
        ...     jf.train(data, cfg)
        ... except jf.DivergenceError as err:
        ...     print(str(err)[:38])
        training diverged (loss NaN or above 1
    """


@dataclasses.dataclass(frozen=True)
class Static:
    """Everything that selects a compiled function (the cache key)."""

    objective: str
    target: str
    optimizer: str
    init: str  # "balanced", "random" or "given"
    n_layers: int
    batch: int | None
    chunk: int
    keep_latent: bool
    precision: str = "highest"  # of every matrix product (jax.default_matmul_precision)
    block: int = 0  # members per block of the chunk (0: all at once; see _chunk_body)


class _Member(eqx.Module):
    params: Params
    WT: jax.Array | None  # EMA target layers
    opt_state: optax.OptState
    key: jax.Array
    prev: jax.Array  # |Wbar e_j| at the previous step
    t_star: jax.Array
    bad: jax.Array  # first diverged step, -1 if none
    loss: jax.Array


class Consts(eqx.Module):  # per member
    depth: jax.Array
    eta: jax.Array
    beta: jax.Array
    level: jax.Array
    seed: jax.Array


def _optimizer(name: str, eta, momentum):
    if name == "sgd":
        return optax.sgd(eta)
    if name == "momentum":
        return optax.sgd(eta, momentum=momentum)
    return optax.adam(eta)


def _target(st: Static, E, WT, teacher):
    if st.target == "stopgrad":
        return jax.lax.stop_gradient(E)
    if st.target == "ema":
        return wbar(WT)
    return teacher


def _init_member(st, data, shared, c):
    key_init, key_run = jax.random.split(jax.random.PRNGKey(c.seed))
    if st.init == "given":
        params = Params(W=shared["W0"], V=shared["V0"])
    else:
        params = init_params(
            st.init, key_init, data.d, c.depth, st.n_layers, shared["eps"], shared["scale"]
        )
    opt_state = _optimizer(st.optimizer, c.eta, shared["momentum"]).init(params)
    prev = jnp.linalg.norm(wbar(params.W) @ data.U, axis=0)
    return _Member(
        params=params,
        WT=params.W if st.target == "ema" else None,
        opt_state=opt_state,
        key=key_run,
        prev=prev,
        t_star=jnp.full(data.d, jnp.inf),
        bad=jnp.array(-1),
        loss=jnp.array(0.0),
    )


def _step(st, data, shared, k, m: _Member, c: Consts) -> _Member:
    """One optimizer step of one member at step ``k`` (state ``k`` -> ``k + 1``)."""
    # a fresh key per step for minibatch draws (the population loss draws nothing)
    key, sub = (m.key, m.key) if st.batch is None else jax.random.split(m.key)

    def loss_fn(p):
        E = wbar(p.W)
        E_T = _target(st, E, m.WT, shared["teacher"])
        if st.batch is None:
            loss = population_loss(st.objective, p, E_T, data.Sxx, data.Syx, data.Syy)
        elif data.sampler == "wishart":  # the minibatch's moments, exactly distributed
            loss = population_loss(st.objective, p, E_T, *sample_moments(data, sub, st.batch))
        else:
            X, Y = sample(data, sub, st.batch)
            loss = minibatch_loss(st.objective, p, E_T, X, Y)
        return loss, E

    (loss, E), grads = jax.value_and_grad(loss_fn, has_aux=True)(m.params)
    mask = layer_mask(c.depth, st.n_layers)
    opt = _optimizer(st.optimizer, c.eta, shared["momentum"])
    updates, opt_state = opt.update(mask_layers(grads, mask), m.opt_state, m.params)
    params = optax.apply_updates(m.params, mask_layers(updates, mask))
    WT = None if m.WT is None else c.beta * m.WT + (1.0 - c.beta) * params.W
    # first crossing of |Wbar e_j| over the level, state k against state k - 1
    norm = jnp.linalg.norm(E @ data.U, axis=0)
    hit = (norm >= c.level) & jnp.isinf(m.t_star)
    frac = jnp.clip((c.level - m.prev) / jnp.where(norm > m.prev, norm - m.prev, 1.0), 0.0, 1.0)
    t_hit = jnp.where(k == 0, 0.0, c.eta * (k - 1 + frac))
    bad = jnp.where((m.bad < 0) & ~(jnp.abs(loss) < diverged_threshold(loss.dtype)), k, m.bad)
    return _Member(
        params=params,
        WT=WT,
        opt_state=opt_state,
        key=key,
        prev=norm,
        t_star=jnp.where(hit, t_hit, m.t_star),
        bad=bad,
        loss=loss,
    )


def _record(st, data, shared, m: _Member) -> dict:
    """Basis-independent and eigenbasis measurements of one member's state."""
    E = wbar(m.params.W)
    E_T = _target(st, E, m.WT, shared["teacher"])
    M = data.U.T @ E @ data.U  # Wbar in the feature basis
    norm = jnp.linalg.norm(M, axis=0)
    diag = jnp.diagonal(M)
    out = {
        "loss": population_loss(st.objective, m.params, E_T, data.Sxx, data.Syx, data.Syy),
        "sv": jnp.linalg.svd(E, compute_uv=False),
        "norm": norm,
        "diag": diag,
        "offdiag": jnp.linalg.norm(M - jnp.diag(diag), axis=0),
    }
    if st.keep_latent:
        out["latent"] = M
    return out


def _chunk_body(st: Static):
    """``carry -> carry`` after ``st.chunk`` steps of every member, recording at ``rec_steps``.

    With ``st.block`` members per block (a divisor of the ensemble), the
    blocks run their ``st.chunk`` steps one after another (``lax.map``), so
    that a large ensemble's state stays in cache through the steps instead of
    streaming through memory at every step.
    """

    @_with_precision(st)
    def run(carry, data, shared, consts):
        k, r, members, recs = carry
        n = consts.eta.shape[0]
        if not st.block or st.block >= n:
            return _scan_chunk(st, data, shared, carry, consts)
        blocks = n // st.block

        def one(part):
            members, recs, consts = part
            return _scan_chunk(st, data, shared, (k, r, members, recs), consts)

        split = functools.partial(jax.tree.map, lambda x: x.reshape(blocks, st.block, *x.shape[1:]))
        ks, rs, members, recs = jax.lax.map(one, split((members, recs, consts)))
        merge = functools.partial(jax.tree.map, lambda x: x.reshape(n, *x.shape[2:]))
        return ks[0], rs[0], merge(members), merge(recs)

    return run


def _scan_chunk(st: Static, data, shared, carry, consts):
    """``st.chunk`` steps of the members in ``carry`` (vmapped), recording at ``rec_steps``."""
    step = jax.vmap(functools.partial(_step, st, data, shared), in_axes=(None, 0, 0))
    record = jax.vmap(functools.partial(_record, st, data, shared))
    rec_steps = shared["rec_steps"]
    n_rec = rec_steps.shape[0]

    def body(carry, _):
        k, r, members, recs = carry
        now = (r < n_rec) & (k == rec_steps[jnp.minimum(r, n_rec - 1)])

        def write(recs):
            new = record(members)
            return jax.tree.map(lambda buf, x: buf.at[:, r].set(x), recs, new)

        recs = jax.lax.cond(now, write, lambda recs: recs, recs)
        members = jax.lax.cond(
            k < shared["n_steps"], lambda ms: step(k, ms, consts), lambda ms: ms, members
        )
        return (k + 1, r + now, members, recs), None

    carry, _ = jax.lax.scan(body, carry, None, length=st.chunk)
    return carry


def block_size(n_members: int, member_bytes: int, cache_bytes: int = 4 << 20) -> int:
    """Members per block: the largest divisor of ``n_members`` whose state fits in
    ``cache_bytes`` (4 MiB), at least 32; 0 (one block) when all fit or no divisor does.

    Measured on a 2-core CPU (d = 16, depth 4, about 40 KiB of state per
    member): 4096 members run 2.5-3x faster in blocks of 32-64 than all at
    once, 256 members about 1.3x faster in blocks of 64.

    Examples:
        >>> block_size(4096, 40960), block_size(256, 40960), block_size(97 * 64, 40960)
        (64, 64, 97)
        >>> block_size(64, 40960), block_size(4099, 40960)  # all fit; 4099 is prime
        (0, 0)
    """
    target = max(cache_bytes // max(member_bytes, 1), 32)
    if n_members <= target:
        return 0
    return max((b for b in range(32, target + 1) if n_members % b == 0), default=0)


def _with_precision(st: Static):
    """Decorator: trace the function's matrix products at ``st.precision``."""

    def wrap(fn):
        @functools.wraps(fn)
        def traced(*args):
            with jax.default_matmul_precision(st.precision):
                return fn(*args)

        return traced

    return wrap


def _init_body(st: Static):
    @_with_precision(st)
    def init(data, shared, consts, n_rec):
        members = jax.vmap(functools.partial(_init_member, st, data, shared))(consts)
        one = jax.eval_shape(
            functools.partial(_record, st, data, shared), jax.tree.map(lambda x: x[0], members)
        )
        n = consts.eta.shape[0]
        recs = jax.tree.map(lambda s: jnp.full((n, n_rec, *s.shape), jnp.nan, s.dtype), one)
        return (jnp.array(0), jnp.array(0), members, recs)

    return init


@functools.lru_cache(maxsize=32)
def _chunk_fn(st: Static):
    """Jitted: run ``st.chunk`` steps of every member (the loop with a progress bar)."""
    return jax.jit(_chunk_body(st), donate_argnums=0)


@functools.lru_cache(maxsize=32)
def _init_fn(st: Static):
    return jax.jit(_init_body(st), static_argnums=3)


@functools.lru_cache(maxsize=32)
def compiled_run(st: Static, stop_on_divergence: bool):
    """Jitted: initialize every member and run every step in one call, no host work per step.

    ``(data, shared, consts, n_rec) -> (initial members, final carry)``: a
    ``lax.while_loop`` over chunks of ``st.chunk`` scanned steps, which ends
    after the last step or, with ``stop_on_divergence``, after the chunk in
    which a member diverged (the caller reads ``members.bad`` once, at the end).
    """
    init, chunk = _init_body(st), _chunk_body(st)

    def run_all(data, shared, consts, n_rec):
        carry = init(data, shared, consts, n_rec)

        def more(carry):
            k, _, members, _ = carry
            going = k <= shared["n_steps"]
            return going & ~jnp.any(members.bad >= 0) if stop_on_divergence else going

        return carry[2], jax.lax.while_loop(more, lambda c: chunk(c, data, shared, consts), carry)

    return jax.jit(run_all, static_argnums=3)


def run(st, data, shared, consts, n_steps, n_rec, eta_m, where, progress, keep_diverged=False):
    """Initialize and run every member; returns ``(initial members, final carry)``.

    Without ``progress`` the whole run is one compiled call (``compiled_run``);
    with it, a Python loop over chunks drives a tqdm bar. Either way a
    divergence raises ``DivergenceError`` naming the first diverged member
    (``where(i)`` describes member ``i``) once its chunk is done, unless
    ``keep_diverged``: then every member runs to the end (a diverged one's
    state is NaN or huge) and the caller finds them by their loss.
    """
    if progress:
        init_members, carry = _run_with_bar(st, data, shared, consts, n_steps, n_rec, keep_diverged)
    else:
        fn = compiled_run(st, not keep_diverged)
        init_members, carry = fn(data, shared, consts, n_rec)
    if not keep_diverged:
        _raise_if_diverged(carry[2], eta_m, where)
    return init_members, carry


def _raise_if_diverged(members, eta_m, where):
    bad = np.asarray(members.bad)
    if (bad >= 0).any():
        i = int(np.argmax(bad >= 0))
        limit = diverged_threshold(members.loss.dtype)
        cure = "use a smaller learning rate eta"
        if bad[i] == 0:  # the start itself: no learning rate helps
            cure = "the initial weights are too large: lower eps or the init scale"
        raise DivergenceError(
            f"training diverged (loss NaN or above {limit:g}) at step {int(bad[i])} "
            f"(flow time {eta_m[i] * bad[i]:.4g}) for {where(i)}; {cure}"
        )


def _run_with_bar(st, data, shared, consts, n_steps, n_rec, keep_diverged):
    """The chunks one call each, with a tqdm bar (steps, mean loss) between them."""
    carry = _init_fn(st)(data, shared, consts, n_rec)
    init_members = jax.tree.map(jnp.copy, carry[2])  # the carry is donated
    run = _chunk_fn(st)
    # disable=None: a bar only on a terminal, never flooding a log file
    with tqdm(total=n_steps, disable=None, unit="step", dynamic_ncols=True) as bar:
        for _ in range(0, n_steps + 1, st.chunk):
            carry = run(carry, data, shared, consts)
            if not keep_diverged and bool(jnp.any(carry[2].bad >= 0)):
                break
            bar.update(min(st.chunk, n_steps - bar.n))
            bar.set_postfix(loss=f"{float(jnp.mean(carry[2].loss)):.4g}")
    return init_members, carry
