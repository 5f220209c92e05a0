"""``jepa-flow train`` and ``jepa-flow compare`` (training engine and theory check)."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np

from .._core import _validate
from .._core._budget import check_budget, resolve
from .._core._io import (
    _to_jsonable,
    check_job_out,
    figure_bytes,
    load_npy,
    remove_stale_tmp,
    write_bytes_atomic,
    write_json_atomic,
)
from .._core._lock import locked_dir
from .._core._results import load_result, save_result
from .._plotting._compare import plot_compare, plot_train
from .._theory._critical_time import critical_time
from .._training import _data
from .._training._compare import compare
from .._training._config import TrainConfig
from .._training._datasets import DATASETS, from_npz, load_dataset
from .._training._nonlinear import train_nonlinear
from .._training._records import record_slots
from .._training._train import train
from ._core import _add_precision_arg, _set_precision, add_budget_args
from ._train_args import add_data_args, add_run_args

# A model-step is about a microsecond on a CPU core for small d: 1e9 is a
# quarter of an hour at best. Raise it with --max-model-steps.
MAX_MODEL_STEPS = 1e9
# an upper estimate of the bytes of a run's figure, JSON records and inputs.json
FILES_BYTES = 2**20


def _add_output_args(p: argparse.ArgumentParser) -> None:
    a = p.add_argument
    a(
        "--max-model-steps",
        type=float,
        default=MAX_MODEL_STEPS,
        help="refuse a run of more than this many model-steps (members x steps) "
        f"(default {MAX_MODEL_STEPS:.0e})",
    )
    _add_precision_arg(p)
    add_budget_args(p, "training")
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
    add_data_args(p)
    add_run_args(p)
    _add_output_args(p)
    p.set_defaults(func=run_train, defaults={a.dest: a.default for a in p._actions})
    p = subparsers.add_parser(
        "compare",
        help="train and compare with the gradient-flow theory",
        description="Train, integrate the per-feature and full-matrix "
        "flows; writes compare.json and compare.png.",
    )
    add_data_args(p)
    add_run_args(p)
    _add_output_args(p)
    p.set_defaults(func=run_compare, defaults={a.dest: a.default for a in p._actions})


_REAL_FLAGS = {  # flag attribute -> load_dataset option, per data set
    "patches": {"patch_size": "p", "shift": "shift", "n_samples": "n", "noise": "noise"},
    "digits": {"shift": "shift", "n_samples": "n", "noise": "noise"},
    "membrane": {"window": "window", "noise": "noise"},
}
_SOURCE_FLAGS = {"n_features": "n_features", "power": "power"}


def _real_data(args):
    """A shipped data set or a .npz of paired views, with the flags that apply to it."""
    source = {opt: getattr(args, f) for f, opt in _SOURCE_FLAGS.items()}
    source = {k: v for k, v in source.items() if v is not None}
    source["batch"] = args.batch
    if args.data.endswith(".npz"):
        given = [f for f in _REAL_FLAGS["patches"] if getattr(args, f) is not None]
        if given:
            raise ValueError(f"--{given[0].replace('_', '-')} does not apply to a .npz file")
        try:
            # analyze has no --max-memory: the default budget caps the file it reads
            max_bytes = resolve(getattr(args, "max_memory", None))[0]
            return from_npz(args.data, max_bytes=max_bytes, **source)
        except ValueError as err:  # name the flag
            msg = str(err).removeprefix("path ")
            raise ValueError(f"--data {msg}" if msg != str(err) else f"--data: {msg}") from None
    own = {opt: getattr(args, f) for f, opt in _REAL_FLAGS[args.data].items()}
    own = {k: v for k, v in own.items() if v is not None}
    other = [
        f
        for table in _REAL_FLAGS.values()
        for f in table
        if f not in _REAL_FLAGS[args.data] and getattr(args, f) is not None
    ]
    if other:
        raise ValueError(f"--{other[0].replace('_', '-')} does not apply to --data {args.data}")
    if args.data_seed is not None:
        own["seed"] = args.data_seed
    try:
        return load_dataset(args.data, **own, **source)
    except ValueError as err:  # name the flag where the message names the option
        msg = str(err)
        for f, opt in {**_REAL_FLAGS[args.data], **_SOURCE_FLAGS}.items():
            if msg.startswith(f"{opt} "):
                msg = f"--{f.replace('_', '-')} " + msg[len(opt) + 1 :]
        raise ValueError(msg) from None


_MODEL_FLAGS = {  # generative model -> its own flags (theory §5)
    "gaussian": ("lam", "var"),
    "noisy_views": ("s", "nu", "c"),
    "linear_dynamics": ("a", "var"),
}
_ALL_MODEL_FLAGS = ("lam", "var", "s", "nu", "c", "a")


def _given(args, dest: str) -> bool:
    """Whether ``--dest`` was on the command line: argparse keeps the default object
    itself otherwise (a value given equal to a default int may read as not given)."""
    return getattr(args, dest) is not args.defaults[dest]


def _ignored(args) -> list[tuple[str, str]]:
    """``(flag, why)`` for every option given that this run would not use."""
    real = args.data not in _data.MODELS
    own = () if real else _MODEL_FLAGS[args.data]
    rules = [(f, f"--data {args.data} does not use it") for f in _ALL_MODEL_FLAGS if f not in own]
    if not real:
        rules += [(f, "it applies to real data") for f in ("n_features", "power", "data_seed")]
    else:
        rules += [(f, "real data are used as given") for f in ("rotation", "rotation_seed")]
    rules += [
        ("sampler", "it chooses the minibatch sampler, and no --batch is given")
        if args.batch is None
        else ("sampler", "real data are sampled by rows")
        if real
        else None,
        ("rotation_seed", "--rotation is identity") if args.rotation != "random" else None,
        ("momentum", "it applies to --optimizer momentum")
        if args.optimizer != "momentum"
        else None,
        ("tau", "it applies to --target ema") if args.target != "ema" else None,
    ]
    return [(f, why) for f, why in filter(None, rules) if _given(args, f)]


def _refuse_ignored(args) -> None:
    """Refuse an option that this run would silently ignore (before anything runs)."""
    ignored = _ignored(args)
    if ignored:
        flag, why = ignored[0]
        raise ValueError(f"--{flag.replace('_', '-')} is not used by this run: {why}")


def _data_source_name(args) -> None:
    if args.data not in _data.MODELS + DATASETS and not args.data.endswith(".npz"):
        raise ValueError(
            f"--data must be one of {_data.MODELS + DATASETS} or a FILE.npz; got {args.data!r}"
        )


def _data_from(args):
    if args.data in DATASETS or args.data.endswith(".npz"):
        return _real_data(args)
    if args.rotation_seed < 0:
        raise ValueError(f"--rotation-seed must be an integer >= 0; got {args.rotation_seed}")
    kw = {
        "batch": args.batch,
        "U": args.rotation,
        "seed": args.rotation_seed,
        "sampler": args.sampler,
    }
    if args.data in ("gaussian", "linear_dynamics"):
        _validate.as_positive("--var", args.var)
    if args.data == "gaussian":
        _validate.as_real("--lam", args.lam)
        if len(args.lam) != len(args.var):
            raise ValueError(
                f"--lam and --var need one value per feature; got {len(args.lam)} and "
                f"{len(args.var)} values"
            )
        return _data.gaussian(Sxx=np.array(args.var), Syx=np.array(args.lam), **kw)
    if args.data == "noisy_views":
        return _data.noisy_views(args.s, args.nu, args.c, **kw)
    return _data.linear_dynamics(args.a, args.var, **kw)


def _teacher(args):
    if args.teacher is None:
        return None
    cap = resolve(args.max_memory)[0]
    if args.teacher.name.endswith(".json"):  # a saved TrainResult (train.json + train.npz)
        r = load_result(args.teacher.with_suffix(""), max_bytes=cap)
        if not hasattr(r, "wbar"):
            raise ValueError(f"--teacher {str(args.teacher)!r} is not the train.json of a run")
        return r.wbar.reshape(-1, *r.wbar.shape[-2:])[0]
    return load_npy(args.teacher, "--teacher", cap)


def _default_t_max(config: TrainConfig, data) -> float:
    """3 times the latest per-feature critical time at the largest depth (100 if none)."""
    lam, var = np.asarray(data.lam), np.asarray(data.var)
    t = np.asarray(critical_time(config.objective, lam, var, max(config.depth), config.eps))
    t = t[np.isfinite(t)]
    return 3.0 * float(t.max()) if t.size and t.max() > 0 else 100.0


def _config(args, data) -> TrainConfig:
    """The run's TrainConfig from the command line; errors name the flag."""
    default_t_max = args.t_max is None and args.steps is None
    fields = dict(
        objective=args.objective,
        depth=args.depth,
        eta=args.eta,
        seed=args.seed,
        t_max=args.t_max,
        steps=1 if default_t_max else args.steps,  # validated first, t_max filled in below
        eps=args.eps,
        init=args.init,
        scale=args.scale,
        target=args.target,
        tau=args.tau,
        optimizer=args.optimizer,
        momentum=args.momentum,
        fraction=args.fraction,
        n_t=args.n_t,
        # compare records densely over the rises (record_times); train only log-spaced
        t_extra="auto" if args.command == "compare" else (),
    )
    try:
        config = TrainConfig(**fields)
        if default_t_max:
            config = dataclasses.replace(config, steps=None, t_max=_default_t_max(config, data))
    except ValueError as err:  # name the flag, not the field
        msg = str(err)
        for name in sorted(fields, key=len, reverse=True):
            if msg.startswith(f"{name} "):
                msg = f"--{name.replace('_', '-')} " + msg[len(name) + 1 :]
                break
        if default_t_max:
            msg = msg.replace("t_max =", "the default --t-max (3 x the latest critical time) =")
        raise ValueError(msg) from None
    return config


