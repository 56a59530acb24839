"""Where a result came from: the command, the commit and the machine that made it."""

from __future__ import annotations

import datetime
import os
import platform
import shlex
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax

ROOT = Path(__file__).resolve().parent.parent
"""The checkout ctlearn runs from (its git commands run there)."""


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


OUTPUTS = ("results", "docs")
"""The checkout's folders of generated outputs: a run that rewrites committed results or pages
(``sims.gallery`` redrawing every figure) does not make the code it runs dirty."""


def provenance(argv: Sequence[str] | None = None, *, module: str | None = None) -> dict[str, Any]:
    """The command line (``python -m ...`` as typed, from ``sys.argv`` unless ``argv``), the git
    commit of the checkout ctlearn runs from (with ``dirty`` when its tracked files outside
    ``OUTPUTS`` have uncommitted changes; ``None`` outside a checkout), the machine (processor,
    cores, JAX's devices) and the UTC time.

    ``module``: the command is ``python -m MODULE`` followed by ``argv`` (its arguments alone,
    ``sys.argv[1:]`` when ``None``), for a sim whose ``main(argv)`` another sim calls in the
    same process (``sims.gallery``), where ``sys.argv`` is the caller's."""
    if module is not None:
        args = list(sys.argv[1:] if argv is None else argv)
        command = ["python", "-m", module]
    else:
        argv = sys.argv if argv is None else argv
        main = sys.modules.get("__main__")
        spec = getattr(main, "__spec__", None)
        command = ["python", "-m", spec.name] if spec is not None else ["python", argv[0]]
        args = list(argv[1:])
    excluded = [f":(exclude){folder}" for folder in OUTPUTS]
    status = _git("status", "--porcelain", "--untracked-files=no", "--", ".", *excluded)
    return {
        "command": shlex.join(command + args),
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
