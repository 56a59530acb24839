"""Whether the internet can be reached: asked once before a download, so that a machine without
a network fails in seconds instead of waiting for TFDS's retries (about 200 s)."""

from __future__ import annotations

import socket
import threading

# TFDS serves its prepared files and most source archives from Google Cloud Storage.
PROBE_HOST = ("storage.googleapis.com", 443)
PROBE_SECONDS = 3.0


def network_reachable() -> bool:
    """Whether a TCP connection to ``PROBE_HOST`` opens within ``PROBE_SECONDS`` (the name lookup
    included: it runs in a thread so a resolver without a network cannot hold us longer)."""
    host, timeout = PROBE_HOST, PROBE_SECONDS
    result: list[bool] = []

    def connect():
        try:
            with socket.create_connection(host, timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


def describe_probe() -> str:
    """What ``network_reachable`` tried, for error messages."""
    return f"{PROBE_HOST[0]}:{PROBE_HOST[1]} could not be reached within {PROBE_SECONDS:g} s"
