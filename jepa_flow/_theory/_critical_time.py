"""Public fixed points and critical times (docs/theory.md §3 and §4)."""

from __future__ import annotations

import functools
import warnings
from typing import Literal

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int

from .._core import _validate
from .._core._batch import Program, float_dtype, run
from .._core._status import Status, failure_counts_message, status_ok
from .._core._warn import JepaFlowWarning
from ._exact import time_to_level
from ._fixed_point import log_u_level, wbar_star
from ._ode import BUDGET, CHUNK, SOLVED, default_rtol, min_rtol, ode_critical_time
from ._series import series_time

# Values used to pad a batch; they describe an easy, learned feature.
_FILL = {"lam": 1.0, "var": 1.0, "depth": 1.0, "eps": 0.5, "fraction": 0.5}
# The batched parameters and their kinds (``_core._checks.KINDS``), in argument order.
_PARAMS = (
    ("lam", "real"),
    ("var", "positive"),
    ("depth", "depth"),
    ("eps", "positive"),
    ("fraction", "fraction"),
)

# Status of each member of a critical-time batch (``critical_time_status``): ``Status`` codes.
OK = int(Status.SUCCESSFUL)  # a finite, positive time
STARTS_ABOVE = int(Status.STARTS_ABOVE_LEVEL)  # eps already reaches the level: the time is 0
NEVER = int(Status.NEVER_LEARNED)  # lam <= 0: never learned, the time is +inf (not an error)
OUT_OF_RANGE = int(Status.OUT_OF_RANGE)  # the time, rho, lam, var or eps is outside the range
BUDGET_EXHAUSTED = int(Status.MAX_STEPS_REACHED)  # method="ode": the solver ran out of steps
FAILED = int(Status.FAILED)  # the method broke down (NaN or a negative time), or the solver


def fixed_point(
    objective: Literal["jepa", "mae"],
    lam: Float[ArrayLike, "..."],
    var: Float[ArrayLike, "..."],
    depth: Int[ArrayLike, "..."],
) -> Float[Array, "..."]:
    """The learned end-to-end encoder ``wbar*`` of each feature (theory §3).

    ``JEPA: wbar* = rho^L``; ``MAE: wbar* = rho^(L/(L+1))``, with
    ``rho = lam / var``; 0 where ``lam <= 0`` (the feature is never learned).

    Args:
        objective: ``"jepa"`` or ``"mae"``.
        lam: covariance of the two views along the feature, any real.
        var: input variance along the feature, > 0.
        depth: encoder depth ``L``, integer >= 1.

    All arguments broadcast together (numpy rules). Returns a float array of
    the broadcast shape, in float64 when ``jax_enable_x64`` is on and in
    float32 otherwise (relative error a few float32 ulp times ``L |log rho|``);
    ``inf`` where ``wbar*`` overflows the dtype.

    Examples:
        Features A = (lam 1, var 2) and B = (lam 0.8, var 1) of theory §4:
        JEPA's ``rho^L`` at depth 2, MAE's ``rho^(L/(L+1))`` at depth 1.

        >>> import numpy as np
        >>> import jepa_flow as jf
        >>> lam, var = np.array([1.0, 0.8]), np.array([2.0, 1.0])
        >>> print(np.round(jf.fixed_point("jepa", lam, var, depth=2), 4))
        [0.25 0.64]
        >>> print(np.round(jf.fixed_point("mae", lam, var, depth=1), 4))
        [0.7071 0.8944]
        >>> print(jf.fixed_point("jepa", -1.0, 1.0, depth=3))  # lam <= 0: never learned
        0.0
    """
    _validate.check_objective(objective)
    (out,), _, _ = run(_fixed_point_program(objective), dict(lam=lam, var=var, depth=depth))
    return out


def _fixed_point_kernel(objective, flat):
    return (wbar_star(objective, flat["lam"], flat["var"], flat["depth"]),), None


@functools.cache
def _fixed_point_program(objective) -> Program:
    return Program(
        key=("fixed_point", objective),
        params=_PARAMS[:3],
        fill=tuple((name, _FILL[name]) for name, _ in _PARAMS[:3]),
        kernel=functools.partial(_fixed_point_kernel, objective),
        subnormal=("lam", "var"),
        multi_device=False,
    )


