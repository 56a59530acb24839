"""Every figure-making sim in one page: run them, then write ``docs/gallery.md``.

    python -m sims.gallery [--out DIR] [--only NAME,...] [--docs DIR]     # full runs
    python -m sims.gallery --quick --out DIR [--only NAME,...] [--docs DIR]

Runs each sim of ``SIMS`` (or the ``--only`` subset) in this process as ``main(argv)`` and
writes ``<docs>/gallery.md``: per sim, the command that made it, its explanation (what its
``main`` returns as ``"explanation"``, else its module docstring's paragraphs after the usage
line) and its figures. A sim that fails is reported on the page with its error, the others
still run, and the command exits with status 1 at the end.

Full runs (the default) write to ``DIR/<folder>`` with the arguments of ``FULL`` (``DIR`` is
``results`` unless given: the committed full runs, each with the command, commit and machine
that made it); the analog studies run their Fashion-MNIST preset and resume from what their
folder holds, so a finished study only redraws its figures. Quick runs (``--quick``, for CI and
a first look) write to ``DIR/<name>``. The page links a figure where it lies when that is under
the documentation's ``results`` link (``<docs>/results``), and otherwise copies it to
``<docs>/gallery/<name>/``.

The page keeps the entries of sims not run this time (``<docs>/gallery/index.json`` records
every entry), so ``--only`` updates part of it. ``DIR/gallery.md`` is the page of this run alone,
its images linked where the sims wrote them (not written when ``DIR`` is the folder that
``<docs>/results`` links to: the docs' page shows those runs). Quick mode takes a few minutes
for the whole gallery; in full mode the theory and teaching sims take minutes each and the
analog studies far longer from scratch, seconds once finished (they resume). Give quick and
full runs different ``--out`` folders: a study refuses a folder that holds a different sweep
(such a refusal is reported as that sim's failure).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import inspect
import json
import os
import shlex
import shutil
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import matplotlib

from ctlearn._usererror import prepare_parser, run_main
from ctlearn.files import atomic_write_text, read_json_object

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

SIMS = (
    "teach_neurons",
    "teach_continuous_discrete",
    "variance_ren",
    "teach_variance",
    "multiplexing",
    "mgd",
    "fdfa_figures",
    "study_noise",
    "study_differentiator",
    "study_precision",
    "study_mismatch",
    "study_phase",
    "study_device",
    "study_device_spread",
)
"""The figure-making sims, in page order: ``sims.<name>.main(argv)`` takes ``--out`` and
``--quick`` and returns a dict with ``"figures"`` (paths) and optionally ``"explanation"``."""

FULL = {
    f"study_{name}": (("--preset", "fashion"), f"study_{name}_fashion")
    for name in (
        "noise",
        "differentiator",
        "precision",
        "mismatch",
        "phase",
        "device",
        "device_spread",
    )
}
"""A full run's extra arguments and its folder under ``--out``, by sim (absent: none, and the
sim's own name)."""

IMAGES = (".png", ".gif", ".jpg", ".jpeg", ".svg", ".webp")
TRACEBACK_LINES = 30
DOCSTRING_NOTE = "*(From the sim's docstring: the numbers it quotes come from its full run.)*"


@dataclasses.dataclass
class Entry:
    """One sim's section of the page. ``figures``: paths as the sim wrote them; ``copies``: the
    images copied into the docs folder (relative to it), in the same order, ``None`` for files
    that are not images; ``error``: ``None``, or the failure and its traceback;
    ``from_docstring``: the explanation is the module docstring's (the sim returned none)."""

    name: str
    command: str
    explanation: str = ""
    figures: list[str] = dataclasses.field(default_factory=list)
    copies: list[str | None] = dataclasses.field(default_factory=list)
    error: str | None = None
    traceback: str = ""
    wall_s: float = 0.0
    from_docstring: bool = False


def docstring_explanation(doc: str | None) -> str:
    """A sim's module docstring's paragraphs after its usage line (the paragraph that starts with
    ``python -m``; after the first paragraph when there is none)."""
    paragraphs = [p.strip("\n") for p in inspect.cleandoc(doc or "").split("\n\n")]
    paragraphs = [p for p in paragraphs if p.strip()]
    usage = next((i for i, p in enumerate(paragraphs) if p.strip().startswith("python -m")), 0)
    return "\n\n".join(inspect.cleandoc(p) for p in paragraphs[usage + 1 :])


