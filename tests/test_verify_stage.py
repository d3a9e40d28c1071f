"""Stage 4 against the simulated appliance: real kernel interfaces and routes in network namespaces,
a real sshd, the units' and the Data Plane API's stand-ins. The runner works from the lab (the
user's side) and reaches the appliance at its real management address."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest

from appliance_fixtures import DATAPLANE_PASSWORD, PASSWORD_ENV, ROOT_PASSWORD, start_appliance
from tkgs_lib.appliance.dataplane import get_info
from tkgs_lib.appliance.ssh import SshRunner
from tkgs_lib.errors import ApplianceError
from tkgs_lib.stages import verify
from tkgs_lib.stages.flow import StageRun

SCRIPT = Path(sys.executable).with_name("tkgs-runbook")
pytestmark = pytest.mark.slow


@pytest.fixture
def secrets_in_env(monkeypatch):
    for name, value in PASSWORD_ENV.items():
        monkeypatch.setenv(name, value)


def run_verify_from_the_lab(lab, output: Path):
    """`tkgs-runbook run SITE --stages verify`, the console script started in the lab as a user
    would run it, with the passwords in the environment; the appliance is stopped after it."""
    try:
        return lab.sim.lab_run([str(SCRIPT), "run", str(lab.site_file), "--stages", "verify", "--output", str(output)],
                               env={**os.environ, **PASSWORD_ENV}, capture_output=True, text=True, timeout=300)
    finally:
        lab.sim.stop()


def verify_in_lab(lab):
    """The verify stage's facts and checks, read from a thread that joined the lab."""
    run = StageRun("verify", lab.site, lab.run_folder, progress=False)
    facts = lab.sim.in_lab(lambda: verify.read_facts(run))
    return {c.check: c for c in verify.checks(run, facts)}


def test_a_healthy_appliance_passes_every_check_run_as_the_user_runs_it(tmp_path):
    """A run of its own (no deploy stage's haproxy-ca.pem beside it, no vCenter to ask): the Data Plane
    API is trusted through the site's own CA, which the appliance was deployed with."""
    lab = start_appliance(tmp_path, own_ca=True)
    result = run_verify_from_the_lab(lab, tmp_path / "runs")
    assert result.returncode == 0, result.stderr[-3000:]
    (folder,) = (tmp_path / "runs").iterdir()
    import pandas as pd

    rows = pd.read_csv(folder / "verify-checks.csv")
    assert set(rows["status"]) == {"ok"} and len(rows) == 19, rows.to_string()
    assert "version 2.1.0 (stand-in)" in rows.iloc[0]["found"]  # the stand-in says it is one
    assert "TLS verified against haproxy.ca_cert_file" in rows.iloc[0]["found"]
    for path in folder.iterdir():
        data = path.read_bytes()
        assert ROOT_PASSWORD.encode() not in data and DATAPLANE_PASSWORD.encode() not in data, path.name
    executed = json.loads((folder / "04_verify_haproxy.ipynb").read_text())
    assert not [o for c in executed["cells"] for o in c.get("outputs", []) if o["output_type"] == "error"]
    # Every table the notebook's words say is saved is in the run folder (verify only reads: no plan file).
    named = {name for c in executed["cells"] if c["cell_type"] == "markdown"
             for name in re.findall(r"`([\w.-]+\.csv)`", "".join(c["source"]))}
    assert named and named <= {p.name for p in folder.iterdir()}, named
    [said] = [c["outputs"] for c in executed["cells"] if "".join(c["source"]) == "verify.conclude(run, facts)"][0]
    assert "".join(said["data"]["text/markdown"]) == "All 19 checks of the appliance passed."  # text, not a quoted str


def test_the_articles_fault_fails_the_headless_run_naming_the_line(tmp_path):
    lab = start_appliance(tmp_path, faults={"service_ip_range": "10.64.0.1/23,10.64.1.0/24"}, own_ca=True)
    result = run_verify_from_the_lab(lab, tmp_path / "runs")
    assert result.returncode == 1
    assert "stage 'verify' (Verify the HAProxy appliance) failed: VerificationFailed" in result.stderr
    assert "on the line 10.64.0.1/23" in result.stderr and "Traceback" not in result.stderr


