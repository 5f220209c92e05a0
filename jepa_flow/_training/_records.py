"""When a training run records: log-spaced steps plus flow times dense over the rises.

``record_times(data, config)`` gives the flow times at which a comparison's
curves should be dense (over each depth's per-feature rises, docs/theory.md
§4); ``TrainConfig(t_extra="auto")`` asks ``train`` to compute them
(``resolve_t_extra``). ``record_steps`` turns them into steps and
``record_slots`` bounds their number for the compiled engine.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .._theory._critical_time import critical_time
from ._config import TrainConfig
from ._data import Data

# record_times' points per depth (the "auto" records' bound per depth)
AUTO_RECORDS = 100


def record_times(data: Data, config: TrainConfig, *, n: int = AUTO_RECORDS) -> np.ndarray:
    """Flow times to record for a comparison: linear grids over each depth's rises.

    From half the earliest to 1.5 times the latest per-feature critical time
    of every depth (docs/theory.md §4), ``n`` points each. ``train`` records
    them by itself under ``TrainConfig(t_extra="auto")`` (the default).

    Examples:
        >>> import jepa_flow as jf
        >>> data = jf.gaussian(Sxx=[2.0, 1.0], Syx=[1.0, 0.8])
        >>> t = jf.record_times(data, jf.TrainConfig(objective="mae", steps=1), n=3)
        >>> t.round(2).tolist()  # 0.5 x 6.0119 ... 1.5 x 7.8086
        [3.01, 7.36, 11.71]
    """
    if not isinstance(data, Data):
        raise ValueError(f"data must be a jepa_flow Data source; got {type(data).__name__}")
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig; got {type(config).__name__}")
    t = np.asarray(
        critical_time(
            config.objective,
            np.asarray(data.lam),
            np.asarray(data.var),
            np.asarray(config.depth)[:, None],
            config.eps,
            fraction=config.fraction,
        )
    )
    grids = []
    for row in t:
        row = row[np.isfinite(row) & (row > 0)]
        if row.size:
            grids.append(np.linspace(0.5 * row.min(), 1.5 * row.max(), n))
    return np.concatenate(grids) if grids else np.zeros(0)


def resolve_t_extra(data: Data, config: TrainConfig) -> TrainConfig:
    """``config`` with ``t_extra="auto"`` replaced by ``record_times(data, config)``."""
    if config.t_extra != "auto":
        return config
    return dataclasses.replace(config, t_extra=tuple(record_times(data, config).tolist()))


def record_steps(n_steps: int, n_t: int, extra=()) -> np.ndarray:
    """Step 0, about ``n_t - 1`` log-spaced steps up to ``n_steps``, and ``extra`` steps."""
    log = np.geomspace(1, n_steps, max(n_t - 1, 1)) if n_steps >= 1 else np.zeros(0)
    log = np.concatenate([log, np.clip(np.asarray(extra, float), 0, n_steps)])
    return np.unique(np.concatenate([[0], np.round(log).astype(np.int64), [n_steps]]))


def record_slots(config: TrainConfig) -> int:
    """The most records ``record_steps`` can return for ``config`` (its compiled size).

    ``train`` pads the record steps to this many with a step that is never
    reached, so that the record buffers' shape, and hence the compiled engine,
    does not depend on the run's length. Under ``t_extra="auto"`` it is the
    bound ``AUTO_RECORDS`` per depth.
    """
    if config.t_extra == "auto":
        extra = AUTO_RECORDS * len(config.depth)
    else:
        extra = len(config.t_extra)
    return max(config.n_t - 1, 1) + 2 + extra
