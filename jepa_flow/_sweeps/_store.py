"""The on-disk format of a sweep: paths, chunk plan, manifest, writing and reading.

Output directory::

    config.toml                 the configuration as given
    manifest.json               library version, fingerprint, chunk size, counts,
                                precision, layout
    columns/NAME.npy            one output column, every row (a plain .npy file)
    chunks/chunk_NNNNNN.done    chunk NNNNNN's rows are in the columns

Rows are in sweep order (``SweepKind``: groups one after another, each cut
into chunks by ``chunk_plan``); chunk ``i`` holds rows ``starts[i] :
starts[i] + rows(i)``, its group's first row plus its offset in the group.
Nothing else in the package knows these names or this arithmetic: the runner
(``_run``) writes through ``prepare`` and ``open_writer``, the readers
(``_load``, ``SweepResult``) read through ``Store``.

Columns. Every column file is created at its full size before the first
chunk runs (sparse: the disk fills as chunks are written). A chunk's rows are
written in place, synced, and only then is its marker created (atomically;
one sync covers the chunks written since the last one, ``Writer``), so a
killed run leaves at worst rows without a marker, which the next run
computes and writes again: the same bytes. Reading a column maps it
(``np.load(..., mmap_mode="r")``): memory does not grow with the sweep, and
any tool can open a column as it would any ``.npy`` file.

Directories written by jepa_flow 0.1 (``"layout"`` absent from the manifest)
hold one ``chunks/chunk_NNNNNN.npz`` per chunk instead; they are read, and
resumed, in that layout.

A directory is resumed only by the same configuration (fingerprint), library
version and precision (``mismatch``); results are never mixed. Reading needs
numpy only.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from .._core import _io
from .._core._lock import LOCK_NAME
from ._config import parse_config
from ._kind import Chunk, SweepKind

CHUNKS = "chunks"
COLUMNS = "columns"
MANIFEST = "manifest.json"
CONFIG = "config.toml"
LAYOUT = "columns"  # what new directories get; "npz": one archive per chunk (0.1)


def version() -> str:
    """The installed jepa_flow's version (what a manifest records; package metadata)."""
    try:
        return importlib.metadata.version("jepa_flow")
    except importlib.metadata.PackageNotFoundError:  # a source tree that was never installed
        return "0+unknown"


def layout_of(manifest: dict) -> str:
    return manifest.get("layout", "npz")


def marker_path(out, index: int, layout: str) -> Path:
    """The file whose existence says chunk ``index`` is done (the chunk file itself in 0.1)."""
    suffix = "npz" if layout == "npz" else "done"
    return Path(out) / CHUNKS / f"chunk_{index:06d}.{suffix}"


def column_path(out, name: str) -> Path:
    return Path(out) / COLUMNS / f"{name}.npy"


def manifest(config: SweepKind, chunk_size: int, precision: str) -> dict:
    """What ``manifest.json`` holds for ``config`` run in chunks of ``chunk_size``."""
    canonical = config.canonical()
    return {
        "jepa_flow_version": version(),
        "fingerprint": config.fingerprint(),
        "chunk_size": chunk_size,
        "n_configs": config.size,
        "n_chunks": len(config.chunk_plan(chunk_size)),
        "pair": config.pair,
        "axes": canonical.get("axes") or canonical["groups"],
        "outputs": [o.name for o in config.outputs()],
        "precision": precision,
        "layout": LAYOUT,
    }


def read_manifest(out) -> dict | None:
    """The manifest of ``out`` (None when it has none)."""
    path = Path(out) / MANIFEST
    return json.loads(path.read_text()) if path.exists() else None


def mismatch(config: SweepKind, out, old: dict, precision: str) -> str | None:
    """Why the sweep whose manifest is ``old`` cannot be resumed by ``config`` (None: it can)."""
    if old.get("fingerprint") != config.fingerprint():
        return (
            f"out {str(out)!r} holds the results of a different sweep configuration; "
            "use a new directory (results are never mixed)"
        )
    if old.get("jepa_flow_version") != version():
        return (
            f"out {str(out)!r} was written by jepa_flow {old.get('jepa_flow_version')}, "
            f"this is {version()}; use a new directory"
        )
    stored = old.get("precision", "float64")  # written before float32 sweeps existed
    if stored != precision:
        return (
            f"out {str(out)!r} holds a {stored} sweep and this run is {precision}; "
            f"resume it in {stored} or use a new directory (results are never mixed)"
        )
    return None


