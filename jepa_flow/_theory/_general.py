"""The general per-feature flow beyond the balanced start (docs/theory.md §6.1-§6.3, §7.2).

One feature with predictor entry ``v``, encoder layers ``w_1 .. w_L`` and
target ``wbar_T`` follows (theory §6.1)::

    dv/dt   = wbar (lam wbar_T - var v wbar)
    dw_a/dt = (wbar / w_a) v (lam wbar_T - var v wbar)          (MAE: wbar_T -> 1)

with the stop-gradient target ``wbar_T = wbar``, an EMA target whose layers
follow ``dw_T/dt = (w - w_T) / tau`` (§6.2), or a frozen teacher
``wbar_T = c`` (§6.3: MAE's flow at ``lam -> c lam``, via
``frozen_teacher_lam``).

**Start and normalization.** Every encoder layer starts at
``w0 = eps^(1/L)`` (so ``wbar(0) = eps``, as in the balanced flow) and the
predictor at ``v0 = init_ratio * w0``; ``init_ratio = 1`` is the balanced
start of theory §3. ``w_a^2 - w_b^2`` is conserved (§6.1), so the layers stay
equal, and ``v^2 - w^2 = Delta = w0^2 (init_ratio^2 - 1)`` is conserved: the
state reduces to ``y = log w`` (plus the EMA target's ``z = log w_T - y``),
with ``v = w0 sqrt(init_ratio^2 - 1 + exp(2 (y - y0)))``, ``y0 = log w0``.

**Fixed point actually reached.** JEPA (stop-gradient or EMA): ``v -> rho``,
``w*^2 = rho^2 - Delta``, which exists only while ``Delta < rho^2``; otherwise
the feature collapses (``w -> 0``, ``collapses`` of theory §7.2, the same
condition at every depth from equal layers): ``t_star = inf``,
``wbar_final = 0``, ``collapsed = True``. MAE (and a frozen teacher):
``v wbar -> rho``, i.e. ``w*^(2L) (w*^2 + Delta) = rho^2``, which always has
one root; it is found by bisection in ``y`` (``2L y + log(exp(2y) + Delta)``
rises with slope at least ``2L``, so ``|y* - y0| <= |log(rho / (v0 eps))| / L``
brackets it). A feature with ``lam <= 0`` (``c lam <= 0``) is never learned
and is reported like a collapse.

**Formulation: time as an integral in the monotone coordinate.** Below its
level a learned feature's ``y`` only rises: for the 1-D flows (stop-gradient,
MAE, frozen teacher) ``dy/dt`` keeps its sign between the start and the fixed
point, and under an EMA target ``dy/dt = 0`` forces ``d^2y/dt^2 > 0`` while
the target lags below (``z < 0``), so ``y`` never turns back. A start at or
above the level takes no time (it is there; ``t_star = 0``: a predictor
larger than ``rho`` that does not collapse lowers ``w`` to its fixed point).
So ``y`` is the independent variable of the solve, from ``y0`` to the level
``y_p = y* + log(fraction) / L``: no event, no root finder (whose bracket
check can abort a whole vmapped batch), and the same interval structure for
every member. With ``K = dy/dt``::

    JEPA:  K = var exp((2L - 2) y) v (rho exp(L z) - v)      (z = 0: stop-gradient)
    MAE:   K = var exp((L - 2) y)  v (rho - v exp(L y))

and the state is ``T = t K0`` with ``K0`` the value of ``K`` at the start
with ``z = 0`` and ``v = rho`` in the bracket (``K0 = var exp(a y0) v0 rho``,
``a = 2L - 2`` or ``L - 2``)::

    dT/dy = K0 / K = exp(-a (y - y0)) (v0 / v) rho / (bracket)
    dz/dy = expm1(-z) / (tau K0) dT/dy - 1          (EMA only)

``dT/dy`` is ``O(1)`` at the start and falls like ``exp(-a (y - y0))``: the
same non-stiff, depth-independent integrand as the balanced flow's hitting
time (theory §8.2; at ``init_ratio = 1`` this is exactly that integral). The
1-D flows are a quadrature: ``diffrax.Dopri8`` with a PID controller at
``rtol = atol = 1e-10`` (float64: relative error below 1e-9 against the exact
times of theory §4; steps and cost in docs/solvers.md), the most steps below
``init_ratio = 1``, where ``v`` rises at rate ``1 / init_ratio^2`` in ``y`` at
the start. Large batches are sorted by a predictor of the step count and solved in chunks
(``_ode.map_chunks``), as a vmapped solve runs until its slowest member ends.

The EMA target adds a fast variable: ``z`` relaxes at rate ``1 / (tau K)`` in
``y``, huge on the plateau when ``tau`` is short against the plateau's time
scale (a relaxation ratio up to 1e6 at ``tau = 0.01``), so the EMA flow is
stiff in any clock that resolves the slow rise; when ``tau`` nears or passes
the critical time the target lags far behind and ``y`` creeps along the slow
manifold ``rho exp(L z) = v`` instead (stiff the other way). Both regimes
want an implicit solver, and the flow's structure makes one cheap:
``dT/dy`` does not depend on ``T``, so each implicit stage is a single
scalar equation in ``z``. ``_general_ema.solve_ema`` writes Kvaerno's 5(4) ESDIRK
(A-L stable, stiffly accurate; the tableau of ``diffrax.Kvaerno5``) out for
this system: ``NEWTON_ITERATIONS`` (2) scalar Newton steps per stage with the
exact derivative, started from the previous stage's value moved along its
slope and kept above the bracket's pole, and one ``lax.while_loop``
advancing a whole chunk of members (a vectorized step, far cheaper than a
vmapped diffrax solve with a ``lineax`` linear solve per member and Newton
iteration). Its step tolerance is ``rtol`` (default 1e-8; the error of ``T``
relative to ``T``, which can end far below 1), and its relative error is of
the order of that tolerance, long ``tau`` included (docs/solvers.md has the
measurements against scipy's Radau, the step counts and the cost).
``tau = 0`` holds ``z = 0`` (the stop-gradient flow, as theory §6.2 defines
it). ``EMA_CHUNK`` members per loop, the chunks sorted by an effort that
includes ``tau K`` at the level (the best single predictor of the steps;
the loop runs until its slowest member ends).

Tolerances follow the dtype (theory §8.3): ``1e-10`` (explicit) and ``1e-8``
(EMA) in float64, ``1e-6`` in float32, or the caller's ``rtol``. ``ok`` is
False where a solve failed (the time is then NaN), never hidden in a batch.
"""

