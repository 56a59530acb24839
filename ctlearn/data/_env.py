"""Settings read from the environment: the cache folder and whether downloads are allowed."""

from __future__ import annotations

import os
from pathlib import Path

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """The folder for ctlearn's own cached files.

    ``cache_dir`` if given, else ``$CTLEARN_CACHE``, else ``$XDG_CACHE_HOME/ctlearn``, else
    ``~/.cache/ctlearn``. Empty variables count as unset.
    """
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if os.environ.get("CTLEARN_CACHE"):
        return Path(os.environ["CTLEARN_CACHE"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "ctlearn"
    return Path.home() / ".cache" / "ctlearn"


def downloads_disabled() -> bool:
    """Whether ``$CTLEARN_OFFLINE`` forbids downloads (TFDS then only reads prepared data)."""
    value = os.environ.get("CTLEARN_OFFLINE", "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(
        f"CTLEARN_OFFLINE={os.environ['CTLEARN_OFFLINE']!r} is not understood; "
        f"use one of {', '.join(repr(v) for v in _TRUE + _FALSE)}"
    )
