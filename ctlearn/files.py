"""Files written whole and read with errors that name them.

Writes go beside the target, are flushed to disk and renamed into place: a reader (or a run that
is killed mid-write) sees either the old file or the new one, never a half-written one. Every
file ctlearn and its studies write goes through ``atomic_open`` or ``atomic_write_text``; use
them for outputs of your own studies too. ``read_json`` and ``read_json_object`` read the JSON
files back, refusing a damaged one with a message that names the file and what to do.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Opens a temporary file beside ``path`` for writing; on a clean exit it replaces ``path``.

    On an exception the temporary file is removed and ``path`` is left as it was.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes whole files: mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; a plain open() honours the umask
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def temporary_files(path: str | os.PathLike) -> list[Path]:
    """The temporary files ``atomic_open(path)`` leaves behind when its process is killed."""
    path = Path(path)
    return sorted(path.parent.glob(f".{glob.escape(path.name)}.*.tmp"))


def _umask() -> int:
    # The umask can only be read by setting it; set it straight back.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Replaces the contents of ``path`` with ``text`` atomically."""
    with atomic_open(path, "w") as f:
        f.write(text)


JSON_KINDS = {dict: "object", str: "string", list: "array"}
"""The JSON types ``read_json_object`` can require, by the Python type they load as."""


def read_json(path: str | os.PathLike, error: type[Exception], hint: str) -> Any:
    """The JSON value in ``path``; text that is not JSON raises ``error`` naming the file, where
    the decoder stopped and ``hint`` (what to do)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise error(f"{path} is not valid JSON ({e}): {hint}") from None


def read_json_object(
    path: str | os.PathLike, key: str, kind: type, error: type[Exception], hint: str
) -> dict[str, Any]:
    """The JSON object in ``path``, which must hold ``key`` of type ``kind`` (one of
    ``JSON_KINDS``); anything else raises ``error`` naming the file, what is wrong and ``hint``
    (what to do)."""
    if kind not in JSON_KINDS:
        raise TypeError(
            f"kind must be one of {', '.join(k.__name__ for k in JSON_KINDS)}, got {kind!r}"
        )
    content = read_json(path, error, hint)
    if not isinstance(content, dict) or not isinstance(content.get(key), kind):
        raise error(f"{path} holds no {key!r} {JSON_KINDS[kind]}: {hint}")
    return content