from __future__ import annotations

import functools
import warnings
from typing import Literal

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float, Int

from .._core import _validate
from .._core._batch import Program, float_dtype, run
from .._core._devices import batch_sharding, over_devices
from .._core._results import register_result
from .._core._status import Status
from .._core._warn import JepaFlowWarning
from ._general_ema import MAX_STEPS_EMA, exponent, solve_ema, v_ratio
from ._ode import CHUNK, map_chunks, min_rtol
from ._stability import collapses
from ._targets import frozen_teacher_lam

TARGETS = ("stopgrad", "ema", "frozen")
MAX_STEPS = 4096
# Members per EMA solve (one while loop runs until its slowest member ends):
# measured fastest at 64 (see EMA_CHUNK's note in the module docstring).
EMA_CHUNK = 64
_BISECTIONS = 120
# Padding rows: an easy, balanced, learned feature.
_FILL = {
    "lam": 1.0,
    "var": 2.0,
    "depth": 1.0,
    "eps": 1e-2,
    "init_ratio": 1.0,
    "tau": 0.0,
    "fraction": 0.5,
}
KERNEL_INPUTS = tuple(_FILL)


def flow_kind(objective: str, target: str) -> str:
    """The flow a (objective, target) pair integrates: ``"jepa"``, ``"ema"`` or ``"mae"``.

    A frozen teacher follows MAE's flow at ``lam -> c lam`` (theory §6.3); MAE
    has no target.

    Examples:
        >>> [flow_kind("jepa", t) for t in TARGETS], flow_kind("mae", "stopgrad")
        (['jepa', 'ema', 'mae'], 'mae')
    """
    if objective == "mae" or target == "frozen":
        return "mae"
    return "ema" if target == "ema" else "jepa"


def default_general_rtol(kind: str, dtype) -> float:
    """The step tolerance when ``rtol`` is None: 1e-10 (1-D flows) or 1e-8 (EMA) in float64,
    1e-6 in float32 (theory §8.3)."""
    if jnp.finfo(dtype).eps > 1e-10:  # float32
        return 1e-6
    return 1e-8 if kind == "ema" else 1e-10


