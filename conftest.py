"""Doctest and test configuration shared by tests/ and the docstring examples in jepa_flow/.

float64 everywhere (the documented accuracies are float64 figures) and one CPU
device, whatever the machine, so that every example sees the same set-up.
"""

import jax

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_num_cpu_devices", 1)
