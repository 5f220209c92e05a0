"""Chunked, sharded, resumable parameter sweeps (``jepa-flow sweep``).

A sweep (see ``_sweep_config``) is cut into chunks of ``chunk_size``
configurations inside each (objective, method) group. Each chunk is one call
of a jitted ``jax.shard_map`` of the vmapped critical-time kernel over a
one-axis ``Mesh`` of all local devices, so the same code fills 1 CPU, 8 GPUs or
a TPU host; every chunk is padded to the same shape (one compilation per group).
Chunk parameters are generated from the flat index, so memory is bounded by
the chunk size, not the grid size.

Output directory::

    config.toml           the configuration as given
    manifest.json         library version, grid fingerprint, chunk size, counts
    chunks/chunk_NNNNNN.npz   outputs of one finished chunk (written atomically)
    critical_time.png     t_star against rho and lam per depth (and phase.png for pairs)

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
(``jepa-flow sweep --precision float32``). The chunk files hold the outputs
in that dtype (float32 chunks are half the size), ``manifest.json`` records
it as ``"precision"``, and resuming a directory in the other precision is
refused (results are never mixed). ``sweep.rtol`` must lie within the dtype's
range (16 machine epsilons to 0.1). The accuracy of float32 sweeps is that of
the kernels they run (docs/precision.md). Reading results (``_sweep_load``)
uses numpy only.
"""

from __future__ import annotations

import functools
import json
import math
import os
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from .._core import _budget, _io
from .._core._batch import float_dtype
from .._core._devices import batch_sharding, over_devices
from .._core._lock import LOCK_NAME, locked_dir
from .._theory._critical_time import critical_time_kernel, resolve_rtol
from .._theory._fixed_point import wbar_star
from . import _general, _train
from ._config import SweepConfig, load_config
from ._result import SweepResult

# Configurations per chunk by method (measured on 2 CPU cores: the closed forms
# gain from large chunks; the vmapped ODE solve is fastest around 4096, where
# its per-step state stays in cache).
DEFAULT_CHUNK = {"exact": 1 << 17, "series": 1 << 17, "ode": 1 << 12}
KERNEL_INPUTS = ("lam", "var", "depth", "eps", "fraction")
# Padding rows: an easy feature that starts at its level (t_star = 0).
_FILL = {"lam": 1.0, "var": 1.0, "depth": 1.0, "eps": 0.5, "fraction": 0.5}
OUTPUTS = ("t_star", "wbar_star", "ok")
PAIR_OUTPUTS = ("t_star_a", "t_star_b", "wbar_star_a", "wbar_star_b", "first", "t_ratio", "ok")
# Working memory per configuration and feature while a chunk runs (inputs on host
# and device, the solver's state, outputs), an upper estimate; two chunks are in
# flight at a time.
WORK_BYTES = {"exact": 512, "series": 512, "ode": 4096}


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


def _one_device(objective: str, method: str, pair: bool, rtol: float | None = None):
    """The computation on one device's slice of a chunk (vmapped inside the kernel).

    Takes the kernel inputs (``lam, var, depth, eps, fraction``; for a pair
    sweep those of A then those of B), each a 1-D float64 array, and returns
    the outputs named by ``OUTPUTS`` or ``PAIR_OUTPUTS``.
    """

    def one_device(*args):
        if not pair:
            t_star, ok = critical_time_kernel(objective, method, *args, rtol=rtol)
            return t_star, wbar_star(objective, args[0], args[1], args[2]), ok
        # A and B in one batch: one adaptive loop, not two in sequence.
        n = args[0].shape[0]
        both = [jnp.concatenate([x, y]) for x, y in zip(args[:5], args[5:])]
        t_star, ok = critical_time_kernel(objective, method, *both, rtol=rtol)
        w = wbar_star(objective, both[0], both[1], both[2])
        t_a, t_b, w_a, w_b = t_star[:n], t_star[n:], w[:n], w[n:]
        first = jnp.where(t_b < t_a, 1, jnp.where(t_a < t_b, 0, 2)).astype(jnp.int8)
        return t_a, t_b, w_a, w_b, first, t_b / t_a, ok[:n] & ok[n:]

    return one_device


def chunk_function(
    objective: str, method: str, pair: bool, devices: tuple, rtol: float | None = None
):
    """``(dispatch, gather)`` for one chunk (cached per arguments; see ``_chunk_function``)."""
    return _chunk_function(objective, method, pair, devices, rtol)