def _tolerances(kind: str, dtype, rtol=None) -> tuple[float, float]:
    """``(step tolerance, Newton tolerance)``: ``rtol`` (or the default), and the EMA
    stages' Newton residual at a thousandth of it, 100 machine epsilons at least."""
    tol = default_general_rtol(kind, dtype) if rtol is None else rtol
    return tol, max(1e-3 * tol, 100.0 * float(jnp.finfo(dtype).eps))


def _field(kind: str):
    """``d(T, z)/dy`` of a 1-D flow (``z`` stays 0; the EMA flow: ``_general_ema``)."""

    def field(y, state, args):
        rho, depth, y0, r, v0, _ = args
        vr = v_ratio(y, y0, r)
        v = v0 * vr
        bracket = rho - v * jnp.exp(depth * y) if kind == "mae" else rho - v
        dT = jnp.exp(-exponent(kind, depth) * (y - y0)) * rho / (vr * bracket)
        return jnp.stack([dT, jnp.zeros_like(dT)])

    return field


def _log_fixed_point(kind: str, log_rho, depth, y0, r):
    """``log w*`` of a learned feature (JEPA needs ``Delta < rho^2``; see the module docstring)."""
    w0sq = jnp.exp(2.0 * y0)
    delta = w0sq * (r * r - 1.0)
    if kind != "mae":
        return 0.5 * jnp.log(jnp.exp(2.0 * log_rho) - delta)

    def f(y):  # 2L y + log(w^2 + Delta) - 2 log rho, rising in y; -inf where w^2 + Delta <= 0
        vsq = w0sq * (r * r + jnp.expm1(2.0 * (y - y0)))
        return 2.0 * depth * y + jnp.log(jnp.where(vsq > 0, vsq, 0.0)) - 2.0 * log_rho

    half = jnp.abs(f(y0)) / (2.0 * depth) + 1e-3

    def body(_, bracket):
        lo, hi = bracket
        mid = 0.5 * (lo + hi)
        below = f(mid) < 0
        return jnp.where(below, mid, lo), jnp.where(below, hi, mid)

    lo, hi = jax.lax.fori_loop(0, _BISECTIONS, body, (y0 - half, y0 + half))
    return 0.5 * (lo + hi)


def _solve(kind: str, tols, y_start, y_end, args):
    """One member's ``T`` of a 1-D flow (diffrax Dopri8, vmapped by the caller)."""
    tol, _ = tols
    zero = jnp.zeros_like(y_start)
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(_field(kind)),
        diffrax.Dopri8(),
        t0=y_start,
        t1=y_end,
        dt0=None,
        y0=jnp.stack([zero, zero]),
        args=args,
        saveat=diffrax.SaveAt(t1=True),
        stepsize_controller=diffrax.PIDController(rtol=tol, atol=tol),
        max_steps=MAX_STEPS,
        throw=False,
    )
    T = sol.ys[-1, 0]
    ok = (sol.result == diffrax.RESULTS.successful) & jnp.isfinite(T)
    return T, ok, sol.stats["num_steps"]


