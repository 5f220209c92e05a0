"""The public numerical functions compose with JAX: jit, vmap, arrays left on the device.

Values are checked inside the compiled function; under ``jax.jit`` a bad value
raises at run time with the parameter's one-line message (``equinox``).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jepa_flow as jf
from jepa_flow._core import _batch

# float64, or float32 with JEPA_FLOW_TEST_X64=0 (scripts/gpu_check.py)
RTOL = 1e-12 if jax.config.jax_enable_x64 else 1e-5
# an adaptive solve batched by vmap: the batched kernels round differently on a GPU
# (an H200 gave 1.1e-12 relative between the vmapped and the plain general solve)
RTOL_SOLVE = 1e-10 if jax.config.jax_enable_x64 else 1e-5
LAM = np.array([1.0, 0.8, 0.3])
VAR = np.array([2.0, 1.0, 1.5])


def test_critical_time_under_jit_and_vmap():
    ref = np.asarray(jf.critical_time("jepa", LAM, VAR, 2, 1e-3))
    jitted = jax.jit(lambda lam, var: jf.critical_time("jepa", lam, var, 2, 1e-3))
    np.testing.assert_allclose(jitted(LAM, VAR), ref, rtol=RTOL)
    vmapped = jax.vmap(lambda lam, var: jf.critical_time("jepa", lam, var, 2, 1e-3))
    np.testing.assert_allclose(vmapped(LAM, VAR), ref, rtol=RTOL)
    ode = jax.vmap(lambda lam: jf.critical_time("mae", lam, 1.0, 3, 1e-3, method="ode"))(LAM)
    exact = jf.critical_time("mae", LAM, 1.0, 3, 1e-3)
    np.testing.assert_allclose(ode, exact, rtol=max(RTOL, 1e-10))
    wbar = jax.vmap(lambda v: jf.fixed_point("mae", 1.0, v, 1))(jnp.asarray(VAR))
    np.testing.assert_allclose(wbar, (1.0 / VAR) ** 0.5, rtol=RTOL)


def test_bad_value_under_jit_raises_with_its_message():
    jitted = jax.jit(lambda var: jf.critical_time("jepa", 1.0, var, 2, 1e-3))
    with pytest.raises(Exception, match=r"var must be > 0 \(allowed range \(0, inf\)\)"):
        jax.block_until_ready(jitted(jnp.array([1.0, -2.0])))
    depth = jax.jit(lambda d: jf.critical_time("jepa", 1.0, 1.0, d, 1e-3))
    with pytest.raises(Exception, match=r"depth must be an integer in \[1, 1024\]"):
        jax.block_until_ready(depth(jnp.array([2.5])))


def test_jax_inputs_stay_on_the_device():
    """No implicit transfer: JAX arrays in, JAX arrays out, one explicit flag read back."""
    args = [jnp.asarray(x) for x in (LAM, VAR, 2.0, 1e-3, 0.5, 2.0)]
    ref = jf.critical_time("jepa", LAM, VAR, 2, 1e-3)
    kw = dict(init_ratio=args[5], target="ema", tau=args[5], fraction=args[4])
    for guard in ("allow", "disallow"):  # tracing moves constants: compiled first
        with jax.transfer_guard(guard):
            t_star = jf.critical_time("jepa", *args[:4], fraction=args[4])
            res = jf.general_critical_time("jepa", *args[:4], **kw)
    assert isinstance(t_star, jax.Array) and isinstance(res.t_star, jax.Array)
    np.testing.assert_allclose(t_star, ref, rtol=RTOL)


def test_large_batch_compiles_its_shape_and_matches_the_small_path():
    rng = np.random.default_rng(3)
    n = _batch.SMALL + 5
    lam, depth = rng.uniform(0.2, 2.0, n), rng.integers(1, 5, n).astype(float)
    big = jf.critical_time("mae", jnp.asarray(lam), 1.0, depth, 1e-3)
    idx = rng.choice(n, 40, replace=False)
    small = jf.critical_time("mae", lam[idx], 1.0, depth[idx], 1e-3)
    np.testing.assert_allclose(np.asarray(big)[idx], small, rtol=RTOL)
    bad = lam.copy()
    bad[n - 2] = np.nan
    with pytest.raises(ValueError, match=rf"lam must be finite .*got nan at index \({n - 2},\)"):
        jf.critical_time("mae", bad, 1.0, depth, 1e-3)


def test_general_and_simulate_under_jit_and_vmap():
    ratio = np.array([0.5, 1.0, 4.0])
    ref = jf.general_critical_time("jepa", 1.0, 2.0, 2, 1e-3, init_ratio=ratio)
    res = jax.jit(lambda r: jf.general_critical_time("jepa", 1.0, 2.0, 2, 1e-3, init_ratio=r))(
        ratio
    )
    np.testing.assert_allclose(res.t_star, ref.t_star, rtol=RTOL)
    vm = jax.vmap(lambda r: jf.general_critical_time("jepa", 1.0, 2.0, 2, 1e-3, init_ratio=r))
    np.testing.assert_allclose(vm(ratio).t_star, ref.t_star, rtol=RTOL_SOLVE)
    t = np.array([0.0, 100.0, 1e4])
    traj = jf.simulate("jepa", LAM, VAR, 1, 1e-3, t)
    wbar = jax.jit(lambda lam, t: jf.simulate("jepa", lam, VAR, 1, 1e-3, t).wbar)(LAM, t)
    np.testing.assert_allclose(wbar, traj.wbar, rtol=RTOL)
