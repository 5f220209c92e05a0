"""Every matrix product of training and of the full-matrix flow is lowered in full precision.

On A100/H100/H200 GPUs JAX's default float32 matrix product is TF32 (a 10-bit
mantissa); training, the full-matrix flow and the comparisons ask for
``HIGHEST`` instead, unless ``TrainConfig(matmul_precision=...)`` says
otherwise. The lowered StableHLO records each ``dot_general``'s precision on
any backend, so this is checked here on the CPU.
"""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jepa_flow as jf
from jepa_flow._theory import _fullflow
from jepa_flow._training import _engine, _nonlinear, _train

DOT = re.compile(r"stablehlo\.dot_general[^\n]*")


def precisions(text: str) -> list[str]:
    """The precision attribute of every dot_general in a lowered module."""
    dots = DOT.findall(text)
    assert dots, "no matrix product was lowered"
    return [m.group(1) if (m := re.search(r"precision = \[(\w+), \1\]", d)) else d for d in dots]


def lowered_run(data, **fields):
    cfg = jf.TrainConfig(steps=10, n_t=4, **fields)
    (st, data, shared, consts, slots), _ = _train.prepared(data, cfg)
    return _engine.compiled_run(st, True).lower(data, shared, consts, slots).as_text()


CASES = [
    ("population", {}, {}),
    ("wishart minibatches, EMA target", {"batch": 8}, {"target": "ema", "tau": 0.5}),
    ("explicit samples, MAE, adam", {"batch": 8, "sampler": "samples"},
     {"objective": "mae", "optimizer": "adam"}),
]  # fmt: skip


@pytest.mark.parametrize(("label", "source", "fields"), CASES, ids=[c[0] for c in CASES])
def test_training_step_is_highest_precision(label, source, fields):
    data = jf.gaussian(Sxx=[2.0, 1.0, 0.5], Syx=[1.0, 0.8, 0.1], **source)
    assert set(precisions(lowered_run(data, depth=2, **fields))) == {"HIGHEST"}


def test_matmul_precision_setting_is_honoured():
    data = jf.gaussian(Sxx=[2.0, 1.0], Syx=[1.0, 0.8])
    assert set(precisions(lowered_run(data, matmul_precision="default"))) == {"DEFAULT"}
    with pytest.raises(ValueError, match="matmul_precision must be one of"):
        jf.TrainConfig(steps=1, matmul_precision="tf32")


def test_full_flow_and_nonlinear_training_are_highest_precision():
    data = jf.gaussian(Sxx=[2.0, 1.0], Syx=[1.0, 0.8])
    W0, V0 = np.stack([0.1 * np.eye(2)] * 2), 0.1 * np.eye(2)
    args = (data.Sxx, data.Syx, data.U, jnp.zeros((2, 2)), jnp.asarray(0.0), jnp.asarray(2.0))
    args += (jnp.asarray(W0), jnp.asarray(V0), jnp.asarray([1.0, 2.0]), jnp.asarray([0.1, 0.1]))
    text = _fullflow._solve.lower(
        "jepa", "stopgrad", *args, max_steps=_fullflow.MAX_STEPS
    ).as_text()
    assert set(precisions(text)) == {"HIGHEST"}
    fn = _nonlinear._runner("mae", "tanh", "stopgrad", 1, 4)
    x = jnp.ones((8, 2))
    k = jax.random.split(jax.random.PRNGKey(0), 1)
    W = jax.vmap(lambda key: _nonlinear._init(key, 2, 1, 0.1))(k)
    text = fn.lower(3, W, W, k, 0.1, 0.0, x, x, x, jnp.eye(2), jnp.ones(2)).as_text()
    assert set(precisions(text)) == {"HIGHEST"}
