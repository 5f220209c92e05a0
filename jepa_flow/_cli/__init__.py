"""The ``jepa-flow`` command line.

Each subcommand lives in its own module that exposes ``register(subparsers)``;
``register`` adds an ``argparse`` parser and sets ``func=run`` where
``run(args) -> int`` returns the exit code. A ``ValueError`` raised by ``run``
(bad input) is printed as one line, ``jepa-flow: error: ...``, with exit code 2.
The CLI always runs in float64, with one JAX device per CPU core.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Modules that contribute subcommands, in the order ``--help`` lists them.
_SUBCOMMAND_MODULES = (
    "jepa_flow._cli._core",
    "jepa_flow._cli._sweep",
    "jepa_flow._cli._train",
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


def main(argv=None) -> int:
    import jax
    import matplotlib

    from .._core._devices import use_all_cpu_cores

    matplotlib.use("Agg")  # files only: the CLI never opens a window
    jax.config.update("jax_enable_x64", True)
    use_all_cpu_cores()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version, or a one-line usage error
        return int(exit_.code or 0)
    try:
        return int(args.func(args) or 0)
    except ValueError as err:
        print(f"jepa-flow: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("jepa-flow: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
