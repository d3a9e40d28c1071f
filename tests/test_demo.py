"""`tkgs-runbook demo`: the whole article against both simulators, the article's fault injected into
the appliance's first boot, found by verify and repaired. (The README's main job runs it too, from a
fresh copy: tests/test_main_job.py.)"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from tkgs_lib.credentials import scan_for_secrets

SCRIPT = Path(sys.executable).with_name("tkgs-runbook")
CANARIES = {"TKGS_VCENTER_PASSWORD": "canary-vcenter-€-Pa55",
            "TKGS_HAPROXY_ROOT_PASSWORD": "canary-root-Pa55/+=",
            "TKGS_HAPROXY_DATAPLANE_PASSWORD": "canary-dataplane-Pa55 &"}
RECORDS = ["01_plan_networks", "02_prepare_vsphere", "03_deploy_haproxy", "04_verify_haproxy",
           "04_verify_haproxy_again", "05_repair_haproxy", "06_enable_workload_management", "07_create_namespace",
           "08_tanzu_cluster"]
pytestmark = pytest.mark.slow


def assert_the_demo_record(folder: Path, stdout: str) -> None:
    """What the demo must leave (the README's main job runs it: tests/test_main_job.py, with these
    CANARIES as its passwords): every stage's record, the article's fault found and repaired,
    Workload Management enabled with the Supervisor's virtual IP answering through the appliance, a
    namespace and a Tanzu Kubernetes cluster whose LoadBalancer Service's address answered through the
    appliance (and no longer once removed), and no secret anywhere, the kubeconfig's credentials neither."""
    assert sorted(p.stem for p in folder.glob("0*.ipynb")) == RECORDS
    assert all((folder / f"{name}.html").exists() for name in RECORDS)
    summary = stdout.strip().splitlines()[-1]
    assert "verify found the injected fault (anyip-routes.service: failed: 'Error: Invalid prefix for given prefix " \
           "length.' on the line 10.64.0.1/23); repair fixed it; verify again: all 19 checks ok; " in summary, summary
    assert "Workload Management enabled: the Supervisor's virtual IP 10.64.1.0:6443 answers through the appliance " \
           "(supervisor-cp-" in summary, summary
    assert "namespace tkgs-demo, cluster tkc-01 Ready; its LoadBalancer Service's address 10.64.1.2 answered through " \
           "the appliance (tkgs-probe-" in summary, summary
    assert summary.endswith(f"and no longer once the Service was removed. See {folder / 'index.html'}."), summary
    index = (folder / "index.html").read_text()
    assert all(f'href="{name}.html"' in index for name in RECORDS) and 'img src="address-space.png"' in index
    assert "found the injected fault" in index and ">ok<" in index
    # The same record as `run` keeps, by the same code (runner.site_run): each stage's entry, in the demo's
    # order, and what the stages provided for each other.
    stages = json.loads((folder / "stages.json").read_text())
    assert [(e["stage"], e["name"], e["status"]) for e in stages["stages"]] == [
        ("networks", "", "ok"), ("prepare", "", "ok"), ("deploy", "", "ok"), ("verify", "", "failed"),
        ("repair", "", "ok"), ("verify", "verify-again", "ok"), ("enable", "", "ok"), ("namespace", "", "ok"),
        ("cluster", "", "ok")]
    assert "VerificationFailed" in stages["stages"][3]["error"] and stages["note"] in summary
    provided = json.loads((folder / "provided.json").read_text())
    assert {"prepared_ids", "appliance_release", "appliance_ca", "dataplane", "appliance_vm", "supervisor"} <= set(provided)
    assert provided["supervisor"]["status"] == "RUNNING"
    assert provided["namespace"]["status"] == "RUNNING" and provided["tanzu_cluster"]["ready"] == "True"
    assert provided["service_address"]["address"] == "10.64.1.2" and provided["service_address"]["removed"]
    import html

    shown = html.unescape(index)
    assert "the Supervisor's virtual IP 10.64.1.0:6443 answers through the appliance" in shown
    assert "RUNNING" in shown and "TLS to the Supervisor's API 10.64.1.0:6443" in shown
    import pandas as pd

    checks = pd.read_csv(folder / "supervisor-checks.csv", keep_default_na=False)
    assert len(checks) and set(checks["status"]) == {"ok"}, checks.to_string()
    for table in ("namespace-checks.csv", "cluster-checks.csv"):
        checks = pd.read_csv(folder / table, keep_default_na=False)
        assert len(checks) and set(checks["status"]) == {"ok"}, checks.to_string()
    assert "the vSphere Namespace" in shown and "tkgs-demo" in shown and "tkc-01" in shown
    assert "default/tkgs-probe at 10.64.1.2:80, answered by tkgs-probe-" in shown
    # The kubeconfig lives outside the run folder; its credentials are nowhere in it.
    from tkgs_lib.credentials import kubeconfig_secrets

    kubeconfig = Path(provided["kubeconfig"]["path"])
    assert not kubeconfig.is_relative_to(folder) and oct(kubeconfig.stat().st_mode & 0o777) == "0o600"
    held = kubeconfig_secrets(kubeconfig)
    assert held and scan_for_secrets(folder, held) == []

    # No secret anywhere in the run folder: plain, URL-encoded, base64 at all three offsets.
    assert scan_for_secrets(folder, CANARIES.values()) == []
    assert "password" not in yaml.safe_load((folder / "demo-site.yaml").read_text())["vcenter"]
    # The records keep each progress bar once, finished: no 0% line, no redraws, no cursor escapes.
    streams = "".join("".join(o.get("text", "")) for nb in folder.glob("*.ipynb")
                      for c in json.loads(nb.read_text())["cells"] for o in c.get("outputs", []))
    bars = [line for line in streams.splitlines() if "%|" in line]
    assert bars and all("100%|" in line for line in bars), bars
    assert "\x1b" not in streams and "\r" not in streams