BROKEN = {
    "the article's 10.64.0.1/23 line": (
        {"service_ip_range": "10.64.0.1/23,10.64.1.0/24"}, None,
        {"failed units (systemctl list-units --state failed)", "anyip-routes.service", "/etc/vmware/anyip-routes.cfg",
         "local route for 10.64.1.0/24"}),
    "a range outside the frontend network": (
        {"service_ip_range": "10.99.0.0/24"}, None,
        {"/etc/vmware/anyip-routes.cfg", "local route for 10.64.1.0/24",
         "local route for 10.99.0.0/24 (not a range of the plan)"}),  # the appliance answers for it
    # route-tables.cfg then names an address the NIC lacks: v0.1.10's route-tables.service fails on the
    # link-scoped route's `src 10.64.8.10` and its stop removes what it had made, so the tables go too.
    "a wrong interface address": (
        {"addresses": {"workload": "10.64.8.11/21"}}, None,
        {"interface workload", "failed units (systemctl list-units --state failed)", "route-tables.service",
         "routing table rtctl_workload (2)", "rule for rtctl_workload", "routing table rtctl_frontend (3)",
         "rule for rtctl_frontend"}),
}


@pytest.mark.parametrize("faults, appliance_changes, failing", BROKEN.values(), ids=BROKEN.keys())
def test_each_broken_start_fails_exactly_the_right_rows(tmp_path, secrets_in_env, faults, appliance_changes,
                                                        failing):
    lab = start_appliance(tmp_path, faults=faults, appliance_changes=appliance_changes)
    try:
        rows = verify_in_lab(lab)
    finally:
        lab.sim.stop()
    assert {name for name, c in rows.items() if c.status != "ok"} == failing
    assert [name for name in failing if not rows[name].fix] == []
    if "route-tables.service" in failing:
        assert "Error: Invalid prefsrc address.' after 'ip route add table rtctl_workload 10.64.8.0/21" in rows[
            "route-tables.service"].found  # the kernel's own words
    if "anyip-routes.service" in failing:
        assert "Error: Invalid prefix for given prefix length.' on the line 10.64.0.1/23" in rows[
            "anyip-routes.service"].found  # the kernel's own words, from a real ip route add
        assert "write the plan's line, 10.64.1.0/24 (haproxy.load_balancer_ranges)" in rows["anyip-routes.service"].fix


def test_after_a_hand_edit_and_a_restart_the_unit_is_judged_by_its_last_start(tmp_path, secrets_in_env):
    """The article's fault, then anyip-routes.cfg edited by hand to another bad line and the unit restarted, as
    at the appliance's console: verify names the new line in ip's own words, not the first boot's line. Then
    the lines the first fix named, written the same way, make the unit's rows pass."""
    lab = start_appliance(tmp_path, faults={"service_ip_range": "10.64.0.1/23,10.64.1.0/24"})

    def write_and_restart(lines):
        def work():
            run = StageRun("verify", lab.site, lab.run_folder, progress=False)
            try:
                text = "".join(f"{line}\\n" for line in lines)
                return run.connect_appliance().run(f"printf '{text}' > /etc/vmware/anyip-routes.cfg && "
                                                   f"systemctl restart anyip-routes.service")
            finally:
                run.close()
        return lab.sim.in_lab(work)

    try:
        first = verify_in_lab(lab)["anyip-routes.service"]
        assert "on the line 10.64.0.1/23" in first.found and first.suggested == ("10.64.1.0/24",)
        assert write_and_restart(["10.64.1.0/33"]).exit_status != 0  # the restart fails on the new line
        unit = verify_in_lab(lab)["anyip-routes.service"]
        assert write_and_restart(first.suggested).exit_status == 0
        repaired = verify_in_lab(lab)
    finally:
        lab.sim.stop()
    assert unit.found == ("failed: 'Error: any valid prefix is expected rather than \"10.64.1.0/33\".' on the line "
                          "10.64.1.0/33")
    assert "10.64.0.1/23" not in unit.fix
    rows = ["failed units (systemctl list-units --state failed)", "anyip-routes.service",
            "/etc/vmware/anyip-routes.cfg", "local route for 10.64.1.0/24"]
    assert {name: repaired[name].status for name in rows} == dict.fromkeys(rows, "ok")


