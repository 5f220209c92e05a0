"""``jepa-flow train`` and ``jepa-flow compare`` (training engine and theory check)."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from .._core._io import prepare_out_dir, save_figure_atomic, write_json_atomic, write_npz_atomic
from .._training import _data


def _add_common(p: argparse.ArgumentParser) -> None:
    a = p.add_argument
    a("--objective", choices=("jepa", "mae"), default="jepa", help="loss (default: jepa)")
    a(
        "--data",
        choices=_data.MODELS,
        default="gaussian",
        help="data source: gaussian (--lam, --var), noisy_views (--s, --nu, --c) or "
        "linear_dynamics (--a, --var) (default: gaussian)",
    )
    a(
        "--lam",
        type=float,
        nargs="+",
        default=[1.0, 0.8],
        help=(
            "gaussian: per-feature covariance of the two views, one value per feature "
            "(default: 1 0.8)"
        ),
    )
    a(
        "--var",
        type=float,
        nargs="+",
        default=[2.0, 1.0],
        help=(
            "gaussian/linear_dynamics: per-feature input variance > 0, one value per feature "
            "(default: 2 1)"
        ),
    )
    a(
        "--s",
        type=float,
        nargs="+",
        default=[1.0, 0.5],
        help="noisy_views: signal variances (default: 1 0.5)",
    )
    a(
        "--nu",
        type=float,
        nargs="+",
        default=[1.0, 0.1],
        help="noisy_views: noise variances (default: 1 0.1)",
    )
    a(
        "--c",
        type=float,
        default=0.0,
        help="noisy_views: noise correlation across views, in [-1, 1] (default: 0)",
    )
    a(
        "--a",
        type=float,
        nargs="+",
        default=[0.5, 0.8],
        help="linear_dynamics: per-feature autoregression, |a| < 1 (default: 0.5 0.8)",
    )
    a(
        "--batch",
        type=int,
        default=None,
        help="samples per step; omit for the exact population loss (default: population)",
    )
    a(
        "--sampler",
        choices=("auto", "wishart", "samples"),
        default="auto",
        help="minibatch sampler: exact Wishart moments (needs batch >= 2d) or explicit samples; "
        "auto picks wishart when it can (default: auto)",
    )
    a(
        "--rotation",
        choices=("identity", "random"),
        default="identity",
        help="feature basis U applied to both views (default: identity)",
    )
    a("--rotation-seed", type=int, default=0, help="seed of the random rotation (default: 0)")
    a(
        "--depth",
        type=int,
        nargs="+",
        default=[2],
        help="encoder depth(s) L >= 1, one or more (default: 2)",
    )
    a(
        "--eta",
        type=float,
        nargs="+",
        default=[0.05],
        help="learning rate(s) > 0; flow time t = eta * step (default: 0.05)",
    )
    a("--seed", type=int, nargs="+", default=[0], help="seed(s), one or more (default: 0)")
    a(
        "--t-max",
        type=float,
        default=None,
        help="flow time to train for, in units of t = eta * step (default: 3 times the latest "
        "per-feature critical time at the smallest eta)",
    )
    a(
        "--steps",
        type=int,
        default=None,
        help="number of optimizer steps, instead of --t-max (default: none, --t-max decides)",
    )
    a(
        "--eps",
        type=float,
        default=1e-3,
        help="balanced start W_a = V = eps^(1/L) I, so Wbar(0) = eps I (default: 1e-3)",
    )
    a(
        "--init",
        choices=("balanced", "random"),
        default="balanced",
        help="initialization (default: balanced)",
    )
    a(
        "--scale",
        type=float,
        default=0.0,
        help="std of Gaussian noise added to each entry of the balanced start, or of the random "
        "init (default: 0)",
    )
    a(
        "--target",
        choices=("stopgrad", "ema", "frozen"),
        default="stopgrad",
        help="JEPA target encoder (default: stopgrad)",
    )
    a(
        "--tau",
        type=float,
        default=0.0,
        help="EMA time constant in flow-time units, beta = 1 - eta/tau (default: 0 = stopgrad)",
    )
    a(
        "--teacher",
        type=Path,
        default=None,
        help="frozen target: a .npy d x d encoder Wbar_T, or a train.npz from 'jepa-flow train' "
        "(its first member's final encoder) (default: none; required by --target frozen)",
    )
    a(
        "--optimizer",
        choices=("sgd", "momentum", "adam"),
        default="sgd",
        help="optax optimizer (default: sgd)",
    )
    a(
        "--momentum",
        type=float,
        default=0.9,
        help="momentum coefficient in [0, 1), used by --optimizer momentum (default: 0.9)",
    )
    a(
        "--fraction",
        type=float,
        default=0.5,
        help="critical time level as a fraction of wbar*, in (0, 1) (default: 0.5)",
    )
    a(
        "--records",
        type=int,
        default=120,
        help="number of log-spaced records of the trajectories, >= 2 (default: 120)",
    )
    a("--no-progress", action="store_true", help="hide the progress bar (default: shown)")
    a(
        "--out",
        type=Path,
        required=True,
        help="output directory, created if missing; must be empty unless --force (required)",
    )
    a(
        "--force",
        action="store_true",
        help="write into a non-empty output directory (default: refuse)",
    )


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train deep linear JEPA/MAE by SGD and save trajectories",
        description="Train a grid of seeds x depths x learning rates in "
        "one compiled call; writes train.npz, train.json, train.png.",
    )
    _add_common(p)
    p.set_defaults(func=run_train)
    p = subparsers.add_parser(
        "compare",
        help="train and compare with the gradient-flow theory",
        description="Train, integrate the per-feature and full-matrix "
        "flows; writes compare.json and compare.png.",
    )
    _add_common(p)
    p.set_defaults(func=run_compare)


def _data_from(args):
    kw = {
        "batch": args.batch,
        "U": args.rotation,
        "seed": args.rotation_seed,
        "sampler": args.sampler,
    }
    if args.data == "gaussian":
        if len(args.lam) != len(args.var):
            raise ValueError(
                f"--lam and --var need the same length; got {len(args.lam)} and {len(args.var)}"
            )
        return _data.gaussian(np.array(args.var), np.array(args.lam), **kw)
    if args.data == "noisy_views":
        return _data.noisy_views(args.s, args.nu, args.c, **kw)
    return _data.linear_dynamics(args.a, args.var, **kw)


def _teacher(args):
    if args.teacher is None:
        return None
    if not args.teacher.is_file():
        raise ValueError(f"--teacher {str(args.teacher)!r} is not a file")
    if args.teacher.suffix == ".npz":
        with np.load(args.teacher) as z:
            return z["wbar"].reshape(-1, *z["wbar"].shape[-2:])[0]
    return np.load(args.teacher)


def _kwargs(args, data):
    from .._theory._critical_time import critical_time
    from .._training._train import MAX_TRAIN_DEPTH

    if min(args.depth) < 1 or max(args.depth) > MAX_TRAIN_DEPTH:
        raise ValueError(f"--depth must be integers in [1, {MAX_TRAIN_DEPTH}]; got {args.depth}")
    t_max, steps = args.t_max, args.steps
    if t_max is None and steps is None:
        t = np.asarray(
            critical_time(
                args.objective,
                np.asarray(data.lam),
                np.asarray(data.var),
                max(args.depth),
                args.eps,
            )
        )
        t = t[np.isfinite(t)]
        t_max = 3.0 * float(t.max()) if t.size and t.max() > 0 else 100.0
    return dict(
        depth=args.depth,
        eta=args.eta,
        seed=args.seed,
        t_max=t_max,
        steps=steps,
        eps=args.eps,
        init=args.init,
        scale=args.scale,
        target=args.target,
        tau=args.tau,
        teacher=_teacher(args),
        optimizer=args.optimizer,
        fraction=args.fraction,
        n_records=args.records,
        progress=not args.no_progress,
    )


def run_train(args) -> int:
    from .._training._train import train

    data = _data_from(args)
    out = prepare_out_dir(args.out, args.force)
    kw = _kwargs(args, data)
    r = train(args.objective, data, momentum=args.momentum, **kw)
    arrays = {
        k: getattr(r, k)
        for k in (
            "t",
            "step",
            "loss",
            "sv",
            "norm",
            "diag",
            "offdiag",
            "t_cross",
            "threshold",
            "W0",
            "V0",
            "W",
            "V",
        )
    }
    write_npz_atomic(
        out / "train.npz", wbar=r.wbar, lam=r.data.lam, var=r.data.var, U=r.data.U, **arrays
    )
    write_json_atomic(
        out / "train.json",
        {
            "objective": r.objective,
            "target": r.target,
            "optimizer": r.optimizer,
            "data": r.data.model,
            "batch": r.data.batch,
            "lam": r.data.lam,
            "var": r.data.var,
            "seed": r.seed,
            "depth": r.depth,
            "eta": r.eta,
            "tau": r.tau,
            "eps": args.eps,
            "n_steps": r.n_steps,
            "fraction": r.fraction,
            "t_star_training": r.t_cross,
            "final_loss": r.loss[..., -1],
            "final_sv": r.sv[..., -1, :],
            "final_norm": r.norm[..., -1, :],
            "axes": "[seed, depth, eta, ...]",
        },
    )
    _plot_train(r, out / "train.png")
    print(f"wrote {out}/train.npz, train.json, train.png")
    return 0


def _plot_train(r, path) -> None:
    import matplotlib.pyplot as plt

    D = r.depth.size
    fig, axes = plt.subplots(1, D, figsize=(5 * D, 4), squeeze=False)
    for b, ax in enumerate(axes[0]):
        t = r.t[0, b, 0]
        m = t > 0
        for j in range(r.norm.shape[-1]):
            ax.plot(t[m], r.norm[0, b, 0][m, j], "o-", ms=2, lw=0.8, label=f"e{j}")
        ax.set_xscale("log")
        if np.all(r.norm[0, b, 0][m] > 0):
            ax.set_yscale("log")
        ax.set_xlabel("flow time t = eta * step")
        ax.set_ylabel("|Wbar e_j|")
        ax.set_title(f"{r.objective.upper()} depth {r.depth[b]}, eta {r.eta[0]:g}", fontsize=9)
    axes[0][0].legend(fontsize=6)
    fig.tight_layout()
    save_figure_atomic(fig, path, dpi=120)
    plt.close(fig)


def run_compare(args) -> int:
    from .._plotting._compare import plot_compare
    from .._training._compare import compare

    data = _data_from(args)
    out = prepare_out_dir(args.out, args.force)
    rep = compare(args.objective, data, momentum=args.momentum, **_kwargs(args, data))
    plot_compare(rep, out / "compare.png")
    write_json_atomic(
        out / "compare.json", {k: v for k, v in rep.items() if k not in ("curves", "result")}
    )
    print(f"wrote {out}/compare.json, compare.png")
    for k in ("t_star_theory", "t_star_training", "rel_error"):
        print(f"{k:16s}{np.array2string(np.asarray(rep[k], float), precision=5)}")
    if rep["capture"]:
        print(f"capture         {rep['capture']}")
    return 0
