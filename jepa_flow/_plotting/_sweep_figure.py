"""``plot_sweep``: the default figure of a finished sweep, whatever its kind.

- a balanced ``[sweep]`` with a ``[pair]`` table: the phase diagram
  (``phase.png``, ``_sweep.phase_figure``): which feature is learned first;
- a balanced ``[sweep]`` of single features: the critical time over
  ``(rho, lam)`` (``critical_time.png``, ``_sweep.critical_time_figure``);
- a ``[train]`` sweep: where SGD departs from the flow (``train_sweep.png``,
  ``_train_sweep.departure_figure``);
- a ``[validity]`` sweep: the validity map per objective (``validity.png``,
  ``_validity.validity_figure``): Spearman and median time error of each
  theory against the full-matrix flow over ``theta x depth``;
- a ``flow = "general"`` sweep has no default figure.

Only the rows drawn are read (``SweepResult.sel``), so the memory is that of
the figure's sub-grid, whatever the sweep's size. ``write_sweep_figure`` is
what ``jepa-flow sweep`` calls (``SweepKind.plot`` names it).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .._core._io import save_figure_atomic
from .._sweeps._load import load_sweep
from .._sweeps._result import SweepResult
from ._sweep import PAIR_B, critical_time_figure, phase_figure
from ._train_sweep import departure_figure
from ._validity import validity_figure

# the axes a balanced sweep's figure draws; every other numeric axis is held at one value
DRAWN = frozenset({"depth", "lam", "rho", "var", *PAIR_B})


def figure_name(result: SweepResult) -> str | None:
    """The file name of ``result``'s default figure (None: its kind has none)."""
    config = result.config
    if config.name == "train":
        return "train_sweep.png"
    if config.name == "validity":
        return "validity.png"
    if config.name == "balanced":
        return "phase.png" if config.pair else "critical_time.png"
    return None


def _held_view(result: SweepResult, at: Mapping[str, object]):
    """``(sub_config, columns)``: ``result`` on the drawn sub-grid.

    Every numeric axis that is not drawn is held at its value in ``at``, else
    at its first; an axis named in ``at`` (drawn or not, ``objective`` and
    ``method`` too) is cut to that one value.
    """
    full = result.config
    grid = full.grid
    unknown = sorted(set(at) - set(grid.names))
    if unknown:
        raise ValueError(f"at: no axis {unknown[0]!r}; the axes: {', '.join(grid.names)}")
    held = {n for n, v in full.numeric_axes if n not in DRAWN and len(v) > 1}
    axes, selection = [], {}
    for name, values in full.axes:
        if name in at:
            k = int(grid.positions(name, at[name])[0])
        elif name in held:
            k = 0
        else:
            axes.append((name, values))
            continue
        kept = values[k : k + 1]
        axes.append((name, kept))
        selection[name] = kept[0]
    sub = dataclasses.replace(full, axes=tuple(axes))
    return sub, result.sel(**selection) if selection else result.columns()


def plot_sweep(
    result: SweepResult,
    *,
    at: Mapping[str, float | str] | None = None,
    ax: Axes | None = None,
    fig: Figure | None = None,
    path: str | os.PathLike | None = None,
) -> Figure:
    """The default figure of a finished sweep (``jf.run_sweep`` or ``jf.load_sweep``).

    A ``[pair]`` sweep draws the phase diagram: which feature is learned
    first (colour ``log10(t*_B / t*_A)`` where both are learned, the boundary
    ``t*_A = t*_B`` in black; theory §4, §10), one panel per depth and
    objective; a line against B's one swept axis, or against depth when B is
    one point. A sweep of single features draws ``t*`` over ``(rho, lam)``;
    a ``[train]`` sweep where SGD departs from the flow (``jf.departure``); a
    ``[validity]`` sweep the validity map of each objective (Spearman and
    median relative time error of every theory over ``theta x depth``, the
    median over the other axes).
    A ``flow = "general"`` sweep has no default figure (``ValueError``).

    Args:
        result: the sweep's ``SweepResult``.
        at: ``{axis: value}``: axes a balanced sweep's figure does not draw
            (``eps``, ``fraction``, feature A's parameters) are held at this
            value, else at their first; naming a drawn axis (``depth``,
            ``objective``, ``method``) keeps that one panel. Not for ``[train]``;
            a ``[validity]`` sweep keeps the rows at these values (the
            medians are over the rest).
        ax: an Axes to draw into, for a one-panel figure (one objective,
            method and depth: select them with ``at``); fig: a Figure to draw into.
        path: where to save the figure (atomically, 110 dpi), when given.

    Returns:
        The figure, open (close it with ``matplotlib.pyplot.close(fig)``).

    Examples:
        >>> import tempfile, jepa_flow as jf
        >>> cfg = jf.parse_sweep_config('''
        ... [sweep]
        ... objective = ["jepa", "mae"]
        ... depth = [1, 4]
        ... eps = 1e-3
        ... [pair]
        ... lam_a = 1.0
        ... var_a = 2.0
        ... lam_ratio = {logspace = [-0.4, 0.4, 5]}
        ... rho_ratio = {logspace = [-0.1, 0.4, 5]}
        ... ''')
        >>> result = jf.run_sweep(cfg, tempfile.mkdtemp(), progress=False)
        >>> fig = jf.plot_sweep(result)
        >>> [ax.get_title() for ax in fig.axes[:2]]
        ['JEPA (exact), depth L = 1', 'JEPA (exact), depth L = 4']
        >>> one = jf.plot_sweep(result, at={"objective": "mae", "depth": 4})
        >>> len(one.axes)  # the panel and its colour bar
        2
    """
    at = dict(at or {})
    kind = result.config.name
    if kind == "train":
        if at or ax is not None:
            raise ValueError("at, ax: a [train] sweep's figure shows every cell; pass fig=")
        figure = departure_figure(result, fig)
    elif kind == "validity":
        if ax is not None:
            raise ValueError("ax: a [validity] sweep's figure has a panel per theory; pass fig=")
        figure = validity_figure(result, at, fig)
    elif kind == "balanced":
        sub, columns = _held_view(result, at)
        draw = phase_figure if sub.pair else critical_time_figure
        figure = draw(sub, columns, result.config, fig, ax)
    else:
        raise ValueError(
            f"result: a {kind} sweep has no default figure; draw its columns "
            "(result.sel(...), result.to_xarray())"
        )
    if path is not None:
        save_figure_atomic(figure, path, dpi=110)
    return figure


def write_sweep_figure(out: str | os.PathLike) -> list[str]:
    """Draw the default figure of the finished sweep in ``out`` into ``out``; its file names."""
    import matplotlib.pyplot as plt

    result = load_sweep(out)
    name = figure_name(result)
    if name is None:
        return []
    plt.close(plot_sweep(result, path=Path(out) / name))
    return [name]
