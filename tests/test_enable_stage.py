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

from appliance_fixtures import HEALTH_CHECK_MS, PASSWORD_ENV, start_appliance
from test_namespace_management import deploy_appliance_vm
from tkgs_lib.errors import RestError, TkgsError

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

    def stage(self, folder: Path, *, apply: bool = True, env: dict | None = None, site_file: Path | None = None):
        """The stage as its notebook runs it, in this process (from the lab): the plan it showed and
        the error it stopped with (None when it passed)."""
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
        def read(client):
            try:
                return client.get(self.cluster)
            except RestError as missing:
                if missing.status == 404:
                    return None
                raise
        return self._vcenter(read)

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
    from tkgs_simulators.appliance.netns import entered
    from tkgs_lib.demo import simulator_site_data
    from tkgs_simulators.vcsim import VCenterSimulator

    tmp = tmp_path_factory.mktemp("enable")
    lab = start_appliance(tmp)
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(lab.sim.stop)
        with entered(lab.sim.lab):  # the simulator's process and its stand-in's threads live in the lab
            vcsim = VCenterSimulator(binary=vcsim_binary, password=VCENTER_PASSWORD, workdir=tmp / "vcsim").start()
        cleanup.callback(vcsim.stop)
        cleanup.callback(vcsim.stop_supervisors)  # before the appliance they program goes
        settings = vcsim.supervisor
        settings.config_seconds, settings.load_balancer_timeout, settings.load_balancer_netns = 0.2, 3.0, lab.sim.lab
        settings.reconcile_seconds, settings.health_check_interval_ms = 0.4, HEALTH_CHECK_MS
        data = simulator_site_data(vcsim, base=yaml.safe_load(lab.site_file.read_text()))
        data["workload_management"].update(timeout=60, error_grace=2)
        site_file = lab.site_file.with_name("enable-site.yaml")
        site_file.write_text(yaml.safe_dump(data, sort_keys=False))
        props = lab.sim.properties
        cluster = lab.sim.in_lab(lambda: deploy_appliance_vm(vcsim, props["network.management_ip"],
                                                              props["loadbalance.service_ip_range"]))
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
    # The last word as text, not a quoted Python string.
    [said] = cells["enable.conclude(run, checked)"]["outputs"]
    assert "".join(said["data"]["text/markdown"]) == "All 12 checks of the Supervisor through the load balancer passed."
    assert "".join(said["data"]["text/plain"]) == "All 12 checks of the Supervisor through the load balancer passed."


def test_a_dry_run_shows_the_request_and_sends_nothing(lab, tmp_path):
    enabling, seen = lab
    folder = enabling.run_folder(tmp_path)
    plan, error = enabling.stage(folder, apply=False)
    assert error is None, error
    assert [s.action for s in plan.steps] == ["create"]
    assert len(enabling.vcsim.enable_requests) == seen and enabling.info() is None
    assert request_csv(folder)["load_balancer_config_spec.ha_proxy_config_create_spec.password"] == "********"


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
