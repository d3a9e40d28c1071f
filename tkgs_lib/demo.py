"""A site for the bundled vCenter simulator: the example site pointed at the simulator's inventory."""

from __future__ import annotations

from pathlib import Path
from dataclasses import dataclass, field
from typing import Optional

import yaml

from .appliance.releases import ARTICLE_RELEASE
from .paths import CHECKOUT
from .runner.interruption import checkpoint, shielded
from .stages import StageCall, stage_named

EXAMPLE_SITE = CHECKOUT / "examples" / "example-site.yaml"

# The simulator's default VPX inventory (see vcsim.py): what a demo site names.
SIMULATOR_INVENTORY = {"datacenter": "DC0", "cluster": "DC0_C0", "distributed_switch": "DVS0",
                       "datastores": ["LocalDS_0"]}


def simulator_site_data(sim, base: Optional[dict] = None, ova: Optional[Path] = None) -> dict:
    """``base`` (default: the example site) with its vcenter block aimed at ``sim``, verified by its CA."""
    data = base if base is not None else yaml.safe_load(EXAMPLE_SITE.read_text())
    data["vcenter"].update({"server": sim.host, "port": sim.port, "username": sim.username,
                            "ca_file": str(sim.ca_file) if sim.ca_file else None, "thumbprint": None, **SIMULATOR_INVENTORY})
    if ova is not None:
        data["content_libraries"]["haproxy"]["ova"] = str(ova)
    return data


# The article's fault, injected as the appliance boots: the plan refuses it, so it cannot come from the site.
ARTICLE_FAULT = "10.64.0.1/23"


class Appliances:
    """Boots a simulated appliance in the lab when the first-boot player asks, from what vCenter holds,
    as the ``release`` of the OVA the demo deploys boots, with ``faults`` (see the simulator's guest). The vCenter
    simulator keeps nothing of an OVA that names its release (govmomi's simulator/ovf_manager.go keeps only the
    property values; its http_nfc_lease.go discards the uploaded disk), so the demo says which release the next
    first boot is: an upgrade's new VM boots ``release`` once the demo has set it to the upgrade's."""

    def __init__(self, lab: str, faults: dict, release: str) -> None:
        self.lab, self.faults, self.release = lab, faults, release
        self.known_hosts: Optional[Path] = None  # where the appliance's host keys are written, as read off its console
        self.running: list = []

    def boot(self, vm_name: str, properties: dict, macs: list):
        from tkgs_simulators.appliance import ROLES, ApplianceSimulator

        roles = [r for r in ROLES if properties.get(f"network.{r}_ip")]
        sim = ApplianceSimulator(dict(properties), macs=dict(zip(roles, macs)), lab=self.lab, release=self.release,
                                 faults=dict(self.faults))
        sim.start()
        self.running.append(sim)
        self._read_off_console(sim)
        return _Powered(sim, self._read_off_console)

    def _read_off_console(self, sim) -> None:
        """The host keys of the appliance answering now, as a person reads them off its console into known_hosts
        (an upgrade's new appliance makes its own; the old one, powered on again, has its own again)."""
        if self.known_hosts is not None:
            self.known_hosts.write_text(sim.known_hosts())

    def __enter__(self) -> "Appliances":
        return self

    def __exit__(self, *exc) -> None:
        for sim in self.running:
            sim.stop()


class _Powered:
    """A booted appliance as the first-boot player powers it: off, and on again with its host keys read anew."""

    def __init__(self, sim, on_boot) -> None:
        self.sim, self.on_boot = sim, on_boot

    @property
    def ca_pem(self) -> str:
        return self.sim.ca_pem

    @property
    def running(self) -> bool:
        return self.sim.running

    def power_off(self):
        return self.sim.power_off()

    def power_on(self):
        self.sim.power_on()
        self.on_boot(self.sim)
        return self


@dataclass
class DemoResult:
    folder: Path
    index: Path
    summary: str
    results: list = field(default_factory=list)  # each stage's StageResult, in order
    teardown: str = ""  # with teardown: what destroy removed, and whether vCenter holds anything the run made
    inventory_before: dict = field(default_factory=dict)  # with teardown: the simulator's inventory before the run
    inventory_after: dict = field(default_factory=dict)  # ... and after the destroy


# The release ``demo --upgrade`` upgrades the appliance to, and the variables of the passwords its rotate sets.
UPGRADE_RELEASE = "v0.2.0"
NEW_PASSWORDS = {"dataplane_password_env": "TKGS_DEMO_NEW_DATAPLANE_PASSWORD",
                 "root_password_env": "TKGS_DEMO_NEW_ROOT_PASSWORD"}