def critical_time(
    objective: Literal["jepa", "mae"],
    lam: Float[ArrayLike, "..."],
    var: Float[ArrayLike, "..."],
    depth: Int[ArrayLike, "..."],
    eps: Float[ArrayLike, "..."],
    *,
    fraction: Float[ArrayLike, "..."] = 0.5,
    method: Literal["exact", "ode", "series"] = "exact",
    rtol: float | None = None,
    return_status: bool = False,
) -> Float[Array, "..."] | tuple[Float[Array, "..."], Int[Array, "..."]]:
    """Time at which ``wbar`` first reaches ``fraction * wbar*`` (theory §4).

    The flow starts from the balanced ``W_a(0) = V(0) = eps^(1/L) I``, so
    ``wbar(0) = eps``; time is gradient-flow time with unit rate on every
    parameter (the paper's ``tau`` is ``depth * t``).

    Args:
        objective: ``"jepa"`` or ``"mae"``.
        lam: covariance of the two views along the feature (any real; ``lam <= 0``
            is never learned and gives ``inf``).
        var: input variance along the feature, > 0.
        depth: encoder depth ``L``, integer in [1, 1024]; may be an array.
        eps: initial end-to-end weight ``wbar(0)``, > 0. Where ``eps`` already
            reaches the level the time is 0.
        fraction: the level as a fraction of ``wbar*``, in (0, 1).
        method: ``"exact"`` (JEPA closed form; MAE hypergeometric form, accurate
            to float64 rounding, no ODE), ``"ode"`` (the hitting time as an
            integral of the flow, by a Gauss-Legendre rule whose node count
            follows ``rtol``; no event and no root finder; relative error below
            ``rtol``, except where ``eps`` lies within a hair of the level: the
            time then hinges on ``log(u_p / u0) ~ 0`` and the inputs' float64
            rounding limits every method alike, to about ``1e-16 |log u0| /
            log(u_p / u0)``; the accuracy tables are in docs/solvers.md), or
            ``"series"`` (the leading small-eps asymptotics, independent of
            ``fraction``; rough at moderate eps).
        rtol: relative tolerance of ``method="ode"`` (ignored by the others);
            default 1e-12 in float64 and 1.2e-5 in float32; allowed range
            [16 machine epsilons, 0.1].
        return_status: also return each member's ``Status`` code (an integer
            array of the same shape): ``(t_star, status)``.

    All parameters broadcast together (numpy rules); the result has the
    broadcast shape. A large batch is split over all local devices (on a CPU,
    ``jax.config.update("jax_num_cpu_devices", os.cpu_count())`` before any
    computation gives one device per core).

    Precision: the computation runs in float64 when ``jax_enable_x64`` is on
    and in float32 otherwise; float32 is supported (its accuracy is measured
    in docs/precision.md; inputs must be normal float32 numbers).

    Members that cannot be computed never raise and never stop the batch:
    ``lam <= 0`` gives ``inf`` (never learned, not an error); a member whose
    time overflows the dtype, or whose ``lam``, ``var``, ``eps`` or
    ``rho = lam / var`` is not a normal number of the dtype (``var = 1e-320``,
    ``eps = 1e-50`` in float32), gives NaN. Each NaN is
    counted in a ``JepaFlowWarning`` that names the reason; the other members
    are unaffected. ``return_status=True`` returns the reason per member: a
    ``Status`` (``SUCCESSFUL``, ``STARTS_ABOVE_LEVEL``, ``NEVER_LEARNED``,
    ``OUT_OF_RANGE``, ``MAX_STEPS_REACHED`` or ``FAILED``).

    Raises:
        ValueError: for an unknown objective or method, a non-finite value,
            ``var <= 0``, a non-integer depth or one outside [1, 1024],
            ``eps <= 0``, ``fraction`` outside (0, 1), ``rtol`` outside its
            range, or shapes that do not broadcast; raised before any result
            is returned (names, types, shapes and ``rtol`` before anything is
            compiled; the values inside the compiled computation, which
            returns one flag; under ``jax.jit`` the error is raised at run time
            by ``equinox``, naming the parameter and its range).

    JAX arrays stay on their device and the result is a JAX array; the
    function traces under ``jax.jit`` and ``jax.vmap`` (then without the
    NaN-counting warning). A host (numpy) batch of up to 65536 members is
    padded to a bucket size and shares one compiled function with batches of
    similar size; larger batches and JAX arrays compile once per shape.

    Examples:
        The canonical pair of theory §4 at ``eps = 1e-3``: JEPA learns A
        first at depth 1 and B first at depth 4; MAE learns A first at both.

        >>> import numpy as np
        >>> import jepa_flow as jf
        >>> lam, var = np.array([1.0, 0.8]), np.array([2.0, 1.0])  # features A, B
        >>> depth = np.array([[1], [4]])  # broadcasts to shape (2, 2)
        >>> print(np.round(jf.critical_time("jepa", lam, var, depth, eps=1e-3), 2))
        [[ 1008.43  1257.32]
         [43985.88 43056.37]]
        >>> print(np.round(jf.critical_time("mae", lam, var, depth, eps=1e-3), 4))
        [[ 6.0119  7.8086]
         [59.0177 73.8566]]

        The ODE method (the hitting-time integral) agrees with the closed
        form; the small-eps series only roughly:

        >>> print(np.round(jf.critical_time("jepa", lam, var, 4, 1e-3, method="ode"), 2))
        [43985.88 43056.37]
        >>> print(np.round(jf.critical_time("jepa", lam, var, 4, 1e-3, method="series"), 1))
        [44257.9 43065.1]

        ``lam <= 0`` is never learned; a start at or above the level takes no time:

        >>> print(jf.critical_time("jepa", [-1.0, 1.0], 1.0, 2, eps=[1e-3, 0.9]))
        [inf  0.]

        The reason of each member, with ``return_status=True``:

        >>> t, status = jf.critical_time("jepa", [-1.0, 1.0, 1.0], 1.0, 2, eps=[1e-3, 0.9, 1e-3],
        ...                              return_status=True)
        >>> [jf.Status(s).name for s in status]
        ['NEVER_LEARNED', 'STARTS_ABOVE_LEVEL', 'SUCCESSFUL']
    """
    _validate.check_objective(objective)
    _validate.check_method(method)
    dtype = float_dtype()
    rtol = resolve_rtol(rtol, dtype)
    values = dict(lam=lam, var=var, depth=depth, eps=eps, fraction=fraction)
    program = critical_time_program(objective, method, rtol, bool(return_status))
    outputs, counts, n = run(program, values)
    if counts is not None:
        warn_counts(counts, n, "critical_time", jnp.dtype(dtype).name)
    return outputs if return_status else outputs[0]


