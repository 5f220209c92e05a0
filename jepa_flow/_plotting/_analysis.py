"""The figure of a feature analysis (theory §9, §11): the spectrum and the features."""

from __future__ import annotations

import numpy as np
from jaxtyping import ArrayLike, Float
from matplotlib.figure import Figure

from .._training._real import FeatureAnalysis


def _spectrum(ax, analysis):
    """``rho``, and ``lam`` and ``var`` relative to their largest, against the feature index."""
    i = np.arange(analysis.d)
    ax.plot(i, analysis.rho, "o-", ms=3, label="rho = lam / var")
    ax.plot(i, analysis.lam / np.abs(analysis.lam).max(), "s-", ms=2, lw=0.8, label="lam / max")
    ax.plot(i, analysis.var / analysis.var.max(), "^-", ms=2, lw=0.8, label="var / max")
    ax.axhline(0.0, color="0.6", lw=0.5)
    ax.set_xlabel("feature i")
    kind = analysis.basis_kind + (f", {analysis.normalize}" if analysis.normalize else "")
    ax.set_title(
        f"basis {kind}: nonorthogonality {analysis.nonorthogonality:.3g}, "
        f"offdiag {analysis.offdiag:.3g}",
        fontsize=9,
    )
    ax.legend(fontsize=7)


def _feature(ax, vector, image_shape, title):
    v = vector / np.abs(vector).max()
    if image_shape is not None:
        ax.imshow(v.reshape(image_shape), cmap="RdBu_r", vmin=-1, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
    else:
        ax.plot(v, lw=1.0)
        ax.axhline(0.0, color="0.6", lw=0.5)
        ax.set_ylim(-1.1, 1.1)
        ax.tick_params(labelsize=6)
    ax.set_title(title, fontsize=7)


def plot_analysis(
    analysis: FeatureAnalysis,
    *,
    patterns: Float[ArrayLike, "D d"] | None = None,
    image_shape: tuple[int, int] | None = None,
    n_show: int = 16,
    fig: Figure | None = None,
) -> Figure:
    """The spectrum of a ``FeatureAnalysis`` and its first ``n_show`` features.

    Each feature is drawn as its pattern, the dual vector ``a_i`` (theory
    §11.2: the input direction whose encoding ``|Wbar a_i|`` is the feature's
    amplitude; the basis vector itself for an orthonormal basis).

    Args:
        analysis: a ``FeatureAnalysis`` (``jf.analyze``).
        patterns: ``[D, d]`` the patterns in the data's own coordinates (for
            example pixels, when the analysis ran on principal components);
            default ``analysis.dual``.
        image_shape: ``(h, w)`` with ``h w = D``: each feature is drawn as an
            image (diverging colours, scaled to its largest entry); None draws
            line plots (a series window, or any other vector).
        n_show: how many features (basis order) to draw, at most ``d``.
        fig: a matplotlib Figure to draw into (cleared), else a new one.

    Returns the Figure, open (close it, or save it with ``fig.savefig``).

    Examples:
        >>> import numpy as np, jepa_flow as jf
        >>> fa = jf.analyze(jf.gaussian(Sxx=[2.0, 1.0, 0.5, 0.3], Syx=[1.0, 0.8, 0.2, 0.1]))
        >>> fig = jf.plot_analysis(fa, image_shape=(2, 2), n_show=3)
        >>> len(fig.axes)  # the spectrum and three features
        4
        >>> import matplotlib.pyplot as plt; plt.close(fig)
    """
    import matplotlib.pyplot as plt

    V = analysis.dual if patterns is None else np.asarray(patterns)
    if V is None:  # an analysis saved before the dual vectors existed: orthonormal
        V = analysis.basis
    n_show = int(min(n_show, analysis.d))
    cols = min(8, max(n_show, 1))
    rows = -(-n_show // cols)
    if fig is None:
        fig = plt.figure(figsize=(max(8.0, 1.4 * cols), 3.2 + 1.5 * rows))
    else:
        fig.clear()
    grid = fig.add_gridspec(1 + rows, cols, height_ratios=[2.2] + [1.0] * rows)
    _spectrum(fig.add_subplot(grid[0, :]), analysis)
    for k in range(n_show):
        ax = fig.add_subplot(grid[1 + k // cols, k % cols])
        _feature(ax, V[:, k], image_shape, f"{k}: rho {analysis.rho[k]:.3g}")
    fig.tight_layout()
    return fig
