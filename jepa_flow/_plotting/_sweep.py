"""Figures of a finished sweep (``critical_time.png``, ``phase.png``).

``critical_time.png``: the critical time ``t_star`` (gradient-flow time, unit
rate on every parameter; the paper's ``tau`` is ``depth * t``) against
``rho`` and ``lam``, one panel per depth (columns) and objective/method (rows).

``phase.png`` (pair sweeps): which feature is learned first, one panel per
depth and objective: colour is ``log10(t_star_b / t_star_a)`` (blue: B first,
red: A first), the black line is the boundary ``t_star_a = t_star_b``.

Axes other than those drawn (eps, fraction, or swept parameters of A) are
shown at their first value, named in the figure title.
"""

from __future__ import annotations

import numpy as np

from .._sweeps._config import SweepConfig

LABELS = {
    "lam": "lam (view covariance)",
    "rho": "rho = lam / var (influence)",
    "var": "var (input variance)",
    "lam_b": "lam_B (covariance of B)",
    "rho_b": "rho_B = lam_B / var_B",
    "var_b": "var_B (input variance of B)",
    "lam_ratio": "lam_B / lam_A",
    "rho_ratio": "rho_B / rho_A",
    "var_ratio": "var_B / var_A",
    "depth": "depth L",
}
T_LABEL = "t* (gradient-flow time, unit rate)"


def _log_axis(values, grid: bool = False) -> bool:
    """Log scale for positive values spanning two decades, or a log-spaced grid axis."""
    values = np.asarray(values, dtype=float).ravel()
    values = values[np.isfinite(values)]
    if values.size == 0 or values.min() <= 0:
        return False
    if grid and values.size >= 3:
        steps = np.diff(np.log(values))
        geometric = np.allclose(steps, steps[0], rtol=1e-6) and steps[0] != 0
        if geometric and not np.allclose(np.diff(values), values[1] - values[0], rtol=1e-6):
            return True
    return bool(values.max() / values.min() >= 100)


def _grid(config: SweepConfig, results: dict, name: str, fixed: dict, free: list[str]):
    """``results[name]`` on the free axes, every other axis at ``fixed`` (default 0)."""
    index = tuple(slice(None) if axis in free else fixed.get(axis, 0) for axis in config.names)
    block = results[name].reshape(config.shape)[index]
    order = [a for a in config.names if a in free]
    return np.moveaxis(block, [order.index(a) for a in free], range(len(free)))


def _held(config: SweepConfig, drawn: set[str]) -> str:
    """Text naming the axes not drawn: fixed ones, and swept ones shown at their first value."""
    fixed = [f"{n} = {v[0]:g}" for n, v in config.numeric_axes if n not in drawn and len(v) == 1]
    held = [f"{n} = {v[0]:g}" for n, v in config.numeric_axes if n not in drawn and len(v) > 1]
    text = (" (" + ", ".join(fixed) + ")") if fixed else ""
    return text + ("; shown at " + ", ".join(held) if held else "")


def _panels(config: SweepConfig):
    values = dict(config.axes)
    rows = [(gi, o, m) for gi, (o, m) in enumerate(config.groups)]
    return rows, list(values["depth"])


def _figure(n_rows: int, n_cols: int):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        n_rows,
        n_cols,
        figsize=(3.6 * n_cols + 1.2, 3.0 * n_rows + 0.9),
        squeeze=False,
        constrained_layout=True,
    )
    return plt, fig, axes


