"""Sweep configurations: a TOML file, parsed into the ``SweepKind`` it describes.

Four kinds (``_kind``): ``[sweep]`` (and ``[pair]``) tables describe
critical times of the balanced flow (``_balanced``, ``SweepConfig``), the
same with ``flow = "general"`` the general per-feature flow (``_general``),
a ``[train]`` table SGD training runs against the theory (``_train``), and a
``[validity]`` table the per-feature theories against the full-matrix flow on
the synthetic non-commutation family (``_validity``). An
optional ``[budget]`` table (``memory``, ``disk``) raises the budgets of any
kind. Each kind's module documents its keys.
"""

from __future__ import annotations

import tomllib

from ._balanced import SweepConfig
from ._general import GeneralSweepConfig
from ._kind import SweepKind, fingerprint_of
from ._train import TrainSweepConfig
from ._validity import ValiditySweepConfig
from ._values import budget_of

KINDS: tuple[type[SweepKind], ...] = (
    TrainSweepConfig,
    ValiditySweepConfig,
    GeneralSweepConfig,
    SweepConfig,
)
TABLES = ("sweep", "pair", "budget", "train", "validity")

__all__ = ["KINDS", "SweepConfig", "fingerprint_of", "load_config", "parse_config"]


def parse_config(
    text: str,
    *,
    max_memory: int | str | None = None,
    max_disk: int | str | None = None,
    budget: bool = True,
) -> SweepKind:
    """Parse and validate a sweep configuration (TOML text) into its ``SweepKind``.

    Args:
        text: the TOML text.
        max_memory, max_disk: budgets in bytes or size strings such as ``"16G"``;
            they override the ``[budget]`` table, which overrides the defaults
            (4 GiB, 20 GiB).
        budget: False to skip the budget checks (reading finished results).

    Returns a ``SweepConfig`` (``[sweep]``), a ``GeneralSweepConfig``
    (``[sweep]`` with ``flow = "general"``), a ``TrainSweepConfig``
    (``[train]``) or a ``ValiditySweepConfig`` (``[validity]``); all four
    implement the ``SweepKind`` interface.

    Raises ``ValueError`` naming the offending key for unknown tables or keys,
    missing or conflicting keys, empty grids and invalid values, and a
    ``BudgetError`` (a ``ValueError``) with the estimate when the grid's axes
    or results would exceed the budget; the grid is counted before any axis
    is generated, and nothing is computed or written before this succeeds.

    Examples:
        >>> import jepa_flow as jf
        >>> config = jf.parse_sweep_config('''
        ... [sweep]
        ... objective = ["jepa", "mae"]
        ... depth = [1, 2, 4, 8]
        ... lam = {logspace = [-2, 1, 64]}
        ... rho = {linspace = [0.05, 0.95, 64]}
        ... eps = 1e-3
        ... ''')
        >>> config.names
        ('objective', 'method', 'depth', 'eps', 'fraction', 'lam', 'rho')
        >>> config.shape, config.size
        ((2, 1, 4, 1, 1, 64, 64), 32768)
        >>> dict(config.axes)["method"], float(dict(config.axes)["fraction"][0])  # defaults
        (('exact',), 0.5)
        >>> jf.parse_sweep_config('''
        ... [sweep]
        ... objective = "jepa"
        ... depth = [1, 0]
        ... lam = 1.0
        ... var = 2.0
        ... eps = 1e-3
        ... ''')
        Traceback (most recent call last):
        ...
        ValueError: sweep.depth: depth must be an integer in [1, 1024]; got 0.0 at index (1,)
    """
    if not isinstance(text, str):
        raise ValueError(f"text must be the TOML configuration as a str; got {type(text).__name__}")
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"configuration is not valid TOML: {err}") from None
    unknown = set(doc) - set(TABLES)
    if unknown:
        raise ValueError(
            f"unknown table or key {min(unknown)!r} (allowed: [sweep], [pair], [train], "
            "[validity], [budget])"
        )
    limits = budget_of(doc, max_memory, max_disk)
    for kind in KINDS:
        if kind.claims(doc):
            return kind.from_toml(doc, text, limits=limits, check=budget)
    raise ValueError("a [sweep] (or [train], or [validity]) table is required")


def load_config(path, *, max_memory=None, max_disk=None) -> SweepKind:
    """Read and validate a sweep configuration file (budgets as in ``parse_config``)."""
    try:
        with open(path, "rb") as fh:
            text = fh.read().decode()
    except OSError as err:
        raise ValueError(f"cannot read configuration {str(path)!r}: {err.strerror}") from None
    except UnicodeDecodeError:
        raise ValueError(f"configuration {str(path)!r} is not UTF-8 text") from None
    return parse_config(text, max_memory=max_memory, max_disk=max_disk)