def _check_run(args, config: TrainConfig, data) -> None:
    """Refuse, before anything runs, a job past its step or memory budget."""
    members = len(config.seed) * len(config.depth) * len(config.eta)
    model_steps = float(members) * config.n_steps
    if not (args.max_model_steps > 0):
        raise ValueError(f"--max-model-steps must be > 0; got {args.max_model_steps}")
    if model_steps > args.max_model_steps:
        raise ValueError(
            f"the run would take {model_steps:.3g} model-steps ({members} members x "
            f"{config.n_steps} steps), more than --max-model-steps {args.max_model_steps:.3g}; "
            "shorten --t-max/--steps, raise --eta or raise --max-model-steps"
        )
    d, layers = data.d, max(config.depth)
    n_rec = record_slots(config)
    per_record = 2 + 4 * d + d * d  # loss, t, sv/norm/diag/offdiag, latent
    params = 2 * (layers + 1) * d * d  # initial and final W, V
    arrays = 8.0 * members * (n_rec * per_record + params)
    check_budget(
        "the training run",
        memory=arrays,
        disk=2 * arrays + FILES_BYTES,  # records (and the comparison's curves), figure, JSON
        max_memory=args.max_memory,
        max_disk=args.max_disk,
    )


JOB_FILES = {
    "train": ("train.json", "train.npz", "train.png"),
    "compare": ("compare.json", "compare.npz", "summary.json", "compare.png"),
}


