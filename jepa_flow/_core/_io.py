"""Output directories and atomic, deterministic file writes.

Every file a job writes goes to a temporary name in the same directory and is
moved into place with ``os.replace``, so an interrupted run never leaves a
half-written file under its final name. ``.npz`` archives carry a fixed
timestamp, so the same arrays always give the same bytes (a rerun, or a run
resumed after ``kill -9``, is identical to an uninterrupted one).

``check_writable`` probes an output directory (or the parent that would hold
it) before any computation, so an unwritable ``out`` fails at once.

Every file a job *reads* from a user (a sweep configuration, a ``.npz`` of
paired views, a teacher ``.npy``, a saved result) goes through
``read_bytes_capped``: only a regular file, and at most a given size, is read,
so ``/dev/urandom``, a FIFO or a directory is refused at once instead of being
read forever; ``read_text``, ``load_npz`` and ``load_npy`` build on it and say
what the file is when it is not what was asked for.
"""

from __future__ import annotations

import io
import json
import os
import stat
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from ._budget import format_size
from ._lock import LOCK_NAME

# the largest text file read (a sweep configuration, a result's JSON record)
MAX_TEXT_BYTES = 16 * 2**20

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


def figure_bytes(fig, fmt: str = "png", **kwargs) -> bytes:
    """A matplotlib figure rendered in memory (render before writing anything)."""
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, **kwargs)
    return buf.getvalue()


def save_figure_atomic(fig, path, **kwargs) -> None:
    """Save a matplotlib figure to ``path`` atomically (format from the suffix)."""
    path = Path(path)
    write_bytes_atomic(path, figure_bytes(fig, path.suffix.lstrip(".") or "png", **kwargs))


def _too_big(name: str, path: str, size: float, max_bytes: int) -> ValueError:
    return ValueError(
        f"{name} {path!r} is {format_size(size)}, more than the {format_size(max_bytes)} "
        "this reader accepts"
    )


def _kind(mode: int) -> str:
    kinds = (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a pipe"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((k for test, k in kinds if test(mode)), "not a file")


def read_bytes_capped(path, name: str, max_bytes: int) -> bytes:
    """The bytes of the regular file ``path``, at most ``max_bytes`` of them.

    A directory, device, FIFO or socket (``/dev/urandom``, ``/dev/stdin``) is
    refused without reading from it, and so is a file larger than
    ``max_bytes``; each with a one-line ``ValueError`` naming ``name``.

    Examples:
        >>> read_bytes_capped("/dev/urandom", "config", 100)
        Traceback (most recent call last):
        ...
        ValueError: config '/dev/urandom' is not a regular file (a character device)
    """
    p = str(path)
    try:  # O_NONBLOCK: opening a FIFO does not wait for a writer
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as err:
        raise ValueError(f"{name} {p!r} cannot be read: {err.strerror or err}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ValueError(f"{name} {p!r} is not a regular file ({_kind(st.st_mode)})")
        if st.st_size > max_bytes:
            raise _too_big(name, p, st.st_size, max_bytes)
        chunks, left = [], max_bytes + 1
        while left > 0 and (chunk := os.read(fd, min(left, 2**24))):
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
    except OSError as err:
        raise ValueError(f"{name} {p!r} cannot be read: {err.strerror or err}") from None
    finally:
        os.close(fd)
    if len(data) > max_bytes:  # grew while being read
        raise _too_big(name, p, len(data), max_bytes)
    return data


def read_text(path, name: str, max_bytes: int = MAX_TEXT_BYTES) -> str:
    """A UTF-8 text file (``read_bytes_capped``); a leading byte-order mark is dropped.

    Examples:
        >>> import os, tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = os.path.join(tmp, "c.toml")
        ...     _ = open(path, "wb").write(b"\\xef\\xbb\\xbfa = 1\\n")  # with a BOM
        ...     read_text(path, "config")
        'a = 1\\n'
    """
    data = read_bytes_capped(path, name, max_bytes)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ValueError(
            f"{name} {str(path)!r} is not UTF-8 text (byte {err.start}: {data[err.start]:#04x})"
        ) from None


_NPY_MAGIC = b"\x93NUMPY"


def load_npz(path, name: str, max_bytes: int) -> dict:
    """The arrays of a ``.npz`` archive (no pickled objects), read with ``read_bytes_capped``.

    ``max_bytes`` caps the file and the arrays it unpacks to (a zip bomb is
    refused before it is inflated).
    """
    data = read_bytes_capped(path, name, max_bytes)
    p = str(path)
    if data.startswith(_NPY_MAGIC):
        raise ValueError(f"{name} {p!r} is a .npy array, not a .npz archive of named arrays")
    if not data.startswith(b"PK"):
        raise ValueError(f"{name} {p!r} is not a .npz archive (not a zip file)")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            unpacked = sum(info.file_size for info in zf.infolist())
        if unpacked > max_bytes:
            raise _too_big(name + " (unpacked)", p, unpacked, max_bytes)
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, EOFError, KeyError, zipfile.BadZipFile) as err:
        raise ValueError(f"{name} {p!r} is not a readable .npz archive: {err}") from None
    except ValueError as err:
        if "pickle" in str(err):
            raise ValueError(f"{name} {p!r} holds object arrays, which are not read") from None
        raise ValueError(f"{name} {p!r} is not a readable .npz archive: {err}") from None


def load_npy(path, name: str, max_bytes: int) -> np.ndarray:
    """The array of a ``.npy`` file (no pickled objects), read with ``read_bytes_capped``."""
    data = read_bytes_capped(path, name, max_bytes)
    p = str(path)
    if data.startswith(b"PK"):
        raise ValueError(f"{name} {p!r} is a .npz archive, not a .npy array")
    if not data.startswith(_NPY_MAGIC):
        raise ValueError(f"{name} {p!r} is not a .npy array (no .npy header)")
    try:
        return np.load(io.BytesIO(data), allow_pickle=False)
    except (OSError, EOFError, ValueError) as err:
        text = "it holds objects" if "pickle" in str(err) else str(err)
        raise ValueError(f"{name} {p!r} is not a readable .npy array: {text}") from None
