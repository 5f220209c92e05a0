"""Saving and loading typed results: one ``.json`` and one ``.npz`` file per result.

Every public result type is a dataclass (a frozen ``dataclasses.dataclass``
or an ``equinox.Module``). ``save_result`` walks its fields: arrays go to the
``.npz`` under their dotted path (``data.Sxx``), everything else (strings,
numbers, None, nested results, tuples of them) to the ``.json``, tagged with
the type's name so that ``load_result`` rebuilds the same objects. Types
register themselves with ``register_result`` (done where they are defined).
Both files are written atomically.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ._budget import DEFAULT_MAX_MEMORY
from ._io import _to_jsonable, load_npz, npz_bytes, read_text, write_bytes_atomic

_TYPES: dict[str, type] = {}
FORMAT_VERSION = 1


def register_result(cls):
    """Class decorator: make ``cls`` loadable by ``load_result`` (by its name)."""
    _TYPES[cls.__name__] = cls
    return cls


def _is_array(x) -> bool:
    return hasattr(x, "shape") and hasattr(x, "dtype")


def _encode(obj, path: str, arrays: dict):
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        name = type(obj).__name__
        if name not in _TYPES:
            raise ValueError(f"{name} is not a registered result type")
        out = {"__type__": name}
        for f in dataclasses.fields(obj):
            out[f.name] = _encode(getattr(obj, f.name), f"{path}{f.name}.", arrays)
        return out
    if _is_array(obj) and np.ndim(obj) > 0:
        key = path.rstrip(".")
        arrays[key] = np.asarray(obj)
        return {"__array__": key}
    if isinstance(obj, (tuple, list)):
        return {
            "__tuple__" if isinstance(obj, tuple) else "__list__": [
                _encode(v, f"{path}{i}.", arrays) for i, v in enumerate(obj)
            ]
        }
    return _to_jsonable(obj)


def _decode(obj, arrays):
    if isinstance(obj, dict):
        if "__array__" in obj:
            return arrays[obj["__array__"]]
        if "__tuple__" in obj:
            return tuple(_decode(v, arrays) for v in obj["__tuple__"])
        if "__list__" in obj:
            return [_decode(v, arrays) for v in obj["__list__"]]
        if "__type__" in obj:
            cls = _TYPES[obj["__type__"]]
            fields = {k: _decode(v, arrays) for k, v in obj.items() if k != "__type__"}
            if hasattr(cls, "from_dict"):
                return cls.from_dict(fields)
            return cls(**fields)
        return {k: _decode(v, arrays) for k, v in obj.items()}
    if obj == "inf":
        return float("inf")
    if obj == "-inf":
        return float("-inf")
    return obj


def save_result(result: Any, path: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``result`` to ``path.json`` and ``path.npz`` (atomically); returns both paths.

    Examples:
        >>> import tempfile, pathlib, jepa_flow as jf
        >>> cfg = jf.TrainConfig(objective="mae", eta=0.1, steps=20, n_t=5)
        >>> r = jf.train(jf.gaussian(Sxx=[2.0, 1.0], Syx=[1.0, 0.8]), cfg)
        >>> stem = pathlib.Path(tempfile.mkdtemp()) / "run"
        >>> [p.name for p in jf.save_result(r, stem)]
        ['run.json', 'run.npz']
        >>> back = jf.load_result(stem)
        >>> back.config == r.config, bool((back.norm == r.norm).all())
        (True, True)
    """
    path = Path(path)
    arrays: dict = {}
    tree = _encode(result, "", arrays)
    doc = {"format": FORMAT_VERSION, "result": tree}
    js, nz = path.with_name(path.name + ".json"), path.with_name(path.name + ".npz")
    write_bytes_atomic(nz, npz_bytes(arrays))  # fixed timestamps: equal arrays, equal bytes
    write_bytes_atomic(js, (json.dumps(doc, indent=1, allow_nan=False) + "\n").encode())
    return js, nz


def load_result(path: str | os.PathLike, max_bytes: int = DEFAULT_MAX_MEMORY) -> Any:
    """Read a result written by ``save_result`` (``path`` without the suffixes).

    Only regular files are read, the arrays at most ``max_bytes`` (default
    the 4 GiB memory budget); anything else is a one-line ``ValueError``.

    Examples:
        >>> load_result("no/such/run")
        Traceback (most recent call last):
        ...
        ValueError: no saved result at 'no/such/run': run.json is missing
    """
    path = Path(path)
    js, nz = path.with_name(path.name + ".json"), path.with_name(path.name + ".npz")
    for f in (js, nz):
        if not f.is_file():
            raise ValueError(f"no saved result at {str(path)!r}: {f.name} is missing")
    try:
        doc = json.loads(read_text(js, "result record"))
    except json.JSONDecodeError as err:
        raise ValueError(f"result record {str(js)!r} is not valid JSON ({err.msg})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT_VERSION:
        got = doc.get("format") if isinstance(doc, dict) else None
        raise ValueError(f"{js.name} has format {got!r}; expected {FORMAT_VERSION}")
    arrays = load_npz(nz, "result arrays", max_bytes)
    try:
        return _decode(doc["result"], arrays)
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{js.name} is not a saved result ({type(err).__name__}: {err})") from None
