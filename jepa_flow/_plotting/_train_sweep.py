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

from pathlib import Path

import numpy as np

DEPARTURE = 0.05


def departure_grid(results: dict, config) -> dict[str, np.ndarray]:
    """Per (objective, batch, eta, depth): ``median_error``, ``order_fraction``, ``departed``,
    ``diverged_fraction``.

    ``results``: the columns of ``load_sweep``; arrays have the axes
    ``[objective, batch, eta, depth]`` (seeds reduced).
    """
    shape = config.shape  # objective, batch, eta, depth, seed
    err = np.asarray(results["rel_error"], float)
    worst = np.where(results["followed"], np.where(np.isnan(err), np.inf, err).max(axis=-1), np.inf)
    worst = worst.reshape(shape)
    median = np.median(worst, axis=-1)
    order = results["order_match"].reshape(shape).mean(axis=-1)
    followed = results["followed"].reshape(shape).all(axis=-1)
    diverged = np.asarray(results["diverged"]).reshape(shape).mean(axis=-1)
    return {
        "median_error": median,
        "order_fraction": order,
        "departed": ~followed | ~(median <= DEPARTURE),
        "diverged_fraction": diverged,
    }


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


def plot_train_sweep(out) -> list[str]:
    """Draw ``train_sweep.png`` of the finished ``[train]`` sweep in ``out``; returns its name."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    from .._sweeps._load import load_sweep

    out = Path(out)
    result = load_sweep(out)
    config = result.config
    grid = departure_grid(result.columns(), config)
    objectives, batches, etas, depths, _ = (v for _, v in config.axes)
    rows = [(o, di) for o in range(len(objectives)) for di in range(len(depths))]
    fig, axes = plt.subplots(
        len(rows),
        2,
        figsize=(2 * (0.45 * len(etas) + 2.6), 0.45 * len(batches) * len(rows) + 1.0 * len(rows)),
        squeeze=False,
        constrained_layout=True,
    )
    cmap = plt.get_cmap("viridis").with_extremes(bad="0.6")
    finite = grid["median_error"][np.isfinite(grid["median_error"])]
    lo = max(float(finite[finite > 0].min()) if (finite > 0).any() else 1e-4, 1e-8)
    hi = max(float(finite.max()) if finite.size else 1.0, lo * 10)
    norm = LogNorm(vmin=lo, vmax=hi)
    x_labels = [f"{e:.2g}" for e in etas]
    y_labels = ["pop." if b is None else str(b) for b in batches]
    for r, (o, di) in enumerate(rows):
        err = grid["median_error"][o, :, :, di]
        frac = grid["order_fraction"][o, :, :, di]
        dep = grid["departed"][o, :, :, di].astype(float)
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
                for i, j in zip(*np.nonzero(grid["diverged_fraction"][o, :, :, di] > 0.5)):
                    ax.text(j, i, "x", ha="center", va="center", fontsize=9, color="k")
            ax.set_xticks(range(len(etas)), x_labels, rotation=45, fontsize=7)
            ax.set_yticks(range(len(batches)), y_labels, fontsize=7)
            ax.set_xlabel("learning rate eta")
            ax.set_ylabel("batch")
            ax.set_title(f"{title}: {label}", fontsize=8)
            fig.colorbar(im, ax=ax, shrink=0.8)
    fig.suptitle(
        f"SGD against the flow ({config.describe()})\n"
        f"line: departure (not followed or median error > {DEPARTURE:.0%}); grey: most "
        "seeds did not end near the flow, no error reported (x: most seeds diverged)",
        fontsize=9,
    )
    fig.savefig(out / "train_sweep.png", dpi=110)
    plt.close(fig)
    return ["train_sweep.png"]
