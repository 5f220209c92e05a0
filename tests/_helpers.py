"""Helpers shared by the test modules."""

import contextlib

import jax


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