def run_demo(output: Path, *, disk_size: int = 2 * 1024 * 1024, fault: str = ARTICLE_FAULT,
             teardown: bool = False, upgrade: bool = False, upgrade_fault: str = "") -> DemoResult:
    """The whole article against the simulators, with apply: networks, prepare, deploy, verify (which finds
    the injected fault), repair, verify again, then Workload Management enabled with the appliance and
    its Supervisor's virtual IP answering through it, a namespace, and a Tanzu Kubernetes cluster whose
    LoadBalancer Service's address answers through the appliance. With ``upgrade``, day 2 after that: the
    appliance's secrets rotated (the Data Plane API's password, in vCenter too, its certificate, root's
    password), then the appliance upgraded to v0.2.0, the Supervisor's virtual IP answering through it
    (``upgrade_fault``: the article's fault injected into the new appliance too, which verify's checks find, so
    the upgrade puts the old one back).
    Everything runs in a lab network namespace of its own:
    the vCenter simulator, the first-boot player that boots the simulated appliance from what vCenter
    holds, the runner and its kernels. Needs root (one sentence says so otherwise).

    The run folder keeps the demo site, every stage's record and ``index.html``. The passwords (the
    simulator's, fresh ones for the appliance) reach the notebooks only through the environment
    variables the site names, never as a parameter or in the site file. With ``teardown``, the destroy
    stage runs last and removes what the run made; the simulator's whole inventory is read before the
    first stage and after the destroy, and the two are compared."""
    import contextlib
    import os
    import secrets
    import tempfile

    from .credentials import secret_env_fields
    from .errors import TkgsError
    from .site import parse_site
    from tkgs_simulators.appliance import available
    from tkgs_simulators.appliance.netns import Namespace, entered
    from tkgs_simulators.first_boot import FirstBoot
    from tkgs_simulators.vcsim import VCenterSimulator

    reason = available()
    if reason:
        raise TkgsError(f"the demo builds the simulated appliance in network namespaces and cannot run here: {reason}.")
    output = Path(output).absolute()
    # The passwords in the variables the example site names, when set (a person's, or a test's canaries),
    # else fresh ones: the notebooks read them from there, never from a parameter or a file.
    example = parse_site(EXAMPLE_SITE.read_text(), source=EXAMPLE_SITE)
    names = [name for _, name in secret_env_fields(example)] + (list(NEW_PASSWORDS.values()) if upgrade else [])
    passwords = {name: os.environ.get(name) or secrets.token_urlsafe(16) for name in names}
    simulators = contextlib.ExitStack()
    try:
        lab = simulators.enter_context(Namespace("lab"))
        simulators.enter_context(entered(lab.name))
        work = simulators.enter_context(tempfile.TemporaryDirectory(prefix="tkgs-demo-"))
        sim = simulators.enter_context(VCenterSimulator(password=passwords[example.vcenter.password_env]))
        # The stand-in plays the Supervisor in the lab: its control plane on the workload network, its
        # load-balancer controller programming the appliance's HAProxy through the Data Plane API.
        sim.supervisor.load_balancer_netns = lab.name
        # HAProxy checks the servers behind a virtual IP every 250 ms (2 s by default): a new cluster's API and
        # a new Service answer through the appliance a few seconds sooner.
        sim.supervisor.health_check_interval_ms = 250
        appliances = simulators.enter_context(Appliances(lab.name, {"service_ip_range": fault} if fault else {},
                                                         ARTICLE_RELEASE))
        simulators.callback(sim.stop_supervisors)  # at teardown, before the appliances they program
        simulators.enter_context(FirstBoot(sim, appliance=appliances.boot, release=ARTICLE_RELEASE))
        return _demo_stages(sim, appliances, work, output, passwords, disk_size, teardown, upgrade, upgrade_fault)
    finally:
        checkpoint("demo:teardown")
        with shielded("the simulators' teardown (their processes, namespaces and files)", last=True):
            simulators.close()


# The demo's stages: the article, with its fault found by the first verify (a failure the run goes on
# after), repaired, verified again, then Workload Management, a namespace, and a Tanzu Kubernetes cluster
# whose LoadBalancer Service answers through the appliance; with upgrade, then its secrets rotated and the
# appliance upgraded; with teardown, then what the run made removed.
def demo_calls(teardown: bool = False, upgrade: bool = False) -> list[StageCall]:
    return [StageCall(stage_named("networks")), StageCall(stage_named("prepare")), StageCall(stage_named("deploy")),
            StageCall(stage_named("verify"), goes_on_after="VerificationFailed"), StageCall(stage_named("repair")),
            StageCall(stage_named("verify"), "verify-again"), StageCall(stage_named("enable")),
            StageCall(stage_named("namespace")), StageCall(stage_named("cluster")),
            *([StageCall(stage_named("rotate")), StageCall(stage_named("upgrade"))] if upgrade else []),
            *([StageCall(stage_named("destroy"))] if teardown else [])]


