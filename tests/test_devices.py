"""A batch split over several CPU devices gives the single-device answers."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import jepa_flow as jf

SCRIPT = textwrap.dedent("""
    import sys
    import jax
    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_num_cpu_devices", 2)
    import numpy as np
    import jepa_flow as jf
    lam, var, depth, eps = np.load(sys.argv[1]).values()
    assert jax.local_device_count() == 2
    out = {m: np.asarray(jf.critical_time("jepa", lam, var, depth, eps, method=m))
           for m in ("exact", "ode")}
    # a batch above the bucketed size: padded and split inside one compiled call
    big = [jax.numpy.asarray(np.tile(x, 234)) for x in (lam, var, depth, eps)]
    out["large"] = np.asarray(jf.critical_time("jepa", *big))
    np.savez(sys.argv[2], **out)
""")


@pytest.mark.slow  # several devices or processes in subprocesses: second tier (make test-slow)
def test_critical_time_over_two_devices(tmp_path):
    rng = np.random.default_rng(5)
    n = 300  # pads to 512: large enough for the sharded path
    lam = 10 ** rng.uniform(-1, 1, n)
    var = lam / 10 ** rng.uniform(-1, 0.5, n)
    depth = rng.integers(1, 6, n).astype(float)
    eps = 10 ** rng.uniform(-4, -2, n)
    np.savez(tmp_path / "in.npz", lam=lam, var=var, depth=depth, eps=eps)
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "in.npz"), str(tmp_path / "out.npz")],
        check=True,
        env=env,
        timeout=300,
    )
    out = np.load(tmp_path / "out.npz")
    for method in ("exact", "ode"):
        ref = np.asarray(jf.critical_time("jepa", lam, var, depth, eps, method=method))
        np.testing.assert_allclose(out[method], ref, rtol=1e-13, atol=0)
    assert out["large"].shape == (300 * 234,)  # above _batch.SMALL
    np.testing.assert_allclose(out["large"], np.tile(out["exact"], 234), rtol=1e-13, atol=0)
