"""pytest configuration for the whole repository (tests and the doctests under jepa_flow/).

float64 everywhere (the documented accuracies, and the docstring examples'
printed numbers, are float64), on one CPU device, as in tests/conftest.py;
compilations are dropped after each module, to bound a worker's memory.
"""

import os

import jax
import pytest

# JEPA_FLOW_TEST_X64=0 runs the precision-generic files in float32 (scripts/gpu_check.py)
jax.config.update("jax_enable_x64", os.environ.get("JEPA_FLOW_TEST_X64", "1") != "0")
jax.config.update("jax_num_cpu_devices", 1)


@pytest.fixture(autouse=True, scope="module")
def _release_memory_after_each_module():
    """Drop compiled programs and figures after each test module (docs/precision.md, Memory).

    A pytest worker runs many modules; without this it keeps every module's
    compilations, and two workers together peaked at 5.7 GiB (2.9 GiB with it).
    """
    yield
    from jepa_flow._core._memory import release_memory

    release_memory()