@functools.cache
def _chunk_function(objective: str, method: str, pair: bool, devices: tuple, rtol):
    """``(dispatch, gather)`` for one chunk on ``devices``.

    ``dispatch(inputs)`` takes the kernel inputs as numpy arrays whose length
    is a multiple of ``len(devices)``, splits them evenly over the devices
    (device ``i`` gets the ``i``-th slice) and starts the computation
    asynchronously; ``gather(handle)`` waits and returns the outputs as numpy
    arrays in chunk order.

    The computation is a jitted ``jax.shard_map`` over a one-axis ``Mesh``:
    each device runs its own vmapped solve, with no collectives. ``rtol`` is
    the ODE tolerance (``sweep.rtol``; None: the default).
    """
    fn = jax.jit(over_devices(_one_device(objective, method, pair, rtol), devices))
    sharding = batch_sharding(devices)

    def dispatch(inputs):
        return fn(*(jax.device_put(x, sharding) for x in inputs))

    def gather(handle):
        return [np.asarray(x) for x in handle]

    return dispatch, gather


def kernel_inputs(config: SweepConfig, lo: int, hi: int, padded: int) -> list[np.ndarray]:
    """Float64 kernel inputs for configurations ``lo:hi`` of a group, padded to ``padded``."""
    rows = config.rows(lo, hi)
    names = list(KERNEL_INPUTS)
    if config.pair:
        feature = [f"{k}_{{}}" if k in ("lam", "var") else k for k in KERNEL_INPUTS]
        names = [n.format("a") for n in feature] + [n.format("b") for n in feature]
    out = []
    for name in names:
        buf = np.full(padded, _FILL[name.split("_")[0]], dtype=np.float64)
        buf[: hi - lo] = rows[name]
        out.append(buf)
    return out


def _is_general(config) -> bool:
    """A sweep of the general per-feature flow (``flow = "general"``, ``_general``)."""
    return getattr(config, "flow", "balanced") == "general"


def _is_train(config) -> bool:
    """A sweep of training runs (a ``[train]`` table, ``_train``)."""
    return getattr(config, "flow", "balanced") == "train"


def _chunk_plan(config: SweepConfig, chunk_size: int) -> list[tuple[int, int, int, int]]:
    """All chunks as ``(index, group, lo, hi)``; ``lo:hi`` indexes within the group."""
    if _is_general(config) or _is_train(config):
        return config.chunk_plan(chunk_size)
    m = config.group_size
    per_group = math.ceil(m / chunk_size)
    return [
        (g * per_group + k, g, k * chunk_size, min((k + 1) * chunk_size, m))
        for g in range(len(config.groups))
        for k in range(per_group)
    ]


def _outputs(config) -> tuple[str, ...]:
    if _is_train(config):
        return _train.OUTPUTS
    if _is_general(config):
        return _general.PAIR_OUTPUTS if config.pair else _general.OUTPUTS
    return PAIR_OUTPUTS if config.pair else OUTPUTS


def _chunk_path(out: Path, index: int) -> Path:
    return out / "chunks" / f"chunk_{index:06d}.npz"


def _manifest(config: SweepConfig, chunk_size: int) -> dict:
    from .. import __version__

    return {
        "jepa_flow_version": __version__,
        "fingerprint": config.fingerprint(),
        "chunk_size": chunk_size,
        "n_configs": config.size,
        "n_chunks": len(_chunk_plan(config, chunk_size)),
        "pair": config.pair,
        "axes": config.canonical().get("axes") or config.canonical()["groups"],
        "outputs": list(_outputs(config)),
        "precision": _precision(),
    }


def _precision() -> str:
    """The working dtype's name: ``"float64"`` or ``"float32"``."""
    return np.dtype(float_dtype()).name


def _mismatch(config, out: Path, old: dict) -> str | None:
    """Why the sweep whose manifest is ``old`` cannot be resumed by ``config`` (None: it can)."""
    from .. import __version__

    if old.get("fingerprint") != config.fingerprint():
        return (
            f"out {str(out)!r} holds the results of a different sweep configuration; "
            "use a new directory (results are never mixed)"
        )
    if old.get("jepa_flow_version") != __version__:
        return (
            f"out {str(out)!r} was written by jepa_flow {old.get('jepa_flow_version')}, "
            f"this is {__version__}; use a new directory"
        )
    stored = old.get("precision", "float64")  # written before float32 sweeps existed
    if stored != _precision():
        return (
            f"out {str(out)!r} holds a {stored} sweep and this run is {_precision()}; "
            f"resume it in {stored} or use a new directory (results are never mixed)"
        )
    return None


