"""What a person reads fits the page: the verify stage's checks table, exported as its HTML record is,
shown in a real browser (headless Chromium) at a laptop's width, never runs off the right edge."""

from __future__ import annotations

import tempfile
from pathlib import Path

import nbformat

from browser import start_chromium, stop_browser
from tkgs_lib.appliance.checks import Check, checks_table
from tkgs_lib.runbook import write_html

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
