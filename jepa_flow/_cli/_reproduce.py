"""``jepa-flow reproduce``: regenerate every figure and checked claim under ``--out``."""

from __future__ import annotations

from ._core import _add_precision_arg, _set_precision

DEFAULT_OUT = "runs/reproduce"


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "reproduce",
        help="regenerate the paper's figures and checked claims (results/)",
        description="Run the reproduction experiments (1 order reversal, 2 critical times, "
        "3 phase diagrams, 4 noisy features, 5 slow features, 6 theory vs training, "
        "7 beyond the assumptions, 8 capture, collapse and SGD departure, 9 real data, "
        "10 off the diagonal: which per-feature theory predicts the full-matrix flow); "
        "each writes its figures and numbers.json under OUT/<experiment>/, and "
        "OUT/claims.json collects every claim. "
        "An experiment whose outputs already exist in OUT at the same level is skipped "
        "(so an interrupted run resumes where it stopped), and says so; --force recomputes "
        f"it. The default OUT, {DEFAULT_OUT} (ignored by git), starts empty in a fresh clone, "
        "so everything is computed (the committed run took about 5 hours on 2 CPU cores, "
        "experiment 10 most of it); the committed results/ were made with --out results.",
    )
    p.add_argument("--out", default=DEFAULT_OUT, help=f"output directory (default: {DEFAULT_OUT})")
    p.add_argument(
        "--quick",
        action="store_true",
        help="coarser grids and shorter training (a few minutes on 2 CPU cores)",
    )
    p.add_argument(
        "--level",
        choices=("full", "quick", "tiny"),
        default=None,
        help="explicit level (overrides --quick); 'tiny' is the tests' setting",
    )
    p.add_argument(
        "--only", type=int, nargs="+", metavar="N", help="run only these experiments (numbers 1-10)"
    )
    p.add_argument(
        "--force", action="store_true", help="recompute experiments whose outputs already exist"
    )
    _add_precision_arg(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from .._core._io import check_writable
    from .._reproduce import reproduce

    _set_precision(args)
    check_writable(args.out, "--out")
    level = args.level or ("quick" if args.quick else "full")
    report = reproduce(
        args.out, level=level, only=args.only, force=args.force, log=lambda m: print(m, flush=True)
    )
    skipped = report.get("skipped", [])
    if skipped:
        print(
            f"experiment(s) {', '.join(map(str, skipped))} already had their outputs in "
            f"{args.out} at level {level} ({args.precision}) and were not recomputed; "
            "add --force to recompute them"
        )
    print(
        f"{report['n_held']}/{report['n_claims']} claims held; "
        f"wrote {args.out}/claims.json ({report['seconds_this_run']:.0f} s)"
    )
    return 0