def general_kernel(kind: str, lam, var, depth, eps, init_ratio, tau, fraction, *, rtol=None):
    """General-flow critical times of flat, validated arrays (pure, unjitted).

    ``kind`` (``flow_kind``) and ``rtol`` (None: ``default_general_rtol``)
    are static; for a frozen teacher pass ``lam = frozen_teacher_lam(lam, teacher)``.
    Returns ``(t_star, wbar_final, collapsed, ok, num_steps)``;
    ``vmap``/``shard_map`` over chunks like ``critical_time_kernel``.
    """
    tols = _tolerances(kind, lam.dtype, rtol)
    y0 = jnp.log(eps) / depth
    w0 = jnp.exp(y0)
    positive = lam > 0
    rho = jnp.where(positive, lam, var) / var
    gone = ~positive
    if kind != "mae":  # collapse at any depth from equal layers (theory §7.2)
        gone = gone | collapses(init_ratio * w0, w0, rho)
    y_star = _log_fixed_point(kind, jnp.log(rho), depth, y0, init_ratio)
    gone = gone | ~jnp.isfinite(y_star)  # w*^2 = rho^2 - Delta = 0: w -> 0 as well
    y_level = y_star + jnp.log(fraction) / depth
    reached = gone | (y0 >= y_level)
    # Lanes with nothing to integrate solve an easy balanced feature (rho = 1)
    # from one unit below its level, so that the batch stays finite.
    y_level_d = jnp.log(fraction) / depth
    y0 = jnp.where(reached, y_level_d - 1.0, y0)
    y_end = jnp.where(reached, y_level_d, y_level)
    rho = jnp.where(reached, 1.0, rho)
    r = jnp.where(reached, 1.0, init_ratio)
    v0 = r * jnp.exp(y0)
    k0 = var * jnp.exp(exponent(kind, depth) * y0) * v0 * rho
    tau_k0 = jnp.where((tau > 0) & ~reached, tau * k0, 0.0)
    # Sorted into chunks of similar step counts: the steps grow with the depth's
    # exponent over the interval and, below init_ratio = 1, with log(1 / r)
    # (v rises at rate 1 / r^2 in y at the start).
    slow_start = jnp.log(jnp.maximum(1.0 / r, 1.0))
    effort = (exponent(kind, depth) + 1.0) * (y_end - y0) + 8.0 * slow_start
    if kind == "ema":
        # EMA: the steps grow most with tau K at the level (K with z = 0: how far
        # the target lags there; measured correlation 0.7 over the benchmark's
        # grid), then with the interval and log(1 / r) (weights fitted there).
        vr = v_ratio(y_end, y0, r)
        lag = tau_k0 * jnp.exp(exponent(kind, depth) * (y_end - y0)) * vr * (1.0 - v0 * vr / rho)
        effort = 2.0 * (y_end - y0) + 10.0 * slow_start + 8.0 * jnp.log1p(10.0 * jnp.abs(lag))

        def solve(y0, y_end, *args):
            return solve_ema(tols, y0, y_end, args)

    else:

        @jax.vmap
        def solve(y0, y_end, *args):
            return _solve(kind, tols, y0, y_end, args)

    T, ok, steps = map_chunks(
        solve,
        (y0, y_end, rho, depth, y0, r, v0, tau_k0),
        effort,
        chunk=EMA_CHUNK if kind == "ema" else CHUNK,
    )
    t_star = jnp.where(ok, T / k0, jnp.nan)
    t_star = jnp.where(gone, jnp.inf, jnp.where(reached, 0.0, t_star))
    wbar_final = jnp.where(gone, 0.0, jnp.exp(depth * y_star))
    return t_star, wbar_final, gone, ok | reached, steps


@register_result
class GeneralCriticalTime(eqx.Module):
    """Result of ``general_critical_time``: JAX arrays of the broadcast shape (a PyTree,
    so it can leave ``jax.jit`` and ``jax.vmap``).

    Attributes:
        t_star: first time ``wbar`` reaches ``fraction * wbar_final`` (0 for a
            start at or above it, ``inf`` for a collapsed feature, NaN where
            the solve failed).
        wbar_final: the fixed point reached, ``wbar*`` (0 when collapsed).
        collapsed: True where ``w -> 0`` (theory §7.2; also ``lam <= 0``).
        ok: False where the solve failed.
        num_steps: solver steps per member.
        status: (a property) each member's ``Status``: ``SUCCESSFUL``,
            ``STARTS_ABOVE_LEVEL`` (``t_star = 0``), ``NEVER_LEARNED``
            (collapsed, or ``lam <= 0``), ``MAX_STEPS_REACHED`` or ``FAILED``.

    Examples:
        >>> r = GeneralCriticalTime(np.array([1.0]), np.array([0.5]), np.array([False]),
        ...                         np.array([True]), np.array([12]))
        >>> bool(r.ok.all()), float(r.t_star[0]), r.status.tolist()
        (True, 1.0, [0])
    """

    t_star: Float[Array, "..."]
    wbar_final: Float[Array, "..."]
    collapsed: Bool[Array, "..."]
    ok: Bool[Array, "..."]
    num_steps: Int[Array, "..."]

    @property
    def status(self) -> Int[Array, "..."]:
        """Each member's ``Status`` code, from ``t_star``, ``collapsed``, ``ok`` and the steps."""
        return general_status(self.t_star, self.collapsed, self.ok, self.num_steps)


