"""Training results as labelled N-d arrays: ``TrainResult.to_xarray`` (xarray optional).

The grid axes ``seed``, ``depth``, ``eta`` carry their values as
coordinates; ``record`` (with ``step`` and, per member, ``t``), ``feature``
(the columns of the data's ``U``), ``layer`` and the matrix axes ``out`` /
``in`` label the rest.
"""

from __future__ import annotations

import json

import numpy as np

from .._core._grid import GRID, import_xarray

# the axes after [seed, depth, eta] of each recorded array
_TRAILING = {
    "t": ("record",),
    "loss": ("record",),
    "sv": ("record", "component"),
    "norm": ("record", "feature"),
    "diag": ("record", "feature"),
    "offdiag": ("record", "feature"),
    "latent": ("record", "channel", "feature"),
    "t_star": ("feature",),
    "status": ("feature",),
    "W0": ("layer", "out", "in"),
    "V0": ("out", "in"),
    "W": ("layer", "out", "in"),
    "V": ("out", "in"),
}


def train_dataset(result):
    """``result`` (a ``TrainResult``) as an ``xarray.Dataset`` over its grid and records."""
    xr = import_xarray("TrainResult.to_xarray")
    data = {
        name: (GRID + dims, np.asarray(getattr(result, name)))
        for name, dims in _TRAILING.items()
        if getattr(result, name) is not None
    }
    data["level"] = (("depth", "feature"), np.asarray(result.level))
    if result.teacher is not None:
        data["teacher"] = (("out", "in"), np.asarray(result.teacher))
    coords = {
        "seed": np.asarray(result.seed),
        "depth": np.asarray(result.depth),
        "eta": np.asarray(result.eta),
        "step": ("record", np.asarray(result.step)),
        "feature": np.arange(result.data.d),
    }
    attrs = {
        "objective": result.config.objective,
        "config": json.dumps(result.config.to_dict()),
        "data": result.data.model,
    }
    return xr.Dataset(data, coords=coords, attrs=attrs)
