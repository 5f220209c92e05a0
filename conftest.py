"""pytest configuration for the whole repository (tests and the doctests under jepa_flow/).

float64 everywhere (the documented accuracies, and the docstring examples'
printed numbers, are float64), on one CPU device, as in tests/conftest.py;
compilations are dropped after each module, to bound a worker's memory, and
kept on disk (JAX's persistent compilation cache, ``.cache/jax-tests/``,
git-ignored) so that a later module, the other worker, or the next run reads
a program back instead of compiling it again.
"""

import os
from pathlib import Path

import jax
import pytest

# JEPA_FLOW_TEST_X64=0 runs the precision-generic files in float32 (scripts/gpu_check.py)
jax.config.update("jax_enable_x64", os.environ.get("JEPA_FLOW_TEST_X64", "1") != "0")
jax.config.update("jax_num_cpu_devices", 1)
# JEPA_FLOW_TEST_JAX_CACHE="" turns the persistent cache off; the environment's
# JAX_COMPILATION_CACHE_DIR, where set, wins (subprocesses the tests start inherit it)
_CACHE = os.environ.get(
    "JEPA_FLOW_TEST_JAX_CACHE", str(Path(__file__).parent / ".cache" / "jax-tests")
)
if _CACHE and not os.environ.get("JAX_COMPILATION_CACHE_DIR"):
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _CACHE
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    jax.config.update("jax_compilation_cache_dir", _CACHE)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


@pytest.fixture(autouse=True, scope="module")
def _release_memory_after_each_module():
    """Drop compiled programs and figures after each test module (docs/precision.md, Memory).

    A pytest worker runs many modules; without this it keeps every module's
    compilations, and two workers together peaked at 5.7 GiB (2.9 GiB with it).
    """
    yield
    from jepa_flow._core._memory import release_memory

    release_memory()
