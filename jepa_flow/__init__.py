"""jepa_flow: training dynamics of deep linear JEPA and MAE.

Closed-form per-feature gradient flows (docs/theory.md), integrated with diffrax.
For the documented float64 accuracy, enable x64 before any jax computation::

    import jax
    jax.config.update("jax_enable_x64", True)

The ``jepa-flow`` command line does this itself.
"""

# core: the balanced per-feature flow (theory §3-§4)
from ._plotting._compare import plot_compare as plot_compare
from ._sweeps._config import SweepConfig as SweepConfig
from ._sweeps._config import parse_config as parse_sweep_config
from ._sweeps._load import load_sweep as load_sweep

# sweeps over parameter grids
from ._sweeps._run import run_sweep as run_sweep
from ._theory._critical_time import critical_time as critical_time
from ._theory._critical_time import fixed_point as fixed_point
from ._theory._fullflow import FullFlow as FullFlow
from ._theory._fullflow import full_flow as full_flow
from ._theory._simulate import Trajectory as Trajectory
from ._theory._simulate import simulate as simulate

# training of full-matrix models, and theory versus training (theory §5-§7)
from ._training._compare import compare as compare
from ._training._data import Data as Data
from ._training._data import gaussian as gaussian
from ._training._data import linear_dynamics as linear_dynamics
from ._training._data import noisy_views as noisy_views
from ._training._data import random_rotation as random_rotation
from ._training._datasets import digit_pairs as digit_pairs
from ._training._datasets import from_npz as from_npz
from ._training._datasets import load_dataset as load_dataset
from ._training._datasets import patch_pairs as patch_pairs
from ._training._datasets import series_pairs as series_pairs
from ._training._model import Params as Params
from ._training._nonlinear import NonlinearResult as NonlinearResult
from ._training._nonlinear import train_nonlinear as train_nonlinear

# real two-view data and its feature analysis (theory §9)
from ._training._real import FeatureAnalysis as FeatureAnalysis
from ._training._real import LearnedDirections as LearnedDirections
from ._training._real import alignment as alignment
from ._training._real import analyze as analyze
from ._training._real import from_samples as from_samples
from ._training._real import learned_directions as learned_directions
from ._training._real import learning_order as learning_order
from ._training._real import mae_end_directions as mae_end_directions
from ._training._real import principal_components as principal_components
from ._training._real import rank_correlation as rank_correlation
from ._training._real import top_k_overlap as top_k_overlap
from ._training._train import DivergenceError as DivergenceError
from ._training._train import TrainResult as TrainResult
from ._training._train import train as train

__version__ = "0.1.0"

__all__ = [
    "Data",
    "DivergenceError",
    "FeatureAnalysis",
    "FullFlow",
    "LearnedDirections",
    "NonlinearResult",
    "Params",
    "SweepConfig",
    "TrainResult",
    "Trajectory",
    "__version__",
    "alignment",
    "analyze",
    "compare",
    "critical_time",
    "digit_pairs",
    "fixed_point",
    "from_npz",
    "from_samples",
    "full_flow",
    "gaussian",
    "learned_directions",
    "learning_order",
    "linear_dynamics",
    "load_dataset",
    "load_sweep",
    "mae_end_directions",
    "noisy_views",
    "parse_sweep_config",
    "patch_pairs",
    "plot_compare",
    "principal_components",
    "random_rotation",
    "rank_correlation",
    "run_sweep",
    "series_pairs",
    "simulate",
    "top_k_overlap",
    "train",
    "train_nonlinear",
]