def explanation(module: Any, result: Any) -> str:
    """What a sim says its figures show: ``result["explanation"]`` when it returns one, else its
    module docstring's paragraphs after the usage line."""
    if isinstance(result, dict) and result.get("explanation"):
        return str(result["explanation"]).strip()
    return docstring_explanation(getattr(module, "__doc__", None))


def sim_folder(name: str, out: Path, *, quick: bool) -> Path:
    """Where ``sims.<name>`` writes: ``OUT/<name>`` (quick), or ``OUT/<folder>`` of ``FULL``."""
    return out / (name if quick else FULL.get(name, ((), name))[1])


def sim_argv(name: str, out: Path, *, quick: bool) -> list[str]:
    """The arguments ``sims.<name>.main`` gets: ``--quick --out OUT/<name>``, or in a full run
    its ``FULL`` arguments and ``--out OUT/<folder>``."""
    folder = str(sim_folder(name, out, quick=quick))
    if quick:
        return ["--quick", "--out", folder]
    return [*FULL.get(name, ((), name))[0], "--out", folder]


def run_sim(name: str, out: Path, *, quick: bool) -> Entry:
    """Run ``sims.<name>`` into ``out/<name>``; any failure (an exception, or the sim's argument
    parser exiting) is kept in the entry instead of raised."""
    argv = sim_argv(name, out, quick=quick)
    entry = Entry(name, f"python -m sims.{name} " + shlex.join(argv))
    print(f"[gallery] {entry.command}", flush=True)
    start = time.perf_counter()
    try:
        module = importlib.import_module(f"sims.{name}")
        result = module.main(argv)
        if not isinstance(result, dict) or "figures" not in result:
            raise TypeError(f"sims.{name}.main returned no dict with 'figures'")
        entry.figures = [str(f) for f in result["figures"]]
        missing = [f for f in entry.figures if not Path(f).is_file()]
        if missing:
            raise FileNotFoundError(f"sims.{name} returned figures it did not write: {missing}")
        entry.explanation = explanation(module, result)
        entry.from_docstring = not result.get("explanation")
    except (Exception, SystemExit) as error:
        if isinstance(error, SystemExit):
            entry.error = f"SystemExit: the sim exited with status {error.code!r}"
        else:
            entry.error = f"{type(error).__name__}: {error}"
        lines = traceback.format_exc().splitlines(True)[-TRACEBACK_LINES:]
        entry.traceback = "".join(lines).replace(f"{Path.cwd()}{os.sep}", "")
        print(f"[gallery] {name} failed: {entry.error}", file=sys.stderr, flush=True)
        traceback.print_exc()
    finally:
        plt.close("all")  # a failed sim may leave figures open
    entry.wall_s = time.perf_counter() - start
    return entry


def copy_images(entry: Entry, out: Path, docs: Path, *, quick: bool) -> None:
    """Sets ``entry.copies``: for each image, its path relative to ``docs``: where it lies when
    that is under ``docs/results`` (the link to the committed results), else a copy in
    ``docs/gallery/<name>/`` (that folder is replaced), keeping its path below the sim's
    ``--out``."""
    target = docs / "gallery" / entry.name
    if target.exists():
        shutil.rmtree(target)
    entry.copies = []
    results = (docs / "results").resolve()
    for figure in map(Path, entry.figures):
        if figure.suffix.lower() not in IMAGES:
            entry.copies.append(None)
            continue
        if (docs / "results").exists() and figure.resolve().is_relative_to(results):
            linked = Path("results") / figure.resolve().relative_to(results)
            entry.copies.append(linked.as_posix())
            continue
        try:
            relative = figure.resolve().relative_to(
                sim_folder(entry.name, out, quick=quick).resolve()
            )
        except ValueError:
            relative = Path(figure.name)
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(figure, destination)
        entry.copies.append((destination.relative_to(docs)).as_posix())


