"""Where a result came from: the command, the commit and the machine that made it."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import jax


def _git(*args: str) -> str | None:
    root = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def provenance(argv: list[str] | None = None) -> dict[str, Any]:
    """The command line (``python -m ...`` as typed, from ``sys.argv`` unless ``argv``), the git
    commit of the checkout ctlearn runs from (with ``dirty`` when it has uncommitted changes;
    ``None`` outside a checkout), the machine (processor, cores, JAX's devices) and the UTC time."""
    argv = sys.argv if argv is None else argv
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    command = ["python", "-m", spec.name] if spec is not None else ["python", argv[0]]
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "command": " ".join(command + list(argv[1:])),
        "commit": _git("rev-parse", "HEAD"),
        "dirty": None if status is None else bool(status),
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "system": f"{platform.system()} {platform.release()}",
            "python": platform.python_version(),
            "jax": jax.__version__,
            "devices": [str(d) for d in jax.devices()],
        },
        "utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
