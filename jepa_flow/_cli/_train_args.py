"""The arguments of ``jepa-flow train`` and ``compare``: the data source and the run."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_data_args(p: argparse.ArgumentParser) -> None:
    """The data source: its kind, per-feature parameters, batch, sampler and rotation."""
    a = p.add_argument
    a("--objective", choices=("jepa", "mae"), default="jepa", help="loss (default: jepa)")
    a(
        "--data",
        default="gaussian",
        metavar="SOURCE",
        help="data source: a generative model, gaussian (--lam, --var), noisy_views (--s, --nu, "
        "--c) or linear_dynamics (--a, --var); a shipped real data set, patches "
        "(--patch-size, --shift), digits (--shift) or membrane (--window), each with --noise, "
        "--n-samples, --data-seed, --n-features, --power; or FILE.npz with paired views x, y "
        "[n, d] (--n-features, --power) (default: gaussian)",
    )
    _add_real_data_args(p)
    _add_feature_args(p)
    _add_sampling_args(p)


def _add_real_data_args(p: argparse.ArgumentParser) -> None:
    """Options of the shipped real data sets and of FILE.npz."""
    a = p.add_argument
    a("--patch-size", type=int, default=None, help="patches: patch side p (default 8)")
    a("--shift", type=int, default=None, help="patches/digits: shift of the second view")
    a("--window", type=int, default=None, help="membrane: window length (default 16)")
    a("--noise", type=float, default=None, help="real data: pixel/sample noise std")
    a("--n-samples", type=int, default=None, help="patches/digits: number of pairs")
    a("--data-seed", type=int, default=None, help="real data: seed of the pairs drawn")
    a(
        "--n-features",
        type=int,
        default=None,
        help="real data: keep the top principal components (default all)",
    )
    a(
        "--power",
        type=float,
        default=None,
        help="real data: compress the spectrum, var -> var^power with rho kept (default 1)",
    )


def _add_feature_args(p: argparse.ArgumentParser) -> None:
    """Per-feature parameters of the generative models (theory §5)."""
    a = p.add_argument
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


def _add_sampling_args(p: argparse.ArgumentParser) -> None:
    """Minibatches, their sampler and the feature basis's rotation."""
    a = p.add_argument
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


def add_run_args(p: argparse.ArgumentParser) -> None:
    """The fields of TrainConfig (and the teacher file)."""
    _add_model_args(p)
    _add_target_args(p)


def _add_model_args(p: argparse.ArgumentParser) -> None:
    """Encoder, grid (depth, eta, seed), length and start."""
    a = p.add_argument
    a(
        "--encoder",
        choices=("linear", "tanh", "relu"),
        default="linear",
        help="train only: a deep linear encoder, or an MLP with --depth hidden layers of width d "
        "(tanh/relu; real data only, one --depth and --eta) (default: linear)",
    )
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


def _add_target_args(p: argparse.ArgumentParser) -> None:
    """JEPA's target, optimizer, the critical time's level and the records."""
    a = p.add_argument
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
        help="frozen target: a .npy d x d encoder Wbar_T, or the train.json of 'jepa-flow train' "
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
        "--n-t",
        type=int,
        default=120,
        help="number of log-spaced records of the trajectories, >= 2 (default: 120)",
    )
