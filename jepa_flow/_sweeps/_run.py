"""Chunked, sharded, resumable parameter sweeps (``jepa-flow sweep``).

A sweep (any ``SweepKind``, ``_kind``) is cut into chunks (``chunk_plan``);
each chunk is one call of the kind's ``chunk_function`` over all local
devices, so the same code fills 1 CPU, 8 GPUs or a TPU host. While the
devices compute a chunk, the previous one is written. The output directory
and its format belong to ``_store``.

Running again in the same directory skips the finished chunks; a different
grid (or chunk size, or library version) is refused. A single-process run
holds the directory's lock (``_core._lock``) while it runs: a second sweep
into the same directory is refused at once instead of computing everything
again. Memory for one chunk and disk for all chunks are estimated before
anything runs and checked against the configuration's budget (``[budget]``,
``_core._budget``) and the free disk space. With several JAX
processes (``jax.distributed``) process ``p`` of ``n`` runs the chunks whose
index is ``p`` modulo ``n`` and process 0 draws the plots.

Precision: a sweep runs in the working dtype of JAX, float64 when
``jax_enable_x64`` is on (the command line's default) and float32 otherwise
(``jepa-flow sweep --precision float32``). The results hold the outputs
in that dtype (float32 results are half the size), ``manifest.json`` records
it as ``"precision"``, and resuming a directory in the other precision is
refused (results are never mixed). ``sweep.rtol`` must lie within the dtype's
range (16 machine epsilons to 0.1). The accuracy of float32 sweeps is that of
the kernels they run (docs/precision.md). Reading results (``_load``)
uses numpy only.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import jax
import numpy as np

from .._core import _budget, _io
from .._core._batch import float_dtype
from .._core._lock import locked_dir
from . import _store
from ._config import load_config
from ._kind import SweepKind
from ._result import SweepResult


def maybe_initialize_distributed() -> None:
    """Start ``jax.distributed`` when a multi-process environment is configured.

    Recognised: ``JAX_COORDINATOR_ADDRESS`` with ``JAX_NUM_PROCESSES`` and
    ``JAX_PROCESS_ID``; Slurm or Open MPI jobs with more than one task; TPU
    pods (``TPU_WORKER_HOSTNAMES`` listing several hosts). Must run before any
    JAX computation; a no-op otherwise.
    """
    if jax.distributed.is_initialized():
        return
    env = os.environ
    if env.get("JAX_COORDINATOR_ADDRESS"):
        jax.distributed.initialize(
            env["JAX_COORDINATOR_ADDRESS"],
            int(env.get("JAX_NUM_PROCESSES", "1")),
            int(env.get("JAX_PROCESS_ID", "0")),
        )
    elif (
        int(env.get("SLURM_NTASKS", "1")) > 1
        or int(env.get("OMPI_COMM_WORLD_SIZE", "1")) > 1
        or "," in env.get("TPU_WORKER_HOSTNAMES", "")
    ):
        jax.distributed.initialize()


def _precision() -> str:
    """The working dtype's name: ``"float64"`` or ``"float32"``."""
    return np.dtype(float_dtype()).name


def can_resume(config: SweepKind, out: str | os.PathLike) -> bool:
    """Whether ``out`` holds a sweep that ``run_sweep(config, out)`` would resume (or find done).

    The same check as ``run_sweep``'s (grid fingerprint, library version,
    precision), without raising: False when ``out`` has no manifest.

    Examples:
        >>> import tempfile, jepa_flow as jf
        >>> text = '[sweep]\\nobjective = "mae"\\ndepth = [1, 2]\\nlam = 1.0\\nvar = 2.0\\n'
        >>> text += 'eps = 1e-3'
        >>> out = tempfile.mkdtemp() + "/grid"
        >>> _ = jf.run_sweep(jf.parse_sweep_config(text), out, progress=False)
        >>> jf.can_resume(jf.parse_sweep_config(text), out)
        True
        >>> jf.can_resume(jf.parse_sweep_config(text.replace("[1, 2]", "[1, 3]")), out)
        False
    """
    old = _store.read_manifest(out)
    return old is not None and _store.mismatch(config, Path(out), old, _precision()) is None


def _chunk_size(config: SweepKind, chunk_size) -> int:
    """``chunk_size`` checked, or the kind's default when None."""
    if chunk_size is None:
        return config.default_chunk()
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)):
        raise ValueError(f"chunk_size must be an integer >= 1; got {chunk_size!r}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be an integer >= 1; got {chunk_size}")
    return int(chunk_size)


