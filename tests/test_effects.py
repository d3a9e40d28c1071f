"""The ledger of effects: every request that may change something is on disk before it leaves, and what a
stage or run says it changed comes from it; and a record that cannot be written is a failed stage."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import EXAMPLE_SITE
from tkgs_lib import effects
from tkgs_lib.errors import TkgsError
from tkgs_lib.vsphere.rest import RestClient
from tkgs_lib.vsphere.tls import TlsPolicy

SCRIPT = Path(sys.executable).with_name("tkgs-runbook")


def test_an_entry_is_on_disk_before_its_request_leaves_and_one_never_closed_may_have_happened(tmp_path):
    ledger = effects.Ledger(tmp_path / effects.EFFECTS_FILE, "prepare")
    with ledger.step("create port group pg"):
        first = ledger.enter("vCenter vc:443", "AddDVPortgroup_Task")
    on_disk = effects.read_effects(tmp_path / effects.EFFECTS_FILE)
    assert [(e.step, e.request, e.outcome) for e in on_disk] == [("create port group pg", "AddDVPortgroup_Task",
                                                                 effects.SENT)]
    assert on_disk[0].may_have_happened  # the process could stop right here: the request may have been carried out
    ledger.close(first, effects.DONE)
    ledger.close(ledger.enter("vCenter vc:443", "POST /rest/x"), effects.REFUSED, "HTTP 400")
    again = effects.Ledger(tmp_path / effects.EFFECTS_FILE, "deploy")  # a later stage continues the numbering
    assert [e.outcome for e in again.effects] == [effects.DONE, effects.REFUSED]
    assert again.enter("vCenter vc:443", "PowerOnVM_Task").number == 3
    assert [e.stage for e in effects.read_effects(tmp_path / effects.EFFECTS_FILE, "deploy")] == ["deploy"]


def test_a_line_cut_short_by_a_stopped_process_is_skipped(tmp_path):
    path = tmp_path / effects.EFFECTS_FILE
    ledger = effects.Ledger(path)
    ledger.close(ledger.enter("t", "r"), effects.DONE)
    with open(path, "a") as out:
        out.write('{"enter": {"number": 2, "stage": "", "st')  # cut mid-write
    assert [e.number for e in effects.read_effects(path)] == [1]


def test_a_request_whose_ledger_cannot_be_written_is_never_sent(tmp_path, monkeypatch):
    rest = RestClient("vc.example", 443, TlsPolicy(ca_file=None, thumbprint=None, insecure=False))
    sent = []
    monkeypatch.setattr(rest.session, "request", lambda *a, **k: sent.append(a))
    ledger = effects.Ledger(tmp_path / effects.EFFECTS_FILE)
    ledger.path = Path("/dev/full")  # a real full disk: every write fails with ENOSPC
    with effects.keeping(ledger), pytest.raises(TkgsError) as refused:
        rest.post("/rest/com/vmware/cis/tagging/category", {"create_spec": {}})
    assert sent == []
    assert "cannot be written (No space left on device), so POST /rest/com/vmware/cis/tagging/category to vCenter " \
           "vc.example:443 was not sent" in refused.value.message


@pytest.mark.parametrize("method, action, changes", [
    ("GET", None, False), ("POST", "find", False), ("POST", "list-attached-objects", False),
    ("POST", "validate", False), ("POST", None, True), ("POST", "attach", True), ("PATCH", None, True),
    ("DELETE", None, True), ("POST", "enable", True)])
def test_what_the_rest_boundary_enters(method, action, changes):
    from tkgs_lib.vsphere.rest import _changes

    assert _changes(method, {"~action": action} if action else None) is changes


def test_the_account_names_rows_done_and_rows_that_may_have_happened():
    ledger = effects.Ledger()
    with ledger.step("create tag t"):
        ledger.close(ledger.enter("vCenter vc:443", "POST /rest/tag"), effects.DONE)
    with ledger.step("create policy p"):
        ledger.close(ledger.enter("vCenter vc:443", "PbmCreate"), effects.REFUSED, "duplicate")
    with ledger.step("create VM v"):
        ledger.close(ledger.enter("vCenter vc:443", "POST /deploy"), effects.UNKNOWN, "reset")
        ledger.close(ledger.enter("vCenter vc:443", "Destroy_Task"), effects.DONE)
    assert effects.account(ledger.effects) == (
        "Changed: create tag t. May have changed (rerun without apply to see whether it did): create VM v (POST "
        "/deploy to vCenter vc:443: sent, no answer came; Destroy_Task: done).")
    assert effects.account([]) == "Nothing was changed."
    assert not effects.changed_anything(ledger.effects[1:2])  # a refusal changed nothing


# --- a full disk ----------------------------------------------------------------------------------------

def _blocks(path: Path) -> int:
    return math.ceil(path.stat().st_size / 4096) * 4096


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs (a disk that fills up) needs root")
def test_a_record_that_cannot_be_written_is_a_failed_stage_never_done(tmp_path):
    """The disk fills up while the plan stage's HTML is exported: exit 1 naming the cause, no "done", no
    "read the plan in" a page that does not exist, and whatever record could be kept says failed."""
    measure = subprocess.run([str(SCRIPT), "run", str(EXAMPLE_SITE), "--stages", "networks", "--output",
                              str(tmp_path / "measure")], capture_output=True, text=True, timeout=180)
    assert measure.returncode == 0, measure.stderr[-2000:]
    (done,) = (tmp_path / "measure").iterdir()
    html = done / "01_plan_networks.html"
    room = sum(_blocks(p) for p in done.iterdir() if p != html) + html.stat().st_size // 2
    full = tmp_path / "full"
    full.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={room}", "tmpfs", str(full)], check=True)
    try:
        result = subprocess.run([str(SCRIPT), "run", str(EXAMPLE_SITE), "--stages", "networks", "--output", str(full)],
                                capture_output=True, text=True, timeout=180)
        assert result.returncode == 1, (result.stdout, result.stderr[-2000:])
        assert "done:" not in result.stdout and "Read the plan" not in result.stdout
        assert "No space left on device" in result.stderr and "Traceback" not in result.stderr
        (folder,) = full.iterdir()
        record = folder / "stages.json"
        if record.exists():  # it fits, or the run said it could not be written
            assert [s["status"] for s in json.loads(record.read_text())["stages"]] == ["failed"]
        for shown in ("See",):
            line = next((x for x in result.stderr.splitlines() if x.startswith(shown)), "")
            for named in line.removeprefix("See ").rstrip(".").split(" and "):
                assert not named or Path(named).exists(), f"the sentence names {named}, which does not exist"
    finally:
        subprocess.run(["umount", str(full)], check=True)