def test_demo_teardown_removes_what_the_run_made_last_first_and_leaves_the_inventory_as_before(tmp_path):
    """`tkgs-runbook demo --teardown`: the whole article, then destroy. The cluster, the namespace and the
    Supervisor go first, then the appliance and what prepare made; the simulators' inventory (vCenter's
    entities, tags, libraries, policies, and the stand-in's Supervisors and namespaces) is as before the run."""
    import time

    from appliance_fixtures import require_appliance_simulator
    from tkgs_lib.effects import read_effects

    require_appliance_simulator()
    started = time.monotonic()
    runs, kubeconfigs = tmp_path / "runs", tmp_path / "kube"  # the kubeconfig kept apart from the person's ~/.kube
    env = {**os.environ, **CANARIES, "TKGS_KUBECONFIG_DIR": str(kubeconfigs)}
    result = subprocess.run([str(SCRIPT), "demo", "--teardown", "--output", str(runs)], capture_output=True,
                            text=True, timeout=600, env=env, stdin=subprocess.DEVNULL)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr[-4000:]
    assert "Traceback" not in result.stdout + result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith(
        "teardown: destroy removed 14 of the 14 objects the run made in vCenter (TanzuKubernetesCluster "
        "tkgs-demo/tkc-01, namespace tkgs-demo, Supervisor on cluster DC0_C0, VM haproxy01, library item "
        "haproxy-v0.1.10, "), last
    assert last.endswith("port group tkgs-management): vCenter holds nothing the run made (its inventory is as it "
                         "was before the run)."), last
    (folder,) = [p for p in runs.iterdir() if p.is_dir()]
    stages = json.loads((folder / "stages.json").read_text())
    assert [(e["stage"], e["status"]) for e in stages["stages"]][-3:] == [
        ("namespace", "ok"), ("cluster", "ok"), ("destroy", "ok")]
    sent = [e.step for e in read_effects(folder / "effects.jsonl") if e.stage == "destroy"]
    assert [step.split(" (")[0] for step in dict.fromkeys(sent)][:4] == [
        "delete TanzuKubernetesCluster tkgs-demo/tkc-01", "delete namespace tkgs-demo",
        "delete Supervisor on cluster DC0_C0", "delete VM haproxy01"], sent
    assert scan_for_secrets(folder, CANARIES.values()) == []
    print(f"demo --teardown took {elapsed:.1f} s")


def test_without_root_the_demo_says_so_in_one_sentence(tmp_path):
    """The product's own sentence, from its own console script, run as nobody. The checkout may sit
    where nobody may enter (a clone in a 0700 folder, as under /root): a private mount namespace
    binds it, and the output folder, into a folder anyone may enter, so the unprivileged user reaches
    the script there; nothing of the host's mounts changes."""
    if os.geteuid() != 0:
        pytest.skip("needs root to become another user")
    checkout = Path(__file__).resolve().parent.parent
    reachable = Path(tempfile.mkdtemp(prefix="tkgs-nobody-"))
    try:
        reachable.chmod(0o755)
        (reachable / "checkout").mkdir()
        output = reachable / "runs"
        output.mkdir(mode=0o777)
        output.chmod(0o777)
        script = reachable / "checkout" / SCRIPT.relative_to(checkout) if SCRIPT.is_relative_to(checkout) else SCRIPT
        python = script.with_name("python")
        command = (f"mount --bind {shlex.quote(str(checkout))} {shlex.quote(str(reachable / 'checkout'))} && "
                   f"exec setpriv --reuid=65534 --regid=65534 --clear-groups {shlex.quote(str(python))} "
                   f"{shlex.quote(str(script))} demo --output {shlex.quote(str(output))}")
        # The venv's own python through the bound path, and the package from there too (an editable
        # install points at the checkout's real path, which nobody may enter).
        env = {**os.environ, "HOME": str(output), "PYTHONPATH": str(reachable / "checkout")}
        result = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", command],
                                capture_output=True, text=True, timeout=120, env=env)
        assert result.returncode == 1, result.stderr[-2000:]
        (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert "cannot run here: the appliance simulator needs root" in line and "Traceback" not in result.stderr
        assert list(output.iterdir()) == []
    finally:
        shutil.rmtree(reachable, ignore_errors=True)