def _group_index(config: SweepConfig, gi: int) -> dict:
    n_methods = len(dict(config.axes)["method"])
    return {"objective": gi // n_methods, "method": gi % n_methods}


def plot_critical_time(
    config: SweepConfig, results: dict, path, full: SweepConfig | None = None
) -> None:
    """Write ``critical_time.png``: t_star over (rho, lam) per depth and objective."""
    import matplotlib.colors as mcolors

    from .._core._io import save_figure_atomic

    values = dict(config.axes)
    feature = "rho" if "rho" in values else "var"
    two_d = len(values["lam"]) > 1 and len(values[feature]) > 1
    rows, depths = _panels(config)
    plt, fig, axes = _figure(len(rows), len(depths))
    t_all = results["t_star"][np.isfinite(results["t_star"]) & (results["t_star"] > 0)]
    lo, hi = (t_all.min(), t_all.max()) if t_all.size else (1.0, 10.0)
    norm = mcolors.LogNorm(vmin=lo, vmax=max(hi, lo * 1.0001))
    cmap = plt.get_cmap("viridis").with_extremes(bad="0.85")
    mappable = None
    for r, (gi, objective, method) in enumerate(rows):
        for c, depth in enumerate(depths):
            ax = axes[r, c]
            fixed = dict(_group_index(config, gi), depth=c)
            free = ["lam", feature]
            t_star = _grid(config, results, "t_star", fixed, free)  # [lam, rho|var]
            rho = _grid(config, results, "rho", fixed, free)
            lam = _grid(config, results, "lam", fixed, free)
            if two_d:
                t_plot = np.ma.masked_invalid(np.where(t_star > 0, t_star, np.nan))
                if feature == "rho":  # a regular grid in (rho, lam)
                    mappable = ax.pcolormesh(
                        values["rho"],
                        values["lam"],
                        t_plot,
                        norm=norm,
                        cmap=cmap,
                        shading="nearest",
                    )
                else:  # a grid in (var, lam): scattered in (rho, lam)
                    colour = t_plot.filled(np.nan).ravel()
                    mappable = ax.scatter(
                        rho.ravel(),
                        lam.ravel(),
                        c=colour,
                        norm=norm,
                        cmap=cmap,
                        s=14,
                        plotnonfinite=True,
                    )
                x_grid = feature == "rho"
                x_values = values["rho"] if x_grid else rho
                ax.set_xscale("log" if _log_axis(x_values, grid=x_grid) else "linear")
                ax.set_yscale("log" if _log_axis(values["lam"], grid=True) else "linear")
                ax.set_xlabel(LABELS["rho"])
                ax.set_ylabel(LABELS["lam"])
            else:
                swept = "lam" if len(values["lam"]) > 1 else "rho"
                x = (lam if swept == "lam" else rho).ravel()
                ax.plot(x, t_star.ravel(), "o-", ms=3)
                ax.set_xscale("log" if _log_axis(x, grid=True) else "linear")
                ax.set_yscale(
                    "log" if _log_axis(t_star[np.isfinite(t_star)] + 1e-300) else "linear"
                )
                ax.set_xlabel(LABELS[swept])
                ax.set_ylabel(T_LABEL)
            ax.set_title(f"{objective.upper()} ({method}), depth L = {depth:g}", fontsize=9)
    if mappable is not None:
        fig.colorbar(mappable, ax=axes, label=T_LABEL + "; grey: never learned or t* = 0")
    fig.suptitle("Critical time t*" + _held(full or config, {"depth", "lam", feature}), fontsize=10)
    save_figure_atomic(fig, path, dpi=110)
    plt.close(fig)


def _pair_axes(config: SweepConfig) -> tuple[str, str]:
    """The (x, y) axes of the phase diagram: B's influence-like and covariance-like keys."""
    values = dict(config.axes)
    y = "lam_b" if "lam_b" in values else "lam_ratio"
    x = next(k for k in ("rho_b", "var_b", "rho_ratio", "var_ratio") if k in values)
    return x, y


def plot_phase(config: SweepConfig, results: dict, path, full: SweepConfig | None = None) -> None:
    """Write ``phase.png``: which feature is learned first, boundary drawn, per depth/objective."""
    import matplotlib.colors as mcolors

    from .._core._io import save_figure_atomic

    values = dict(config.axes)
    x_key, y_key = _pair_axes(config)
    swept = [k for k in (x_key, y_key) if len(values[k]) > 1]
    rows, depths = _panels(config)
    if not swept:
        return _plot_ratio_by_depth(config, results, path, full)
    plt, fig, axes = _figure(len(rows), len(depths))
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ratio = np.log10(results["t_ratio"])
    finite = log_ratio[np.isfinite(log_ratio)]
    span = max(float(np.abs(finite).max()) if finite.size else 1.0, 1e-3)
    norm = mcolors.TwoSlopeNorm(vcenter=0.0, vmin=-span, vmax=span)
    cmap = plt.get_cmap("RdBu_r").with_extremes(bad="0.85")
    mappable = None
    for r, (gi, objective, method) in enumerate(rows):
        for c, depth in enumerate(depths):
            ax = axes[r, c]
            fixed = dict(_group_index(config, gi), depth=c)
            ratio = _grid(config, results, "t_ratio", fixed, [y_key, x_key])
            with np.errstate(divide="ignore", invalid="ignore"):
                # a feature already at its level (t* = 0) is learned first: clip, do not mask
                z = np.ma.masked_invalid(np.clip(np.log10(ratio), -span, span))
            if len(swept) == 2:
                mappable = ax.pcolormesh(
                    values[x_key], values[y_key], z, norm=norm, cmap=cmap, shading="nearest"
                )
                if z.min() < 0 < z.max():
                    ax.contour(
                        values[x_key],
                        values[y_key],
                        z.filled(np.nan),
                        levels=[0.0],
                        colors="k",
                        linewidths=1.5,
                    )
                _mark_a(ax, config, x_key, y_key)
                ax.set_xscale("log" if _log_axis(values[x_key], grid=True) else "linear")
                ax.set_yscale("log" if _log_axis(values[y_key], grid=True) else "linear")
                ax.set_xlabel(LABELS[x_key])
                ax.set_ylabel(LABELS[y_key])
            else:
                key = swept[0]
                ax.plot(values[key], 10.0 ** z.ravel(), "o-", ms=3)
                ax.axhline(1.0, color="k", lw=1)
                ax.set_yscale(
                    "log" if _log_axis(np.append(10.0 ** z.compressed(), 1)) else "linear"
                )
                ax.set_xscale("log" if _log_axis(values[key], grid=True) else "linear")
                ax.set_xlabel(LABELS[key])
                ax.set_ylabel("t*_B / t*_A  (below 1: B first)")
            ax.set_title(f"{objective.upper()} ({method}), depth L = {depth:g}", fontsize=9)
    if mappable is not None:
        fig.colorbar(mappable, ax=axes, label="log10(t*_B / t*_A): blue B first, red A first")
    line = "black line: t*_A = t*_B" if len(swept) == 2 else "t*_A = t*_B at 1"
    fig.suptitle(
        f"Which feature is learned first ({_a_text(config)}; {line};\n"
        "t* = 0, already at the level, counts as learned first; grey: neither learned)"
        + _held(full or config, {"depth", x_key, y_key, "lam_a", "rho_a", "var_a"}),
        fontsize=10,
    )
    save_figure_atomic(fig, path, dpi=110)
    plt.close(fig)


def _a_text(config: SweepConfig) -> str:
    values = dict(config.axes)
    keys = ("lam_a", "rho_a", "var_a")
    return "A: " + ", ".join(f"{k} = {values[k][0]:g}" for k in keys if k in values)


def _plot_ratio_by_depth(
    config: SweepConfig, results: dict, path, full: SweepConfig | None = None
) -> None:
    """Phase plot of a pair with one B: t*_B / t*_A against depth, a panel per objective."""
    from .._core._io import save_figure_atomic

    rows, depths = _panels(config)
    plt, fig, axes = _figure(1, len(rows))
    for c, (gi, objective, method) in enumerate(rows):
        ax = axes[0, c]
        ratio = _grid(config, results, "t_ratio", _group_index(config, gi), ["depth"])
        b_first = ratio < 1
        ax.plot(depths, ratio, "k-", lw=1)
        ax.plot(np.asarray(depths)[b_first], ratio[b_first], "o", color="tab:blue", label="B first")
        ax.plot(
            np.asarray(depths)[~b_first], ratio[~b_first], "o", color="tab:red", label="A first"
        )
        positive = ratio[np.isfinite(ratio) & (ratio > 0)]
        ax.set_yscale("log" if _log_axis(np.append(positive, 1)) else "linear")
        ax.axhline(1.0, color="0.4", lw=1, ls="--")
        ax.set_xlabel(LABELS["depth"])
        ax.set_ylabel("t*_B / t*_A  (below 1: B first)")
        ax.set_title(
            f"{objective.upper()} ({method}), depths {', '.join(f'{d:g}' for d in depths)}",
            fontsize=9,
        )
        ax.legend(fontsize=8)
    b_text = ", ".join(f"{k} = {v[0]:g}" for k, v in config.numeric_axes if k in PAIR_B)
    held = _held(full or config, {"depth", *PAIR_B, "lam_a", "rho_a", "var_a"})
    fig.suptitle(
        f"Learning order against depth ({_a_text(config)}; B: {b_text})\n" + held.strip(" ;()"),
        fontsize=10,
    )
    save_figure_atomic(fig, path, dpi=110)
    plt.close(fig)


PAIR_B = ("lam_b", "lam_ratio", "rho_b", "var_b", "rho_ratio", "var_ratio")


def _mark_a(ax, config: SweepConfig, x_key: str, y_key: str) -> None:
    """Mark feature A itself where it lies in the diagram's coordinates."""
    values = dict(config.axes)
    lam_a = values["lam_a"][0]
    rho_a = values["rho_a"][0] if "rho_a" in values else lam_a / values["var_a"][0]
    var_a = lam_a / rho_a
    xs = {"rho_b": rho_a, "var_b": var_a, "rho_ratio": 1.0, "var_ratio": 1.0}
    ys = {"lam_b": lam_a, "lam_ratio": 1.0}
    ax.plot([xs[x_key]], [ys[y_key]], marker="*", color="k", ms=9, ls="none", label="A")


def plot_sweep(out) -> list[str]:
    """Draw the figures of the finished sweep in directory ``out``; returns their names.

    Reads only the chunks of the drawn sub-grid (see ``load_sweep_slice``), so
    memory stays small for any grid size.
    """
    from pathlib import Path

    from .._sweeps._load import load_sweep_slice

    out = Path(out)
    keep = {"depth", "lam", "rho", "var"} | set(PAIR_B)
    full, sub, results = load_sweep_slice(out, keep)
    if full.pair:
        plot_phase(sub, results, out / "phase.png", full)
        return ["phase.png"]
    plot_critical_time(sub, results, out / "critical_time.png", full)
    return ["critical_time.png"]