def remove_leftovers(out: Path, single_process: bool) -> None:
    """Remove what a killed run left: temporary files, and a directory never started.

    Temporary files are removed only by a single process (it holds the lock);
    a directory without a manifest and without a finished chunk (killed
    before its manifest was written: nothing was computed) is emptied.
    """
    if single_process and out.is_dir():
        for sub in (out, out / CHUNKS, out / COLUMNS):
            if sub.is_dir():
                _io.remove_stale_tmp(sub)  # half-written by a kill -9
    if not (out / MANIFEST).exists() and out.is_dir():
        leftovers = {p.name for p in out.iterdir()} - {LOCK_NAME}
        if leftovers <= {CONFIG, CHUNKS, COLUMNS} and not any((out / CHUNKS).glob("*")):
            for name in leftovers:
                path = out / name
                shutil.rmtree(path) if path.is_dir() else path.unlink()


def _create_column(path: Path, dtype: np.dtype, shape: tuple) -> None:
    """An all-zero ``.npy`` file of ``shape`` (sparse on disk), created atomically."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        column = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)
        column.flush()
        del column
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # as any other file written (mkstemp gives 0600)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def prepare(config: SweepKind, out, chunk_size: int | None, new_size: int, precision: str) -> int:
    """Create or reopen ``out`` for ``config``; refuse a directory that holds anything else.

    ``chunk_size`` is the one asked for (None: any); ``new_size`` the one a
    new directory gets. A new directory gets its configuration, its column
    files and then its manifest. Returns the chunk size to use (the stored
    one when resuming).
    """
    out = Path(out)
    old = read_manifest(out)
    if old is not None:
        reason = mismatch(config, out, old, precision)
        if reason is not None:
            raise ValueError(reason)
        if chunk_size is not None and chunk_size != old["chunk_size"]:
            raise ValueError(
                f"chunk_size {chunk_size} differs from the {old['chunk_size']} of the "
                f"interrupted run in {str(out)!r}; leave it out to resume"
            )
        return int(old["chunk_size"])
    _io.prepare_out_dir(out, force=False)
    (out / CHUNKS).mkdir(exist_ok=True)
    (out / COLUMNS).mkdir(exist_ok=True)
    _io.write_bytes_atomic(out / CONFIG, config.text.encode())
    for output in config.outputs():
        shape = (config.size,) + output.shape
        _create_column(column_path(out, output.name), output.numpy_dtype(precision), shape)
    _io.write_json_atomic(out / MANIFEST, manifest(config, new_size, precision))
    return new_size


def done_bytes(out) -> int:
    """Bytes on disk of the results written so far in ``out``."""
    out = Path(out)
    files = [*(out / CHUNKS).glob("chunk_*.npz"), *(out / COLUMNS).glob("*.npy")]
    return sum(f.stat().st_blocks * 512 for f in files)


def chunk_starts(config: SweepKind, plan: list[Chunk]) -> np.ndarray:
    """Each chunk's first row within the sweep."""
    group_starts = config.group_starts()
    return np.asarray([group_starts[c.group] + c.lo for c in plan], dtype=np.int64)


class Writer:
    """Writes finished chunks into ``out``; ``commit`` marks them done; ``close`` when done.

    ``write(chunk, outputs)`` writes the chunk's rows (numpy arrays by name,
    ``chunk.rows`` rows each) into the column files. ``commit()`` syncs the
    columns and then creates the markers of the chunks written since the last
    commit: one sync for many chunks, so fast chunks do not wait on the disk's
    latency. ``write`` commits by itself once ``MAX_PENDING`` chunks or
    ``MAX_AGE`` seconds are waiting (the runner also commits whenever its
    writer is idle). A marker is created only after its rows are on the
    disk; a marker lost in a crash only means its chunk is computed again.
    """

    MAX_PENDING = 64
    MAX_AGE = 1.0  # seconds

    def __init__(self, out, config: SweepKind, chunk_size: int):
        self.out = Path(out)
        self.layout = layout_of(read_manifest(out))
        self.starts = chunk_starts(config, config.chunk_plan(chunk_size))
        self.columns = {}
        self.pending: list[int] = []
        self.since = 0.0
        if self.layout == LAYOUT:
            for output in config.outputs():
                path = column_path(out, output.name)
                mapped = np.load(path, mmap_mode="r")
                fd = os.open(path, os.O_RDWR)
                self.columns[output.name] = (fd, mapped.offset, mapped.dtype, mapped.shape)
                del mapped

    def is_done(self, index: int) -> bool:
        return marker_path(self.out, index, self.layout).exists()

    def write(self, chunk: Chunk, outputs: dict[str, np.ndarray]) -> None:
        if self.layout == "npz":  # 0.1: uncompressed (floats hardly compress), fixed timestamps
            path = marker_path(self.out, chunk.index, self.layout)
            _io.write_bytes_atomic(path, _io.npz_bytes(outputs, compress=False))
            return
        start = int(self.starts[chunk.index])
        for name, (fd, offset, dtype, shape) in self.columns.items():
            data = np.ascontiguousarray(outputs[name], dtype=dtype)
            row = dtype.itemsize * int(np.prod(shape[1:], dtype=np.int64))
            _pwrite_all(fd, memoryview(data).cast("B"), offset + start * row)
        if not self.pending:
            self.since = time.monotonic()
        self.pending.append(chunk.index)
        if len(self.pending) >= self.MAX_PENDING or time.monotonic() - self.since > self.MAX_AGE:
            self.commit()

    def commit(self) -> None:
        """Sync the columns, then mark every chunk written since the last commit done."""
        if not self.pending:
            return
        for fd, *_ in self.columns.values():
            os.fdatasync(fd)  # the rows reach the disk before their markers
        for index in self.pending:
            _touch_atomic(marker_path(self.out, index, self.layout))
        self.pending = []

    def close(self) -> None:
        """Close the column files (without committing)."""
        for fd, *_ in self.columns.values():
            os.close(fd)
        self.columns = {}


