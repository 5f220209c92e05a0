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
from .._theory._order import learned_mask
from ._dynamics import plain_log_labels

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


def _held(full: SweepConfig, sub: SweepConfig, drawn: set[str]) -> str:
    """Text naming the axes not drawn: fixed ones, and swept ones at the value ``sub`` holds."""
    shown = dict(sub.axes)
    fixed = [f"{n} = {v[0]:g}" for n, v in full.numeric_axes if n not in drawn and len(v) == 1]
    held = [f"{n} = {shown[n][0]:g}" for n, v in full.numeric_axes if n not in drawn and len(v) > 1]
    text = (" (" + ", ".join(fixed) + ")") if fixed else ""
    return text + ("; shown at " + ", ".join(held) if held else "")


def _panels(config: SweepConfig):
    values = dict(config.axes)
    rows = [(gi, o, m) for gi, (o, m) in enumerate(config.groups)]
    return rows, list(values["depth"])


def _figure(n_rows: int, n_cols: int, fig=None, ax=None):
    """``(plt, fig, axes [n_rows, n_cols])``: a new figure, panels in ``fig``, or ``ax`` alone."""
    import matplotlib.pyplot as plt

    if ax is not None:
        if (n_rows, n_cols) != (1, 1):
            raise ValueError(
                f"ax: this figure has {n_rows} x {n_cols} panels; select one objective, "
                "method and depth with at=, or pass fig="
            )
        return plt, ax.figure, np.array([[ax]])
    if fig is None:
        fig = plt.figure(figsize=(3.6 * n_cols + 1.2, 3.0 * n_rows + 0.9))
    fig.set_layout_engine("constrained")
    return plt, fig, fig.subplots(n_rows, n_cols, squeeze=False)


def _suptitle(fig, text: str, fontsize: float = 10) -> None:
    """The figure title, each line wrapped to the figure's width (never clipped)."""
    import textwrap

    chars = max(30, int(fig.get_figwidth() * 130 / fontsize))  # about 0.55 em per character
    lines = [textwrap.fill(line, chars) for line in text.split("\n")]
    fig.suptitle("\n".join(lines), fontsize=fontsize)