def _check_budget(config: SweepKind, out: Path, chunk_size: int) -> None:
    """Refuse a chunk too large for the memory budget or results beyond the free disk."""
    size, per_config = config.work(chunk_size)
    _budget.check_budget(
        f"one chunk of {size:,} configurations (x2 in flight, ~{per_config} bytes each)",
        memory=2 * size * per_config,
        max_memory=config.budget[0],
    )
    done = _store.done_bytes(out)
    _budget.check_free_space(out, config.disk_bytes - done, "the sweep's chunk files")


def _prepare(config: SweepKind, out: Path, chunk_size) -> int:
    single = jax.process_count() == 1
    _store.remove_leftovers(out, single)
    planned = _chunk_size(config, chunk_size)
    return _store.prepare(config, out, chunk_size, planned, _precision())


def _write_chunk(writer: _store.Writer, chunk, outputs: dict[str, np.ndarray]) -> None:
    """One chunk's outputs into the directory (on the writer thread)."""
    writer.write(chunk, outputs)


class _Background:
    """Calls ``work(*item)`` on a thread for each ``put`` item, one waiting at most.

    The queue holds one item: ``put`` returns at once unless an item is
    already waiting (the thread is behind), so the caller gets at most one
    item ahead. ``idle()`` runs once the thread has waited ``IDLE`` seconds
    for an item, after an error and at the end. An exception is raised by the
    next ``put`` or by ``close``; the items after it are dropped.
    """

    IDLE = 0.2  # seconds

    def __init__(self, work, idle):
        self._queue = queue.Queue(maxsize=1)
        self._error = None
        args = (work, idle)
        self._thread = threading.Thread(target=self._loop, args=args, daemon=True)
        self._thread.start()

    def _loop(self, work, idle) -> None:
        while True:
            try:
                item = self._queue.get(timeout=self.IDLE)
            except queue.Empty:
                self._call(idle)
                continue
            if item is None:
                break
            if self._error is None:
                self._call(work, *item)
                if self._error is not None:
                    self._call(idle)
        self._call(idle)

    def _call(self, fn, *args) -> None:
        try:
            fn(*args)
        except BaseException as err:  # raised in the caller's thread
            self._error = self._error or err

    def put(self, *item) -> None:
        self._raise()
        self._queue.put(item)

    def stop(self) -> None:
        """Wait for the items already put (idempotent; raises nothing)."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def close(self) -> None:
        """``stop``, then raise the error ``work`` met, if any."""
        self.stop()
        self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error


def run_sweep(
    config: SweepKind,
    out: str | os.PathLike,
    *,
    chunk_size: int | None = None,
    devices: Sequence[jax.Device] | None = None,
    progress: bool = False,
) -> SweepResult:
    """Run (or resume) a sweep and write its results to the directory ``out``.

    Args:
        config: a sweep configuration (``parse_sweep_config``: any
            ``SweepKind``) or the path of a TOML file.
        out: output directory; created, or reopened to resume.
        chunk_size: configurations per chunk (default: the kind's, or
            the stored value when resuming).
        devices: the devices to shard each chunk over (default: all local).
        progress: show a tqdm progress bar on stderr when it is a terminal.

    Returns a ``SweepResult`` (the type ``load_sweep`` returns): the counts of
    this call (``computed`` rows, ``skipped`` chunks, ``failed`` ODE solves
    among computed rows, stored as NaN with ``ok`` False, ``seconds``) and the
    columns on demand.

    Runs in float64 when ``jax_enable_x64`` is on and in float32 otherwise
    (the results then hold float32; see the module docstring).

    Raises ``ValueError`` for a bad configuration, an unwritable ``out``, a
    directory that holds another sweep, a sweep of the other precision, or is
    in use by another process, or a run beyond the memory/disk budget, before
    anything is computed.

    Examples:
        Which of the canonical pair of theory §4 a JEPA learns first, at
        depths 1 and 4, in chunks of one configuration; running the same
        sweep again resumes (here: finds every chunk done).

        >>> import tempfile
        >>> import jepa_flow as jf
        >>> config = jf.parse_sweep_config('''
        ... [sweep]
        ... objective = "jepa"
        ... depth = [1, 4]
        ... eps = 1e-3
        ... [pair]
        ... lam_a = 1.0
        ... var_a = 2.0
        ... lam_b = 0.8
        ... var_b = 1.0
        ... ''')
        >>> tmp = tempfile.TemporaryDirectory()
        >>> summary = jf.run_sweep(config, tmp.name + "/pair", chunk_size=1)
        >>> summary.n_configs, summary.n_chunks, summary.computed, summary.failed
        (2, 2, 2, 0)
        >>> jf.run_sweep(config, tmp.name + "/pair").skipped  # resumed: nothing left to do
        2
        >>> result = jf.load_sweep(tmp.name + "/pair")
        >>> print(result["first"], result["t_star_b"].round(2))  # 0: A first, 1: B first
        [0 1] [ 1257.32 43056.37]
        >>> tmp.cleanup()
    """
    if not isinstance(config, SweepKind):
        config = load_config(config)
    config.check_runnable(float_dtype())
    out = Path(out)
    _io.check_writable(out)
    if chunk_size is not None:
        _chunk_size(config, chunk_size)  # its checks, before the directory is touched
    if jax.process_count() == 1:
        old = _store.read_manifest(out)
        planned = chunk_size
        if planned is None and old is not None:
            planned = old.get("chunk_size")
        _check_budget(config, out, _chunk_size(config, planned))
        with locked_dir(out):
            chunk_size = _prepare(config, out, chunk_size)
            return _run_chunks(config, out, chunk_size, devices, progress)
    # several processes (no lock: flock is unreliable on shared file systems):
    # process 0 creates the directory; the others then find it and check it
    _check_budget(config, out, _chunk_size(config, chunk_size))
    if jax.process_index() == 0:
        chunk_size = _prepare(config, out, chunk_size)
    _barrier("jepa_flow sweep prepared")
    if jax.process_index() != 0:
        chunk_size = _prepare(config, out, chunk_size)
    return _run_chunks(config, out, chunk_size, devices, progress)


def _progress_bar(total: int, progress: bool):
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        unit="cfg",
        unit_scale=True,
        desc="sweep",
        disable=None if progress else True,  # None: only on a terminal, never into a log
        smoothing=0.1,
    )


def _run_chunks(config: SweepKind, out: Path, chunk_size: int, devices, progress) -> SweepResult:
    """Compute this process's missing chunks; write each while the next one computes.

    The devices get chunk ``k + 1`` before chunk ``k`` is gathered (its
    outputs copied to the host), and a writer thread writes chunk ``k`` while
    the devices compute: the devices wait for the disk only if the disk is
    slower than they are, by more than one chunk.
    """
    devices = tuple(jax.local_devices() if devices is None else devices)
    padded = -(-config.chunk_rows(chunk_size) // len(devices)) * len(devices)
    plan = config.chunk_plan(chunk_size)
    store = _store.Writer(out, config, chunk_size)
    mine = [c for c in plan if c.index % jax.process_count() == jax.process_index()]
    todo = [c for c in mine if not store.is_done(c.index)]
    names = [o.name for o in config.outputs()]
    counts = {"computed": 0, "skipped": len(mine) - len(todo), "failed": 0, "done": 0}
    bar = _progress_bar(sum(c.rows for c in todo), progress)
    writer = _Background(lambda chunk, outputs: _write_chunk(store, chunk, outputs), store.commit)
    functions = {}

    def finish(chunk, gather, handle):
        outputs = {name: x[: chunk.rows] for name, x in zip(names, gather(handle))}
        writer.put(chunk, outputs)
        counts["computed"] += chunk.rows
        counts["failed"] += int(chunk.rows - np.count_nonzero(outputs["ok"]))
        counts["done"] += 1
        bar.update(chunk.rows)
        bar.set_postfix_str(f"chunks {counts['skipped'] + counts['done']}/{len(mine)}")

    start = time.perf_counter()
    pending = None
    try:
        for chunk in todo:
            if chunk.group not in functions:
                functions[chunk.group] = config.chunk_function(chunk.group, devices)
            dispatch, gather = functions[chunk.group]
            handle = dispatch(chunk, padded)  # asynchronous where the kind can
            if pending is not None:
                finish(*pending)  # gathered and queued while the devices work on the next
            pending = (chunk, gather, handle)
        if pending is not None:
            finish(*pending)
        writer.close()
    finally:
        writer.stop()
        store.close()
        bar.close()
    if jax.process_count() > 1:
        _barrier("jepa_flow sweep finished")
    return SweepResult(
        path=out,
        config=config,
        n_configs=config.size,
        n_chunks=len(plan),
        computed=counts["computed"],
        skipped=counts["skipped"],
        failed=counts["failed"],
        seconds=time.perf_counter() - start,
    )


def _barrier(name: str) -> None:
    from jax.experimental import multihost_utils

    multihost_utils.sync_global_devices(name)
