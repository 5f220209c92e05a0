"""Helpers shared by the test modules."""

import contextlib

import jax

# A small balanced sweep (2 x 2 x 2 x 4 x 3 = 96 configurations) shared by the sweep tests.
PLAIN = """
[sweep]
objective = ["jepa", "mae"]
depth = [1, 3]
eps = [1e-3, 0.2]
lam = [-0.5, 0.3, 1.0, 4.0]
var = [0.5, 2.0, 3.0]
"""


@contextlib.contextmanager
def compilations():
    """Collect the XLA compilations that happen inside the block (a list, filled in place).

    JAX's monitoring listeners cannot be removed, so each one is switched off
    when its block ends.
    """
    events, active = [], [True]

    def listen(event, duration, **kwargs):
        if active[0] and event == "/jax/core/compile/backend_compile_duration":
            events.append(event)

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        yield events
    finally:
        active[0] = False
