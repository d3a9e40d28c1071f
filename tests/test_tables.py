"""How every table reads: no index column, text left-aligned, yes/no, and why it is empty."""

from __future__ import annotations

from tkgs_lib.findings import findings_table
from tkgs_lib.display.tables import Table


def test_html_has_no_index_column_and_left_aligned_text():
    html = Table([{"object": "port group tkgs-workload", "count": 3}])._repr_html_()
    assert "row_heading" not in html and "blank level0" not in html  # pandas' index cells
    assert "text-align: left" in html
    assert "port group tkgs-workload" in html and ">3<" in html


def test_booleans_read_yes_and_no():
    table = Table([{"datastore": "LocalDS_0", "tagged": True}, {"datastore": "LocalDS_1", "tagged": False}])
    assert table["tagged"].tolist() == ["yes", "no"]
    assert "True" not in table._repr_html_() and "False" not in table.to_text()


def test_an_empty_table_says_why_instead_of_a_bare_header():
    empty = findings_table([])
    assert len(empty) == 0 and empty.columns == ["severity", "field", "problem", "fix"]
    assert empty._repr_html_() == "<p><em>No findings: every check passed.</em></p>"
    assert empty.to_text() == "No findings: every check passed."


def test_text_wraps_to_the_width_asked_for():
    table = Table([{"field": "networks.frontend.gateway", "problem": "word " * 60}])
    lines = table.to_text(width=60).splitlines()
    assert max(map(len, lines)) <= 60 and len(lines) > 3
    assert lines[0].startswith("field") and "problem" in lines[0]
    assert "0 " not in lines[1][:3]  # no index in front of a row either
