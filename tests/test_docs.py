"""The documentation site: ``mkdocs build --strict`` succeeds (no broken link, reference or
anchor), every public name has its API entry, and the architecture page names every module."""

from __future__ import annotations

import importlib
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import ctlearn

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = [
    "ctlearn.data",
    "ctlearn.nn",
    "ctlearn.losses",
    "ctlearn.estimators",
    "ctlearn.train",
    "ctlearn.dynamics",
    "ctlearn.sweep",
    "ctlearn.diagnostics",
    "models",
]
MODULES = ["ctlearn.files", "ctlearn.provenance", "ctlearn.plotting", "ctlearn.plotting_sweep",
           "ctlearn.augment"]  # fmt: skip
NOT_IN_API = {"ctlearn.cli"}  # the command line: `ctlearn --help` and the training guide


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> set[str]:
    """Builds the site once (strict) and returns every HTML id in it."""
    out = tmp_path_factory.mktemp("site")
    run = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    ids = set()
    for page in out.rglob("*.html"):
        ids |= set(re.findall(r'id="([A-Za-z_][\w.]*)"', page.read_text(errors="ignore")))
    return ids


@pytest.mark.parametrize("name", PACKAGES)
def test_every_public_name_of_a_package_has_an_api_entry(name, site):
    package = importlib.import_module(name)
    assert package.__all__, name
    missing = [
        n for n in package.__all__
        if f"{name}.{n}" not in site  # re-exported from a submodule of the same name: its path
        and not any(i.startswith(f"{name}.") and i.endswith(f".{n}") for i in site)
    ]  # fmt: skip
    assert not missing, f"{name}: no API entry for {missing}"


@pytest.mark.parametrize("name", MODULES)
def test_every_public_function_and_class_of_a_module_has_an_api_entry(name, site):
    module = importlib.import_module(name)
    defined = [
        n for n, v in vars(module).items()
        if not n.startswith("_") and callable(v) and getattr(v, "__module__", None) == name
    ]  # fmt: skip
    assert defined and not [n for n in defined if f"{name}.{n}" not in site]


def test_every_public_module_has_an_api_page_and_a_place_in_the_architecture_diagram():
    public = {
        f"ctlearn.{m.name}" for m in pkgutil.iter_modules(ctlearn.__path__)
        if not m.name.startswith("_")
    }  # fmt: skip
    assert public - NOT_IN_API == set(PACKAGES[:-1]) | set(MODULES), "update PACKAGES/MODULES"
    concepts = (ROOT / "docs" / "concepts.md").read_text(encoding="utf-8")
    start = concepts.index("```text")
    diagram = concepts[start : concepts.index("```", start + 3)]
    named = set(re.findall(r"ctlearn\.\w+", diagram))
    assert named == public, f"the diagram names {sorted(named ^ public)} wrongly"


# The pages whose Python blocks run as written (in order, sharing one namespace per page).
RUNNABLE = ["README.md", "docs/quickstart.md", "docs/tutorials/first-simulation.md"]


@pytest.mark.slow  # minutes: they train and simulate at the sizes the pages show
@pytest.mark.parametrize("page", RUNNABLE)
def test_the_python_examples_of_a_page_run(page, tmp_path, monkeypatch):
    text = (ROOT / page).read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.DOTALL)
    assert blocks, page
    monkeypatch.chdir(tmp_path)  # relative output folders land here
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, f"{page} example", "exec"), namespace)
    assert namespace["result"] is not None  # every page's example ends in a ``result``
