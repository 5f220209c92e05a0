"""jepa_flow: training dynamics of deep linear JEPA and MAE.

Closed-form per-feature gradient flows (THEORY.md), integrated with diffrax.
For the documented float64 accuracy, enable x64 before any jax computation::

    import jax
    jax.config.update("jax_enable_x64", True)

The ``jepa-flow`` command line does this itself.
"""

from ._critical_time import critical_time as critical_time
from ._critical_time import fixed_point as fixed_point
from ._simulate import Trajectory as Trajectory
from ._simulate import simulate as simulate
from ._compare import compare as compare
from ._compare import plot_compare as plot_compare
from ._data import Data as Data
from ._data import gaussian as gaussian
from ._data import linear_dynamics as linear_dynamics
from ._data import noisy_views as noisy_views
from ._data import random_rotation as random_rotation
from ._fullflow import FullFlow as FullFlow
from ._fullflow import full_flow as full_flow
from ._model import Params as Params
from ._train import DivergenceError as DivergenceError
from ._train import TrainResult as TrainResult
from ._train import train as train

__version__ = "0.1.0"

__all__ = ["Trajectory", "critical_time", "fixed_point", "simulate", "__version__"]

from ._sweep_load import load_sweep as load_sweep
from ._sweep import run_sweep as run_sweep
from ._sweep_config import SweepConfig as SweepConfig
from ._sweep_config import parse_config as parse_sweep_config

__all__ += ["SweepConfig", "load_sweep", "parse_sweep_config", "run_sweep"]
__all__ += ["Data", "DivergenceError", "FullFlow", "Params", "TrainResult", "compare",
            "full_flow", "gaussian", "linear_dynamics", "noisy_views", "plot_compare",
            "random_rotation", "train"]
