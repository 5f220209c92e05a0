"""Subcommands ``demo``, ``simulate`` and ``critical-time``."""

from __future__ import annotations

import argparse
import json
import warnings

import numpy as np

from .._core._budget import DEFAULT_MAX_DISK, DEFAULT_MAX_MEMORY, format_size
from .._core._io import _to_jsonable
from .._core._validate import METHODS, OBJECTIVES

# The paper's claim on two features (theory §4, canonical example):
# A has the larger covariance lam, B the larger influence rho = lam / var.
DEMO_LAM = (1.0, 0.8)
DEMO_VAR = (2.0, 1.0)
DEMO_DEPTHS = tuple(range(1, 9))
DEMO_EPS = 1e-3


def _add_feature_args(p: argparse.ArgumentParser, objective_help: str) -> None:
    p.add_argument(
        "--objective",
        nargs="+",
        choices=OBJECTIVES,
        default=list(OBJECTIVES),
        metavar="{jepa,mae}",
        help=objective_help,
    )
    p.add_argument(
        "--depth",
        nargs="+",
        type=int,
        default=[1],
        metavar="L",
        help="encoder depths L, integers >= 1 (default: 1)",
    )
    p.add_argument(
        "--lam",
        nargs="+",
        type=float,
        required=True,
        metavar="LAM",
        help="covariance of the two views along each feature (eigenvalue of Syx), "
        "one value per feature; lam <= 0 is never learned",
    )
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument(
        "--var",
        nargs="+",
        type=float,
        metavar="VAR",
        help="input variance along each feature (eigenvalue of Sxx), > 0",
    )
    group.add_argument(
        "--rho",
        nargs="+",
        type=float,
        metavar="RHO",
        help="regression coefficient rho = lam / var of each feature, > 0 (instead of --var)",
    )
    p.add_argument(
        "--eps",
        type=float,
        default=DEMO_EPS,
        help="initial end-to-end weight wbar(0) = eps, > 0; every layer and the "
        "predictor start at eps^(1/L) (default: %(default)g)",
    )


PRECISIONS = ("float64", "float32")


def _add_precision_arg(p: argparse.ArgumentParser) -> None:
    """``--precision float64|float32`` (every command that computes; docs/precision.md)."""
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="float64",
        help="floating-point precision of the computation (default: float64); float32 "
        "tolerances and accuracy: docs/precision.md",
    )


def _set_precision(args) -> None:
    """Switch JAX's working dtype to ``--precision`` (before any array is made)."""
    import jax

    jax.config.update("jax_enable_x64", args.precision == "float64")


def size_arg(flag: str):
    """An argparse ``type`` for a size flag: bytes, checked as the flag is parsed."""

    def parse(text: str) -> int:
        from .._core._budget import parse_size

        try:
            return parse_size(flag, text)
        except ValueError as err:  # argparse prints "argument FLAG: <message>"
            raise argparse.ArgumentTypeError(str(err).removeprefix(flag + " ")) from None

    return parse


def add_budget_args(p: argparse.ArgumentParser, what: str) -> None:
    """``--max-memory`` and ``--max-disk`` (see ``jepa_flow._core._budget``), parsed as sizes."""
    p.add_argument(
        "--max-memory",
        metavar="SIZE",
        type=size_arg("--max-memory"),
        default=None,
        help=f"memory budget for {what}, e.g. 16G (default {format_size(DEFAULT_MAX_MEMORY)}); "
        "a job estimated to need more is refused before it starts",
    )
    p.add_argument(
        "--max-disk",
        metavar="SIZE",
        type=size_arg("--max-disk"),
        default=None,
        help=f"disk budget for what {what} writes, e.g. 100G "
        f"(default {format_size(DEFAULT_MAX_DISK)})",
    )


def _check_out(args, objectives, features, depths, eps, t_max, n_t) -> None:
    """The output directory's checks, with the flags' names (before any work)."""
    from .._reproduce._study import study_inputs
    from ._study import check_study_out

    try:
        depths = [int(d) for d in depths]
        text = study_inputs(objectives, features, depths, float(eps), t_max, n_t)
    except (TypeError, ValueError):
        return  # run_study names the bad value
    check_study_out(args.out, args.force, text, name="--out", force_name="--force")


def _features(args):
    from .._reproduce._study import make_features

    return make_features(args.lam, var=args.var, rho=args.rho)


def _run_demo(args) -> int:
    from .._reproduce._study import make_features
    from ._study import run_study

    _set_precision(args)
    features = make_features(DEMO_LAM, var=DEMO_VAR)
    _check_out(args, OBJECTIVES, features, DEMO_DEPTHS, DEMO_EPS, None, args.n_t)
    run_study(
        args.out,
        OBJECTIVES,
        features,
        DEMO_DEPTHS,
        DEMO_EPS,
        n_t=args.n_t,
        force=args.force,
        max_memory=args.max_memory,
        max_disk=args.max_disk,
    )
    return 0


def _run_simulate(args) -> int:
    from ._study import run_study

    _set_precision(args)
    features = _features(args)
    _check_out(args, args.objective, features, args.depth, args.eps, args.t_max, args.n_t)
    run_study(
        args.out,
        args.objective,
        features,
        args.depth,
        args.eps,
        t_max=args.t_max,
        n_t=args.n_t,
        force=args.force,
        max_memory=args.max_memory,
        max_disk=args.max_disk,
    )
    return 0


