"""Test configuration: float64 everywhere (the documented accuracies are float64).

The suite runs on one CPU device, whatever the command line would pick, so
that every test sees the same set-up; multi-device runs are tested in
subprocesses.
"""

import os

import jax

# JEPA_FLOW_TEST_X64=0 runs the precision-generic files in float32 (scripts/gpu_check.py)
jax.config.update("jax_enable_x64", os.environ.get("JEPA_FLOW_TEST_X64", "1") != "0")
jax.config.update("jax_num_cpu_devices", 1)
