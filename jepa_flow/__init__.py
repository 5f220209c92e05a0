"""jepa_flow: training dynamics of deep linear JEPA and MAE.

Closed-form per-feature gradient flows (docs/theory.md), integrated with diffrax.
For the documented float64 accuracy, enable x64 before any jax computation::

    import jax
    jax.config.update("jax_enable_x64", True)

The ``jepa-flow`` command line does this itself.
"""

from importlib import metadata as _metadata

# theory: the balanced per-feature flow and its derived quantities (docs/theory.md §3-§4, §10)
from ._theory._critical_time import critical_time as critical_time
from ._theory._critical_time import fixed_point as fixed_point
from ._theory._fullflow import FullFlow as FullFlow
from ._theory._fullflow import full_flow as full_flow
from ._theory._layers import Params as Params
from ._theory._order import OrderAgreement as OrderAgreement
from ._theory._order import flip_depth as flip_depth
from ._theory._order import learned_first as learned_first
from ._theory._order import learned_mask as learned_mask
from ._theory._order import learned_order as learned_order
from ._theory._order import learning_order as learning_order
from ._theory._order import order_agreement as order_agreement
from ._theory._order import rank_correlation as rank_correlation
from ._theory._order import rel_error as rel_error
from ._theory._order import top_k_overlap as top_k_overlap
from ._theory._series import cited_critical_time as cited_critical_time
from ._theory._simulate import Trajectory as Trajectory
from ._theory._simulate import simulate as simulate

# beyond the balanced flow: targets, capture and collapse (docs/theory.md §6-§7)
from ._theory._general import GeneralCriticalTime as GeneralCriticalTime
from ._theory._general import general_critical_time as general_critical_time
from ._theory._stability import PredictedCapture as PredictedCapture
from ._theory._stability import capture_gain as capture_gain
from ._theory._stability import capture_rate as capture_rate
from ._theory._stability import collapsed_predictor as collapsed_predictor
from ._theory._stability import collapses as collapses
from ._theory._stability import convergence_rate as convergence_rate
from ._theory._stability import perturbation_size as perturbation_size
from ._theory._stability import predicted_captures as predicted_captures
from ._theory._targets import ema_flow_tau as ema_flow_tau
from ._theory._targets import ema_half_time_delay as ema_half_time_delay
from ._theory._targets import frozen_teacher_lam as frozen_teacher_lam

# training full-matrix models, and theory versus training (docs/theory.md §5-§7)
from ._training._compare import Capture as Capture
from ._training._compare import Comparison as Comparison
from ._training._compare import compare as compare
from ._training._records import record_times as record_times
from ._training._config import TrainConfig as TrainConfig
from ._training._data import Data as Data
from ._training._data import gaussian as gaussian
from ._training._data import linear_dynamics as linear_dynamics
from ._training._data import noisy_views as noisy_views
from ._training._data import random_rotation as random_rotation
from ._training._synthetic import noncommuting as noncommuting
from ._training._train import DivergenceError as DivergenceError
from ._training._train import TrainResult as TrainResult
from ._training._train import diverged_members as diverged_members
from ._training._train import train as train

# feature bases off the diagonal (docs/theory.md §11)
from ._theory._basis import FeatureBasis as FeatureBasis
from ._theory._basis import feature_basis as feature_basis
from ._theory._basis import generalized_basis as generalized_basis

# real two-view data, its feature analysis, nonlinear encoders (docs/theory.md §9)
from ._training._datasets import digit_pairs as digit_pairs
from ._training._datasets import from_npz as from_npz
from ._training._datasets import load_dataset as load_dataset
from ._training._datasets import patch_pairs as patch_pairs
from ._training._datasets import series_pairs as series_pairs
from ._training._nonlinear import NonlinearResult as NonlinearResult
from ._training._nonlinear import train_nonlinear as train_nonlinear
from ._training._real import FeatureAnalysis as FeatureAnalysis
from ._training._directions import LearnedDirections as LearnedDirections
from ._training._directions import alignment as alignment
from ._training._real import analyze as analyze
from ._training._real import from_samples as from_samples
from ._training._directions import learned_directions as learned_directions
from ._training._directions import mae_end_directions as mae_end_directions
from ._training._real import principal_components as principal_components