def _demo_stages(sim, appliances, work: str, output: Path, passwords: dict, disk_size: int,
                 teardown: bool = False, upgrade: bool = False, upgrade_fault: str = "") -> "DemoResult":
    """The demo's site written into a new run folder, then its stages run as ``run`` runs them
    (:func:`~tkgs_lib.runner.site_run.run_site`: the same stages.json, provided.json and index)."""
    import os
    import sys

    from .errors import StageInterrupted
    from .runner.folders import new_run_folder
    from .runner.site_run import run_site
    from .site import load_site, parse_site
    from tkgs_simulators.ova import build_ova

    ova = build_ova(Path(work) / f"haproxy-{ARTICLE_RELEASE}.ova", disk_size=disk_size)
    data = simulator_site_data(sim, ova=ova)
    data["site"] = "demo"
    data["haproxy"].update(boot_timeout=60, ssh_known_hosts="known_hosts")  # written as the appliance boots
    if upgrade:
        new_ova = build_ova(Path(work) / f"haproxy-{UPGRADE_RELEASE}.ova", name=f"haproxy-{UPGRADE_RELEASE}",
                            disk_size=disk_size)
        data["rotate"] = {**NEW_PASSWORDS, "certificate": True, "supervisor_timeout": 60}
        data["upgrade"] = {"ova": str(new_ova), "supervisor_timeout": 120}
    text = ("# The example site aimed at the bundled simulators (tkgs-runbook demo). The vCenter simulator,\n"
            "# its CA file and the generated OVA existed only during this run.\n"
            + yaml.safe_dump(data, sort_keys=False))
    folder = new_run_folder(parse_site(text), output)
    site_file = folder / "demo-site.yaml"
    site_file.write_text(text)
    appliances.known_hosts = folder / "known_hosts"
    site = load_site(site_file)
    previous = {name: os.environ.get(name) for name in passwords}
    os.environ.update(passwords)
    found: list[str] = []  # the fault the first verify found, read before the second verify rewrites its checks
    inventory = {"before": sim.inventory()} if teardown else {}
    torn_down: list[str] = []

    def concluded(results) -> str:
        checks = _count_checks(folder / stage_named("verify").checks_file)
        fault = found[0] if found else "none found"
        said = (f"demo: networks, prepare and deploy ok; verify found the injected fault ({fault}); repair fixed it; "
                f"verify again: all {checks} checks ok; Workload Management enabled: {_supervisor_answering(folder)}; "
                f"{_service_answering(folder)}" + (f"; {_upgraded(folder)}" if upgrade else "") + ".")
        if teardown:
            inventory["after"] = sim.inventory()
            torn_down.append(_torn_down(folder, inventory["before"], inventory["after"]))
            said += f" Then {torn_down[0]}"
        return said

    results = []
    try:
        for result in run_site(site, demo_calls(teardown, upgrade), folder, apply=True, progress=sys.stderr.isatty(),
                               conclusion=concluded):
            results.append(result)
            if result.stage.name == "verify" and result.error and not found:
                found.append(_first_failure(folder / result.stage.checks_file))
            if result.stage.name == "rotate" and not result.error:
                _after_rotation(site, appliances, upgrade_fault)
    except KeyboardInterrupt as exc:  # between stages, or before the first: the record says which had run
        done = ", ".join(r.stage.title for r in results) or "no stage"
        raise StageInterrupted(f"the demo was stopped by {str(exc) or 'a signal'} between its stages: {done} had "
                               f"run; the simulators are removed. See {folder / 'index.html'}.") from None
    finally:
        for name, value in previous.items():  # as they were before the demo
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    from .runner.stage_list import StageList

    record = StageList.read(folder)
    note = record.note if record else ""
    return DemoResult(folder, folder / "index.html", note.split(" Then ", 1)[0] if teardown else note, results,
                      torn_down[0] if torn_down else "", inventory.get("before", {}), inventory.get("after", {}))


