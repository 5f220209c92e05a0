"""The on-disk format of a sweep: paths, chunk plan, manifest, writing and reading.

Output directory::

    config.toml               the configuration as given
    manifest.json             library version, fingerprint, chunk size, counts, precision
    chunks/chunk_NNNNNN.npz   outputs of one finished chunk (written atomically)

Rows are in sweep order (``SweepKind``: groups one after another, each cut
into chunks by ``chunk_plan``); chunk ``i`` holds rows ``start(i) : start(i) +
rows(i)``, where its start is its group's first row plus its offset in the
group. Nothing else in the package knows these names or this arithmetic:
the runner (``_run``) writes through ``prepare``/``write_chunk`` and the
readers (``_load``, ``SweepResult``) read through ``Store``.

A directory is resumed only by the same configuration (fingerprint), library
version and precision (``mismatch``); results are never mixed. Reading needs
numpy only.
"""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path

import numpy as np

from .._core import _io
from .._core._lock import LOCK_NAME
from ._config import parse_config
from ._kind import SweepKind

CHUNKS = "chunks"
MANIFEST = "manifest.json"
CONFIG = "config.toml"


def version() -> str:
    """The installed jepa_flow's version (what a manifest records; package metadata)."""
    try:
        return importlib.metadata.version("jepa_flow")
    except importlib.metadata.PackageNotFoundError:  # a source tree that was never installed
        return "0+unknown"


def chunk_path(out: Path, index: int) -> Path:
    return Path(out) / CHUNKS / f"chunk_{index:06d}.npz"


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
    a directory holding only ``config.toml`` and an empty ``chunks`` (killed
    before its manifest was written: nothing was computed) is emptied.
    """
    chunks = out / CHUNKS
    if single_process and chunks.is_dir():
        for stale in chunks.glob(".chunk_*.tmp"):  # left by a kill -9 during a write
            stale.unlink()
    if single_process and out.is_dir():
        _io.remove_stale_tmp(out)  # config.toml or manifest.json, half-written
    if not (out / MANIFEST).exists() and out.is_dir():
        leftovers = {p.name for p in out.iterdir()} - {LOCK_NAME}
        if leftovers <= {CONFIG, CHUNKS} and not any(chunks.glob("*")):
            for name in leftovers:
                (out / name).rmdir() if name == CHUNKS else (out / name).unlink()


def prepare(config: SweepKind, out, chunk_size: int | None, new_size: int, precision: str) -> int:
    """Create or reopen ``out`` for ``config``; refuse a directory that holds anything else.

    ``chunk_size`` is the one asked for (None: any); ``new_size`` the one a
    new directory gets. Returns the chunk size to use (the stored one when
    resuming).
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
    _io.write_bytes_atomic(out / CONFIG, config.text.encode())
    _io.write_json_atomic(out / MANIFEST, manifest(config, new_size, precision))
    return new_size


def is_done(out, index: int) -> bool:
    return chunk_path(out, index).exists()


def done_bytes(out) -> int:
    """Bytes of the finished chunk files in ``out``."""
    return sum(f.stat().st_size for f in (Path(out) / CHUNKS).glob("chunk_*.npz"))


def write_chunk(path: Path, outputs: dict[str, np.ndarray]) -> None:
    """One chunk's outputs, atomically.

    Uncompressed (float data hardly compresses); fixed timestamps: the same
    arrays give the same bytes.
    """
    _io.write_bytes_atomic(path, _io.npz_bytes(outputs, compress=False))


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
        self.plan = self.config.chunk_plan(self.manifest["chunk_size"])
        group_starts = self.config.group_starts()
        self.starts = np.asarray([group_starts[c.group] + c.lo for c in self.plan], np.int64)

    @property
    def outputs(self) -> tuple[str, ...]:
        return tuple(self.manifest["outputs"])

    def check_complete(self) -> None:
        """Raise ``ValueError`` when chunks are missing (an interrupted run)."""
        missing = [c.index for c in self.plan if not is_done(self.path, c.index)]
        if missing:
            raise ValueError(
                f"{str(self.path)!r}: {len(missing)} of {len(self.plan)} chunks are missing "
                "(interrupted run: run the same sweep command again to finish it)"
            )

    def column(self, name: str) -> np.ndarray:
        """Output column ``name``, every row (chunk files read one at a time)."""
        out = None
        for chunk, start in zip(self.plan, self.starts):
            with np.load(chunk_path(self.path, chunk.index)) as part:
                values = part[name]
            if out is None:
                out = np.empty((self.config.size,) + values.shape[1:], values.dtype)
            out[start : start + chunk.rows] = values
        return out

    def rows(self, name: str, rows: np.ndarray) -> np.ndarray:
        """Output column ``name`` at the flat ``rows``, reading only the chunks they touch."""
        rows = np.asarray(rows, dtype=np.int64)
        chunk = np.searchsorted(self.starts, rows, side="right") - 1
        out = None
        for c in np.unique(chunk):
            sel = chunk == c
            with np.load(chunk_path(self.path, self.plan[c].index)) as part:
                values = part[name]
            if out is None:
                out = np.empty(rows.shape + values.shape[1:], values.dtype)
            out[sel] = values[rows[sel] - self.starts[c]]
        if out is None:  # no rows: the dtype from the first chunk
            with np.load(chunk_path(self.path, self.plan[0].index)) as part:
                out = part[name][:0]
        return out
