"""Output directories and atomic, deterministic file writes.

Every file a job writes goes to a temporary name in the same directory and is
moved into place with ``os.replace``, so an interrupted run never leaves a
half-written file under its final name. ``.npz`` archives carry a fixed
timestamp, so the same arrays always give the same bytes (a rerun, or a run
resumed after ``kill -9``, is identical to an uninterrupted one).

``check_writable`` probes an output directory (or the parent that would hold
it) before any computation, so an unwritable ``out`` fails at once.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from ._lock import LOCK_NAME

# zip's epoch: the timestamp of every member of the .npz archives written here
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def _nearest_existing(path: Path) -> Path:
    p = path.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def check_writable(path, name: str = "out") -> Path:
    """Refuse, before anything is computed or written, an output directory that
    cannot be written.

    ``path`` may exist (it must then be a directory in which a file can be
    created) or not (the nearest existing parent must be a writable
    directory). Probes by creating and removing a temporary file; creates no
    directory. Raises ``ValueError`` naming ``name``.
    """
    out = Path(path)
    if str(path) == "":
        raise ValueError(f"{name} must be a directory path; got ''")
    if out.exists() and not out.is_dir():
        raise ValueError(f"{name} {str(out)!r} exists and is not a directory")
    base = _nearest_existing(out)
    if not base.is_dir():
        raise ValueError(f"{name} {str(out)!r}: {str(base)!r} is a file, not a directory")
    try:
        fd, probe = tempfile.mkstemp(dir=base, prefix=".jepa-flow-probe.", suffix=".tmp")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise ValueError(
            f"{name} {str(out)!r} is not writable ({err.strerror or err} in {str(base)!r})"
        ) from None
    return out


def is_empty_dir(path) -> bool:
    """True when ``path`` is a directory holding nothing but a lock file."""
    return all(p.name == LOCK_NAME for p in Path(path).iterdir())


def prepare_out_dir(
    path, force: bool, name: str = "out", create: bool = True, force_name: str = "force=True"
) -> Path:
    """Create ``path``, refusing to reuse a non-empty directory unless ``force``.

    Raises ``ValueError`` (before anything is written) when ``path`` is a file,
    not writable, or a non-empty directory and ``force`` is False. With
    ``create=False`` only checks.
    """
    out = check_writable(path, name)
    if out.is_dir() and not is_empty_dir(out) and not force:
        raise ValueError(
            f"{name} {str(out)!r} already exists and is not empty; use a new directory "
            f"or pass {force_name} to overwrite it"
        )
    if create:
        out.mkdir(parents=True, exist_ok=True)
    return out


def check_job_out(out, force, inputs_text, files, name="out", force_name="force=True") -> None:
    """Refuse an ``out`` that is a file, unwritable, or holds anything but the same job.

    A job writes ``inputs.json`` (``inputs_text``) first, then its ``files``. A
    directory that holds only those files (and temporary files of an
    interrupted write) with the same ``inputs.json`` is the same job,
    interrupted or finished: it is accepted without ``force`` and recomputed
    in place. Anything else needs ``force`` (see ``prepare_out_dir``).
    """
    out = Path(out)
    if out.is_dir() and not force:
        names = {p.name for p in out.iterdir()} - {LOCK_NAME}
        names = {n for n in names if not (n.startswith(".") and n.endswith(".tmp"))}
        marker = out / "inputs.json"
        if names and names <= {"inputs.json", *files} and marker.is_file():
            if marker.read_text() == inputs_text:
                prepare_out_dir(out, True, name=name, create=False)
                return
    prepare_out_dir(out, force, name=name, create=False, force_name=force_name)


def remove_stale_tmp(path) -> list[str]:
    """Remove the temporary files (``.NAME.*.tmp``) that a killed writer left in ``path``.

    Call only while holding the directory's lock (no other writer is running).
    """
    removed = []
    for p in Path(path).glob(".*.tmp"):
        if p.is_file():
            p.unlink()
            removed.append(p.name)
    return removed


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes_atomic(path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it into place."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _to_jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_jsonable(v) for v in obj]
    if hasattr(obj, "tolist"):  # numpy / jax arrays and scalars
        return _to_jsonable(np.asarray(obj).tolist())
    if isinstance(obj, float) and not np.isfinite(obj):
        return None if np.isnan(obj) else ("inf" if obj > 0 else "-inf")
    return obj


def write_json_atomic(path, obj) -> None:
    """Write ``obj`` as indented JSON; arrays become lists, inf becomes ``"inf"``."""
    text = json.dumps(_to_jsonable(obj), indent=2, allow_nan=False) + "\n"
    write_bytes_atomic(path, text.encode())


def npz_bytes(arrays: dict, compress: bool = True) -> bytes:
    """The ``.npz`` archive of ``arrays`` (as ``np.savez``/``np.savez_compressed``
    would write, readable by ``np.load``), with fixed member timestamps so that
    equal arrays give equal bytes."""
    buf = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(buf, "w", compression=method, allowZip64=True) as zf:
        for key, value in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_ZIP_EPOCH)
            info.compress_type = method
            info.external_attr = 0o600 << 16
            with zf.open(info, "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, np.asarray(value), allow_pickle=False)
    return buf.getvalue()


def write_npz_atomic(path, compress: bool = True, **arrays) -> None:
    """Write ``arrays`` to the ``.npz`` file ``path`` atomically and deterministically."""
    write_bytes_atomic(path, npz_bytes(arrays, compress))


def save_figure_atomic(fig, path, **kwargs) -> None:
    """Save a matplotlib figure to ``path`` atomically (format from the suffix)."""
    path = Path(path)
    buf = io.BytesIO()
    fig.savefig(buf, format=path.suffix.lstrip(".") or "png", **kwargs)
    write_bytes_atomic(path, buf.getvalue())
