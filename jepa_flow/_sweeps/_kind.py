"""The sweep interface: ``SweepKind``, which every kind of sweep implements.

A sweep kind is a validated configuration that knows how to run itself, in
the way diffrax's solvers are objects of one abstract class: the runner
(``_run``), the store (``_store``), the reader (``_load``), ``SweepResult``
and the command line call only the methods below, never ask which kind they
hold. The kinds:

- ``SweepConfig`` (``_balanced``): critical times of the balanced flow
  (``[sweep]``, optionally ``[pair]``);
- ``GeneralSweepConfig`` (``_general``): the general per-feature flow
  (``[sweep]`` with ``flow = "general"``);
- ``TrainSweepConfig`` (``_train``): SGD training runs against the theory
  (``[train]``).

``parse_config`` (``_config``) asks each kind whether it ``claims`` a parsed
TOML document and lets the one that does build itself (``from_toml``).

The grid. A sweep's rows are ``blocks`` one after another, each block the
C-order product of its values of the sweep's ``axes`` (first axis slowest). A
balanced or training sweep is one block; a general sweep one block per
(objective, target), with ``tau`` and ``c`` held at NaN where they do not
apply. ``Grid`` holds the axes and the blocks as indices into each axis's
values, and turns flat rows into axis values and back.

The figures. ``_plotting`` sits above ``_sweeps`` (layers import only
downward), so a kind cannot call its plot. It names it instead: ``plot`` is
``"module:function"`` of a function in ``jepa_flow._plotting`` that takes the
output directory and returns the names of the files it wrote (None: no
default figure); the command line imports and calls it (``_cli._sweep``).
"""

from __future__ import annotations

import abc
import functools
import hashlib
import json
import math
from typing import Any, Callable, ClassVar, NamedTuple

import numpy as np

ROWS_PER_PASS = 1 << 20  # rows of parameter columns generated at a time (bounded temporaries)


def fingerprint_of(canonical: dict) -> str:
    """sha256 of a configuration's canonical JSON (every sweep kind's identity)."""
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()


class Output(NamedTuple):
    """One output column: its name, dtype and the shape of one row.

    ``dtype`` ``"float"`` is the working dtype of the run (float64, or float32
    when ``jax_enable_x64`` is off); any other value is a numpy dtype name.
    ``dims`` names the axes of ``shape`` (for labelled arrays).
    """

    name: str
    dtype: str = "float"
    shape: tuple[int, ...] = ()
    dims: tuple[str, ...] = ()

    def numpy_dtype(self, precision: str) -> np.dtype:
        """The dtype of this column in a run of working dtype ``precision``."""
        return np.dtype(precision if self.dtype == "float" else self.dtype)

    def row_bytes(self, precision: str = "float64") -> int:
        return self.numpy_dtype(precision).itemsize * math.prod(self.shape)


class Chunk(NamedTuple):
    """One chunk: rows ``lo:hi`` within group ``group`` (``SweepKind.group_starts``)."""

    index: int
    group: int
    lo: int
    hi: int

    @property
    def rows(self) -> int:
        return self.hi - self.lo


