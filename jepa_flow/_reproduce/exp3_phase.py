"""Experiment 3: phase diagrams of the learning order (theory §4), from the sweep engine.

Feature A is fixed (``lam 1, var 2, rho 0.5``); feature B spans a grid of
``(lam_B / lam_A, rho_B / rho_A)``. For each objective, depth and ``eps`` the
sweep engine (``run_sweep``, exact critical times) says which is learned
first; ``plot_sweep`` draws it with the boundary ``t*_A = t*_B``.

The boundary is measured as a curve ``log lam_B*(log rho_B)`` (interpolated
per ``rho`` column) and summarized by its angle from the ``lam`` axis in
degrees: 0 means ``lam_B = const`` (order by covariance), 90 means
``rho_B = rho_A`` (order by influence). MAE's boundary stays near
``lam_B = lam_A`` and tends to it exactly as ``eps -> 0``; JEPA's rotates
towards ``rho_B = rho_A`` as depth grows at fixed ``eps``.
"""

from __future__ import annotations

import shutil

import numpy as np

from .. import load_sweep, plot_sweep, run_sweep
from .. import parse_sweep_config as parse_config
from ._common import claim, plt, save

NAME = "3_phase_diagrams"
TITLE = "Phase diagrams: which of two features is learned first"

_BASE = {
    "lam_a": 1.0,
    "var_a": 2.0,
    "log10_lam_ratio": (-0.4, 0.4),
    # rho_B / rho_A from 0.74: at depth 6 and eps = 1e-3 a smaller rho_B would start
    # above its own half level (t* = 0), which says nothing about the order
    "log10_rho_ratio": (-0.13, 0.4),
    "eps": [1e-3, 1e-6, 1e-12],  # the first is drawn; the others show eps -> 0
    "keep_sweep": False,  # the raw chunks are large; numbers.json keeps what the claims use
}
PARAMS = {
    "full": {**_BASE, "depth": [1, 2, 3, 4, 6], "n": 64},
    "quick": {**_BASE, "depth": [1, 2, 4, 6], "n": 32},
    "tiny": {**_BASE, "depth": [1, 6], "n": 12},
}


def config_text(p) -> str:
    (lo_l, hi_l), (lo_r, hi_r) = p["log10_lam_ratio"], p["log10_rho_ratio"]
    return (
        "[sweep]\n"
        'objective = ["jepa", "mae"]\n'
        f"depth = {list(map(int, p['depth']))}\n"
        f"eps = {[float(e) for e in p['eps']]}\n"
        'method = "exact"\n\n'
        "[pair]\n"
        f"lam_a = {p['lam_a']}\nvar_a = {p['var_a']}\n"
        f"lam_ratio = {{logspace = [{lo_l}, {hi_l}, {p['n']}]}}\n"
        f"rho_ratio = {{logspace = [{lo_r}, {hi_r}, {p['n']}]}}\n"
    )


def boundary(log_ratio, x, y):
    """Boundary ``y*(x)`` where ``log_ratio`` (``[ny, nx]``) changes sign along y, per column."""
    ys = np.full(x.size, np.nan)
    for k in range(x.size):
        z = log_ratio[:, k]
        s = np.nonzero(np.sign(z[:-1]) * np.sign(z[1:]) < 0)[0]
        if s.size:
            i = s[0]
            ys[k] = y[i] + (y[i + 1] - y[i]) * z[i] / (z[i] - z[i + 1])
    return ys


def angle(ly, lx) -> float:
    """Angle (degrees) of the boundary from the lam axis: 0 horizontal, 90 vertical.

    Where the boundary runs vertically (crosses few columns) it is fitted as x(y).
    """
    ok = np.isfinite(ly)
    if ok.sum() >= 3 and np.ptp(ly[ok]) <= np.ptp(lx[ok]):
        return float(np.degrees(np.arctan(abs(np.polyfit(lx[ok], ly[ok], 1)[0]))))
    return (
        90.0
        if ok.sum() < 3
        else float(90.0 - np.degrees(np.arctan(abs(np.polyfit(ly[ok], lx[ok], 1)[0]))))
    )


def _grids(config, res) -> dict:
    """The sweep's columns as ``[objective, depth, eps, lam_ratio, rho_ratio]`` grids."""
    names, shape = config.names, config.shape
    order = [names.index(k) for k in ("objective", "depth", "eps", "lam_ratio", "rho_ratio")]
    keep = [i for i in range(len(shape)) if i not in order]

    def grid(column):
        arr = res[column].reshape(shape)
        arr = arr[tuple(0 if i in keep else slice(None) for i in range(len(shape)))]
        kept = [i for i in range(len(shape)) if i not in keep]
        return np.transpose(arr, [kept.index(i) for i in order])

    return {k: grid(k) for k in ("t_ratio", "first", "t_star_a", "t_star_b")}


def _per_grid(fn, n_eps, n_depth):
    """``[[fn(d, e) for d in depths] for e in eps]``: the layout of numbers.json."""
    return [[fn(d, e) for d in range(n_depth)] for e in range(n_eps)]


