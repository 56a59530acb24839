"""ctlearn.provenance: the command, commit and machine a result records."""

import shutil
import subprocess

import pytest

from ctlearn import provenance as prov

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def _git(root, *args):
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


@pytest.fixture
def checkout(tmp_path, monkeypatch):
    """A throwaway git checkout (synthetic: one code file, one result, one page)."""
    for name in ("code.py", "results/a.md", "docs/p.md"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("v1\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    monkeypatch.setattr(prov, "ROOT", tmp_path)
    return tmp_path


def test_rewritten_outputs_leave_the_code_clean_and_a_code_change_does_not(checkout):
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=checkout, capture_output=True, text=True, check=True
    ).stdout.strip()
    record = prov.provenance(["prog"])
    assert record["commit"] == head and record["dirty"] is False
    (checkout / "results" / "a.md").write_text("v2\n")
    (checkout / "docs" / "p.md").write_text("v2\n")
    (checkout / "results" / "new.json").write_text("{}\n")
    assert prov.provenance(["prog"])["dirty"] is False
    (checkout / "code.py").write_text("v2\n")
    assert prov.provenance(["prog"])["dirty"] is True


def test_outside_a_checkout_commit_and_dirty_are_none(tmp_path, monkeypatch):
    monkeypatch.setattr(prov, "ROOT", tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    record = prov.provenance(["prog"])
    assert record["commit"] is None and record["dirty"] is None


def test_a_sim_run_in_process_records_its_own_command():
    record = prov.provenance(["--preset", "fashion", "--out", "a b"], module="sims.study_noise")
    assert record["command"] == "python -m sims.study_noise --preset fashion --out 'a b'"
    assert record["machine"]["cores"] >= 1 and record["machine"]["devices"]