def _group_index(config: SweepConfig, gi: int) -> dict:
    n_methods = len(dict(config.axes)["method"])
    return {"objective": gi // n_methods, "method": gi % n_methods}


def critical_time_figure(
    config: SweepConfig, results: dict, full: SweepConfig | None = None, fig=None, ax=None
):
    """``critical_time.png``: t_star over (rho, lam) per depth and objective; the figure."""
    import matplotlib.colors as mcolors

    values = dict(config.axes)
    feature = "rho" if "rho" in values else "var"
    two_d = len(values["lam"]) > 1 and len(values[feature]) > 1
    rows, depths = _panels(config)
    plt, fig, axes = _figure(len(rows), len(depths), fig, ax)
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
    _suptitle(fig, "Critical time t*" + _held(full or config, config, {"depth", "lam", feature}))
    return fig


def _pair_axes(config: SweepConfig) -> tuple[str, str]:
    """The (x, y) axes of the phase diagram: B's influence-like and covariance-like keys."""
    values = dict(config.axes)
    y = "lam_b" if "lam_b" in values else "lam_ratio"
    x = next(k for k in ("rho_b", "var_b", "rho_ratio", "var_ratio") if k in values)
    return x, y


# the cells where no ratio of two learned features exists (theory §10): colour, legend text
UNRANKED = (
    ("#e8d77a", "A or B at its level from the start (t* = 0)"),
    ("0.6", "A or B never learned"),
)


def _phase_layers(t_a, t_b, span):
    """``(z, category)``: ``log10(t*_B / t*_A)`` where both are learned (clipped to
    ``span``), and 0 (a ``t* = 0``) or 1 (a never-learned feature) elsewhere, masked."""
    both = learned_mask(t_a) & learned_mask(t_b)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(both, np.clip(np.log10(t_b / t_a), -span, span), np.nan)
    at_start = (t_a == 0) | (t_b == 0)
    category = np.where(both, np.nan, np.where(at_start, 0.0, 1.0))
    return np.ma.masked_invalid(z), np.ma.masked_invalid(category)


def _phase_span(results) -> float:
    t_a, t_b = results["t_star_a"], results["t_star_b"]
    both = learned_mask(t_a) & learned_mask(t_b)
    finite = np.abs(np.log10(t_b[both] / t_a[both])) if both.any() else np.zeros(0)
    return max(float(finite.max()) if finite.size else 1.0, 1e-3)


def _phase_panel(ax, config, results, fixed, keys, span, norm, cmap):
    """One objective at one depth; returns ``(mappable, categories present)``."""
    import matplotlib.colors as mcolors

    x_key, y_key = keys
    values = dict(config.axes)
    t_a, t_b = (_grid(config, results, k, fixed, [y_key, x_key]) for k in ("t_star_a", "t_star_b"))
    z, category = _phase_layers(t_a, t_b, span)
    xs, ys = values[x_key], values[y_key]
    mappable = ax.pcolormesh(xs, ys, z, norm=norm, cmap=cmap, shading="nearest")
    if category.count():
        colours = mcolors.ListedColormap([c for c, _ in UNRANKED])
        ax.pcolormesh(xs, ys, category, cmap=colours, vmin=-0.5, vmax=1.5, shading="nearest")
    if z.min() < 0 < z.max():
        ax.contour(xs, ys, z.filled(np.nan), levels=[0.0], colors="k", linewidths=1.5)
    _mark_a(ax, config, x_key, y_key)
    ax.set_xscale("log" if _log_axis(xs, grid=True) else "linear")
    ax.set_yscale("log" if _log_axis(ys, grid=True) else "linear")
    plain_log_labels(ax.xaxis)
    plain_log_labels(ax.yaxis)
    ax.set_xlabel(LABELS[x_key])
    ax.set_ylabel(LABELS[y_key])
    return mappable, set(np.unique(category.compressed()).astype(int).tolist())


def _phase_line(ax, config, results, fixed, key):
    """One swept axis of B: ``t*_B / t*_A`` against it; returns the categories present."""
    values = np.asarray(dict(config.axes)[key])
    t_a, t_b = (_grid(config, results, k, fixed, [key]) for k in ("t_star_a", "t_star_b"))
    z, category = _phase_layers(t_a, t_b, np.inf)
    ax.plot(values, 10.0 ** z.filled(np.nan), "o-", ms=3, color="k")
    for k, (colour, _) in enumerate(UNRANKED):
        for x in values[category.filled(-1) == k]:
            ax.axvspan(x, x, color=colour, lw=6)
    ax.axhline(1.0, color="0.4", lw=1, ls="--")
    shown = 10.0 ** z.compressed()
    ax.set_yscale("log" if _log_axis(np.append(shown, 1)) else "linear")
    ax.set_xscale("log" if _log_axis(values, grid=True) else "linear")
    ax.set_xlabel(LABELS[key])
    ax.set_ylabel("t*_B / t*_A  (below 1: B first)")
    return set(np.unique(category.compressed()).astype(int).tolist())


def phase_figure(
    config: SweepConfig, results: dict, full: SweepConfig | None = None, fig=None, ax=None
):
    """``phase.png``: which feature is learned first, boundary drawn, per depth/objective.

    Colour: ``log10(t*_B / t*_A)`` where both are learned (``0 < t* < inf``);
    cells where one starts at its level (``t* = 0``) or is never learned are
    drawn in their own colours, named in the legend (theory §10). Returns the figure.
    """
    import matplotlib.colors as mcolors
    from matplotlib.patches import Patch

    values = dict(config.axes)
    x_key, y_key = _pair_axes(config)
    swept = [k for k in (x_key, y_key) if len(values[k]) > 1]
    rows, depths = _panels(config)
    if not swept:
        return _ratio_by_depth(config, results, full, fig, ax)
    plt, fig, axes = _figure(len(rows), len(depths), fig, ax)
    span = _phase_span(results)
    norm = mcolors.TwoSlopeNorm(vcenter=0.0, vmin=-span, vmax=span)
    cmap = plt.get_cmap("RdBu_r")
    present, mappable = set(), None
    for r, (gi, objective, method) in enumerate(rows):
        for c, depth in enumerate(depths):
            ax = axes[r, c]
            fixed = dict(_group_index(config, gi), depth=c)
            if len(swept) == 2:
                keys = (x_key, y_key)
                mappable, seen = _phase_panel(ax, config, results, fixed, keys, span, norm, cmap)
            else:
                seen = _phase_line(ax, config, results, fixed, swept[0])
            present |= seen
            ax.set_title(f"{objective.upper()} ({method}), depth L = {depth:g}", fontsize=9)
    if mappable is not None:
        fig.colorbar(mappable, ax=axes, label="log10(t*_B / t*_A): blue B first, red A first")
    if present:
        patches = [Patch(color=UNRANKED[k][0], label=UNRANKED[k][1]) for k in sorted(present)]
        fig.legend(handles=patches, loc="outside lower center", fontsize=9, frameon=False)
    _suptitle(
        fig,
        f"Which feature is learned first ({_a_text(config)}; "
        + ("black line: t*_A = t*_B" if len(swept) == 2 else "t*_A = t*_B at 1")
        + ")"
        + _held(full or config, config, {"depth", x_key, y_key, "lam_a", "rho_a", "var_a"}),
    )
    return fig


def _a_text(config: SweepConfig) -> str:
    values = dict(config.axes)
    keys = ("lam_a", "rho_a", "var_a")
    return "A: " + ", ".join(f"{k} = {values[k][0]:g}" for k in keys if k in values)


def _ratio_by_depth(config: SweepConfig, results: dict, full=None, fig=None, ax=None):
    """Phase plot of a pair with one B: t*_B / t*_A against depth, a panel per objective."""
    rows, depths = _panels(config)
    plt, fig, axes = _figure(1, len(rows), fig, ax)
    for c, (gi, objective, method) in enumerate(rows):
        ax = axes[0, c]
        fixed = _group_index(config, gi)
        t_a, t_b = (_grid(config, results, k, fixed, ["depth"]) for k in ("t_star_a", "t_star_b"))
        z, category = _phase_layers(t_a, t_b, np.inf)  # a ratio only where both are learned
        ratio, d = 10.0 ** z.filled(np.nan), np.asarray(depths)
        ax.plot(d, ratio, "k-", lw=1)
        for below, colour, label in ((True, "tab:blue", "B first"), (False, "tab:red", "A first")):
            pick = np.isfinite(ratio) & ((ratio < 1) == below)
            ax.plot(d[pick], ratio[pick], "o", color=colour, label=label if pick.any() else None)
        for k, (colour, label) in enumerate(UNRANKED):
            hit = d[category.filled(-1) == k]
            for x in hit:
                ax.axvline(x, color=colour, lw=8, alpha=0.7, zorder=0)
            if hit.size:
                ax.plot([], [], color=colour, lw=8, alpha=0.7, label=label)
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
    held = _held(full or config, config, {"depth", *PAIR_B, "lam_a", "rho_a", "var_a"})
    _suptitle(
        fig, f"Learning order against depth ({_a_text(config)}; B: {b_text})\n" + held.strip(" ;()")
    )
    return fig


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
