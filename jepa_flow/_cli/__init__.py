"""The ``jepa-flow`` command line.

Each subcommand lives in its own module that exposes ``register(subparsers)``;
``register`` adds an ``argparse`` parser and sets ``func=run`` where
``run(args) -> int`` returns the exit code.

No traceback reaches a user: whatever ``run`` raises (a ``ValueError`` for bad
input, a refused budget, a locked or unwritable directory, an ``OSError``, a
``MemoryError`` or an unexpected exception) is printed as one line,
``jepa-flow: error: ...``, with exit code 2; ``JEPA_FLOW_DEBUG=1`` re-raises
it instead, for developers. Ctrl-C exits with 130. jepa_flow's own warnings
(``JepaFlowWarning``) are printed as one line, ``jepa-flow: warning: ...``;
numpy's, matplotlib's and JAX's are not shown (``JEPA_FLOW_DEBUG=1`` shows
every warning).

The CLI runs in float64 (``--precision float32`` on every command that
computes switches it; docs/precision.md), with one JAX device per CPU core.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import warnings

# Modules that contribute subcommands, in the order ``--help`` lists them.
_SUBCOMMAND_MODULES = (
    "jepa_flow._cli._core",
    "jepa_flow._cli._sweep",
    "jepa_flow._cli._train",
    "jepa_flow._cli._analyze",
    "jepa_flow._cli._reproduce",
)


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (``jepa-flow: error: ...``, exit 2)."""

    def error(self, message):
        self.exit(2, f"jepa-flow: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = _Parser(
        prog="jepa-flow",
        description="Training dynamics of deep linear JEPA and MAE (gradient-flow theory and SGD).",
    )
    parser.add_argument("--version", action="version", version=f"jepa-flow {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    subparsers.required = True
    for name in _SUBCOMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


# flags that raise a budget, by the library parameter a BudgetError names
_BUDGET_FLAGS = {"max_memory": "--max-memory", "max_disk": "--max-disk"}


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def describe_error(err: BaseException, command: str | None = None) -> str:
    """The one-line message the CLI prints for ``err``."""
    from .._core._budget import BudgetError

    if isinstance(err, BudgetError):
        flag = _BUDGET_FLAGS[err.param]
        if command == "sweep":
            flag += f" (or budget.{err.param.removeprefix('max_')} in the TOML)"
        return _one_line(err.message(flag))
    if isinstance(err, ValueError):
        return _one_line(err)
    if isinstance(err, MemoryError):
        return (
            "out of memory; make the job smaller (fewer save times, depths, features or "
            "grid points) or run it on a machine with more memory"
        )
    if isinstance(err, OSError):
        where = f": {err.filename!r}" if err.filename else ""
        return _one_line(f"{err.strerror or err}{where}")
    text = _one_line(err)
    if "RESOURCE_EXHAUSTED" in text or "out of memory" in text.lower():
        return f"out of memory on the device ({text[:200]}); make the job smaller"
    return (
        f"unexpected {type(err).__name__}: {text[:300]} "
        "(please report it; JEPA_FLOW_DEBUG=1 shows the traceback)"
    )


def _format_warning(message, category, filename, lineno, line=None) -> str:
    return f"jepa-flow: warning: {_one_line(message)}\n"


def main(argv=None) -> int:
    import jax
    import matplotlib

    from .._core._devices import use_all_cpu_cores
    from .._core._warn import JepaFlowWarning

    matplotlib.use("Agg")  # files only: the CLI never opens a window
    jax.config.update("jax_enable_x64", True)
    use_all_cpu_cores()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version, or a one-line usage error
        return exit_.code if isinstance(exit_.code, int) else 2
    debug = os.environ.get("JEPA_FLOW_DEBUG", "") not in ("", "0")
    previous = warnings.formatwarning
    if not debug:
        warnings.formatwarning = _format_warning
    try:
        with warnings.catch_warnings():
            if not debug:  # jepa_flow's own warnings only (numpy's, matplotlib's: internals)
                warnings.simplefilter("ignore")
                warnings.simplefilter("default", JepaFlowWarning)
            return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("jepa-flow: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # every error becomes one line
        if debug:
            raise
        print(f"jepa-flow: error: {describe_error(err, args.command)}", file=sys.stderr)
        return 2
    finally:
        warnings.formatwarning = previous


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