def _run_critical_time(args) -> int:
    from .._reproduce._study import format_table, learning_order
    from .._theory._critical_time import critical_time, fixed_point
    from .._theory._order import flip_depth
    from ._study import check_derived

    _set_precision(args)
    if args.rtol is not None and args.method != "ode":
        raise ValueError(
            f"--rtol applies to --method ode only (--method {args.method} has no tolerance); "
            f"got --rtol {args.rtol:g}"
        )
    feats = _features(args)
    depths = np.asarray(args.depth, float)[:, None]
    result = {
        "method": args.method,
        "fraction": args.fraction,
        "eps": args.eps,
        "features": [
            {"name": n, "lam": la, "var": va, "rho": la / va}
            for n, la, va in zip(feats.names, feats.lam, feats.var)
        ],
        "depth": args.depth,
        "objectives": {},
    }
    kw = dict(fraction=args.fraction, method=args.method, rtol=args.rtol)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a failed (NaN) time is refused below, with its cause
        ts_all = np.stack(
            [critical_time(o, feats.lam, feats.var, depths, args.eps, **kw) for o in args.objective]
        )
        ws_all = np.stack([fixed_point(o, feats.lam, feats.var, depths) for o in args.objective])
    check_derived(ts_all, ws_all, args.objective, feats, args.depth)
    for o, ts, ws in zip(args.objective, ts_all, ws_all):
        orders = [learning_order(row, feats.names) for row in ts]
        result["objectives"][o] = {
            "t_star": {n: ts[:, j] for j, n in enumerate(feats.names)},
            "wbar_star": {n: ws[:, j] for j, n in enumerate(feats.names)},
            "learning_order": {int(d): od for d, od in zip(args.depth, orders)},
            "flip_depth": flip_depth(args.depth, ts),
        }
    if args.json:
        print(json.dumps(_to_jsonable(result), indent=2))
    else:
        print(
            f"critical times (method={args.method}, fraction={args.fraction:g}, "
            f"eps={args.eps:g}; gradient-flow time)"
        )
        print(format_table(result, feats.names))
    return 0


def register(subparsers) -> None:
    fmt = argparse.ArgumentDefaultsHelpFormatter

    p = subparsers.add_parser(
        "demo",
        formatter_class=fmt,
        help="the paper's claim on two features, JEPA and MAE at depths 1-8",
        description="Feature A (lam 1, var 2, rho 0.5) against feature B (lam 0.8, var 1, "
        "rho 0.8), eps = 1e-3, JEPA and MAE at depths 1 to 8: trajectories, critical "
        "times, learning order and figures under --out (default runs/demo, which git "
        "ignores; the committed results/demo was made with --out results/demo).",
    )
    p.add_argument("--out", default="runs/demo", help="output directory")
    p.add_argument("--n-t", type=int, default=800, help="number of save times")
    p.add_argument("--force", action="store_true", help="overwrite a non-empty --out")
    _add_precision_arg(p)
    add_budget_args(p, "the trajectories")
    p.set_defaults(func=_run_demo)

    p = subparsers.add_parser(
        "simulate",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="integrate the per-feature flows; write trajectories, summary and figures",
        description="Integrate the balanced per-feature gradient flow (theory §3) with diffrax "
        "for every objective, depth and feature, and write DIR/trajectory.npz "
        "(t, wbar, u, ...), DIR/summary.json (inputs, fixed points, critical times, "
        "learning order) and DIR/dynamics.png. Times are gradient-flow time.",
    )
    _add_feature_args(p, "objectives to simulate (default: jepa mae)")
    p.add_argument(
        "--t-max",
        type=float,
        default=None,
        help="last save time, in gradient-flow time units (default: 5 x the latest critical time)",
    )
    p.add_argument(
        "--n-t",
        type=int,
        default=800,
        help="number of save times: 0 then log-spaced up to --t-max (default: 800)",
    )
    p.add_argument(
        "--out",
        required=True,
        help="output directory: new, empty, or one this same command was writing "
        "(an interrupted run is finished, a complete one left as it is)",
    )
    p.add_argument("--force", action="store_true", help="overwrite a non-empty --out")
    _add_precision_arg(p)
    add_budget_args(p, "the trajectories (--n-t x objectives x depths x features)")
    p.set_defaults(func=_run_simulate)

    p = subparsers.add_parser(
        "critical-time",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="print the critical times and learning order",
        description="Time at which wbar first reaches fraction * wbar* (theory §4), per "
        "objective, depth and feature, in gradient-flow time.",
    )
    _add_feature_args(p, "objectives (default: jepa mae)")
    p.add_argument(
        "--fraction",
        type=float,
        default=0.5,
        help="level as a fraction of the fixed point, in (0, 1) (default: 0.5)",
    )
    p.add_argument(
        "--method",
        choices=METHODS,
        default="exact",
        help="exact: closed forms; ode: diffrax integration of the hitting-time integral; "
        "series: small-eps asymptotics (default: exact)",
    )
    p.add_argument(
        "--rtol",
        type=float,
        default=None,
        help="relative tolerance of --method ode (default: 1e-12 in float64, 1.2e-5 in float32)",
    )
    _add_precision_arg(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=_run_critical_time)
