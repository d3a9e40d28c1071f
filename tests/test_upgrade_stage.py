"""The upgrade stage against the simulators, as `tkgs-runbook demo --upgrade` runs it after the article, enable,
a namespace, a cluster and a rotation: the appliance (v0.1.10) replaced by v0.2.0, its CA carried over, the old
VM powered off before the new one powers on, the new one checked as verify checks it, and the Supervisor's
virtual IP answering through it; and a new appliance that fails those checks (the article's fault injected into
its first boot too) rolled back to the old one, the virtual IP answering through it again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tkgs_lib.credentials import scan_for_secrets
from test_demo import CANARIES

SCRIPT = Path(sys.executable).with_name("tkgs-runbook")
NEW_CANARIES = {"TKGS_DEMO_NEW_DATAPLANE_PASSWORD": "canary-new-dataplane-Pa55 &",
                "TKGS_DEMO_NEW_ROOT_PASSWORD": "canary-new-root-Pa55/+="}
ENV = {**os.environ, **CANARIES, **NEW_CANARIES}
pytestmark = pytest.mark.slow


def _checks(folder: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(folder / name, keep_default_na=False)


def _vip_answering(folder: Path, name: str) -> str:
    """Who answered at the Supervisor's virtual IP in the checks ``name`` saved, every check of it passing."""
    rows = _checks(folder, name)
    assert len(rows) and set(rows["status"]) == {"ok"}, rows.to_string()
    (tls,) = rows[rows["check"] == "TLS to the Supervisor's API 10.64.1.0:6443"]["found"]
    assert "answered by supervisor-cp-" in tls, tls
    return tls


def _upgrade_requests(folder: Path) -> list[tuple[str, str]]:
    """What the upgrade stage sent vCenter, in order, and what became of each."""
    entered, closed = {}, {}
    for line in (folder / "effects.jsonl").read_text().splitlines():
        record = json.loads(line)
        if "enter" in record:
            entered[record["enter"]["number"]] = record["enter"]
        else:
            closed[record["close"]] = record["outcome"]
    return [(e["request"], closed.get(n, "")) for n, e in sorted(entered.items()) if e["stage"] == "upgrade"
            and e["request"].endswith("_Task")]


def _no_secret_in(folder: Path) -> None:
    assert scan_for_secrets(folder, [*CANARIES.values(), *NEW_CANARIES.values()]) == []
    keys = [str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and b"PRIVATE KEY" in p.read_bytes()]
    assert keys == []  # the running appliance's CA key, read over SSH and carried over, is in no record


def test_demo_upgrade_ends_with_the_virtual_ip_answering_through_the_new_release_the_ca_unchanged(tmp_path):
    result = subprocess.run([str(SCRIPT), "demo", "--upgrade", "--teardown", "--output", str(tmp_path)],
                            capture_output=True, text=True, timeout=600, env=ENV)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    (folder,) = tmp_path.iterdir()
    *_, summary, teardown = result.stdout.strip().splitlines()
    assert summary.endswith("; secrets rotated; the appliance upgraded to v0.2.0 with its CA kept, and the "
                            "Supervisor's virtual IP 10.64.1.0:6443 answers through the new release. See "
                            f"{folder / 'index.html'}."), summary
    # The teardown after it removes the upgrade's VM too, with the appliance (after the Supervisor and the cluster
    # whose virtual IPs it serves), and the old one kept powered off: nothing the run made is left.
    assert teardown.startswith("teardown: destroy removed 15 of the 15 objects") and teardown.endswith(
        ": vCenter holds nothing the run made (its inventory is as it was before the run)."), teardown
    stages = json.loads((folder / "stages.json").read_text())["stages"]
    assert [(e["stage"], e["status"]) for e in stages][-4:] == [("cluster", "ok"), ("rotate", "ok"), ("upgrade", "ok"),
                                                                 ("destroy", "ok")]

    # The virtual IP answered through the old appliance (enable's checks) and through the new one (the upgrade's).
    _vip_answering(folder, "supervisor-checks.csv")
    _vip_answering(folder, "upgrade-supervisor-checks.csv")
    # The new appliance passed verify's checks, judged as v0.2.0, its Data Plane API trusted through the CA the
    # deploy stage saved, and its VM publishes that same CA.
    checks = _checks(folder, "upgrade-checks.csv")
    assert set(checks["status"]) == {"ok"}, checks.to_string()
    (release,) = checks[checks["check"] == "appliance release"]["found"]
    assert release.startswith("v0.2.0 ")
    (dataplane,) = checks[checks["check"] == "Data Plane API"]["found"]
    assert "TLS verified against the appliance CA the deploy stage saved" in dataplane
    from tkgs_lib.appliance.ca import CaCertificate

    deployed = CaCertificate.from_pem((folder / "haproxy-ca.pem").read_text(), "haproxy-ca.pem").fingerprint
    (carried,) = checks[checks["check"] == "the CA carried over"]["found"]
    assert carried.startswith(deployed + " ")
    # The old VM renamed and powered off before the new one powered on; nothing destroyed.
    assert _upgrade_requests(folder) == [("ReconfigVM_Task", "done"), ("Rename_Task", "done"), ("Rename_Task", "done"),
                                         ("PowerOffVM_Task", "done"), ("PowerOnVM_Task", "done")]
    provided = json.loads((folder / "provided.json").read_text())
    assert provided["appliance_release"]["version"] == "v0.2.0"
    assert "upgrade" in (folder / "index.html").read_text()
    _no_secret_in(folder)


def test_a_new_appliance_that_fails_verify_is_rolled_back_and_the_virtual_ip_answers_through_the_old_again(
        tmp_path):
    code = ("from tkgs_lib.demo import ARTICLE_FAULT, run_demo\n"
            f"run_demo({str(tmp_path)!r}, upgrade=True, upgrade_fault=ARTICLE_FAULT)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, env=ENV)
    assert result.returncode == 1, result.stderr[-4000:]
    (folder,) = tmp_path.iterdir()
    stages = json.loads((folder / "stages.json").read_text())["stages"]
    assert [(e["stage"], e["status"]) for e in stages][-2:] == [("rotate", "ok"), ("upgrade", "failed")]
    error = stages[-1]["error"]
    assert "the upgrade to release v0.2.0 failed: the new appliance failed verify's checks (upgrade-checks.csv): " \
           "failed units (systemctl list-units --state failed): anyip-routes.service;" in error, error
    assert "local route for 10.64.1.0/24: missing. Put back: the new VM destroyed, the old VM named haproxy01 again, " \
           "powered on again, the Supervisor's virtual IP answering through it again." in error, error

    checks = _checks(folder, "upgrade-checks.csv")
    assert set(checks[checks["status"] != "ok"]["check"]) >= {"anyip-routes.service"}
    _vip_answering(folder, "upgrade-supervisor-checks.csv")  # after the put-back: through the old appliance
    assert _upgrade_requests(folder) == [
        ("ReconfigVM_Task", "done"), ("Rename_Task", "done"), ("Rename_Task", "done"), ("PowerOffVM_Task", "done"),
        ("PowerOnVM_Task", "done"),  # the new one: it fails verify's checks
        ("PowerOffVM_Task", "done"), ("Destroy_Task", "done"), ("Rename_Task", "done"), ("PowerOnVM_Task", "done")]
    provided = json.loads((folder / "provided.json").read_text())
    assert provided["appliance_release"]["version"] == "v0.1.10"  # the record says the old one answers
    _no_secret_in(folder)