@pytest.fixture(scope="module")
def healthy(tmp_path_factory):
    lab = start_appliance(tmp_path_factory.mktemp("healthy"))
    yield lab
    lab.sim.stop()


def dataplane(lab, *, port=5556, user="admin", password=DATAPLANE_PASSWORD, ca_pem=None):
    return lab.sim.in_lab(lambda: get_info(lab.sim.management_address, port, user, password,
                                           ca_pem or lab.sim.ca_pem, trusted_by="the appliance's CA", timeout=3))


def one_sentence(exc: ApplianceError) -> str:
    text = str(exc)
    assert "\n" not in text and "Traceback" not in text and text.endswith((".", ")", "?")), text
    return text


def test_the_data_plane_api_answers_through_the_appliances_ca(healthy):
    info = dataplane(healthy)
    assert info.version == "2.1.0 (stand-in)" and info.build_date


@pytest.mark.parametrize("case, words", [
    ("wrong port", "refused the connection: the service is down on the appliance, or 5557 is not its port"),
    ("wrong password", "refused user 'admin' (HTTP 401)"),
    ("another CA", "presents a certificate not signed by the appliance's CA"),
])
def test_data_plane_api_failures_on_a_healthy_appliance_are_one_sentence_each(healthy, case, words):
    from tkgs_simulators.appliance.dataplane_server import make_ca

    kwargs = {"wrong port": {"port": 5557}, "wrong password": {"password": "nope"},
              "another CA": {"ca_pem": make_ca("elsewhere.test.corp")[0]}}[case]
    with pytest.raises(ApplianceError) as failure:
        dataplane(healthy, **kwargs)
    assert words in one_sentence(failure.value)


def test_no_route_and_a_timeout_name_their_likely_causes(healthy):
    lab = healthy
    lab.sim.lab_run(["ip", "route", "add", "unreachable", f"{lab.sim.management_address}/32"], check=True)
    try:
        with pytest.raises(ApplianceError) as unreachable:
            dataplane(lab)
    finally:
        lab.sim.lab_run(["ip", "route", "del", "unreachable", f"{lab.sim.management_address}/32"], check=True)
    assert "no route to the Data Plane API" in one_sentence(unreachable.value)
    # The appliance's answers to the lab's address go nowhere: the connection times out.
    lab.sim.appliance_run(["ip", "route", "add", "blackhole", "10.64.2.1/32"], check=True)
    try:
        with pytest.raises(ApplianceError) as timeout:
            dataplane(lab)
    finally:
        lab.sim.appliance_run(["ip", "route", "del", "blackhole", "10.64.2.1/32"], check=True)
    assert "timed out" in one_sentence(timeout.value) and "management gateway" in str(timeout.value)


@pytest.mark.parametrize("fault, words", [
    ("down", "refused the connection"),
    ("expired", "presents an expired certificate"),
    ("unnamed", "presents a certificate that does not name 10.64.2.10"),
    ("other-body", "not with the Data Plane API's documented shape"),
])
def test_data_plane_api_faults_of_the_appliance_are_one_sentence_each(tmp_path, fault, words):
    lab = start_appliance(tmp_path, faults={"dataplane": fault})
    try:
        with pytest.raises(ApplianceError) as failure:
            dataplane(lab)
    finally:
        lab.sim.stop()
    assert words in one_sentence(failure.value)


def ssh(lab, **kwargs) -> str:
    def work():
        with SshRunner(lab.sim.management_address, **kwargs) as session:
            return session.run("hostname").stdout.strip()
    return lab.sim.in_lab(work)


