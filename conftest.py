"""pytest configuration for the whole repository (tests and the doctests under jepa_flow/).

float64 everywhere (the documented accuracies, and the docstring examples'
printed numbers, are float64), on one CPU device, as in tests/conftest.py.
"""

import os

import jax

# JEPA_FLOW_TEST_X64=0 runs the precision-generic files in float32 (scripts/gpu_check.py)
jax.config.update("jax_enable_x64", os.environ.get("JEPA_FLOW_TEST_X64", "1") != "0")
jax.config.update("jax_num_cpu_devices", 1)
