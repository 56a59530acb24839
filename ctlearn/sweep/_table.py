"""A sweep's result table: one row (a dict of column -> value) per (point, seed), its JSON and CSV
files, and summaries over seeds.

Non-finite metric values (nan, ±inf) are stored as None: ``null`` in ``results.json`` (JSON has
no NaN or Infinity) and ``nan`` in ``results.csv``; rows read back, and rows returned by
``run_sweep``, hold None there. The sign of an infinity is not kept.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ..files import read_json

SPEC_FILE = "spec.json"
RESULTS_JSON = "results.json"
RESULTS_CSV = "results.csv"


def load_table(out_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The rows of the sweep in ``out_dir``, sorted by (point, seed); None where a metric was
    non-finite. Empty when the sweep has started but no chunk has finished yet."""
    out_dir = Path(out_dir)
    path = out_dir / RESULTS_JSON
    hint = damaged_hint(out_dir)
    if not path.exists():
        if (out_dir / RESULTS_CSV).exists():  # both are written after every chunk
            raise FileNotFoundError(f"{path} is missing but {RESULTS_CSV} is there: {hint}")
        if (out_dir / SPEC_FILE).exists():
            return []
        raise FileNotFoundError(f"{out_dir} is not a sweep directory: it has no {SPEC_FILE}")
    rows = read_json(path, ValueError, hint)
    if not isinstance(rows, list):
        raise ValueError(f"{path} must hold a list of rows, got {type(rows).__name__}: {hint}")
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or not all(
            isinstance(row.get(key), int) and not isinstance(row.get(key), bool)
            for key in ("point", "seed")
        ):
            raise ValueError(
                f"{path}: row {i} is not an object with int 'point' and 'seed' ({row}): {hint}"
            )
    return rows


def damaged_hint(out_dir: Path) -> str:
    """What to do about a damaged file of the sweep in ``out_dir`` (nothing is repaired)."""
    return f"restore it, or delete {out_dir} to run the sweep from the start"


def rows_json_text(rows: Sequence[dict[str, Any]]) -> str:
    """``results.json``: a JSON list with one row per line (readable, and diffs stay small)."""
    if not rows:
        return "[]\n"
    lines = ",\n".join(json.dumps(row, allow_nan=False) for row in rows)
    return f"[\n{lines}\n]\n"


def rows_csv_text(rows: Sequence[dict[str, Any]], params: Sequence[str]) -> str:
    """``results.csv``: columns point, seed, the grid parameters ``params``, then the remaining
    keys in first-seen order. A None parameter value is written ``None``; a None metric (it was
    non-finite) ``nan``; a column a row lacks is left empty."""
    columns = _columns(rows, ["point", "seed", *params])
    params = set(params)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(
            [_csv_cell(row[c], is_param=c in params) if c in row else "" for c in columns]
        )
    return buffer.getvalue()


def aggregate(
    rows: Sequence[dict[str, Any]], by: Sequence[str], metrics: Sequence[str]
) -> list[dict[str, Any]]:
    """Summaries of ``metrics`` over the rows sharing the values of the ``by`` columns (usually
    over seeds), one per group in first-seen order: the ``by`` values, then for each metric
    ``<metric>_mean``, ``<metric>_std`` (population std, ddof=0) and ``<metric>_n`` (the rows with
    a finite value, which are the only ones counted; mean and std are None when it is 0)."""
    require_columns(rows, [*by, *metrics])
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        # Key by JSON text: in Python True == 1 == 1.0, but they are different parameter values.
        key = tuple(json.dumps(row.get(column)) for column in by)
        groups.setdefault(key, []).append(row)
    summaries = []
    for members in groups.values():
        summary = {column: members[0].get(column) for column in by}
        for metric in metrics:
            values = [_number(row.get(metric), metric) for row in members]
            finite = [v for v in values if v is not None and math.isfinite(v)]
            n = len(finite)
            mean = math.fsum(finite) / n if n else None
            std = math.sqrt(math.fsum((v - mean) ** 2 for v in finite) / n) if n else None
            summary.update({f"{metric}_mean": mean, f"{metric}_std": std, f"{metric}_n": n})
        summaries.append(summary)
    return summaries


def markdown_table(
    rows: Sequence[dict[str, Any]], columns: Sequence[str], *, floatfmt: str = ".4g"
) -> str:
    """A Markdown table of ``columns`` (floats formatted with ``floatfmt``, numeric columns
    right-aligned, an empty cell where a row lacks the column)."""
    require_columns(rows, columns)
    cells = [
        [_markdown_cell(row[c], floatfmt) if c in row else "" for c in columns] for row in rows
    ]
    numeric = [
        all(_is_number(row[c]) for row in rows if c in row and row[c] is not None) for c in columns
    ]
    lines = [
        "| " + " | ".join(_escape(c) for c in columns) + " |",
        "|" + "|".join("---:" if is_numeric else "---" for is_numeric in numeric) + "|",
        *("| " + " | ".join(line) + " |" for line in cells),
    ]
    return "\n".join(lines) + "\n"


def require_columns(rows: Sequence[dict[str, Any]], columns: Iterable[str]) -> None:
    """Raises ValueError naming each of ``columns`` that no row has (nothing to check without
    rows)."""
    if not rows:
        return
    present = _columns(rows, [])
    missing = [c for c in dict.fromkeys(columns) if c not in present]
    if missing:
        raise ValueError(
            f"column(s) {', '.join(map(repr, missing))} not in the rows; "
            f"available columns are {', '.join(map(repr, present))}"
        )


def _columns(rows: Iterable[dict[str, Any]], first: Sequence[str]) -> list[str]:
    """``first``, then every other key of ``rows`` in first-seen order."""
    return list(dict.fromkeys([*first, *(key for row in rows for key in row)]))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _number(value: Any, metric: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, (bool, int, float)):
        return float(value)
    raise ValueError(f"metric {metric!r} has non-numeric value {value!r}; cannot average it")


def _csv_cell(value: Any, *, is_param: bool) -> str:
    if value is None:
        return "None" if is_param else "nan"
    return str(value)


def _markdown_cell(value: Any, floatfmt: str) -> str:
    if isinstance(value, float):
        return format(value, floatfmt)
    return _escape(str(value))


def _escape(text: str) -> str:
    # A literal '|' would end the cell.
    return text.replace("|", "\\|")