def _numbers(values, g) -> dict:
    lam_r, rho_r = values["lam_ratio"], values["rho_ratio"]
    lx, ly = np.log10(rho_r), np.log10(lam_r)
    depths, eps = [int(d) for d in values["depth"]], list(values["eps"])
    LR, RR = np.meshgrid(lam_r, rho_r, indexing="ij")
    t_ratio, first = g["t_ratio"], g["first"]
    n_e, n_d = len(eps), len(depths)
    num = {"depth": depths, "eps": eps, "lam_ratio": lam_r, "rho_ratio": rho_r}
    num.update(angle_deg={}, disagree_fraction={}, agree_with_lam_order={})
    num.update(agree_with_rho_order={}, mae_max_boundary_offset_log10={}, t_star_zero=0)
    for o, obj in enumerate(values["objective"]):
        num["angle_deg"][obj] = _per_grid(
            lambda d, e: angle(boundary(np.log10(t_ratio[o, d, e]), lx, ly), lx), n_e, n_d
        )
        num["agree_with_lam_order"][obj] = _per_grid(
            lambda d, e: float(np.mean((first[o, d, e] == 1) == (LR > 1))), n_e, n_d
        )
        num["agree_with_rho_order"][obj] = _per_grid(
            lambda d, e: float(np.mean((first[o, d, e] == 1) == (RR > 1))), n_e, n_d
        )
        num["t_star_zero"] += int(((g["t_star_a"] == 0) | (g["t_star_b"] == 0)).sum())
    num["disagree_fraction"] = _per_grid(
        lambda d, e: float(np.mean(first[0, d, e] != first[1, d, e])), n_e, n_d
    )
    num["mae_max_boundary_offset_log10"] = _per_grid(
        lambda d, e: float(np.nanmax(np.abs(boundary(np.log10(t_ratio[1, d, e]), lx, ly)))),
        n_e,
        n_d,
    )
    return num


def _claims(num) -> list:
    depths, eps = num["depth"], num["eps"]
    a_j, a_m = np.array(num["angle_deg"]["jepa"]), np.array(num["angle_deg"]["mae"])
    off = np.array(num["mae_max_boundary_offset_log10"])
    dis = np.array(num["disagree_fraction"])
    return [
        claim(
            "3.jepa_boundary_rotates",
            f"at eps = {eps[0]:g} JEPA's boundary angle (0: lam_B = "
            "lam_A, 90: rho_B = rho_A) grows with depth, past 30 degrees at the deepest",
            bool(np.all(np.diff(a_j[0]) > 0) and a_j[0, -1] > 30),
            depth=depths,
            angle_deg=a_j[0],
        ),
        claim(
            "3.mae_boundary_flat",
            f"at eps = {eps[0]:g} MAE's boundary stays within 0.06 "
            "decades (15 %) of lam_B = lam_A at every depth",
            bool(np.all(off[0] < 0.06)),
            depth=depths,
            max_offset_log10=off[0],
            angle_deg=a_m[0],
        ),
        claim(
            "3.mae_boundary_exact_as_eps_to_0",
            "MAE's largest boundary offset from lam_B = lam_A shrinks as eps -> 0, at every depth",
            bool(np.all(np.diff(off, axis=0) < 0)),
            eps=eps,
            depth=depths,
            max_offset_log10=off,
        ),
        claim(
            "3.disagreement",
            f"fraction of the grid where JEPA and MAE learn different "
            f"features first, per depth (eps = {eps[0]:g}); it grows with depth",
            bool(np.all(np.diff(dis[0]) > 0)),
            depth=depths,
            fraction=dis[0],
            fraction_all_eps=dis,
        ),
        claim(
            "3.no_trivial_starts",
            "no configuration starts at or above its half level (t* = 0) anywhere in the grid",
            num["t_star_zero"] == 0,
            count=num["t_star_zero"],
        ),
    ]


def _figure(path, num) -> None:
    depths, eps = num["depth"], num["eps"]
    a_j, a_m = np.array(num["angle_deg"]["jepa"]), np.array(num["angle_deg"]["mae"])
    dis = np.array(num["disagree_fraction"])
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for e, ep in enumerate(eps):
        axes[0].plot(depths, a_j[e], "o-", label=f"JEPA, eps={ep:g}")
        axes[0].plot(depths, a_m[e], "s--", label=f"MAE, eps={ep:g}")
        axes[1].plot(depths, dis[e], "o-", label=f"eps={ep:g}")
    axes[0].set_ylabel("boundary angle (deg)\n0: lam_B = lam_A, 90: rho_B = rho_A")
    axes[0].set_title("JEPA and MAE: angle of the boundary t*_A = t*_B", fontsize=9)
    axes[1].set_ylabel("fraction of (lam_B/lam_A, rho_B/rho_A) grid")
    axes[1].set_title(
        "JEPA vs MAE: fraction of the grid where\nthey learn different features first", fontsize=9
    )
    for ax in axes:
        ax.set_xlabel("depth L")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    save(fig, path, dpi=110)


def run(out, p) -> dict:
    config = parse_config(config_text(p))
    sweep_dir = out / "sweep"
    run_sweep(config, sweep_dir)
    result = load_sweep(sweep_dir)
    plt.close(plot_sweep(result, path=out / "phase.png"))  # eps held at its first value
    num = _numbers(dict(config.axes), _grids(config, result))
    claims = _claims(num)
    _figure(out / "boundary_vs_depth.png", num)
    if not p["keep_sweep"]:
        shutil.rmtree(sweep_dir)
    return {
        "figures": ["phase.png", "boundary_vs_depth.png"],
        "config": config.text,
        **num,
        "claims": claims,
    }
