"""What a person reads fits the page, shown in a real browser (headless Chromium): the verify stage's
checks table, exported as its HTML record is, never runs off the right edge at a laptop's width, and a
run's or fleet's index never breaks a duration from its unit in a narrow window."""

from __future__ import annotations

import tempfile
from pathlib import Path

import nbformat

from browser import start_chromium, stop_browser
from tkgs_lib.appliance.checks import Check, checks_table
from tkgs_lib.runner.notebooks import write_html

LONG_FIX = ("route-tables.service stops at the first command of route-tables.cfg that fails: see `journalctl -u "
            "route-tables.service`; " + "/etc/vmware/route-tables.cfg.tkgs-20261201-120000.bak" * 3)


def test_the_checks_table_fits_the_page_in_a_browser(tmp_path):
    rows = [Check("route-tables.service", "active", "failed: 'Error: Invalid prefsrc address.' after 'ip route add "
                  "table rtctl_workload 10.64.8.0/21 dev workload proto kernel scope link src 10.64.8.10'", "failed",
                  LONG_FIX),
            # what has no place to break: a host key's fingerprint, a run folder's path, a base64 run
            Check("SSH", "root@10.64.2.10, host key checked", "host key SHA256:j39rta78SH+T2pvdrhPwmqZ+HJA3DV4J1RmSFobr5KQ"
                  "j39rta78SH+T2pvdrhPwmqZ+HJA3DV4J1RmSFobr5KQ checked against known_hosts", "ok"),
            Check("Data Plane API", "answers", "no appliance CA: /tmp/tmp87m1q_1n/runs/lab01_20261201_210453_x/"
                  "haproxy_ca_pem_does_not_exist_there_at_all", "failed", "x" * 150)]
    table = checks_table(rows)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "verify.checks_report(run, facts)", outputs=[nbformat.v4.new_output(
            "execute_result", data={"text/html": table._repr_html_(), "text/plain": table.to_text()},
            execution_count=1)])])
    notebook = tmp_path / "04_verify_haproxy.ipynb"
    nbformat.write(nb, str(notebook))
    page = write_html(notebook)
    driver = start_chromium(Path(tempfile.mkdtemp(dir=tmp_path)))
    try:
        driver.set_window_size(1024, 800)
        driver.get(page.as_uri())
        # The export puts each output in a box that scrolls sideways: a table wider than its box runs off
        # its right edge there, hidden, rather than widening the page.
        right, box, viewport = driver.execute_script(
            "const t = document.querySelector('table'); const o = t.closest('.jp-OutputArea-output') || t.parentElement;"
            "return [t.getBoundingClientRect().right, o.getBoundingClientRect().right,"
            " document.documentElement.clientWidth];")
    finally:
        stop_browser(driver)
    assert right <= box + 1 and box <= viewport, f"the table ends at {right:.0f}px, its output box at {box:.0f}px"
    assert "overflow-wrap: anywhere" not in table._repr_html_().split("failed</td>")[0].split("<td")[1]  # short words whole


SPLIT = """const cell = [...document.querySelectorAll('td')].find(td => td.textContent.includes(arguments[0]));
const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
let node; while ((node = walker.nextNode()) && !node.data.includes(arguments[0])) {}
const range = document.createRange(), at = node.data.indexOf(arguments[0]);
range.setStart(node, at); range.setEnd(node, at + arguments[0].length);
return new Set([...range.getClientRects()].map(r => Math.round(r.top))).size;"""


def test_a_duration_in_a_run_or_fleet_index_keeps_its_unit_on_its_line(tmp_path):
    """In a narrow window every column shrinks to its longest word: '4.6 s' once broke into '4.6' and 's'."""
    from tkgs_lib.runner.index import FleetRow, IndexRow, write_fleet_index, write_index

    prose = "failed: stage 'networks' (Plan the networks) failed: the site has 1 error; nothing was changed. " * 3
    run = tmp_path / "lab01"
    run.mkdir()
    index = write_index(run, tmp_path / "site.yaml", [IndexRow("Plan the networks", None, 4.6, prose)], "A summary.")
    fleet = write_fleet_index(tmp_path, [FleetRow("lab01", "sites/a site file of many words.yaml", run, "failed",
                                                  {"networks": ("ok", 4.6)}, why=prose)], ["networks"], "A summary.")
    driver = start_chromium(Path(tempfile.mkdtemp(dir=tmp_path)))
    try:
        driver.set_window_size(420, 800)
        lines = {}
        for page, shown in ((index, "4.6\u00a0s"), (fleet, "(4.6\u00a0s)")):
            assert shown in page.read_text().replace("&nbsp;", "\u00a0"), page.name
            driver.get(page.as_uri())
            lines[page] = driver.execute_script(SPLIT, shown)
    finally:
        stop_browser(driver)
    assert lines == {index: 1, fleet: 1}, lines