# sweeps over parameter grids
from ._sweeps._config import SweepConfig as SweepConfig
from ._sweeps._result import SweepResult as SweepResult
from ._sweeps._train import TrainSweepConfig as TrainSweepConfig
from ._sweeps._validity import ValiditySweepConfig as ValiditySweepConfig
from ._sweeps._config import parse_config as parse_sweep_config
from ._sweeps._load import load_sweep as load_sweep
from ._sweeps._run import can_resume as can_resume
from ._sweeps._run import run_sweep as run_sweep
from ._plotting._train_sweep import Departure as Departure
from ._plotting._train_sweep import departure as departure

# outcomes of solves, and the errors a caller can catch (each a ValueError)
from ._core._budget import BudgetError as BudgetError
from ._core._lock import DirectoryLocked as DirectoryLocked
from ._core._grid import Selection as Selection
from ._core._status import Status as Status
from ._core._warn import JepaFlowWarning as JepaFlowWarning

# saving and loading any result (one .json and one .npz)
from ._core._results import load_result as load_result
from ._core._results import save_result as save_result

# figures
from ._plotting._analysis import plot_analysis as plot_analysis
from ._plotting._compare import plot_compare as plot_compare
from ._plotting._compare import plot_train as plot_train
from ._plotting._dynamics import plot_trajectory as plot_trajectory
from ._plotting._sweep_figure import plot_sweep as plot_sweep

# the version is written once, in pyproject.toml; the installed package's metadata carries it
try:
    __version__ = _metadata.version("jepa_flow")
except _metadata.PackageNotFoundError:  # a source tree on sys.path that was never installed
    __version__ = "0+unknown"

__all__ = [
    "BudgetError",
    "Capture",
    "Comparison",
    "Data",
    "DirectoryLocked",
    "Departure",
    "DivergenceError",
    "FeatureAnalysis",
    "FeatureBasis",
    "FullFlow",
    "GeneralCriticalTime",
    "JepaFlowWarning",
    "LearnedDirections",
    "NonlinearResult",
    "OrderAgreement",
    "Params",
    "PredictedCapture",
    "Selection",
    "Status",
    "SweepConfig",
    "SweepResult",
    "TrainConfig",
    "TrainResult",
    "TrainSweepConfig",
    "Trajectory",
    "ValiditySweepConfig",
    "__version__",
    "alignment",
    "analyze",
    "can_resume",
    "capture_gain",
    "capture_rate",
    "cited_critical_time",
    "collapsed_predictor",
    "collapses",
    "compare",
    "convergence_rate",
    "critical_time",
    "departure",
    "digit_pairs",
    "diverged_members",
    "feature_basis",
    "ema_flow_tau",
    "ema_half_time_delay",
    "fixed_point",
    "flip_depth",
    "from_npz",
    "from_samples",
    "frozen_teacher_lam",
    "full_flow",
    "gaussian",
    "general_critical_time",
    "generalized_basis",
    "learned_directions",
    "learned_first",
    "learned_mask",
    "learned_order",
    "learning_order",
    "linear_dynamics",
    "load_dataset",
    "load_result",
    "load_sweep",
    "mae_end_directions",
    "noisy_views",
    "noncommuting",
    "order_agreement",
    "parse_sweep_config",
    "patch_pairs",
    "perturbation_size",
    "plot_analysis",
    "plot_compare",
    "plot_sweep",
    "plot_train",
    "plot_trajectory",
    "predicted_captures",
    "principal_components",
    "random_rotation",
    "rank_correlation",
    "record_times",
    "rel_error",
    "run_sweep",
    "save_result",
    "series_pairs",
    "simulate",
    "top_k_overlap",
    "train",
    "train_nonlinear",
]