def general_status(t_star, collapsed, ok, num_steps) -> Int[Array, "..."]:
    """``Status`` codes of general-flow members (``GeneralCriticalTime.status``; traceable).

    A failed member ran out of steps when it used the whole budget of its
    solver (``MAX_STEPS`` diffrax steps, ``MAX_STEPS_EMA`` EMA attempts).
    """
    budget = (num_steps == MAX_STEPS) | (num_steps >= MAX_STEPS_EMA)
    failed = jnp.where(budget, int(Status.MAX_STEPS_REACHED), int(Status.FAILED))
    code = jnp.where(t_star == 0, int(Status.STARTS_ABOVE_LEVEL), int(Status.SUCCESSFUL))
    code = jnp.where(collapsed, int(Status.NEVER_LEARNED), code)
    return jnp.where(ok, code, failed)


def _check_target(target) -> str:
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}; got {target!r}")
    return target


def general_critical_time(
    objective: Literal["jepa", "mae"],
    lam: Float[ArrayLike, "..."],
    var: Float[ArrayLike, "..."],
    depth: Int[ArrayLike, "..."],
    eps: Float[ArrayLike, "..."],
    *,
    init_ratio: Float[ArrayLike, "..."] = 1.0,
    target: Literal["stopgrad", "ema", "frozen"] = "stopgrad",
    tau: Float[ArrayLike, "..."] = 0.0,
    teacher: Float[ArrayLike, "..."] = 1.0,
    fraction: Float[ArrayLike, "..."] = 0.5,
    rtol: float | None = None,
) -> GeneralCriticalTime:
    """Critical time of the general per-feature flow (theory §6.1-§6.3, §7.2).

    Every encoder layer starts at ``eps^(1/L)`` (``wbar(0) = eps``) and the
    predictor at ``init_ratio`` times that; ``init_ratio = 1`` is the balanced
    start of ``critical_time``. The method (a non-stiff integral in
    ``log w``) is described in ``jepa_flow._theory._general``.

    Args:
        objective: ``"jepa"`` or ``"mae"``.
        lam: covariance of the two views along the feature (any real; ``lam <= 0``
            is never learned).
        var: input variance, > 0.
        depth: encoder depth ``L``, integer in [1, 1024].
        eps: ``wbar(0)``, > 0.
        init_ratio: ``v0 / w0``, > 0.
        target: JEPA's target, ``"stopgrad"``, ``"ema"`` (time constant
            ``tau``) or ``"frozen"`` (``teacher``); ignored for MAE.
        tau: EMA time constant in flow time, >= 0 (0 is the stop-gradient).
        teacher: the frozen teacher along the feature, ``c = e^T Wbar_T e`` (theory
            §6.3), any real.
        fraction: the level as a fraction of the fixed point reached, in (0, 1).
        rtol: the solver's step tolerance, in [16 machine epsilons, 0.1]; None
            gives 1e-10 for the 1-D flows (relative error below 1e-9) and 1e-8
            for the EMA target (relative error about 1e-8, below 1e-7 over the
            benchmark's grid; an EMA delay at short ``tau`` is a small
            difference of long times and wants 1e-10 or less), 1e-6 in float32.

    Numeric arguments broadcast together. Returns a ``GeneralCriticalTime``.

    Raises:
        ValueError: for an unknown objective or target, or a value out of
            range (named, with its allowed range), before any result is
            returned (values are checked inside the compiled solve, as in
            ``critical_time``; under ``jax.jit`` at run time).

    Examples:
        Feature A of theory §4 (lam 1, var 2) at depth 1, eps = 1e-3: the
        balanced start gives ``critical_time``'s 1008.43; a larger predictor
        speeds learning up, and beyond ``v0^2 - w0^2 > rho^2`` the feature
        collapses.

        >>> import numpy as np
        >>> import jepa_flow as jf
        >>> res = jf.general_critical_time("jepa", 1.0, 2.0, 1, 1e-3,
        ...                                init_ratio=np.array([1.0, 10.0, 600.0]))
        >>> print(res.t_star.round(2), res.collapsed)
        [1008.43  309.34     inf] [False False  True]
        >>> print(res.wbar_final.round(4))
        [0.5    0.4999 0.    ]

        An EMA target delays the rise (theory §6.2; the first-order delay at
        ``tau = 1`` is 7.154); a frozen teacher follows MAE at ``c lam`` (§6.3):

        >>> ema = jf.general_critical_time("jepa", 1.0, 2.0, 2, 1e-3, target="ema", tau=1.0)
        >>> sg = jf.general_critical_time("jepa", 1.0, 2.0, 2, 1e-3)
        >>> print(round(float(ema.t_star - sg.t_star), 3))
        7.068
        >>> frozen = jf.general_critical_time(
        ...     "jepa", 1.0, 2.0, 2, 1e-3, target="frozen", teacher=0.5
        ... )
        >>> mae = jf.critical_time("mae", 0.5, 2.0, 2, 1e-3)
        >>> print(round(float(frozen.t_star), 4), round(float(mae), 4))
        59.6913 59.6913
    """
    _validate.check_objective(objective)
    _check_target(target)
    kind = flow_kind(objective, target)
    frozen = objective == "jepa" and target == "frozen"
    if kind != "ema":  # ignored: checked here, never broadcast
        _validate.as_nonnegative("tau", tau)
    if not frozen:
        _validate.as_real("teacher", teacher)
    if rtol is not None:
        dtype = float_dtype()
        rtol = _validate.check_rtol(rtol, min_rtol(dtype), jnp.dtype(dtype).name)
    values = dict(init_ratio=init_ratio, tau=tau, teacher=teacher, lam=lam, var=var, depth=depth)
    values["eps"] = eps
    values["fraction"] = fraction
    outputs, counts, n = run(general_program(kind, kind == "ema", frozen, rtol), values)
    if counts is not None:  # status 1: the solve failed
        warnings.warn(
            f"general_critical_time: the solve failed for {int(counts[1])} of {n} members "
            "(returned as NaN)",
            JepaFlowWarning,
            stacklevel=2,
        )
    return GeneralCriticalTime(*outputs)


