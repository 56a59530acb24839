"""Fill the result tables of the README and the documentation pages from the committed files
under ``results/``.

    python -m sims.render_docs [--check] [--page PAGE]

Without ``--page`` it renders ``README.md`` and every page under ``docs/`` (the ``results``
link there excepted); with it, that one page, its sources found beside it.

A table of a page is rendered, not typed, when it sits between two markers that name its
source, a Markdown file of the repository and, after ``#``, which of its tables (default 1):

    <!-- table: results/fdfa_fc2/seeds3/results.md -->
    | method | ctlearn | paper | difference |
    ...
    <!-- /table -->

Everything between the markers is replaced by that table of the source, copied as it stands.
``--check`` changes nothing and exits with status 1 when a page differs from its rendering
(the test suite checks it too), naming each table that is out of date.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from ctlearn._usererror import prepare_parser, run_main
from ctlearn.files import atomic_write_text

ROOT = Path(__file__).resolve().parent.parent
_BLOCK = re.compile(
    r"(?P<open><!-- table: (?P<source>[^#\s]+)(?:#(?P<index>\d+))? -->\n)"
    r"(?P<body>.*?)"
    r"(?P<close><!-- /table -->)",
    re.DOTALL,
)


def markdown_tables(text: str) -> list[str]:
    """The Markdown tables of ``text`` in order, each as its lines (ending in a newline): a run
    of lines starting with ``|`` whose second line is a header rule (``|---|...``)."""
    tables, run = [], []
    for line in text.splitlines(keepends=True) + [""]:
        if line.startswith("|"):
            run.append(line if line.endswith("\n") else line + "\n")
            continue
        if len(run) >= 2 and re.fullmatch(r"\|(\s*:?-+:?\s*\|)+\s*", run[1]):
            tables.append("".join(run))
        run = []
    return tables


def render(page: str, root: Path = ROOT) -> tuple[str, list[str]]:
    """``page`` with every marked table replaced from its source, and the sources whose
    table changed. Raises for a missing source or table, before anything is written."""
    changed = []

    def fill(match: re.Match) -> str:
        source, index = match["source"], int(match["index"] or 1)
        path = root / source
        if not path.is_file():
            raise FileNotFoundError(f"table source {source} does not exist (under {root})")
        tables = markdown_tables(path.read_text(encoding="utf-8"))
        if not 1 <= index <= len(tables):
            raise ValueError(
                f"a page asks for table {index} of {source}, which has {len(tables)} table(s)"
            )
        table = tables[index - 1]
        if match["body"] != table:
            changed.append(f"{source}#{index}")
        return match["open"] + table + match["close"]

    return _BLOCK.sub(fill, page), changed


def pages(root: Path = ROOT) -> list[Path]:
    """The pages whose tables are rendered: the README and the documentation's Markdown pages
    (not those reached through ``docs/results``, the link to ``results/`` itself)."""
    docs = root / "docs"
    found = [
        path
        for path in sorted(docs.rglob("*.md"))
        if "results" not in path.relative_to(docs).parts[:1]
    ]
    return [root / "README.md"] + found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    prepare_parser(parser)
    parser.add_argument("--page", default=None, help="one page (default: README and docs/)")
    parser.add_argument("--check", action="store_true", help="report, change nothing")
    args = parser.parse_args(argv)
    if args.page is None:
        targets = [(path, ROOT) for path in pages()]
    else:
        path = Path(args.page)
        if not path.is_file():
            raise FileNotFoundError(f"--page {path} does not exist")
        targets = [(path, path.resolve().parent)]
    rendered = {}
    for path, root in targets:  # every page is rendered (or refused) before any is written
        text = path.read_text(encoding="utf-8")
        rendered[path] = render(text, root=root)
    stale = False
    for path, (new, changed) in rendered.items():
        if args.check:
            for source in changed:
                print(f"out of date: {path.name}, the table from {source}")
            stale = stale or bool(changed)
            continue
        if changed:
            atomic_write_text(path, new)
        print(
            f"{path}: {len(changed)} table(s) updated"
            + (f" ({', '.join(changed)})" if changed else "")
        )
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(run_main(main))