def can_resume(config, out) -> bool:
    """Whether ``out`` holds a sweep that ``run_sweep(config, out)`` would resume.

    The same check as ``run_sweep``'s (grid fingerprint, library version,
    precision), without raising: False when ``out`` has no manifest.
    """
    manifest = Path(out) / "manifest.json"
    if not manifest.exists():
        return False
    return _mismatch(config, Path(out), json.loads(manifest.read_text())) is None


def _prepare_dir(config: SweepConfig, out: Path, chunk_size: int | None) -> int:
    """Create or reopen ``out``; refuse a directory that holds anything else.

    Returns the chunk size to use (the stored one when resuming).
    """

    manifest_path = out / "manifest.json"
    chunks = out / "chunks"
    if jax.process_count() == 1 and chunks.is_dir():
        for stale in chunks.glob(".chunk_*.tmp"):  # left by a kill -9 during a write
            stale.unlink()
    if jax.process_count() == 1 and out.is_dir():
        _io.remove_stale_tmp(out)  # config.toml or manifest.json, half-written
    if not manifest_path.exists() and out.is_dir():
        # interrupted before its manifest was written: nothing was computed yet
        leftovers = {p.name for p in out.iterdir()} - {LOCK_NAME}
        if leftovers <= {"config.toml", "chunks"} and not any(chunks.glob("*")):
            for name in leftovers:
                (out / name).rmdir() if name == "chunks" else (out / name).unlink()
    if manifest_path.exists():
        old = json.loads(manifest_path.read_text())
        reason = _mismatch(config, out, old)
        if reason is not None:
            raise ValueError(reason)
        if chunk_size is not None and chunk_size != old["chunk_size"]:
            raise ValueError(
                f"chunk_size {chunk_size} differs from the {old['chunk_size']} of the "
                f"interrupted run in {str(out)!r}; leave it out to resume"
            )
        return int(old["chunk_size"])
    chunk_size = _default_chunk(config, chunk_size)
    _io.prepare_out_dir(out, force=False)
    chunks.mkdir(exist_ok=True)
    _io.write_bytes_atomic(out / "config.toml", config.text.encode())
    _io.write_json_atomic(manifest_path, _manifest(config, chunk_size))
    return chunk_size


def _default_chunk(config: SweepConfig, chunk_size: int | None) -> int:
    if chunk_size is None and _is_train(config):
        return _train.DEFAULT_CHUNK
    if chunk_size is None and _is_general(config):
        return _general.DEFAULT_CHUNK
    if chunk_size is None:
        return min(DEFAULT_CHUNK[method] for _, method in config.groups)
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)):
        raise ValueError(f"chunk_size must be an integer >= 1; got {chunk_size!r}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be an integer >= 1; got {chunk_size}")
    return int(chunk_size)


def _check_budget(config: SweepConfig, out: Path, chunk_size: int) -> None:
    """Refuse a chunk too large for the memory budget or chunk files beyond the free disk."""
    features = 2 if config.pair else 1
    if _is_train(config):
        per_config = config.work_bytes()
        size = config.chunk_members(chunk_size)
    elif _is_general(config):
        per_config = features * _general.WORK_BYTES
        size = min(chunk_size, max(g.size for g in config.grids))
    else:
        per_config = features * max(WORK_BYTES[m] for _, m in config.groups)
        size = min(chunk_size, config.group_size)
    _budget.check_budget(
        f"one chunk of {size:,} configurations (x2 in flight, ~{per_config} bytes each)",
        memory=2 * size * per_config,
        max_memory=config.budget[0],
    )
    done = sum(f.stat().st_size for f in (out / "chunks").glob("chunk_*.npz"))
    _budget.check_free_space(out, config.disk_bytes - done, "the sweep's chunk files")


def _write_chunk(path: Path, outputs: dict[str, np.ndarray]) -> None:
    # uncompressed (float data hardly compresses); fixed timestamps: same arrays, same bytes
    _io.write_bytes_atomic(path, _io.npz_bytes(outputs, compress=False))