def _touch_atomic(path: Path) -> None:
    """Create the empty file ``path`` through a temporary name (no sync: see ``Writer``)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, path)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _pwrite_all(fd: int, data: memoryview, offset: int) -> None:
    while data:
        n = os.pwrite(fd, data, offset)
        data, offset = data[n:], offset + n


class Store:
    """A sweep directory opened for reading (numpy only).

    Attributes: ``path``, ``manifest`` (dict), ``config`` (its ``SweepKind``),
    ``plan`` (the chunks), ``starts`` (each chunk's first row in the sweep).
    """

    def __init__(self, path):
        self.path = Path(path)
        try:
            self.manifest = json.loads((self.path / MANIFEST).read_text())
            text = (self.path / CONFIG).read_text()
        except FileNotFoundError:
            raise ValueError(
                f"{str(self.path)!r} is not a sweep directory (no manifest.json)"
            ) from None
        self.config = parse_config(text, budget=False)
        if self.manifest["fingerprint"] != self.config.fingerprint():
            raise ValueError(f"{str(self.path)!r}: config.toml does not match manifest.json")
        self.layout = layout_of(self.manifest)
        self.plan = self.config.chunk_plan(self.manifest["chunk_size"])
        self.starts = chunk_starts(self.config, self.plan)

    @property
    def outputs(self) -> tuple[str, ...]:
        return tuple(self.manifest["outputs"])

    def check_complete(self) -> None:
        """Raise ``ValueError`` when chunks are missing (an interrupted run)."""
        done = {p.name for p in (self.path / CHUNKS).iterdir()}
        missing = [
            c.index for c in self.plan if marker_path("", c.index, self.layout).name not in done
        ]
        if missing:
            raise ValueError(
                f"{str(self.path)!r}: {len(missing)} of {len(self.plan)} chunks are missing "
                "(interrupted run: run the same sweep command again to finish it)"
            )

    def column(self, name: str) -> np.ndarray:
        """Output column ``name``, every row: memory-mapped, read-only (0.1: read in memory)."""
        if self.layout == LAYOUT:
            return np.load(column_path(self.path, name), mmap_mode="r")
        out = None
        for chunk, start in zip(self.plan, self.starts):
            with np.load(marker_path(self.path, chunk.index, self.layout)) as part:
                values = part[name]
            if out is None:
                out = np.empty((self.config.size,) + values.shape[1:], values.dtype)
            out[start : start + chunk.rows] = values
        return out

    def rows(self, name: str, rows: np.ndarray) -> np.ndarray:
        """Output column ``name`` at the flat ``rows`` (only the chunks they touch: 0.1)."""
        rows = np.asarray(rows, dtype=np.int64)
        if self.layout == LAYOUT:
            return np.asarray(self.column(name)[rows])
        chunk = np.searchsorted(self.starts, rows, side="right") - 1
        out = None
        for c in np.unique(chunk).tolist() or [0]:
            sel = chunk == c
            with np.load(marker_path(self.path, self.plan[c].index, self.layout)) as part:
                values = part[name]
            if out is None:
                out = np.empty(rows.shape + values.shape[1:], values.dtype)
            out[sel] = values[rows[sel] - self.starts[c]]
        return out
