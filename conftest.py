"""pytest configuration for the whole repository (tests and the doctests under jepa_flow/).

float64 everywhere (the documented accuracies, and the docstring examples'
printed numbers, are float64), on one CPU device, as in tests/conftest.py.
"""

import jax

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_num_cpu_devices", 1)
