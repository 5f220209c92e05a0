"""Figure of a finished ``[train]`` sweep: where SGD departs from the flow (theory §8.4, §10).

``train_sweep.png``: one row per (objective, depth), two heatmaps over
``(eta, batch)``:

- left: the median over seeds of each run's largest relative error of the
  critical times against the theory (log colour); a run that did not follow
  its reference or diverged counts as infinite: grey where the median is (at
  least half the seeds ended away from the flow), marked x where most seeds
  diverged;
- right: the fraction of seeds whose learning order matches the theory's.

The black line on both is the departure boundary: it encloses the cells where
every seed followed the flow and the median relative error is at most
``DEPARTURE`` (5 %).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from jaxtyping import Bool, Float

from .._core._results import register_result
from .._sweeps._result import SweepResult

DEPARTURE = 0.05


@register_result
@dataclasses.dataclass(frozen=True)
class Departure:
    """Where SGD departs from the flow, per cell of a training sweep (theory §8.4, §10).

    Arrays have the axes ``[objective, batch, eta, depth]`` of the sweep
    (seeds reduced), in its order.

    Attributes:
        median_error: median over seeds of each run's largest relative error
            of the critical times against the theory; a run that did not
            follow its reference or diverged counts as inf.
        order_fraction: fraction of seeds whose learning order matches the theory's.
        departed: some seed not followed, or ``median_error`` above ``threshold``.
        diverged_fraction: fraction of seeds that diverged.
        threshold: the relative error beyond which a cell has departed.

    Examples:
        >>> import numpy as np, jepa_flow as jf
        >>> d = jf.Departure(np.array([0.01, 0.2]), np.ones(2), np.array([False, True]),
        ...                  np.zeros(2), threshold=0.05)
        >>> d.departed.tolist(), d.threshold
        ([False, True], 0.05)
    """

    median_error: Float[np.ndarray, "objective batch eta depth"]
    order_fraction: Float[np.ndarray, "objective batch eta depth"]
    departed: Bool[np.ndarray, "objective batch eta depth"]
    diverged_fraction: Float[np.ndarray, "objective batch eta depth"]
    threshold: float = DEPARTURE


def departure(result: SweepResult, *, threshold: float = DEPARTURE) -> Departure:
    """The ``Departure`` of a finished training sweep (``[train]``, ``jf.run_sweep``).

    Args:
        result: a training sweep's ``SweepResult`` (``run_sweep`` or ``load_sweep``).
        threshold: the median relative error beyond which a cell has departed
            (default 5 %).

    Examples:
        >>> import tempfile, jepa_flow as jf
        >>> cfg = jf.parse_sweep_config('''
        ... [train]
        ... objective = "mae"
        ... data = "gaussian"
        ... lam = [1.0, 0.8]
        ... var = [2.0, 1.0]
        ... depth = 1
        ... eta = [0.01, 1.2]
        ... batch = "population"
        ... seed = {range = 2}
        ... steps = 4000
        ... eps = 0.05
        ... ''')
        >>> d = jf.departure(jf.run_sweep(cfg, tempfile.mkdtemp(), progress=False))
        >>> d.departed.shape, d.departed[0, 0, :, 0].tolist()  # [objective, batch, eta, depth]
        ((1, 1, 2, 1), [False, True])
    """
    if result.config.name != "train":
        raise ValueError(f"result: a training sweep ([train]); got a {result.config.name} sweep")
    if not 0 < threshold < np.inf:
        raise ValueError(f"threshold must be > 0 and finite; got {threshold!r}")
    config = result.config
    shape = config.shape  # objective, batch, eta, depth, seed
    err = np.asarray(result["rel_error"], float)
    followed = np.asarray(result["followed"])
    worst = np.where(followed, np.where(np.isnan(err), np.inf, err).max(axis=-1), np.inf)
    median = np.median(worst.reshape(shape), axis=-1)
    return Departure(
        median_error=median,
        order_fraction=np.asarray(result["order_match"]).reshape(shape).mean(axis=-1),
        departed=~followed.reshape(shape).all(axis=-1) | ~(median <= threshold),
        diverged_fraction=np.asarray(result["diverged"]).reshape(shape).mean(axis=-1),
        threshold=float(threshold),
    )


def boundary(mask) -> list[tuple[tuple[float, float], tuple[float, float]]]:
    """The cell edges between ``mask`` True and False cells, as ``((x0, x1), (y0, y1))``.

    ``mask`` is ``[rows, cols]`` drawn by ``imshow`` (cell ``(i, j)`` centred at ``x = j``,
    ``y = i``).

    Examples:
        >>> boundary(np.array([[False, True]]))
        [((0.5, 0.5), (-0.5, 0.5))]
    """
    mask = np.asarray(mask, bool)
    edges = []
    for i, j in zip(*np.nonzero(mask[:, 1:] != mask[:, :-1])):
        edges.append(((j + 0.5, j + 0.5), (i - 0.5, i + 0.5)))
    for i, j in zip(*np.nonzero(mask[1:, :] != mask[:-1, :])):
        edges.append(((j - 0.5, j + 0.5), (i + 0.5, i + 0.5)))
    return [((float(a), float(b)), (float(c), float(e))) for (a, b), (c, e) in edges]


def departure_figure(result: SweepResult, fig=None):
    """``train_sweep.png`` of a finished ``[train]`` sweep (module docstring); the figure."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    config = result.config
    grid = departure(result)
    objectives, batches, etas, depths, _ = (v for _, v in config.axes)
    rows = [(o, di) for o in range(len(objectives)) for di in range(len(depths))]
    size = (2 * (0.45 * len(etas) + 2.6), 0.45 * len(batches) * len(rows) + 1.0 * len(rows))
    fig = fig or plt.figure(figsize=size)
    fig.set_layout_engine("constrained")
    axes = fig.subplots(len(rows), 2, squeeze=False)
    cmap = plt.get_cmap("viridis").with_extremes(bad="0.6")
    finite = grid.median_error[np.isfinite(grid.median_error)]
    lo = max(float(finite[finite > 0].min()) if (finite > 0).any() else 1e-4, 1e-8)
    hi = max(float(finite.max()) if finite.size else 1.0, lo * 10)
    norm = LogNorm(vmin=lo, vmax=hi)
    x_labels = [f"{e:.2g}" for e in etas]
    y_labels = ["pop." if b is None else str(b) for b in batches]
    for r, (o, di) in enumerate(rows):
        err = grid.median_error[o, :, :, di]
        frac = grid.order_fraction[o, :, :, di]
        dep = grid.departed[o, :, :, di].astype(float)
        title = f"{objectives[o]}, depth {depths[di]}"
        panels = (
            (np.ma.masked_invalid(np.where(err > 0, err, lo)), norm, cmap, "median rel. error"),
            (frac, None, plt.get_cmap("RdYlGn"), "order matches (fraction of seeds)"),
        )
        for c, (values, nrm, cm, label) in enumerate(panels):
            ax = axes[r, c]
            kw = {"norm": nrm} if nrm is not None else {"vmin": 0.0, "vmax": 1.0}
            im = ax.imshow(values, origin="lower", aspect="auto", cmap=cm, **kw)
            for xs, ys in boundary(dep):
                ax.plot(xs, ys, "k-", linewidth=2)
            if c == 0:  # most seeds diverged: no error at all
                for i, j in zip(*np.nonzero(grid.diverged_fraction[o, :, :, di] > 0.5)):
                    ax.text(j, i, "x", ha="center", va="center", fontsize=9, color="k")
            ax.set_xticks(range(len(etas)), x_labels, rotation=45, fontsize=7)
            ax.set_yticks(range(len(batches)), y_labels, fontsize=7)
            ax.set_xlabel("learning rate eta")
            ax.set_ylabel("batch")
            ax.set_title(f"{title}: {label}", fontsize=8)
            fig.colorbar(im, ax=ax, shrink=0.8)
    fig.suptitle(
        f"SGD against the flow ({config.describe()})\n"
        f"line: departure (not followed or median error > {grid.threshold:.0%}); grey: most "
        "seeds did not end near the flow, no error reported (x: most seeds diverged)",
        fontsize=9,
    )
    return fig
