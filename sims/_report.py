"""What a figure-making sim prints when it finishes."""

from __future__ import annotations

from typing import Any


def print_report(result: dict[str, Any]) -> None:
    """The sim's summary page, the figures it wrote and its plain-language explanation."""
    print(result["summary"].read_text())
    print("figures:", ", ".join(str(f) for f in result["figures"]))
    print()
    print(result["explanation"])
