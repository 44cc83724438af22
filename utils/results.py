"""Writing results safely, and reading back what earlier runs left.

Every file is written to a temporary name in the same folder and then renamed over the
target (``os.replace`` is atomic on POSIX and Windows), so an interrupted run never leaves a
half-written metrics.json or figure behind.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator


TEMP_PREFIX = ".partial-"  # names of our own temporaries (only these are ever cleaned up)


def remove_stale_temporaries(folder: Path) -> int:
    """Delete temporaries that a killed run left in ``folder`` (only files named by atomic_path)."""
    removed = 0
    for path in Path(folder).glob(f"{TEMP_PREFIX}*"):
        if path.is_file():
            path.unlink(missing_ok=True)
            removed += 1
    return removed


@contextmanager
def atomic_path(target: Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{target.stem}.", suffix=suffix or target.suffix, dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp makes 0600; results are meant to be shared
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text(target: Path, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def to_jsonable(value: Any) -> Any:
    """numpy / torch scalars and arrays, tuples, paths and non-finite floats -> plain JSON."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):  # numpy arrays and scalars, torch tensors
        return to_jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def write_json(target: Path, data: dict) -> None:
    write_text(target, json.dumps(to_jsonable(data), indent=2, sort_keys=False) + "\n")


def read_json(path: Path) -> dict | None:
    """The JSON object at ``path``, or None if it is missing or unreadable."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def check_writable(folder: Path) -> str | None:
    """None if ``folder`` can be created and written, else a one-line reason."""
    try:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as exc:
        return f"cannot write to results folder {folder}: {exc.strerror or exc}"
    return None


def task_status(results_dir: Path, task) -> dict:
    """What the last run of ``task`` left: status, mode, headline text, seconds."""
    data = read_json(Path(results_dir) / task.dirname / "metrics.json")
    if data is None:
        return {"status": "not run", "mode": "", "headline": "", "seconds": None}
    headline = data.get("headline")
    return {
        "status": str(data.get("status", "unknown")),
        "mode": str(data.get("mode", "")),
        "headline": headline if isinstance(headline, str) else "",
        "seconds": data.get("seconds"),
    }


# ------------------------------------------------------------------ stored task results
# A task's Result dataclass is stored as result.json so that figures and the write-up can be
# rebuilt without training (`main.py --redraw`). JSON, not pickle: readable, and loading it
# runs no code. Arrays keep their dtype and shape; nested dataclasses and dict keys are
# rebuilt from the type hints of the Result class.

def encode_result(value: Any) -> Any:
    import dataclasses

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: encode_result(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): encode_result(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode_result(v) for v in value]
    if type(value).__module__ == "numpy" and hasattr(value, "shape") and getattr(value, "ndim", 0) > 0:
        return {"__ndarray__": value.tolist(), "dtype": str(value.dtype)}
    if type(value).__module__.startswith("torch"):
        return encode_result(value.detach().cpu().numpy())
    if hasattr(value, "item") and type(value).__module__ == "numpy":  # numpy scalars
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value


def decode_result(hint: Any, data: Any) -> Any:
    """Rebuild a value of type ``hint`` (a dataclass, list[...], dict[...], ndarray...) from JSON."""
    import dataclasses
    import typing

    if isinstance(data, dict) and "__ndarray__" in data:
        import numpy as np

        return np.asarray(data["__ndarray__"], dtype=data["dtype"])
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if data is None:
            return None
        for arg in args:
            if arg is not type(None):
                try:
                    return decode_result(arg, data)
                except (TypeError, ValueError, KeyError):
                    continue
        return data
    if isinstance(hint, type) and dataclasses.is_dataclass(hint) and isinstance(data, dict):
        hints = typing.get_type_hints(hint)
        known = {f.name for f in dataclasses.fields(hint) if f.init}
        return hint(**{k: decode_result(hints.get(k, Any), v) for k, v in data.items() if k in known})
    if origin in (list, tuple) and isinstance(data, list):
        if origin is tuple and args and args[-1] is not Ellipsis:
            return tuple(decode_result(a, v) for a, v in zip(args, data))
        inner = args[0] if args else Any
        out = [decode_result(inner, v) for v in data]
        return tuple(out) if origin is tuple else out
    if origin is dict and isinstance(data, dict):
        k_type, v_type = args if args else (Any, Any)
        return {_decode_key(k_type, k): decode_result(v_type, v) for k, v in data.items()}
    if hint is float and isinstance(data, int):
        return float(data)
    return data


def _decode_key(k_type: Any, key: str) -> Any:
    if k_type is int:
        return int(key)
    if k_type is float:
        return float(key)
    return key


def save_result(path: Path, result: Any) -> None:
    """Write a task's Result dataclass as JSON (NaN and inf kept as JSON's NaN/Infinity)."""
    write_text(path, json.dumps(encode_result(result), allow_nan=True) + "\n")


def load_result(cls: type, path: Path) -> Any:
    """The Result stored at ``path``, rebuilt as ``cls``; ValueError when it does not fit."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return decode_result(cls, data)
    except (OSError, ValueError, TypeError) as exc:
        raise ValueError(f"cannot read the stored result {path}: {exc}") from None