def resolve_rtol(rtol, dtype) -> float:
    """``rtol`` checked against the dtype's range, or the dtype's default when None."""
    if rtol is None:
        return default_rtol(dtype)
    return _validate.check_rtol(rtol, min_rtol(dtype), jnp.dtype(dtype).name)


def warn_status(status: np.ndarray, where: str, dtype_name: str) -> None:
    """One ``JepaFlowWarning`` that counts the members returned as NaN, by reason."""
    counts = np.bincount(np.ravel(status), minlength=len(Status))
    warn_counts(counts, np.size(status), where, dtype_name, stacklevel=4)


def warn_counts(counts, n: int, where: str, dtype_name: str, stacklevel=3) -> None:
    """``warn_status`` from the members' counts per ``Status`` code (``counts[code]``)."""
    message = failure_counts_message(counts, n, where, dtype_name)
    if message is not None:
        warnings.warn(message, JepaFlowWarning, stacklevel=stacklevel)


def critical_time_status(objective, method, lam, var, depth, eps, fraction, rtol=None):
    """Critical times of flat, validated arrays and their status: ``(t_star, status)``.

    ``status`` holds ``Status`` codes: ``SUCCESSFUL``, ``STARTS_ABOVE_LEVEL``
    (``t_star = 0``), ``NEVER_LEARNED`` (``lam <= 0``, ``t_star = inf``),
    ``OUT_OF_RANGE``, ``MAX_STEPS_REACHED`` or ``FAILED`` (the last three with
    ``t_star = NaN``). Pure and unjitted; ``rtol`` is a Python float (None:
    the dtype's default).
    """
    dtype = lam.dtype
    finfo = jnp.finfo(dtype)
    if rtol is None:
        rtol = default_rtol(dtype)
    learned = lam > 0
    log_lam = jnp.log(jnp.where(learned, lam, 1.0))
    log_var, log_eps = jnp.log(var), jnp.log(eps)
    log_rho = log_lam - log_var
    # every input a normal number (a subnormal is flushed to 0 on most devices), rho too
    lo, hi = float(np.log(finfo.tiny)), float(np.log(finfo.max))
    in_range = (
        (log_lam >= lo)
        & (log_var >= lo)
        & (log_eps >= lo)
        & (log_var <= hi)
        & (log_eps <= hi)
        & (log_rho >= lo)
        & (log_rho <= hi)
    )
    use = learned & in_range
    # stand-ins (an easy learned feature) where the member is not computed
    lam = jnp.where(use, lam, 1.0)
    var = jnp.where(use, var, 1.0)
    log_rho = jnp.where(use, log_rho, 0.0)
    log_eps = jnp.where(use, log_eps, jnp.log(1e-3))
    log_u0 = log_eps / depth
    log_up = log_u_level(objective, log_rho, depth, fraction)
    reached = log_u0 >= log_up
    code = jnp.full(lam.shape, SOLVED)
    if method == "exact":
        t_star = time_to_level(objective, lam, var, depth, log_u0, jnp.maximum(log_up, log_u0))
    elif method == "series":
        t_star = series_time(objective, lam, var, depth, jnp.exp(log_eps))
    else:
        t_star, code, _ = ode_critical_time(objective, lam, log_rho, depth, log_eps, fraction, rtol)
    t_star = jnp.where(reached, 0.0, t_star)
    computed = (code == SOLVED) & ~reached
    overflow = computed & ((t_star == jnp.inf) | (t_star == 0))  # beyond the dtype's range
    invalid = computed & ~overflow & ~(t_star > 0)  # NaN or negative: the method broke down
    status = jnp.where(
        ~learned,
        NEVER,
        jnp.where(
            ~in_range | overflow,
            OUT_OF_RANGE,
            jnp.where(
                (code == SOLVED) & ~invalid,
                OK,
                jnp.where(code == BUDGET, BUDGET_EXHAUSTED, FAILED),
            ),
        ),
    )
    status = jnp.where((status == OK) & reached, STARTS_ABOVE, status)
    t_star = jnp.where((status == OK) | (status == STARTS_ABOVE), t_star, jnp.nan)
    return jnp.where(learned, t_star, jnp.inf), status