def _inputs_text(args, config, data, teacher) -> str:
    """What defines the job: the config, the data's arrays and the teacher (hashed)."""
    digest = hashlib.sha256()
    for x in (data.Sxx, data.Syx, data.Syy, data.U, data.X, data.Y, teacher):
        if x is not None:
            digest.update(np.ascontiguousarray(np.asarray(x, np.float64)).tobytes())
    inputs = {
        "command": args.command,
        "encoder": args.encoder,
        "config": config.to_dict(),
        "data": {"model": data.model, "batch": data.batch, "sampler": data.sampler},
        "arrays_sha256": digest.hexdigest(),
        "precision": args.precision,  # a float32 job is another job
    }
    return json.dumps(_to_jsonable(inputs), indent=2, allow_nan=False) + "\n"


def _prepare(args):
    """Data, config and teacher, checked; the output directory checked, not created.

    An ``--out`` that holds this same job (its ``inputs.json``), interrupted or
    finished, is accepted without ``--force`` and recomputed in place.
    """
    _set_precision(args)  # before the data's arrays are made
    _data_source_name(args)
    _refuse_ignored(args)
    data = _data_from(args)
    config = _config(args, data)
    teacher = _teacher(args)
    _check_run(args, config, data)
    inputs = _inputs_text(args, config, data, teacher)
    _check_out(args, inputs)
    return data, config, teacher, inputs


