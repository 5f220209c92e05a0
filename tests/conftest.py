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


def pytest_terminal_summary(terminalreporter):
    """How many documentation code blocks the session executed (tests/test_doc_examples.py)."""
    executed = toml = 0
    not_run = []
    for reports in terminalreporter.stats.values():
        for report in reports:
            props = dict(getattr(report, "user_properties", ()) or ())
            if getattr(report, "when", None) != "call" or "doc_blocks_executed" not in props:
                continue
            executed += props["doc_blocks_executed"]
            toml += props["doc_toml_parsed"]
            not_run += props["doc_not_run"]
    if executed or toml:
        terminalreporter.write_line(
            f"documentation: {executed} code blocks executed, {toml} TOML examples parsed, "
            f"{len(not_run)} not run here (make targets, second tier, skipped)"
        )