def render(entries: Sequence[Entry], link: Callable[[Entry, int], str | None]) -> str:
    """The gallery page; ``link(entry, i)`` is the page-relative path of figure ``i`` (``None``:
    not shown)."""
    lines = [
        "# Gallery",
        "",
        "<!-- Generated by `python -m sims.gallery`; do not edit by hand. -->",
        "",
        "*This page is generated by `python -m sims.gallery` and must not be edited by hand: "
        "change the sims and run the command again.* Each section says the command that made "
        "its figures (`--quick`: the small, fast version) and what they show.",
        "",
    ]
    lines += [f"- [{e.name}](#{e.name}){' (failed)' if e.error else ''}" for e in entries]
    for entry in entries:
        lines += ["", f"## {entry.name}", "", f"`{entry.command}`", ""]
        if entry.error:
            lines += [
                f"**Failed**: `{_one_line(entry.error)}`",
                "",
                "<details><summary>traceback</summary>",
                "",
                "```",
                entry.traceback.rstrip(),
                "```",
                "",
                "</details>",
            ]
            continue
        lines.append(entry.explanation or "*(no explanation)*")
        if entry.from_docstring and "--quick" in entry.command.split():
            lines += ["", DOCSTRING_NOTE]
        for i, figure in enumerate(entry.figures):
            target = link(entry, i)
            if target is None:
                continue
            alt = Path(figure).name
            if Path(figure).suffix.lower() in IMAGES:
                lines += ["", f"![{entry.name}: {alt}]({target})"]
            else:
                lines += ["", f"[{alt}]({target})"]
    return "\n".join(lines) + "\n"


def _one_line(text: str) -> str:
    return " ".join(text.split()).replace("`", "'")


def _load_index(path: Path) -> dict[str, Entry]:
    """The page's entries of earlier runs (none before the first run). A damaged index is
    refused, naming the file: rewriting it would drop the other sims from the page."""
    if not path.exists():
        return {}
    hint = "restore it, or delete it to start the page from this run"
    entries = read_json_object(path, "entries", list, ValueError, hint)["entries"]
    fields = {f.name for f in dataclasses.fields(Entry)}
    index = {}
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not {"name", "command"} <= set(entry) <= fields:
            raise ValueError(
                f"{path}: entry {i} is not a gallery entry (an object with name, command and "
                f"some of {', '.join(sorted(fields - {'name', 'command'}))}): {hint}"
            )
        if entry["name"] in SIMS:  # the entries of sims no longer in the gallery are dropped
            index[entry["name"]] = Entry(**entry)
    return index


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    prepare_parser(parser)
    parser.add_argument("--quick", action="store_true", help="run every sim's small version")
    parser.add_argument(
        "--out",
        default=None,
        help="the sims write to OUT/<folder> (full runs; default: results) or OUT/<name> "
        "(--quick; required)",
    )
    parser.add_argument("--only", default=None, help=f"comma-separated subset of {SIMS}")
    parser.add_argument("--docs", default="docs", help="the page goes to DOCS/gallery.md")
    args = parser.parse_args(argv)
    names = SIMS
    if args.only:
        names = tuple(n.strip() for n in args.only.split(",") if n.strip())
        unknown = [n for n in names if n not in SIMS]
        if unknown or not names:
            parser.error(f"--only: unknown sim(s) {unknown}; valid: {', '.join(SIMS)}")
    if args.out is None:
        if args.quick:
            parser.error("--quick needs --out DIR (quick runs do not go to results/)")
        args.out = "results"
    out, docs = Path(args.out), Path(args.docs)
    index_path = docs / "gallery" / "index.json"
    index = _load_index(index_path)  # before any work: a damaged index is refused

    entries = []
    for name in names:
        entry = run_sim(name, out, quick=args.quick)
        copy_images(entry, out, docs, quick=args.quick)
        entries.append(entry)

    index.update({e.name: e for e in entries})
    page_entries = [index[n] for n in SIMS if n in index]
    atomic_write_text(
        index_path,
        json.dumps({"entries": [dataclasses.asdict(e) for e in page_entries]}, indent=2) + "\n",
    )
    page = docs / "gallery.md"
    atomic_write_text(page, render(page_entries, lambda e, i: e.copies[i]))

    def local(entry: Entry, i: int) -> str:
        return Path(os.path.relpath(Path(entry.figures[i]).resolve(), out.resolve())).as_posix()

    copy = None  # the committed results' page is the docs' page itself
    linked = (docs / "results").exists() and out.resolve() == (docs / "results").resolve()
    if not linked:
        copy = out / "gallery.md"
        atomic_write_text(copy, render(entries, local))
    failed = [e.name for e in entries if e.error]
    for e in entries:
        status = f"FAILED ({_one_line(e.error)})" if e.error else f"{len(e.figures)} figure(s)"
        print(f"[gallery] {e.name}: {status}, {e.wall_s:.0f} s")
    print(f"[gallery] wrote {page}" + (f" and {copy}" if copy else ""))
    return {"entries": entries, "failed": failed, "page": page, "copy": copy}


if __name__ == "__main__":
    raise SystemExit(1 if run_main(main)["failed"] else 0)