def _check_out(args, inputs) -> None:
    files = JOB_FILES[args.command]
    check_job_out(args.out, args.force, inputs, files, name="--out", force_name="--force")


@contextlib.contextmanager
def _locked_out(args, inputs):
    """The output directory, locked and checked again, with ``inputs.json`` written first."""
    with locked_dir(args.out, name="--out") as out:
        _check_out(args, inputs)
        remove_stale_tmp(out)
        write_bytes_atomic(out / "inputs.json", inputs.encode())
        yield out


def _run_nonlinear(args, data, config, inputs) -> int:
    """``train --encoder tanh|relu``: MLP encoders on the rows of a real data set."""
    if data.model != "samples":
        raise ValueError(
            "--encoder tanh/relu trains on rows: use --data patches|digits|membrane|FILE.npz"
        )
    nl = train_nonlinear(data, config, activation=args.encoder, batch=args.batch or 256)
    with _locked_out(args, inputs) as out:
        save_result(nl, out / "train")
    print(f"wrote {out}/train.json, train.npz")
    for s, seed in enumerate(config.seed):
        t = np.array2string(nl.time[s], precision=5)
        print(f"seed {seed}: half times of the features (principal components) {t}")
    return 0


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    png = figure_bytes(fig, dpi=120)
    plt.close(fig)
    return png


def run_train(args) -> int:
    data, config, teacher, inputs = _prepare(args)
    if args.encoder != "linear":
        return _run_nonlinear(args, data, config, inputs)
    r = train(data, config, teacher=teacher, progress=not args.no_progress)
    png = _png(plot_train(r))  # rendered before anything is written
    with _locked_out(args, inputs) as out:
        save_result(r, out / "train")
        write_bytes_atomic(out / "train.png", png)
    print(f"wrote {out}/train.json, train.npz, train.png")
    for b, L in enumerate(r.depth):
        t = np.array2string(r.t_star[0, b, 0], precision=5)
        print(f"depth {L}: t*_training (seed {r.seed[0]}, eta {r.eta[0]:g}) {t}")
    return 0


def run_compare(args) -> int:
    if args.encoder != "linear":
        raise ValueError("--encoder applies to train: compare's theory is that of linear encoders")
    data, config, teacher, inputs = _prepare(args)
    config = dataclasses.replace(config, keep_latent=True)
    c = compare(train(data, config, teacher=teacher, progress=not args.no_progress))
    png = _png(plot_compare(c))  # rendered before anything is written
    with _locked_out(args, inputs) as out:
        save_result(c, out / "compare")
        write_json_atomic(out / "summary.json", c.summary())
        write_bytes_atomic(out / "compare.png", png)
    print(f"wrote {out}/compare.json, compare.npz, summary.json, compare.png")
    for k in ("t_star_theory", "t_star_training", "rel_error"):
        print(f"{k:16s}{np.array2string(np.asarray(getattr(c, k), float), precision=5)}")
    if not c.followed.all():
        print(
            f"not followed    {int((~c.followed).sum())} of {c.followed.size} (member, feature) "
            "pairs did not end near their reference: no agreement is reported for them"
        )
    if c.captures:
        print(f"captures        {[(x.channel, x.feature, round(x.t, 4)) for x in c.captures]}")
    return 0