def _general_kernel(kind, rtol, flat):
    lam = frozen_teacher_lam(flat["lam"], flat["teacher"]) if "teacher" in flat else flat["lam"]
    tau = flat["tau"] if "tau" in flat else jnp.zeros_like(lam)
    args = (lam, flat["var"], flat["depth"], flat["eps"], flat["init_ratio"], tau)
    outputs = general_kernel(kind, *args, flat["fraction"], rtol=rtol)
    return outputs, (~outputs[3]).astype(jnp.int8)  # status 1: the solve failed


def _any_failed(outputs):
    return ~outputs[3].all()  # ok


@functools.cache
def general_program(kind: str, ema: bool, frozen: bool, rtol) -> Program:
    """``general_critical_time``'s batched computation: ``tau`` is a parameter of the EMA
    flow only, ``teacher`` of the frozen teacher only."""
    params = (("init_ratio", "positive"),)
    params += (("tau", "nonneg"),) if ema else ()
    params += (("teacher", "real"),) if frozen else ()
    params += (("lam", "real"), ("var", "positive"), ("depth", "depth"), ("eps", "positive"))
    params += (("fraction", "fraction"),)
    return Program(
        key=("general_critical_time", kind, ema, frozen, rtol),
        params=params,
        fill=tuple((name, _FILL.get(name, 1.0)) for name, _ in params),
        kernel=functools.partial(_general_kernel, kind, rtol),
        subnormal=("lam", "var", "eps", "fraction"),
        n_status=2,
        needs_counts=_any_failed,
        multiple=EMA_CHUNK if kind == "ema" else CHUNK,
    )


def general_function(kind: str, devices: tuple, rtol=None):
    """``(dispatch, gather)`` of the jitted kernel over ``devices`` (flat inputs, ``rtol``
    as in ``general_kernel``).

    ``dispatch(*inputs)`` starts the computation asynchronously (input lengths
    a multiple of ``len(devices)``, device ``i`` gets the ``i``-th slice);
    ``gather(handle)`` returns the outputs as numpy arrays in input order.
    Every flow runs as one ``jax.shard_map`` over a one-axis mesh
    (``over_devices``), like the balanced kernel.
    """
    return _general_function(kind, tuple(devices), None if rtol is None else float(rtol))


@functools.cache
def _general_function(kind: str, devices: tuple, rtol):
    jitted = jax.jit(over_devices(functools.partial(general_kernel, kind, rtol=rtol), devices))
    sharding = batch_sharding(devices) if len(devices) > 1 else None

    def dispatch(*inputs):
        if sharding is None:
            return jitted(*inputs)
        return jitted(*(jax.device_put(x, sharding) for x in inputs))

    def gather(handle):
        return [np.asarray(x) for x in handle]

    return dispatch, gather