class Grid:
    """Named axes and the product blocks whose rows, one after another, are a sweep's rows.

    Args:
        axes: ``(name, values)`` per axis; ``values`` a 1-D numpy array.
        blocks: per block, one integer index array per axis (into that
            axis's values); the block's rows are the C-order product.
    """

    def __init__(self, axes, blocks):
        self.axes = tuple((name, np.asarray(values)) for name, values in axes)
        self.blocks = tuple(tuple(np.asarray(i, dtype=np.int64) for i in b) for b in blocks)
        self.names = tuple(name for name, _ in self.axes)
        self.shape = tuple(len(values) for _, values in self.axes)
        self.block_shapes = tuple(tuple(len(i) for i in b) for b in self.blocks)
        sizes = [math.prod(s) for s in self.block_shapes]
        self.starts = tuple(int(x) for x in np.cumsum([0] + sizes[:-1]))
        self.size = sum(sizes)

    @classmethod
    def product(cls, axes) -> Grid:
        """One block: the full product of ``axes``."""
        axes = tuple((n, np.asarray(v)) for n, v in axes)
        return cls(axes, [tuple(np.arange(len(v)) for _, v in axes)])

    def values(self, name: str) -> np.ndarray:
        return self.axes[self.names.index(name)][1]

    def columns(self, names, lo: int, hi: int) -> dict[str, np.ndarray]:
        """The values of axes ``names`` at rows ``lo:hi`` (memory ~ ``hi - lo``)."""
        out = {n: np.empty(hi - lo, self.values(n).dtype) for n in names}
        for b, start in enumerate(self.starts):
            shape = self.block_shapes[b]
            a, z = max(lo, start), min(hi, start + math.prod(shape))
            if a >= z:
                continue
            local = np.arange(a - start, z - start)
            for name in names:
                k = self.names.index(name)
                stride = math.prod(shape[k + 1 :])
                idx = self.blocks[b][k][(local // stride) % shape[k]]
                out[name][a - lo : z - lo] = self.values(name)[idx]
        return out

    def columns_at(self, names, rows: np.ndarray) -> dict[str, np.ndarray]:
        """The values of axes ``names`` at the flat rows ``rows``."""
        rows = np.asarray(rows, dtype=np.int64)
        block = np.searchsorted(np.asarray(self.starts), rows, side="right") - 1
        out = {n: np.empty(rows.shape, self.values(n).dtype) for n in names}
        for b in np.unique(block):
            sel = block == b
            local = np.unravel_index(rows[sel] - self.starts[b], self.block_shapes[b])
            for name in names:
                k = self.names.index(name)
                out[name][sel] = self.values(name)[self.blocks[b][k][local[k]]]
        return out

    def positions(self, name: str, wanted) -> np.ndarray:
        """Indices into axis ``name``'s values of ``wanted`` (a value or a list of them).

        Numbers match to a relative 1e-9 (NaN matches NaN); raises
        ``ValueError`` naming the axis for a name or a value that is not in it.
        """
        if name not in self.names:
            raise ValueError(f"no axis {name!r}; the axes: {', '.join(self.names)}")
        values = self.values(name)
        found = []
        for want in wanted if isinstance(wanted, (list, tuple, np.ndarray)) else [wanted]:
            if values.dtype.kind in "US":
                hit = np.flatnonzero(values == want)
            else:
                w = np.float64(want)
                v = values.astype(np.float64)
                hit = np.flatnonzero(
                    np.isnan(v) if np.isnan(w) else np.isclose(v, w, rtol=1e-9, atol=0)
                )
            if hit.size == 0:
                shown = ", ".join(str(x) for x in values[:8]) + (", ..." if len(values) > 8 else "")
                raise ValueError(f"{name} = {want!r} is not on the grid; its values: {shown}")
            found.append(int(hit[0]))
        return np.asarray(found, dtype=np.int64)

    def rows(self, selection: dict[str, np.ndarray]) -> np.ndarray:
        """Flat rows (in sweep order) whose axis ``name`` takes ``values[selection[name]]``."""
        out = []
        for b, start in enumerate(self.starts):
            per_axis = []
            for k, name in enumerate(self.names):
                local = np.arange(len(self.blocks[b][k]))
                if name in selection:
                    local = local[np.isin(self.blocks[b][k], selection[name])]
                per_axis.append(local)
            if any(p.size == 0 for p in per_axis):
                continue
            mesh = np.meshgrid(*per_axis, indexing="ij")
            out.append(start + np.ravel_multi_index(mesh, self.block_shapes[b]).ravel())
        return np.concatenate(out) if out else np.zeros(0, np.int64)

    def embed(self, column: np.ndarray, fill) -> np.ndarray:
        """A column (one row per configuration) as an array over the axes (``fill`` elsewhere)."""
        if len(self.blocks) == 1 and all(
            np.array_equal(i, np.arange(n)) for i, n in zip(self.blocks[0], self.shape)
        ):
            return np.asarray(column).reshape(self.shape + column.shape[1:])
        out = np.full(self.shape + column.shape[1:], fill, dtype=column.dtype)
        for b, start in enumerate(self.starts):
            shape = self.block_shapes[b]
            part = column[start : start + math.prod(shape)].reshape(shape + column.shape[1:])
            out[np.ix_(*self.blocks[b])] = part
        return out


DispatchGather = tuple[Callable[[Chunk, int], Any], Callable[[Any], list]]


class SweepKind(abc.ABC):
    """A validated sweep configuration of one kind: its grid, outputs and computation.

    Class attributes: ``name`` (``"balanced"``, ``"general"``, ``"train"``),
    ``title`` (how the command line names it before running), ``plot``
    (``"module:function"`` in ``jepa_flow._plotting``, or None), ``failure``
    (what a row with ``ok`` False means, for the command line's summary).

    Every kind also has the attributes ``text`` (the TOML text as given),
    ``budget`` (``(max_memory, max_disk)`` in bytes) and ``pair`` (a pair sweep).
    """

    name: ClassVar[str]
    title: ClassVar[str]
    plot: ClassVar[str | None] = None
    failure: ClassVar[str] = "failed ODE solves"
    text: str
    budget: tuple
    pair: bool

    def failure_message(self, precision: str) -> str:
        """What the rows with ``ok`` False mean, for the command line's summary."""
        return f"{self.failure} (NaN, ok=False)"

    # ---------------------------------------------------------------- parsing

    @classmethod
    @abc.abstractmethod
    def claims(cls, doc: dict) -> bool:
        """Whether the parsed TOML document ``doc`` describes a sweep of this kind."""

    @classmethod
    @abc.abstractmethod
    def from_toml(cls, doc: dict, text: str, *, limits: tuple, check: bool) -> SweepKind:
        """Validate ``doc`` (parsed from ``text``) into a configuration of this kind.

        ``limits`` is ``(max_memory, max_disk)``; ``check`` False skips the
        budget checks (reading finished results). Raises ``ValueError`` naming
        the offending key before anything is computed.
        """

    # ---------------------------------------------------------------- identity

    @abc.abstractmethod
    def canonical(self) -> dict:
        """The configuration as plain JSON data (what identifies a sweep's results)."""

    def fingerprint(self) -> str:
        """sha256 of ``canonical()``: equal iff the configurations are equal."""
        return fingerprint_of(self.canonical())

    @abc.abstractmethod
    def describe(self) -> str:
        """What the grid holds, in one line (printed before running)."""

    # ---------------------------------------------------------------- grid

    @abc.abstractmethod
    def make_grid(self) -> Grid:
        """The named axes and the blocks of rows (module docstring)."""

    @functools.cached_property
    def grid(self) -> Grid:
        """``make_grid()``, built once."""
        return self.make_grid()

    @property
    def size(self) -> int:
        """Rows (configurations) of the sweep."""
        return self.grid.size

    def derived(self, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Parameter columns computed from the axis columns ``columns`` (default: none)."""
        return {}

    @functools.cached_property
    def parameter_names(self) -> tuple[str, ...]:
        """The parameter columns: every axis, then the derived ones."""
        grid = self.grid
        first = self.derived(grid.columns(grid.names, 0, 1))
        return grid.names + tuple(n for n in first if n not in grid.names)

    def parameters(self, names=None, rows=None) -> dict[str, np.ndarray]:
        """Parameter columns ``names`` (default all) at flat ``rows`` (default every row).

        Generated ``ROWS_PER_PASS`` rows at a time: the memory is that of the
        columns asked for.
        """
        names = self.parameter_names if names is None else tuple(names)
        unknown = [n for n in names if n not in self.parameter_names]
        if unknown:
            raise KeyError(f"no parameter {unknown[0]!r}; parameters: {self.parameter_names}")
        grid = self.grid
        derive = any(n not in grid.names for n in names)
        wanted = grid.names if derive else names

        def complete(cols):
            return {**cols, **self.derived(cols)} if derive else cols

        if rows is not None:
            cols = complete(grid.columns_at(wanted, rows))
            return {n: cols[n] for n in names}
        out = {}
        for lo in range(0, max(grid.size, 1), ROWS_PER_PASS):
            hi = min(lo + ROWS_PER_PASS, grid.size)
            cols = complete(grid.columns(wanted, lo, hi))
            for n in names:
                if n not in out:
                    out[n] = np.empty((grid.size,) + cols[n].shape[1:], cols[n].dtype)
                out[n][lo:hi] = cols[n]
        return out

    def subgrid(self, keep) -> SweepKind:
        """The sweep with every numeric axis not in ``keep`` held at its first value.

        Only kinds whose figures read sub-grids implement it.
        """
        raise ValueError(f"sub-grids of a {self.name} sweep: use load_sweep")

    # ---------------------------------------------------------------- outputs

    @abc.abstractmethod
    def outputs(self) -> tuple[Output, ...]:
        """The output columns, in the order ``gather`` returns them."""

    @property
    def disk_bytes(self) -> int:
        """Bytes of the results of the whole sweep (float64 outputs)."""
        return self.size * self.row_bytes()

    def row_bytes(self) -> int:
        """Bytes of one row of outputs in float64."""
        return sum(o.row_bytes() for o in self.outputs())

    # ---------------------------------------------------------------- running

    @abc.abstractmethod
    def group_sizes(self) -> tuple[int, ...]:
        """Rows per group; groups are consecutive and a chunk never spans two."""

    @abc.abstractmethod
    def default_chunk(self) -> int:
        """Configurations per chunk when none is given."""

    def chunk_rows(self, chunk_size: int) -> int:
        """Rows of a full chunk of ``chunk_size`` (default: ``chunk_size``)."""
        return chunk_size

    def group_starts(self) -> tuple[int, ...]:
        """The first row of each group within the sweep."""
        return tuple(int(x) for x in np.cumsum((0,) + self.group_sizes()[:-1]))

    def chunk_plan(self, chunk_size: int) -> list[Chunk]:
        """Every chunk, in order: each group cut into pieces of ``chunk_rows`` rows."""
        step, plan = self.chunk_rows(chunk_size), []
        for group, size in enumerate(self.group_sizes()):
            for lo in range(0, size, step):
                plan.append(Chunk(len(plan), group, lo, min(lo + step, size)))
        return plan

    @abc.abstractmethod
    def work(self, chunk_size: int) -> tuple[int, int]:
        """``(rows, bytes)``: rows of the largest chunk and working bytes per row."""

    def check_runnable(self, dtype) -> None:
        """Refuse settings the working dtype cannot run (default: none)."""

    @abc.abstractmethod
    def chunk_function(self, group: int, devices: tuple) -> DispatchGather:
        """``(dispatch, gather)`` for the chunks of ``group`` on ``devices``.

        ``dispatch(chunk, padded)`` starts the chunk's work (asynchronously
        where the kind can; ``padded`` is a multiple of ``len(devices)`` no
        smaller than any chunk); ``gather(handle)`` finishes it and returns
        numpy arrays in ``outputs()`` order, at least ``chunk.rows`` long.
        """