def test_ssh_checks_the_host_key_every_way_and_refuses_a_wrong_one(healthy, tmp_path):
    lab = healthy
    assert ssh(lab, password=ROOT_PASSWORD, known_hosts=str(lab.site_file.parent / "known_hosts")) == \
        "haproxy01.test.corp"
    assert ssh(lab, password=ROOT_PASSWORD, host_key=lab.sim.host_key_fingerprint()) == "haproxy01.test.corp"

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    stranger = Ed25519PrivateKey.generate().public_key().public_bytes(serialization.Encoding.OpenSSH,
                                                                      serialization.PublicFormat.OpenSSH).decode()
    other = tmp_path / "other_known_hosts"  # another host's key under the appliance's address
    other.write_text(f"{lab.sim.management_address} {stranger}\n")
    with pytest.raises(ApplianceError) as changed:
        ssh(lab, password=ROOT_PASSWORD, known_hosts=str(other))
    assert "Nothing was sent" in one_sentence(changed.value)
    with pytest.raises(ApplianceError) as pinned:
        ssh(lab, password=ROOT_PASSWORD, host_key="SHA256:" + "A" * 43)
    assert "not the pinned" in one_sentence(pinned.value)
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    with pytest.raises(ApplianceError) as unknown:
        ssh(lab, password=ROOT_PASSWORD, known_hosts=str(empty))
    assert "which no known_hosts entry vouches for" in one_sentence(unknown.value)


def test_a_wrong_root_password_is_one_sentence_and_first_use_trust_says_so(healthy, tmp_path):
    lab = healthy
    with pytest.raises(ApplianceError) as refused:
        ssh(lab, password="not-the-root-password", known_hosts=str(lab.site_file.parent / "known_hosts"))
    assert "refused SSH login for root@10.64.2.10:22 with the password" in one_sentence(refused.value)
    assert "not-the-root-password" not in str(refused.value)

    recorded = tmp_path / "known_hosts"
    with pytest.warns(UserWarning, match="TRUSTED ON FIRST USE"):
        ssh(lab, password=ROOT_PASSWORD, trust_on_first_use=True, record_to=recorded)
    assert recorded.read_text().split()[0] == "10.64.2.10"


def test_the_json_parser_reads_the_simulators_ip_j_addr(healthy):
    from tkgs_lib.appliance.commands import gather
    from tkgs_lib.appliance.facts import INTERFACES

    def work():
        with SshRunner(healthy.sim.management_address, password=ROOT_PASSWORD,
                       known_hosts=str(healthy.site_file.parent / "known_hosts")) as session:
            return gather(session, INTERFACES)
    interfaces = healthy.sim.in_lab(work)
    assert interfaces["management"].addresses == ("10.64.2.10/23",) and interfaces["management"].up
    assert interfaces["frontend"].mac == healthy.sim.macs["frontend"]


def test_ssh_with_a_key_instead_of_the_password(healthy, tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from tkgs_simulators.appliance import ApplianceSimulator

    key = Ed25519PrivateKey.generate()
    key_file = tmp_path / "id_ed25519"
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                           serialization.NoEncryption()))
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    sim = ApplianceSimulator(dict(healthy.sim.properties), authorized_keys=[public])
    sim.properties["appliance.root_pwd"] = ""  # no password at all: only the key opens it
    with sim:
        known = tmp_path / "known_hosts"
        known.write_text(sim.known_hosts())

        def work():
            with SshRunner(sim.management_address, key_file=str(key_file), known_hosts=str(known)) as session:
                return session.run("id -un").stdout.strip()
        assert sim.in_lab(work) == "root"


@pytest.mark.parametrize("command", ["ip -j addr", "journalctl"])
def test_a_session_lost_while_the_facts_are_read_fails_verify_naming_it_first(tmp_path, command):
    """The session killed when the read starts: verify fails, the lost session its first sentence, and every
    check it kept from running named (none blamed on the network, none passed unchecked)."""
    lab = start_appliance(tmp_path, faults={"lose_session_at": [command]})
    result = run_verify_from_the_lab(lab, tmp_path / "runs")
    assert result.returncode == 1, result.stderr[-2000:]
    failure = result.stderr[result.stderr.index("VerificationFailed: "):]
    assert failure.startswith("VerificationFailed: the SSH session to 10.64.2.10 was lost while `the batch read of")
    assert "checks of the appliance could not run" in failure.splitlines()[0]
    assert "could not run: appliance release" not in failure and "interface management" in failure
    assert "VLAN" not in failure and "no answer" not in failure  # the network is not blamed for a lost session
