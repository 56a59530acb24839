"""Checkpoints: a ``TrainState`` serialised with Equinox, written atomically, with a SHA-256
checksum of its bytes in a sidecar file (``checkpoint.eqx.sha256``) verified on load."""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any

import equinox as eqx

from ..files import atomic_open, atomic_write_text, read_json_object, temporary_files
from ._state import TrainState


class CheckpointError(ValueError):
    """A checkpoint that cannot be trusted or read: its file is named in the message."""


def checksum_path(path: str | os.PathLike) -> Path:
    """The sidecar that holds ``path``'s checksum."""
    path = Path(path)
    return path.with_name(path.name + ".sha256")


def save_checkpoint(
    path: str | os.PathLike, state: TrainState, *, extra: dict[str, Any] | None = None
) -> None:
    """Writes ``state`` to ``path`` and its checksum beside it; a crash at any point leaves a
    checkpoint that verifies (the previous one or the new one).

    The sidecar is written twice: first naming both the new and the previous checksum (so a
    crash before the checkpoint is renamed into place still verifies the old one), then the new
    one alone. ``extra`` (JSON) is stored in the sidecar with the checksum.
    """
    path = Path(path)
    buffer = io.BytesIO()
    eqx.tree_serialise_leaves(buffer, state)
    data = buffer.getvalue()
    new = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), **(extra or {})}
    sidecar = checksum_path(path)
    if path.is_file():  # the checkpoint on disk until the rename below
        previous = _record_of(sidecar, hashlib.sha256(path.read_bytes()).hexdigest())
        atomic_write_text(sidecar, json.dumps({**new, "previous": previous}) + "\n")
    with atomic_open(path, "wb") as f:
        f.write(data)
    atomic_write_text(sidecar, json.dumps(new) + "\n")


def verify_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Checks ``path``'s bytes against its sidecar; returns the sidecar's record. Raises
    ``CheckpointError`` naming the file when the sidecar is missing, damaged, or disagrees."""
    path = Path(path)
    sidecar = checksum_path(path)
    if not sidecar.is_file():
        raise CheckpointError(
            f"{sidecar} is missing, so {path} cannot be verified: restore it from where the run "
            "was copied, or start the run again in a new folder"
        )
    record = _read_sidecar(sidecar)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest == record["sha256"]:
        return {k: v for k, v in record.items() if k != "previous"}
    previous = record.get("previous")
    if isinstance(previous, dict) and digest == previous.get("sha256"):
        return previous  # a save interrupted before its rename: the old checkpoint, intact
    raise CheckpointError(
        f"{path} is damaged: its SHA-256 {digest[:16]}... does not match {sidecar} "
        f"({record['sha256'][:16]}...); restore the file or start the run again in a new folder"
    )


def load_checkpoint(
    path: str | os.PathLike, like: TrainState, *, verify: bool = True
) -> TrainState:
    """Reads a checkpoint into the structure of ``like`` (a freshly initialised state of the same
    run configuration), after verifying its checksum (``verify``). A file that does not fit
    ``like`` raises ``CheckpointError`` naming it."""
    if verify:
        verify_checkpoint(path)
    try:
        with open(path, "rb") as f:
            return eqx.tree_deserialise_leaves(f, like)
    except FileNotFoundError:
        raise
    except Exception as e:  # whatever Equinox or NumPy make of bytes of another structure
        raise CheckpointError(
            f"{path} does not hold a checkpoint of this run's configuration ({type(e).__name__}: "
            f"{_first_line(e)}); was config.json edited? Restore it, or start a new run"
        ) from e


def remove_leftovers(path: str | os.PathLike) -> list[Path]:
    """Removes the temporary files that an interrupted ``save_checkpoint(path, ...)`` left."""
    leftovers = temporary_files(path) + temporary_files(checksum_path(path))
    for p in leftovers:
        p.unlink(missing_ok=True)
    return leftovers


def _record_of(sidecar: Path, digest: str) -> dict[str, Any]:
    """The sidecar's record of the checkpoint whose checksum is ``digest`` (just the checksum
    when the sidecar does not describe it)."""
    try:
        record = _read_sidecar(sidecar) if sidecar.is_file() else {}
    except CheckpointError:
        record = {}
    for candidate in (record, record.get("previous")):
        if isinstance(candidate, dict) and candidate.get("sha256") == digest:
            return {k: v for k, v in candidate.items() if k != "previous"}
    return {"sha256": digest}


def _read_sidecar(sidecar: Path) -> dict[str, Any]:
    return read_json_object(sidecar, "sha256", str, CheckpointError, "it is damaged")


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else ""
