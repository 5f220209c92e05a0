"""``jepa-flow analyze``: the feature analysis of a real data set (theory §9, §11).

Prints the feature table (each feature's ``rho``, ``lam``, ``var``, its
predicted critical time and its place in the learning order per objective
and depth, in the chosen basis, with the basis's non-orthogonality) and,
with ``--out``, writes ``analysis.json`` and ``analysis.png`` (the spectrum
and the features: pictures for image data, line plots for series).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from .._core._io import (
    _to_jsonable,
    check_job_out,
    remove_stale_tmp,
    save_figure_atomic,
    write_bytes_atomic,
    write_json_atomic,
)
from .._core._lock import locked_dir
from .._core._validate import MAX_DEPTH, OBJECTIVES
from .._theory._basis import BASES, NORMALIZATIONS
from .._theory._order import learned_first, learned_mask, learning_order
from .._training._datasets import _LOADERS, DATASETS
from .._training._real import DEFAULT_BASIS, _eigh_desc, analyze
from ._core import _add_precision_arg, _set_precision
from ._train import _REAL_FLAGS, _real_data

FILES = ("analysis.json", "analysis.png")
DEFAULT_EPS = 1e-3
IMAGE_SIDE = {"digits": 8}  # patches: --patch-size (default 8)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "analyze",
        help="feature analysis of a real data set: rho, lam, var, predicted times and order",
        description="The per-feature view of a shipped data set or a FILE.npz of paired "
        "views x, y [n, d] (theory §9, §11): in the chosen feature basis, each feature's "
        "rho, lam and var, its predicted critical time and rank in the learning order for "
        "each objective and depth, and how far the basis is from orthogonal. With --out, "
        "writes analysis.json and analysis.png (the features as pictures for image data).",
    )
    a = p.add_argument
    a(
        "--data",
        required=True,
        metavar="SOURCE",
        help=f"a shipped data set ({', '.join(DATASETS)}) or FILE.npz with arrays x, y [n, d]",
    )
    a("--patch-size", type=int, default=None, help="patches: patch side p (default 8)")
    a("--shift", type=int, default=None, help="patches/digits: shift of the second view")
    a("--window", type=int, default=None, help="membrane: window length (default 16)")
    a("--noise", type=float, default=None, help="pixel/sample noise std, >= 0")
    a("--n-samples", type=int, default=None, help="patches/digits: number of pairs")
    a("--data-seed", type=int, default=None, help="seed of the pairs drawn, >= 0")
    a("--n-features", type=int, default=None, help="keep the top K principal components")
    a("--power", type=float, default=None, help="compress the spectrum, var -> var^power")
    a(
        "--basis",
        choices=BASES,
        default=None,
        help="feature basis, theory §11 (default: the first --objective's most accurate, "
        "experiment 10: "
        + ", ".join(f"{o}: {b}" + (f" ({n})" if n else "") for o, (b, n) in DEFAULT_BASIS.items())
        + ")",
    )
    a(
        "--normalize",
        choices=NORMALIZATIONS,
        default=None,
        help="column scale of --basis generalized (default: dual)",
    )
    a(
        "--objective",
        nargs="+",
        choices=OBJECTIVES,
        default=list(OBJECTIVES),
        metavar="OBJ",
        help="objectives whose times are predicted, jepa and/or mae (default: both)",
    )
    a("--depth", nargs="+", type=int, default=[1], metavar="L", help="depths L (default: 1)")
    a("--eps", type=float, default=DEFAULT_EPS, help="initial wbar(0) = eps, > 0 (default: 1e-3)")
    a("--rows", type=int, default=20, help="table rows to print, earliest first (0: all)")
    a("--out", type=Path, default=None, help="write analysis.json and analysis.png here")
    a("--force", action="store_true", help="write into a non-empty --out (default: refuse)")
    _add_precision_arg(p)
    p.set_defaults(func=run_analyze)


def _check_args(args) -> None:
    """One-line errors naming the flag, before anything is loaded or written."""
    if args.data not in DATASETS and not args.data.endswith(".npz"):
        raise ValueError(f"--data must be one of {DATASETS} or a FILE.npz; got {args.data!r}")
    basis = args.basis or DEFAULT_BASIS[args.objective[0]][0]
    if args.normalize is not None and basis != "generalized":
        raise ValueError(f"--normalize applies to --basis generalized only; got --basis {basis}")
    bad = [L for L in args.depth if not 1 <= L <= MAX_DEPTH]
    if bad:
        raise ValueError(f"--depth must be integers in [1, {MAX_DEPTH}]; got {bad[0]}")
    if not (np.isfinite(args.eps) and args.eps > 0):
        raise ValueError(f"--eps must be a finite number > 0; got {args.eps}")
    if args.rows < 0:
        raise ValueError(f"--rows must be an integer >= 0 (0: all); got {args.rows}")


def _inputs_text(args) -> str:
    """What defines the job (and, for a FILE.npz, its contents' hash)."""
    keys = ("data", "patch_size", "shift", "window", "noise", "n_samples", "data_seed")
    keys += ("n_features", "power", "basis", "normalize", "objective", "depth", "eps")
    inputs = {"command": "analyze", **{k: getattr(args, k) for k in keys}}
    inputs["precision"] = args.precision
    if args.data.endswith(".npz"):
        try:
            inputs["npz_sha256"] = hashlib.sha256(Path(args.data).read_bytes()).hexdigest()
        except OSError as err:
            raise ValueError(f"--data {args.data!r} is not a readable file: {err}") from None
    return json.dumps(_to_jsonable(inputs), indent=2, allow_nan=False) + "\n"


def _raw_views(args):
    """The paired views in the data's own coordinates (pixels, samples), uncentred."""
    if args.data.endswith(".npz"):
        with np.load(args.data, allow_pickle=False) as z:
            return np.asarray(z["x"], float), np.asarray(z["y"], float)
    own = {opt: getattr(args, f) for f, opt in _REAL_FLAGS[args.data].items()}
    own = {k: v for k, v in own.items() if v is not None}
    if args.data_seed is not None:
        own["seed"] = args.data_seed
    return _LOADERS[args.data](**own)


def _patterns(args, fa) -> np.ndarray:
    """The features' patterns (dual vectors ``a_i``, theory §11.2) in the data's own
    coordinates ``[D, d]``: theory §9's rescaled components ``x Q diag(s)`` undone
    (``s = ev^((power - 1) / 2)``), an input direction ``a`` of them is ``Q diag(1 / s) a``."""
    power = 1.0 if args.power is None else args.power
    if args.n_features is None and power == 1.0:
        return fa.dual
    x, y = _raw_views(args)
    x, y = x - x.mean(axis=0), y - y.mean(axis=0)
    ev, Q = _eigh_desc((x.T @ x + y.T @ y) / (2 * x.shape[0]))
    k = fa.d
    return (Q[:, :k] * ev[:k] ** (0.5 * (1.0 - power))) @ fa.dual


def _image_shape(args, D):
    side = (args.patch_size or 8) if args.data == "patches" else IMAGE_SIDE.get(args.data)
    return (side, side) if side is not None and side * side == D else None


def _tables(fa, objectives, depths, eps):
    """Critical times ``{objective: [len(depths), d]}`` and each feature's rank among the
    learned ones (``0 < t* < inf``; 0 is learned first, -1 not learned; theory §10)."""
    t_star, rank = {}, {}
    for o in objectives:
        t = np.stack([fa.critical_time(o, L, eps) for L in depths])
        learned = learned_mask(t)
        order = learning_order(t)  # the learned ones first
        r = np.empty_like(order)
        np.put_along_axis(r, order, np.arange(fa.d)[None, :], axis=-1)
        t_star[o] = t
        rank[o] = np.where(learned, r, -1)
    return t_star, rank


def _report(args, fa, t_star, rank) -> dict:
    """The content of analysis.json."""
    return {
        "data": args.data,
        "d": fa.d,
        "basis": fa.basis_kind,
        "normalize": fa.normalize,
        "nonorthogonality": fa.nonorthogonality,
        "offdiag": fa.offdiag,
        "commutator": fa.commutator,
        "n": fa.n,
        "eps": args.eps,
        "depth": list(args.depth),
        "rho": fa.rho,
        "lam": fa.lam,
        "var": fa.var,
        "lam_stderr": fa.lam_stderr,
        "t_star": {o: {str(L): t_star[o][b] for b, L in enumerate(args.depth)} for o in t_star},
        "rank": {o: {str(L): rank[o][b] for b, L in enumerate(args.depth)} for o in rank},
        "order": {
            o: {str(L): learning_order(t_star[o][b]) for b, L in enumerate(args.depth)}
            for o in t_star
        },
        "first_learned": {
            o: {str(L): int(learned_first(t_star[o][b])) for b, L in enumerate(args.depth)}
            for o in t_star
        },
        "vectors": fa.basis,
        "dual": fa.dual,
    }


def format_table(fa, t_star, rank, depths, rows) -> str:
    """The feature table, one line per feature, in the learning order of the first
    column (objective and depth; theory §10: the learned features first)."""
    cols = [(o, b, L) for o in t_star for b, L in enumerate(depths)]
    head = f"{'i':>4} {'rho':>9} {'lam':>10} {'var':>10}"
    head += "".join(f" {f'{o} L={L}':>17}" for o, _, L in cols)
    order = learning_order(t_star[cols[0][0]][0])
    shown = order if rows == 0 else order[:rows]
    lines = [head]
    for i in shown:
        line = f"{i:>4} {fa.rho[i]:>9.4g} {fa.lam[i]:>10.4g} {fa.var[i]:>10.4g}"
        for o, b, _ in cols:
            r = rank[o][b, i]
            line += f" {t_star[o][b, i]:>11.4g} {'#' + str(r) if r >= 0 else '-':>5}"
        lines.append(line)
    if len(shown) < fa.d:
        lines.append(f"... {fa.d - len(shown)} more features (--rows 0 shows all)")
    return "\n".join(lines)


def run_analyze(args) -> int:
    import matplotlib.pyplot as plt

    from .._plotting._analysis import plot_analysis

    _check_args(args)
    _set_precision(args)
    args.batch = None  # _real_data's population source
    inputs = None
    if args.out is not None:
        inputs = _inputs_text(args)
        check_job_out(args.out, args.force, inputs, FILES, name="--out", force_name="--force")
    data = _real_data(args)
    objective = args.objective[0] if args.basis is None else None  # its default basis
    fa = analyze(data, objective=objective, basis=args.basis, normalize=args.normalize)
    t_star, rank = _tables(fa, args.objective, args.depth, args.eps)
    kind = fa.basis_kind + (f" ({fa.normalize})" if fa.normalize else "")
    print(
        f"{args.data}: d = {fa.d}, n = {fa.n}; basis {kind}, nonorthogonality "
        f"{fa.nonorthogonality:.3g}, offdiag {fa.offdiag:.3g}; eps = {args.eps:g}; "
        "critical times in flow time t, #rank in the learning order (-: not learned)"
    )
    print(format_table(fa, t_star, rank, args.depth, args.rows))
    if args.out is None:
        return 0
    patterns = _patterns(args, fa)
    fig = plot_analysis(fa, patterns=patterns, image_shape=_image_shape(args, len(patterns)))
    with locked_dir(args.out, name="--out") as out:
        check_job_out(out, args.force, inputs, FILES, name="--out", force_name="--force")
        remove_stale_tmp(out)
        write_bytes_atomic(out / "inputs.json", inputs.encode())
        write_json_atomic(out / "analysis.json", _report(args, fa, t_star, rank))
        save_figure_atomic(fig, out / "analysis.png", dpi=110)
    plt.close(fig)
    print(f"wrote {out}/analysis.json, analysis.png")
    return 0
