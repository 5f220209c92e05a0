"""Test configuration: float64 everywhere (the documented accuracies are float64)."""

import jax

jax.config.update("jax_enable_x64", True)