def _torn_down(folder: Path, before: dict, after: dict) -> str:
    """What the demo's destroy removed (the record's objects, by kind and name), and whether the simulator
    holds anything the run made: its whole inventory compared with the one read before the first stage."""
    from .stages.provided import Provided, RemovedObjects, VCenterObjects

    provided = Provided.load(folder)
    removed = provided.get(RemovedObjects)
    made = [o for o in provided.get(VCenterObjects).entries() if o.made] if provided.get(VCenterObjects) else []
    names = [f"{o.kind} {o.name}" for o in reversed(removed.entries())] if removed else []
    said = f"destroy removed {len(names)} of the {len(made)} objects the run made in vCenter ({', '.join(names)})"
    if before == after:
        return f"{said}: vCenter holds nothing the run made (its inventory is as it was before the run)."
    left = {kind: sorted(set(map(str, after[kind])) - set(map(str, before[kind]))) for kind in after}
    return f"{said}, but vCenter still holds what it did not hold before the run: " + "; ".join(
        f"{kind}: {', '.join(items)}" for kind, items in left.items() if items) + "."


def _after_rotation(site, appliances, fault: str) -> None:
    """What a person does after the rotate stage, before the upgrade: the site's own password variables given the
    new passwords (the upgrade deploys the new appliance with them); and the lab's next first boot is the upgrade's
    release, with ``fault`` only (the article's was a typo at the first deploy, repaired since)."""
    import os

    os.environ[site.haproxy.dataplane_password_env] = os.environ[site.rotate.dataplane_password_env]
    os.environ[site.haproxy.root_password_env] = os.environ[site.rotate.root_password_env]
    appliances.release, appliances.faults = UPGRADE_RELEASE, ({"service_ip_range": fault} if fault else {})


def _upgraded(folder: Path) -> str:
    """The rotate and upgrade stages' proof, in a few words: the release now answering, the Supervisor through it."""
    from .stages.provided import ApplianceRelease, Provided

    release = Provided.load(folder).get(ApplianceRelease)
    checks = folder / "upgrade-supervisor-checks.csv"
    if release is None or release.version != UPGRADE_RELEASE or not checks.exists():
        return "the upgrade did not finish (see its stage)"
    answered = _vip_answered(checks)
    if answered is None:
        return f"upgraded to {release.version}, but the Supervisor's checks did not all pass (see {checks.name})"
    return (f"secrets rotated; the appliance upgraded to {release.version} with its CA kept, and the Supervisor's "
            f"virtual IP {answered[0]} answers through the new release")


def _first_failure(checks_csv: Path) -> str:
    import pandas as pd

    if not checks_csv.exists():
        return "see the verify stage"
    rows = pd.read_csv(checks_csv, keep_default_na=False)
    failed = rows[rows["status"] == "failed"]
    if not len(failed):
        return "no failed check"
    unit = failed[failed["check"] == "anyip-routes.service"]  # the article's own symptom, when it is there
    first = (unit if len(unit) else failed).iloc[0]
    return f"{first['check']}: {first['found']}"


def _vip_answered(checks: Path) -> Optional[tuple[str, str]]:
    """The Supervisor's virtual IP and who answered there, from the checks saved in ``checks``; None unless they
    all passed."""
    import pandas as pd

    rows = pd.read_csv(checks, keep_default_na=False)
    tls = rows[rows["check"].str.startswith("TLS to the Supervisor's API")]
    if set(rows["status"]) != {"ok"} or not len(tls):
        return None
    return tls.iloc[0]["check"].rsplit(" ", 1)[-1], tls.iloc[0]["found"].split("answered by ", 1)[-1].split(",", 1)[0]


def _supervisor_answering(folder: Path) -> str:
    """The enable stage's proof, in a few words: the Supervisor's virtual IP and who answered there."""
    checks = folder / stage_named("enable").checks_file
    if not checks.exists():
        return "no Supervisor checked"
    answered = _vip_answered(checks)
    if answered is None:
        return f"the Supervisor's checks did not all pass (see {checks.name})"
    return f"the Supervisor's virtual IP {answered[0]} answers through the appliance ({answered[1]})"


def _service_answering(folder: Path) -> str:
    """The cluster stage's proof, in a few words: the namespace, the cluster and the Service's address answering."""
    from .stages.provided import ClusterState, NamespaceState, Provided, ServiceAddress

    provided = Provided.load(folder)
    namespace, cluster, service = (provided.get(NamespaceState), provided.get(ClusterState),
                                   provided.get(ServiceAddress))
    if service is None or not service.answered_by:
        return "no LoadBalancer Service proved"
    return (f"namespace {namespace.name if namespace else '?'}, cluster {cluster.name if cluster else '?'} Ready; its "
            f"LoadBalancer Service's address {service.address} answered through the appliance ({service.answered_by}), "
            f"and no longer once the Service was removed")


def _count_checks(checks_csv: Path) -> int:
    import pandas as pd

    rows = pd.read_csv(checks_csv, keep_default_na=False)
    if set(rows["status"]) != {"ok"}:
        from .errors import TkgsError

        raise TkgsError(f"the demo's last verify saved failed checks in {checks_csv}.")
    return len(rows)
