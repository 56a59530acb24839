"""The rendered tables of the README and the documentation pages equal their committed sources
(``python -m sims.render_docs``)."""

from pathlib import Path

import pytest

from sims.render_docs import ROOT, main, markdown_tables, pages, render

SOURCE = """Some text | not a table

| a | b |
|---|---:|
| 1 | 2 |

| lonely | pipes |
no rule above

| c |
|:-:|
| 3 |
"""


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_each_committed_page_equals_its_rendering(page):
    text = page.read_text(encoding="utf-8")
    rendered, changed = render(text)
    assert changed == [] and rendered == text, f"run python -m sims.render_docs: {changed}"


def test_the_results_page_renders_tables_and_the_results_link_is_not_a_page():
    assert "<!-- table: results/" in (ROOT / "docs" / "results.md").read_text(encoding="utf-8")
    assert ROOT / "docs" / "results.md" in pages()
    assert not any("results" in p.relative_to(ROOT / "docs").parts[:1] for p in pages()[1:])


def test_tables_are_found_in_order_and_a_stale_one_is_replaced(tmp_path):
    assert markdown_tables(SOURCE) == [
        "| a | b |\n|---|---:|\n| 1 | 2 |\n",
        "| c |\n|:-:|\n| 3 |\n",
    ]
    (tmp_path / "r.md").write_text(SOURCE)
    readme = (
        "intro\n<!-- table: r.md#2 -->\n| c |\n|:-:|\n| 9 |\n<!-- /table -->\n"
        "<!-- table: r.md -->\n<!-- /table -->\nend\n"
    )
    rendered, changed = render(readme, root=tmp_path)
    assert changed == ["r.md#2", "r.md#1"]
    assert rendered == (
        "intro\n<!-- table: r.md#2 -->\n| c |\n|:-:|\n| 3 |\n<!-- /table -->\n"
        "<!-- table: r.md -->\n| a | b |\n|---|---:|\n| 1 | 2 |\n<!-- /table -->\nend\n"
    )
    assert render(rendered, root=tmp_path) == (rendered, [])
    (tmp_path / "README.md").write_text(readme)
    assert main(["--page", str(tmp_path / "README.md"), "--check"]) == 1
    assert (tmp_path / "README.md").read_text() == readme  # --check writes nothing
    assert main(["--page", str(tmp_path / "README.md")]) == 0
    assert (tmp_path / "README.md").read_text() == rendered


def test_a_missing_source_or_table_is_named(tmp_path):
    (tmp_path / "r.md").write_text(SOURCE)
    with pytest.raises(FileNotFoundError, match="table source gone.md does not exist"):
        render("<!-- table: gone.md -->\n<!-- /table -->", root=tmp_path)
    with pytest.raises(ValueError, match="asks for table 3 of r.md, which has 2 table"):
        render("<!-- table: r.md#3 -->\n<!-- /table -->", root=tmp_path)
    with pytest.raises(FileNotFoundError, match="--page .*nothing.md does not exist"):
        main(["--page", str(Path(tmp_path) / "nothing.md")])