def run_sweep(config, out, *, chunk_size=None, devices=None, progress=False) -> SweepResult:
    """Run (or resume) a sweep and write its results to the directory ``out``.

    Args:
        config: a ``SweepConfig`` (``parse_sweep_config``) or the path of a
            TOML file.
        out: output directory; created, or reopened to resume.
        chunk_size: configurations per chunk (default ``DEFAULT_CHUNK`` of the method, or
            the stored value when resuming).
        devices: the devices to shard each chunk over (default: all local).
        progress: show a tqdm progress bar on stderr when it is a terminal.

    Returns a ``SweepResult`` (the type ``load_sweep`` returns): the counts of
    this call (``computed`` rows, ``skipped`` chunks, ``failed`` ODE solves
    among computed rows, stored as NaN with ``ok`` False, ``seconds``) and the
    columns on demand.

    Runs in float64 when ``jax_enable_x64`` is on and in float32 otherwise
    (the chunk files then hold float32; see the module docstring).

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
    if not isinstance(config, (SweepConfig, _general.GeneralSweepConfig, _train.TrainSweepConfig)):
        config = load_config(config)
    if getattr(config, "rtol", None) is not None:  # within the working dtype's range
        try:
            resolve_rtol(config.rtol, float_dtype())
        except ValueError as err:
            raise ValueError(f"sweep.{err}") from None
    out = Path(out)
    _io.check_writable(out)
    if chunk_size is not None:
        _default_chunk(config, chunk_size)  # its checks, before the directory is touched
    if jax.process_count() == 1:
        stored = out / "manifest.json"
        planned = chunk_size
        if planned is None and stored.exists():
            planned = json.loads(stored.read_text()).get("chunk_size")
        _check_budget(config, out, _default_chunk(config, planned))
        with locked_dir(out):
            chunk_size = _prepare_dir(config, out, chunk_size)
            return _run_chunks(config, out, chunk_size, devices, progress)
    # several processes (no lock: flock is unreliable on shared file systems):
    # process 0 creates the directory; the others then find it and check it
    _check_budget(config, out, _default_chunk(config, chunk_size))
    if jax.process_index() == 0:
        chunk_size = _prepare_dir(config, out, chunk_size)
    _barrier("jepa_flow sweep prepared")
    if jax.process_index() != 0:
        chunk_size = _prepare_dir(config, out, chunk_size)
    return _run_chunks(config, out, chunk_size, devices, progress)


def _run_chunks(config: SweepConfig, out: Path, chunk_size: int, devices, progress) -> dict:
    devices = tuple(jax.local_devices() if devices is None else devices)
    padded = -(-chunk_size // len(devices)) * len(devices)
    plan = _chunk_plan(config, chunk_size)
    mine = [c for c in plan if c[0] % jax.process_count() == jax.process_index()]
    todo = [c for c in mine if not _chunk_path(out, c[0]).exists()]
    names = _outputs(config)
    summary = {
        "n_configs": config.size,
        "n_chunks": len(plan),
        "computed": 0,
        "skipped": len(mine) - len(todo),
        "failed": 0,
    }

    from tqdm.auto import tqdm

    bar = tqdm(
        total=sum(hi - lo for _, _, lo, hi in todo),
        unit="cfg",
        unit_scale=True,
        desc="sweep",
        disable=None if progress else True,  # None: only on a terminal, never into a log
        smoothing=0.1,
    )

    def finish(chunk, gather, handle):
        index, _, lo, hi = chunk
        n = hi - lo
        outputs = {name: x[:n] for name, x in zip(names, gather(handle))}
        _write_chunk(_chunk_path(out, index), outputs)
        summary["computed"] += n
        summary["failed"] += int(n - outputs["ok"].sum())
        bar.update(n)
        bar.set_postfix_str(f"chunks {summary['skipped'] + done[0] + 1}/{len(mine)}")
        done[0] += 1

    done = [0]
    start = time.perf_counter()
    pending = None
    try:
        for chunk in todo:
            if _is_train(config):  # one train() call and its compare(): synchronous
                dispatch, gather = _train.chunk_function(config, chunk[1], devices)
                finish(chunk, gather, dispatch(chunk[2:]))  # written at once
                continue
            if _is_general(config):
                dispatch, gather = _general.chunk_function(config, chunk[1], devices)
                handle = dispatch(_in_dtype(config.kernel_inputs(*chunk[1:], padded)))
            else:
                objective, method = config.groups[chunk[1]]
                dispatch, gather = chunk_function(
                    objective, method, config.pair, devices, config.rtol
                )
                # asynchronous: the device works while the previous chunk is written
                handle = dispatch(_in_dtype(kernel_inputs(config, *chunk[2:], padded)))
            if pending is not None:
                finish(*pending)
            pending = (chunk, gather, handle)
        if pending is not None:
            finish(*pending)
    finally:
        bar.close()
    if jax.process_count() > 1:
        _barrier("jepa_flow sweep finished")
    return SweepResult(path=out, config=config, seconds=time.perf_counter() - start, **summary)


def _in_dtype(inputs: list[np.ndarray]) -> list[np.ndarray]:
    """The float64 kernel inputs rounded to the working dtype (a no-op in float64)."""
    dtype = float_dtype()
    return [np.asarray(x, dtype) for x in inputs]


def _barrier(name: str) -> None:
    from jax.experimental import multihost_utils

    multihost_utils.sync_global_devices(name)
