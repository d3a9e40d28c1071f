"""Stage 6 against the vCenter simulator's Workload Management stand-in and the simulated appliance.

One lab for the module, as the demo builds it: the appliance booted in its network namespaces, a
vCenter simulator started inside the lab (so the runner, run from the lab as a user's machine on
the management network would, reaches both), the prepare stage applied (port groups, storage
policy, libraries), and the appliance's VM in vCenter holding its properties (the stand-in finds the
appliance by them). The stand-in plays the Supervisor in the lab: it checks the Data Plane API with
the CA and password sent, then programs the appliance's real HAProxy.

Each test starts from a cluster without a Supervisor and leaves it so.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from appliance_fixtures import PASSWORD_ENV, start_appliance
from supervisor_fixtures import appliance_vm_in_lab, vcenter_in_lab
from tkgs_lib.errors import TkgsError

SCRIPT = Path(sys.executable).with_name("tkgs-runbook")
NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "06_enable_workload_management.ipynb"
VCENTER_ENV = "TKGS_VCENTER_PASSWORD"
VCENTER_PASSWORD = "canary-vcenter-enable-7d1"
pytestmark = [pytest.mark.slow, pytest.mark.vcsim]


class EnableLab:
    def __init__(self, lab, vcsim, site_file: Path, cluster: str):
        self.lab, self.vcsim, self.site_file, self.cluster = lab, vcsim, site_file, cluster

    @property
    def env(self) -> dict:
        return {**os.environ, **PASSWORD_ENV, VCENTER_ENV: VCENTER_PASSWORD}

    def run_folder(self, tmp_path: Path) -> Path:
        """A run folder as the deploy stage leaves it (the appliance's CA, the release recorded)."""
        folder = tmp_path / "run"
        shutil.copytree(self.lab.run_folder, folder)
        return folder

    def cli(self, *args: str, env: dict | None = None):
        return self.lab.sim.lab_run([str(SCRIPT), *args], env=env or self.env, capture_output=True, text=True,
                                    timeout=240)

    def in_lab(self, work, env: dict | None = None):
        """``work()`` in the lab, with the passwords in the environment (as a person's shell holds them)."""
        saved = {name: os.environ.get(name) for name in (env or self.env)}
        os.environ.update(env or self.env)
        try:
            return self.lab.sim.in_lab(work)
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    def stage(self, folder: Path, *, apply: bool = True, env: dict | None = None, site_file: Path | None = None,
              shown=lambda plan: None):
        """The stage as its notebook runs it, in this process (from the lab): the plan it showed and
        the error it stopped with (None when it passed). ``shown(plan)`` runs while the person reads the plan."""
        from tkgs_lib.stages import enable
        from tkgs_lib.stages.flow import StageRun

        def work():
            run = StageRun.start("enable", str(site_file or self.site_file), str(folder))
            run.progress = False
            try:
                run.connect_vcenter()
                facts = run.read()
                enable.request_table(run, facts)
                plan = run.plan(facts)
                shown(plan)
                try:
                    run.carry_out(plan, apply)
                    enable.conclude(run, enable.check_supervisor(run))
                except TkgsError as exc:
                    return plan, exc
                return plan, None
            finally:
                run.close()
        return self.in_lab(work, env)

    def _vcenter(self, work):
        """``work(NamespaceManagement)`` from the lab, logged in to the simulator as its administrator."""
        from tkgs_lib.vsphere.namespace_management import NamespaceManagement
        from tkgs_lib.vsphere.rest import RestClient
        from tkgs_lib.vsphere.tls import TlsPolicy

        def logged_in():
            rest = RestClient(self.vcsim.host, self.vcsim.port, TlsPolicy(ca_file=str(self.vcsim.ca_file)))
            rest.login(self.vcsim.username, self.vcsim.password)
            try:
                return work(NamespaceManagement(rest))
            finally:
                rest.logout()
        return self.lab.sim.in_lab(logged_in)

    def info(self):
        """The cluster's Supervisor, None when vCenter says it has none (NOT_FOUND or UNSUPPORTED)."""
        return self._vcenter(lambda client: client.find(self.cluster))

    def enable_by_hand(self, spec) -> None:
        """An enable request this stage did not send (an earlier attempt, or the vSphere Client's)."""
        self._vcenter(lambda client: client.enable(self.cluster, spec))

    def disable(self) -> None:
        """No Supervisor on the cluster, as each test starts."""
        if self.info() is None:
            return
        self._vcenter(lambda client: client.disable(self.cluster))
        deadline = time.monotonic() + 15
        while self.info() is not None:
            assert time.monotonic() < deadline, "the Supervisor was not removed within 15 s"
            time.sleep(0.1)


@pytest.fixture(scope="module")
def enabling(vcsim_binary, tmp_path_factory):
    from tkgs_lib.demo import simulator_site_data

    tmp = tmp_path_factory.mktemp("enable")
    lab = start_appliance(tmp)
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(lab.sim.stop)
        vcsim = vcenter_in_lab(lab, vcsim_binary, tmp / "vcsim", cleanup, VCENTER_PASSWORD)
        data = simulator_site_data(vcsim, base=yaml.safe_load(lab.site_file.read_text()))
        data["workload_management"].update(timeout=60, error_grace=2)
        site_file = lab.site_file.with_name("enable-site.yaml")
        site_file.write_text(yaml.safe_dump(data, sort_keys=False))
        cluster = appliance_vm_in_lab(lab, vcsim)
        prepared = EnableLab(lab, vcsim, site_file, cluster)
        result = prepared.cli("run", str(site_file), "--stages", "prepare", "--apply", "--output", str(tmp / "prepare"))
        assert result.returncode == 0, result.stderr[-3000:]
        yield prepared


@pytest.fixture
def lab(enabling):
    enabling.disable()
    seen = len(enabling.vcsim.enable_requests)
    yield enabling, seen
    enabling.disable()
    enabling.vcsim.supervisor.no_supervisor_error = "NOT_FOUND"


def request_csv(folder: Path) -> dict[str, str]:
    rows = pd.read_csv(folder / "enable-request.csv", keep_default_na=False, dtype=str)
    return dict(zip(rows["field"], rows["value"]))


def no_password_in(folder: Path) -> None:
    secrets = [*PASSWORD_ENV.values(), VCENTER_PASSWORD]
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not [s for s in secrets if s.encode() in data], path.name


def test_run_enable_apply_sends_the_spec_the_plan_showed_and_a_rerun_sends_nothing(lab, tmp_path):
    from tkgs_lib.stages.enable import PASSWORD_FIELD, spec_fields

    enabling, seen = lab
    folder = enabling.run_folder(tmp_path)
    result = enabling.cli("run", str(enabling.site_file), "--stages", "enable", "--apply", "--run-folder", str(folder))
    assert result.returncode == 0, result.stderr[-3000:]
    assert enabling.info().config_status == "RUNNING"
    [accepted] = enabling.vcsim.enable_requests[seen:]
    # The stand-in decoded the body into VMware's EnableSpec; field by field it is the table the person read.
    sent, shown = spec_fields(accepted.spec), request_csv(folder)
    assert sent.pop(PASSWORD_FIELD) == PASSWORD_ENV["TKGS_HAPROXY_DATAPLANE_PASSWORD"]
    assert shown.pop(PASSWORD_FIELD) == "********"
    assert sent == shown
    assert shown["load_balancer_config_spec.address_ranges[0].address"] == "10.64.1.0"
    assert shown["load_balancer_config_spec.address_ranges[0].count"] == "255"  # 10.64.1.0/24 less its broadcast
    assert shown["master_management_network.address_range.starting_address"] == "10.64.2.20"
    assert shown["load_balancer_config_spec.ha_proxy_config_create_spec.servers[0].host"] == "10.64.2.10"
    plan = pd.read_csv(folder / "enable-plan.csv", keep_default_na=False)
    assert list(plan["action"]) == ["create"] and plan["found"][0] == "not enabled"
    assert set(pd.read_csv(folder / "enable-after-apply.csv")["action"]) == {"ok"}
    # From the lab, the Supervisor's virtual IP answers through the appliance's HAProxy.
    checks = pd.read_csv(folder / "supervisor-checks.csv", keep_default_na=False)
    assert set(checks["status"]) == {"ok"}, checks.to_string()
    tls = checks[checks["check"] == "TLS to the Supervisor's API 10.64.1.0:6443"]
    assert "answered by supervisor-cp-" in tls["found"].iloc[0]
    found = json.loads((folder / "provided.json").read_text())["supervisor"]
    assert found["status"] == "RUNNING" and found["endpoint"] == "10.64.1.0"
    assert "Supervisor" in (folder / "index.html").read_text()
    no_password_in(folder)

    again = enabling.cli("run", str(enabling.site_file), "--stages", "enable", "--apply", "--run-folder", str(folder))
    assert again.returncode == 0, again.stderr[-3000:]
    assert len(enabling.vcsim.enable_requests) == seen + 1  # nothing sent
    assert set(pd.read_csv(folder / "enable-plan.csv")["action"]) == {"ok"}


def test_notebook_06_by_papermill_enables_the_cluster(lab, tmp_path):
    enabling, seen = lab
    folder = enabling.run_folder(tmp_path)
    out = tmp_path / "06.ipynb"
    result = enabling.lab.sim.lab_run(
        [sys.executable, "-m", "papermill", str(NOTEBOOK), str(out), "-p", "site_file", str(enabling.site_file),
         "-p", "output_dir", str(folder), "-p", "apply", "True", "--no-progress-bar"],
        env=enabling.env, capture_output=True, text=True, timeout=240, cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    assert enabling.info().config_status == "RUNNING"
    assert len(enabling.vcsim.enable_requests) == seen + 1
    executed = json.loads(out.read_text())
    texts = "".join(str(o) for c in executed["cells"] for o in c.get("outputs", []))
    assert "All 12 checks of the Supervisor through the load balancer passed." in texts
    assert "RUNNING, Kubernetes READY" in texts
    assert PASSWORD_ENV["TKGS_HAPROXY_DATAPLANE_PASSWORD"] not in texts
    cells = {"".join(c["source"]): c for c in executed["cells"] if c["cell_type"] == "code"}
    # What vCenter held before the request: a table under its heading, the CA by subject, not its text.
    [read] = cells["facts = run.read()\nfacts"]["outputs"]
    shown = "".join(read["data"]["text/html"])
    assert f"DC0_C0 ({enabling.cluster})" in shown and "not enabled" in shown and "10.64.2.10:5556" in shown, shown
    assert "subscribed library" in shown and "SHA-256" in shown and "BEGIN CERTIFICATE" not in shown
    assert "10.64.2.20-10.64.2.24: free (no answer to ARP from the appliance" in shown, shown
    # The last word as text, not a quoted Python string.
    [said] = cells["enable.conclude(run, checked)"]["outputs"]
    assert "".join(said["data"]["text/markdown"]) == "All 12 checks of the Supervisor through the load balancer passed."
    assert "".join(said["data"]["text/plain"]) == "All 12 checks of the Supervisor through the load balancer passed."


@pytest.mark.parametrize("answer", ["NOT_FOUND", "UNSUPPORTED"])
def test_a_dry_run_shows_the_request_and_sends_nothing(lab, tmp_path, answer):
    """vCenter answers a read of a cluster without a Supervisor NOT_FOUND (7.0 builds) or UNSUPPORTED (as
    VMware's bindings document it): either is "not enabled"."""
    enabling, seen = lab
    enabling.vcsim.supervisor.no_supervisor_error = answer
    folder = enabling.run_folder(tmp_path)
    plan, error = enabling.stage(folder, apply=False)
    assert error is None, error
    assert [(s.action, s.found) for s in plan.steps] == [("create", "not enabled")]
    assert len(enabling.vcsim.enable_requests) == seen and enabling.info() is None
    assert request_csv(folder)["load_balancer_config_spec.ha_proxy_config_create_spec.password"] == "********"
    # What vCenter said of the cluster, and which vCenter said it, is in the stage's report.
    judged = pd.read_csv(folder / "enable-readiness.csv", keep_default_na=False)
    rows = dict(zip(judged["what"], judged["found"]))
    assert rows["vCenter"] == "vCenter 7.0.3 build 21477706 (API 7.0.3.0)"
    assert rows[f"cluster DC0_C0 ({enabling.cluster}) for vSphere networking"] == "compatible"
    assert set(judged["read from"][1:].str.endswith("vCenter 7.0.3 build 21477706 (API 7.0.3.0)")) == {True}


EVALUATION = "00000-00000-00000-00000-00000"  # the simulator's evaluation licence, which it assigns every host


@contextlib.contextmanager
def cluster_set(enabling: EnableLab, how: str):
    """The simulator's cluster DC0_C0 changed through its SOAP API (from the lab, where it listens) as an
    administrator would, then set back."""
    vcsim = enabling.vcsim

    def change() -> None:
        if how == "DRS off":
            vcsim.configure_cluster("DC0_C0", drs_enabled=False)
        elif how == "HA off":
            vcsim.configure_cluster("DC0_C0", ha_enabled=False)
        else:
            with vcsim.soap() as si:
                si.content.licenseManager.RemoveLicense(licenseKey=EVALUATION)

    def set_back() -> None:
        vcsim.configure_cluster("DC0_C0", drs_enabled=True, drs_behavior="fullyAutomated", ha_enabled=True)
        with vcsim.soap() as si:
            si.content.licenseManager.AddLicense(licenseKey=EVALUATION)

    enabling.lab.sim.in_lab(change)
    try:
        yield
    finally:
        enabling.lab.sim.in_lab(set_back)


@pytest.mark.parametrize("how, words, fix", [
    ("DRS off", "must have DRS enabled and set to fully automated to enable vSphere Namespaces (DRS is off).",
     "in the vSphere Client, cluster DC0_C0 > Configure > Services > vSphere DRS > Edit: turn DRS on, with "
     "automation level Fully Automated, then rerun."),
    ("HA off", "must have vSphere HA enabled to enable vSphere Namespaces.",
     "in the vSphere Client, cluster DC0_C0 > Configure > Services > vSphere Availability > Edit: turn vSphere HA "
     "on, then rerun."),
    ("unlicensed", "has hosts that are not licensed for vSphere Namespaces: DC0_C0_H0, DC0_C0_H1, DC0_C0_H2.",
     "assign the hosts of cluster DC0_C0 a licence that includes Workload Management (vSphere with Tanzu) in "
     "Administration > Licensing > Licenses > Assets, then rerun."),
])
def test_a_cluster_vcenter_would_refuse_is_refused_before_anything_is_sent(lab, tmp_path, how, words, fix):
    from tkgs_lib.errors import ValidationFailed

    enabling, seen = lab
    folder = enabling.run_folder(tmp_path)
    with cluster_set(enabling, how):
        said = enabling._vcenter(lambda client: [m.default_message for s in client.cluster_compatibility()
                                                 if s.cluster == enabling.cluster for m in s.incompatibility_reasons])
        plan, error = enabling.stage(folder)
    [reason] = said  # vCenter's own words, as its /api gives them
    assert reason == f"Cluster {enabling.cluster} {words}"
    assert isinstance(error, ValidationFailed), error
    [refusal] = [f for f in plan.findings if f.is_error and f.message.endswith(f'"{reason}"')]
    assert refusal.path == "vcenter.cluster"  # where the site names the cluster (workload_management takes it)
    assert refusal.message == (f"vCenter 7.0.3 build 21477706 (API 7.0.3.0) says cluster DC0_C0 ({enabling.cluster}) "
                               f"cannot take a Supervisor with vSphere networking: \"{reason}\"")
    assert refusal.fix == fix
    assert reason in str(error) and fix in str(error)
    assert plan.steps == [] and request_csv(folder) == {}
    assert len(enabling.vcsim.enable_requests) == seen and enabling.info() is None  # the stand-in accepted none
    ledger = folder / "effects.jsonl"  # and the stage sent nothing that changes vCenter
    assert not ledger.exists() or "namespace-management" not in ledger.read_text()


def one_sentence(error: Exception) -> str:
    text = str(error)
    assert "Traceback" not in text and "\n" not in text, text
    return text


RETRY_CLAIM = "retries by itself"  # what this stage once said of an ERROR; vCenter keeps the values it was sent


def assert_says_the_way_out(text: str, cluster: str, load_balancer: str) -> None:
    assert RETRY_CLAIM not in text, text
    assert "a fix in the site or in a password variable never reaches it, and a rerun sends nothing" in text, text
    assert "disable Workload Management on the cluster and rerun with apply once vCenter no longer lists it" in text
    assert (f"where vCenter's API is 7.0.3.0 or later (vCenter 7.0 Update 3), update the load balancer's Data Plane "
            f"API user, password or CA chain in place (PATCH /api/vcenter/namespace-management/clusters/{cluster}/"
            f"load-balancers/{load_balancer} with provider HA_PROXY and ha_proxy_config_update_spec: username, "
            f"password, certificate_authority_chain)") in text, text


def pasted_ca(kind: str) -> str:
    """What a person may paste as the appliance's CA chain, other than the appliance's CA."""
    from tkgs_simulators.appliance.dataplane_server import issue_server_cert, make_ca

    ca, key = make_ca("another-appliance")
    return {"a private key": key, "a server certificate": issue_server_cert(ca, key, "haproxy.local")[0],
            "not PEM": "Paste the CA of the appliance here.\n", "another appliance's CA": ca}[kind]


@pytest.mark.parametrize("kind, words", [
    ("a private key", "holds a private key ('-----BEGIN PRIVATE KEY-----') where only certificates belong."),
    ("a server certificate", "is a certificate for CN=haproxy.local, but not a CA (its basic constraints do not say "
                             "CA:TRUE)."),
    ("not PEM", "is not a PEM certificate: it has no '-----BEGIN CERTIFICATE-----' line."),
    ("another appliance's CA", "presents a certificate not signed by the appliance CA the deploy stage saved in "),
])
def test_a_ca_chain_that_is_not_the_appliances_ca_is_refused_before_anything_is_sent(lab, tmp_path, kind, words):
    from tkgs_lib.errors import ValidationFailed

    enabling, seen = lab
    folder = enabling.run_folder(tmp_path)
    saved = folder / "haproxy-ca.pem"
    saved.write_text(pasted_ca(kind))
    plan, error = enabling.stage(folder)
    assert isinstance(error, ValidationFailed), error
    [finding] = [f for f in plan.findings if f.is_error]
    assert words in finding.message and f"the appliance CA the deploy stage saved in {saved}" in finding.message, \
        finding.message
    assert "\n" not in str(finding) and "Fix: use the " in str(finding), str(finding)
    assert len(enabling.vcsim.enable_requests) == seen and enabling.info() is None  # nothing was sent
    assert request_csv(folder) == {}  # no request shown: a key pasted here is never written anywhere
    if kind == "another appliance's CA":
        assert "(unable to get local issuer certificate): the CA is not this appliance's" in finding.message


def test_a_supervisor_in_error_from_another_appliances_ca_is_told_how_to_get_out_of_it(lab, tmp_path):
    """A Supervisor enabled with another appliance's CA (by hand, or before this stage checked the CA)
    stays in ERROR however the run folder's CA is fixed: the plan says what works."""
    from supervisor_fixtures import wait_for
    from test_namespace_management import spec_for
    from tkgs_lib.errors import ConflictError

    enabling, seen = lab
    sim = enabling.lab.sim
    port = int(sim.properties["loadbalance.dataplane_port"])
    enabling.enable_by_hand(spec_for(pasted_ca("another appliance's CA"), port, host=sim.management_address))
    wait_for(lambda: enabling.info().config_status == "ERROR", "the Supervisor in ERROR")
    plan, error = enabling.stage(enabling.run_folder(tmp_path))
    assert isinstance(error, ConflictError), error
    [step] = plan.steps
    assert step.action == "conflict" and step.why.startswith("it is in ERROR. Check the CA chain"), step.why
    assert_says_the_way_out(str(error), enabling.cluster, "haproxy-lb")  # the load balancer vCenter holds
    assert len(enabling.vcsim.enable_requests) == seen + 1  # only the one by hand


def test_a_wrong_dataplane_password_fails_naming_the_refused_user_and_what_gets_the_supervisor_out_of_error(
        lab, tmp_path):
    from tkgs_lib.errors import ConflictError

    enabling, seen = lab
    folder = enabling.run_folder(tmp_path)
    _, error = enabling.stage(folder, env={**enabling.env, "TKGS_HAPROXY_DATAPLANE_PASSWORD": "not-the-password-8c2"})
    text = one_sentence(error)
    assert "HTTP 401 Unauthorized: invalid username or password (user admin)" in text, text
    assert "Check the Data Plane API user and password" in text, text
    assert "not-the-password-8c2" not in text
    assert "vCenter keeps the values it was sent, so a fix in the site" in text, text
    load_balancer = enabling.info().load_balancers[0].id  # the site's, as vCenter holds it
    assert_says_the_way_out(text, enabling.cluster, load_balancer)
    # The variable fixed, a rerun: the Supervisor is still in ERROR, and nothing is sent.
    plan, again = enabling.stage(folder)
    assert isinstance(again, ConflictError), again
    assert plan.steps[0].why.startswith("it is in ERROR. Check the Data Plane API user and password"), plan.steps[0].why
    assert_says_the_way_out(str(again), enabling.cluster, load_balancer)
    assert len(enabling.vcsim.enable_requests) == seen + 1 and enabling.info().config_status == "ERROR"


def test_a_lasting_error_fails_with_vcenters_message(lab, tmp_path):
    enabling, _ = lab
    enabling.vcsim.inject_enable_error("The control plane VMs could not be deployed.")
    _, error = enabling.stage(enabling.run_folder(tmp_path))
    text = one_sentence(error)
    assert "longer than the 2 s an error may last while vCenter retries (workload_management.error_grace)" in text
    assert "vCenter says: ERROR: The control plane VMs could not be deployed" in text, text


def test_a_transient_error_is_ridden_out_and_reported(lab, tmp_path, capsys):
    enabling, _ = lab
    enabling.vcsim.inject_enable_error("Waiting for the control plane VMs.", recover_after=0.8)
    _, error = enabling.stage(enabling.run_folder(tmp_path))
    assert error is None, error
    printed = capsys.readouterr().out
    assert "An ERROR passed while vCenter retried: ERROR for" in printed, printed
    assert "Waiting for the control plane VMs" in printed
    assert enabling.info().config_status == "RUNNING"


def test_notebook_06_in_jupyterlab_asks_for_three_passwords_enables_and_shows_the_supervisor_answering(lab, tmp_path):
    """A person in JupyterLab (headless Chromium, started in the lab as the user's machine is) runs
    notebook 06 with apply: the form, three prompts, the request table, the wait, the checks."""
    from appliance_fixtures import DATAPLANE_PASSWORD, ROOT_PASSWORD
    from browser import Lab, NotebookPage, copy_notebooks, error_outputs, start_chromium, stop_browser

    enabling, seen = lab
    folder = enabling.run_folder(tmp_path)
    notebooks = copy_notebooks(tmp_path / "notebooks", {"site_file": str(enabling.site_file),
                                                         "output_dir": str(folder), "apply": True})
    answers = {"vCenter password": VCENTER_PASSWORD, "root password": ROOT_PASSWORD,
               "Data Plane API password": DATAPLANE_PASSWORD}

    def in_the_lab():
        jupyter = Lab(notebooks, tmp_path / "home", {"TKGS_RUNS_DIR": str(tmp_path / "runs")})
        driver = start_chromium(tmp_path / "chromium-profile")
        try:
            page = NotebookPage(driver, jupyter, NOTEBOOK.name)
            page.run_all()
            asked = {page.answer_prompt(answers).split(" (")[0] for _ in range(3)}
            page.wait_done(timeout=180)
            page.screenshot(tmp_path / "06_enable_workload_management.png")
            form = bool(page.find("button.jupyter-widgets"))
            return asked, form, page.page_text(), error_outputs(page.save())
        finally:
            stop_browser(driver)
            jupyter.stop()

    asked, form, text, errors = enabling.lab.sim.in_lab(in_the_lab)
    assert form, "the parameter form did not render"
    assert asked == {"vCenter password for administrator@vsphere.local", "the Data Plane API password",
                     "the appliance's root password"}
    assert errors == []
    assert "load_balancer_config_spec.ha_proxy_config_create_spec.password" in text and "********" in text
    assert "RUNNING, Kubernetes READY" in text
    assert "All 12 checks of the Supervisor through the load balancer passed." in text
    assert len(enabling.vcsim.enable_requests) == seen + 1
    saved = (notebooks / NOTEBOOK.name).read_text()
    assert not [a for a in answers.values() if a in saved]


@pytest.mark.parametrize("how", ["cut", "die"])
def test_a_wait_whose_reads_go_unanswered_after_vcenter_accepted_the_enable(lab, tmp_path, capsys, how):
    """The enable request was accepted, then a read of the wait got no answer: a connection reset once
    ("cut") is ridden out; vCenter answering no more ("die": every new connection refused) ends the wait
    after workload_management.error_grace, saying vCenter stopped answering (never "check vcenter.server",
    never "nothing was changed"), the ledger holding the request done and the record the Supervisor as
    vCenter last reported it."""
    from lossy_vcenter import LossyVCenter, Rule

    enabling, seen = lab
    folder = enabling.run_folder(tmp_path)
    cluster = enabling.cluster.encode()
    rule = Rule(b"GET /api/vcenter/namespace-management/clusters/" + cluster + b" ", how,
                armed_by=b"action=enable", skip=1)  # the first read after the request answers, the next is lost
    proxy = enabling.lab.sim.in_lab(lambda: LossyVCenter(enabling.vcsim, rule).__enter__())
    try:
        data = yaml.safe_load(enabling.site_file.read_text())
        data["vcenter"]["port"] = proxy.port
        site_file = enabling.site_file.with_name(f"lossy-{how}.yaml")  # beside it: its relative paths hold
        site_file.write_text(yaml.safe_dump(data))
        _, error = enabling.stage(folder, site_file=site_file)
    finally:
        proxy.__exit__(None, None, None)
    assert rule.fired
    assert "  vCenter did not answer: " in capsys.readouterr().out
    assert len(enabling.vcsim.enable_requests) == seen + 1
    ledger = [json.loads(line) for line in (folder / "effects.jsonl").read_text().splitlines()]
    assert [r["outcome"] for r in ledger if "close" in r] == ["done"]
    recorded = json.loads((folder / "provided.json").read_text())["supervisor"]
    if how == "cut":
        assert error is None, error
        assert recorded["status"] == "RUNNING"
        return
    sentence = str(error)
    assert "stopped answering" in sentence and "after it had answered this session" in sentence, sentence
    assert "vCenter has not answered the wait's reads for " in sentence
    assert "while waiting for the Supervisor, whose enable vCenter had accepted; it last reported the Supervisor " \
           "CONFIGURING" in sentence, sentence
    assert f"Changed: create Supervisor on cluster DC0_C0 ({enabling.cluster})." in sentence
    assert "Nothing was changed" not in sentence and "check vcenter.server" not in sentence
    assert recorded["status"] == "CONFIGURING", recorded  # what vCenter last said, not "not enabled"


def test_an_enable_whose_answer_is_lost_may_have_happened_and_vcenter_holds_it(lab, tmp_path):
    """The ledger across the enable stage: its one request carried out by vCenter, the answer lost. The stage
    says the Supervisor may have been enabled, naming the request; vCenter holds it, as a rerun shows."""
    from lossy_vcenter import LossyVCenter, Rule

    enabling, seen = lab
    folder = enabling.run_folder(tmp_path)
    rule = Rule(b"?action=enable", "cut")
    proxy = enabling.lab.sim.in_lab(lambda: LossyVCenter(enabling.vcsim, rule).__enter__())
    try:
        data = yaml.safe_load(enabling.site_file.read_text())
        data["vcenter"]["port"] = proxy.port
        site_file = enabling.site_file.with_name("lossy-enable.yaml")  # beside it: its relative paths hold
        site_file.write_text(yaml.safe_dump(data))
        _, error = enabling.stage(folder, site_file=site_file)
    finally:
        proxy.__exit__(None, None, None)
    assert rule.fired and error is not None
    sentence = str(error)
    assert f"May have changed (rerun without apply to see whether it did): create Supervisor on cluster DC0_C0 " \
           f"({enabling.cluster}) (POST /api/vcenter/namespace-management/clusters/{enabling.cluster}?action=enable " \
           f"to vCenter 127.0.0.1:{proxy.port}: sent, no answer came)" in sentence, sentence
    assert "Nothing was changed" not in sentence
    assert len(enabling.vcsim.enable_requests) == seen + 1  # vCenter carried it out
    ledger = [json.loads(line) for line in (folder / "effects.jsonl").read_text().splitlines()]
    assert [r["outcome"] for r in ledger if "close" in r] == ["unknown"]
    rerun, _ = enabling.stage(tmp_path / "rerun", apply=False)
    assert [s.action for s in rerun.steps] != ["create"]  # what the sentence says may be so, vCenter holds


def test_a_wait_that_times_out_says_so_and_a_rerun_with_apply_sends_nothing_and_waits_on(lab, tmp_path, capsys):
    """A real enable outlasts a short wait: the timeout says how long it waited, what vCenter said last, and
    that a rerun picks the wait up; the rerun's plan row waits (a dry run says apply would), and with apply
    it waits on to RUNNING, sending nothing: the stand-in accepted no second enable, the ledger gained nothing."""
    from tkgs_lib.errors import SupervisorStillConfiguring

    enabling, seen = lab
    folder = enabling.run_folder(tmp_path)
    data = yaml.safe_load(enabling.site_file.read_text())
    data["workload_management"].update(timeout=1, error_grace=1)
    impatient = enabling.site_file.with_name("impatient.yaml")  # beside it: its relative paths hold
    impatient.write_text(yaml.safe_dump(data))
    enabling.vcsim.inject_enable_stall()
    _, error = enabling.stage(folder, site_file=impatient)
    text = one_sentence(error)
    assert isinstance(error, SupervisorStillConfiguring), text
    assert f"Workload Management on cluster {enabling.cluster} is still CONFIGURING, Kubernetes WARNING after " \
           f"waiting " in text and " s (workload_management.timeout is 1)" in text, text
    assert "vCenter goes on configuring it by itself, with the values it was sent: a rerun with apply sends nothing " \
           "and waits on for it" in text, text
    assert f"Changed: create Supervisor on cluster DC0_C0 ({enabling.cluster})." in text
    assert "disable Workload Management" not in text  # no way out is needed from a Supervisor still on its way
    assert len(enabling.vcsim.enable_requests) == seen + 1
    ledger = (folder / "effects.jsonl").read_text()

    plan, error = enabling.stage(folder, apply=False)
    assert error is None, error
    [step] = plan.steps
    assert step.action == "wait" and step.found.startswith("CONFIGURING, Kubernetes WARNING"), step
    assert step.why == ("vCenter is still configuring it, with the site's values (an enable sent before): a run with "
                        "apply sends nothing and waits for it to run, up to workload_management.timeout (60 s).")
    assert list(pd.read_csv(folder / "enable-plan.csv")["action"]) == ["wait"]

    capsys.readouterr()
    plan, error = enabling.stage(folder, shown=lambda plan: enabling.vcsim.release_enable_stall(enabling.cluster))
    assert error is None, error
    assert [s.action for s in plan.steps] == ["wait"]
    assert "from an enable sent before; nothing is sent, waiting up to 60 s for RUNNING." in capsys.readouterr().out
    assert enabling.info().config_status == "RUNNING"
    assert len(enabling.vcsim.enable_requests) == seen + 1  # nothing sent
    assert (folder / "effects.jsonl").read_text() == ledger  # the wait row entered nothing on the ledger
    assert set(pd.read_csv(folder / "enable-after-apply.csv")["action"]) == {"ok"}
    assert json.loads((folder / "provided.json").read_text())["supervisor"]["status"] == "RUNNING"
    checks = pd.read_csv(folder / "supervisor-checks.csv", keep_default_na=False)
    assert set(checks["status"]) == {"ok"}, checks.to_string()


def test_a_management_address_already_in_use_stops_the_stage_naming_it_before_anything_is_sent(lab, tmp_path):
    """One of the Supervisor's five management addresses answers on the management network (a real kernel
    address on the lab's management bridge): asked from the appliance's management interface with an ARP
    probe, the stage refuses, naming it and who answered, and sends nothing."""
    from tkgs_lib.errors import ValidationFailed
    from tkgs_simulators.appliance.netns import ip

    enabling, seen = lab
    folder = enabling.run_folder(tmp_path)
    sim = enabling.lab.sim
    ip("addr", "add", "10.64.2.22/23", "dev", "br-management", netns=sim.lab)
    try:
        mac = json.loads(ip("-j", "link", "show", "br-management", netns=sim.lab).stdout)[0]["address"]
        plan, error = enabling.stage(folder)
    finally:
        ip("addr", "del", "10.64.2.22/23", "dev", "br-management", netns=sim.lab)
    assert isinstance(error, ValidationFailed), error
    [finding] = [f for f in plan.findings if f.is_error]
    assert finding.path == "workload_management.supervisor_start"
    assert finding.message == (f"the Supervisor's management addresses 10.64.2.20-10.64.2.24 are not free: 10.64.2.22 "
                               f"answered ARP from {mac}, asked from the appliance's management interface. A "
                               f"Supervisor given an address in use stays CONFIGURING."), finding.message
    assert plan.steps == [] and request_csv(folder) == {}
    assert len(enabling.vcsim.enable_requests) == seen and enabling.info() is None  # nothing was sent
    ledger = folder / "effects.jsonl"  # the probe is a read: the ledger holds nothing of this stage
    assert not ledger.exists() or '"stage": "enable"' not in ledger.read_text()


def test_the_workloads_dns_servers_may_differ_from_the_control_planes_and_the_request_says_where_each_came_from(
        lab, tmp_path):
    enabling, seen = lab
    folder = enabling.run_folder(tmp_path)
    data = yaml.safe_load(enabling.site_file.read_text())
    data["workload_management"]["workload_dns_servers"] = ["10.64.8.1"]
    site_file = enabling.site_file.with_name("workload-dns.yaml")  # beside it: its relative paths hold
    site_file.write_text(yaml.safe_dump(data))
    _, error = enabling.stage(folder, site_file=site_file)
    assert error is None, error
    [accepted] = enabling.vcsim.enable_requests[seen:]
    assert (accepted.spec.master_dns, accepted.spec.worker_dns) == (["10.64.2.1"], ["10.64.8.1"])
    rows = pd.read_csv(folder / "enable-request.csv", keep_default_na=False, dtype=str).set_index("field")
    assert dict(rows.loc["master_DNS"]) == {"value": "10.64.2.1", "from": "workload_management.dns_servers"}
    assert dict(rows.loc["worker_DNS"]) == {"value": "10.64.8.1", "from": "workload_management.workload_dns_servers"}


def test_an_empty_subscribed_library_is_a_warning_saying_how_to_start_its_sync(lab, tmp_path):
    """The simulator's subscribed library cannot reach VMware's feed, so it holds nothing, as a real one
    that has not synced: the stage warns (and goes on: the Supervisor is enabled all the same), saying how
    to start the sync; started as it says, vCenter records the sync, and the warning says when."""
    import re

    enabling, seen = lab
    plan, error = enabling.stage(enabling.run_folder(tmp_path / "first"), apply=False)
    assert error is None, error
    [warning] = [f for f in plan.findings if f.path == "content_libraries.kubernetes.name"]
    assert warning.severity == "warning" and plan.steps[0].action == "create"
    assert warning.message == ("the subscribed library 'Tanzu VMware' holds no Kubernetes release (never "
                               "synchronized): Workload Management is enabled all the same, but every Tanzu Kubernetes "
                               "cluster made later fails until it holds them."), warning.message
    assert "in the vSphere Client, Content Libraries > Tanzu VMware > Actions > Synchronize, or POST " \
           "/rest/com/vmware/content/subscribed-library/id:" in warning.fix, warning.fix
    (sync,) = re.findall(r"POST (\S+)\?~action=sync", warning.fix)
    enabling._vcenter(lambda client: client.rest.post(sync, action="sync"))
    plan, error = enabling.stage(enabling.run_folder(tmp_path / "again"), apply=False)
    assert error is None, error
    [warning] = [f for f in plan.findings if f.path == "content_libraries.kubernetes.name"]
    assert "holds no Kubernetes release (last synchronized 20" in warning.message, warning.message
    assert len(enabling.vcsim.enable_requests) == seen
