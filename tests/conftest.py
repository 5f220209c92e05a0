"""Test configuration: float64 everywhere (the documented accuracies are float64).

The suite runs on one CPU device, whatever the command line would pick, so
that every test sees the same set-up; multi-device runs are tested in
subprocesses.
"""

import jax

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_num_cpu_devices", 1)
