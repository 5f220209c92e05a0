"""``jepa-flow sweep CONFIG.toml --out DIR``: run or resume a parameter sweep.

The configuration format is described in ``_sweep_config``; the engine and the
output directory in ``_sweep``. Running the same command again after an
interruption finishes the missing chunks only.
"""

from __future__ import annotations

import importlib
import sys

from ._core import _add_precision_arg, _set_precision, size_arg


def register(subparsers) -> None:
    """Add the ``sweep`` subcommand."""
    parser = subparsers.add_parser(
        "sweep",
        help="critical times and fixed points over a grid of parameters (resumable)",
        description=(
            "Critical times and fixed points over the grid described by CONFIG.toml "
            "([sweep] table; a [pair] table for learning-order sweeps), SGD training runs "
            "against the theory ([train] table), or every per-feature theory against the "
            "full-matrix flow over the synthetic non-commutation family ([validity] table: "
            "the validity map). Chunks are sharded "
            "over all local devices and written as they finish; rerun the same command to "
            "resume after an interruption."
        ),
    )
    parser.add_argument("config", metavar="CONFIG.toml", help="sweep configuration (TOML)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory")
    parser.add_argument(
        "--chunk-size",
        type=int,
        default=None,
        metavar="N",
        help=(
            "configurations per chunk (default 131072, 4096 for method ode and for "
            "[train] training runs, 4 for [validity] flows; "
            "a resumed run keeps its own)"
        ),
    )
    parser.add_argument("--no-plot", action="store_true", help="skip the figures")
    parser.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bar (it is only drawn when stderr is a terminal anyway)",
    )
    parser.add_argument(
        "--max-memory",
        metavar="SIZE",
        type=size_arg("--max-memory"),
        default=None,
        help="memory budget, e.g. 16G (default 4 GiB; overrides budget.memory in the TOML)",
    )
    parser.add_argument(
        "--max-disk",
        metavar="SIZE",
        type=size_arg("--max-disk"),
        default=None,
        help="disk budget for the chunk files (17 bytes per configuration, 42 for a pair "
        "sweep), e.g. 1T (default 20 GiB; overrides budget.disk in the TOML)",
    )
    _add_precision_arg(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    """Validate, run (or resume), plot, and print one line of totals."""
    from .._core._io import check_writable, read_text
    from .._sweeps._config import parse_config
    from .._sweeps._run import maybe_initialize_distributed, run_sweep

    # every check before anything runs; only a regular file of at most 16 MiB is read
    _set_precision(args)
    text = read_text(args.config, "CONFIG.toml")
    config = parse_config(text, max_memory=args.max_memory, max_disk=args.max_disk)
    if args.chunk_size is not None and args.chunk_size < 1:
        raise ValueError(f"--chunk-size must be an integer >= 1; got {args.chunk_size}")
    check_writable(args.out, "--out")
    maybe_initialize_distributed()
    import jax

    if jax.process_index() == 0:  # what the grid holds, before running
        print(f"sweep: {config.title}, {config.describe()}", file=sys.stdout, flush=True)
    summary = run_sweep(config, args.out, chunk_size=args.chunk_size, progress=not args.no_progress)
    figures = []
    if jax.process_index() == 0 and not args.no_plot and config.plot is not None:
        figures = plot_function(config.plot)(args.out)
    failed = (
        f", {summary.failed} {config.failure_message(args.precision)}" if summary.failed else ""
    )
    print(
        f"sweep: {summary.n_configs} configurations in {summary.n_chunks} chunks "
        f"({summary.skipped} already done); computed {summary.computed} in "
        f"{summary.seconds:.2f} s ({summary.configs_per_s:.0f} configurations/s) on "
        f"{jax.local_device_count()} device(s){failed}; results in {args.out}"
        + (f" ({', '.join(figures)})" if figures else ""),
        file=sys.stdout,
    )
    return 0


def plot_function(name: str):
    """The plotting function a sweep kind names (``SweepKind.plot``: ``"module:function"``)."""
    module, _, function = name.partition(":")
    return getattr(importlib.import_module(module), function)