def critical_time_kernel(objective, method, lam, var, depth, eps, fraction, rtol=None):
    """Critical times of flat, validated arrays: ``(t_star, ok)``.

    Pure and unjitted: the building block that sweeps ``vmap``/``shard_map``
    over chunks. ``objective``, ``method`` and ``rtol`` are static; every other
    argument is a 1-D array of one length. ``ok`` is False exactly where
    ``t_star`` is NaN (see ``critical_time_status`` for the reason).
    """
    t_star, status = critical_time_status(objective, method, lam, var, depth, eps, fraction, rtol)
    return t_star, status_ok(status)


def _status_kernel(objective, method, rtol, flat):
    return critical_time_status(objective, method, *(flat[k] for k in _FILL), rtol=rtol)


def _critical_time_kernel(objective, method, rtol, with_status, flat):
    t_star, status = _status_kernel(objective, method, rtol, flat)
    return ((t_star, status) if with_status else (t_star,)), status


def _any_nan(outputs):
    return jnp.isnan(outputs[0]).any()


@functools.cache
def critical_time_program(objective, method, rtol, with_status=False) -> Program:
    """``critical_time``'s batched computation (``_core._batch.run`` runs it); with
    ``with_status`` the ``Status`` codes are a second output."""
    return Program(
        key=("critical_time", objective, method, rtol, with_status),
        params=_PARAMS,
        fill=tuple((name, _FILL[name]) for name, _ in _PARAMS),
        kernel=functools.partial(_critical_time_kernel, objective, method, rtol, with_status),
        subnormal=("lam", "var", "eps", "fraction"),
        n_status=len(Status),
        needs_counts=_any_nan,  # NaN exactly where the status is OUT_OF_RANGE or worse
        multiple=1 if method == "exact" else CHUNK,
    )
