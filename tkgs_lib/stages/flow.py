"""One stage, run: the site, its network plan, the run folder, the connections, and the protocol.

A stage notebook keeps one visible cell per step of the article; each calls one method here:

    run = StageRun.start("prepare", site_file, output_dir)   # the site, checked; where files go
    run.connect_vcenter()                                     # TLS verified; password: env or prompt
    facts = run.read()                                        # what exists now
    plan = run.plan(facts)                                    # the table a person reads first
    run.carry_out(plan, apply)                                # change only when asked
    run.reports()                                             # what is there now
    run.close()

``carry_out`` applies exactly the plan the person was shown (no second read before applying), and
is the same for every stage: the plan as shown is saved (``<stage>-plan.csv``; a stage that only reads
keeps its findings in its reports), checked (a
conflict or an error finding stops before anything changes), applied only when asked, read
again, saved (``<stage>-after-apply.csv``), and the rerun plan must be all ok.
"""

from __future__ import annotations

import html
import importlib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import ModuleType
from typing import Any, Optional

from .. import effects
from .. import paths
from ..errors import TkgsError
from ..findings import raise_for_errors
from ..site import Site, load_site
from ..site.patterns import SITE_NAME
from ..site.layout import NetworkLayout, network_layout
from . import Stage, stage_named
from ..planning import Plan, Step
from .provided import ApplianceCa, ApplianceRelease, DataplaneAddress, Provided, provide

__all__ = ["StageRun", "Outcome", "Reports"]


@dataclass
class Outcome:
    """What ``carry_out`` did: a dry run, or the steps it ran and the plan read after them."""

    stage: Stage
    applied: bool
    ran: list[Step] = field(default_factory=list)
    after: Optional[Plan] = None

    def _repr_html_(self) -> str:
        if not self.stage.changes:
            return "<p>This stage only reads: nothing to apply, and nothing was changed.</p>"
        if not self.applied:
            return ("<p>Dry run: nothing was changed. Set <code>apply = True</code> (or run with "
                    "<code>--apply</code>) to carry out the rows marked create, change or wait.</p>")
        done = ", ".join(f"{s.action} {s.object}" for s in self.ran) or "nothing needed changing"
        return (f"<p><b>Applied</b>: {html.escape(done)}.</p><p><b>After apply</b> ({html.escape(self._after)}):</p>"
                + (self.after.table()._repr_html_() if self.after else ""))

    def __repr__(self) -> str:
        if not self.stage.changes:
            return "This stage only reads: nothing to apply, and nothing was changed."
        if not self.applied:
            return ("Dry run: nothing was changed. Set apply = True (or run with --apply) to carry out the rows "
                    "marked create, change or wait.")
        done = ", ".join(f"{s.action} {s.object}" for s in self.ran) or "nothing needed changing"
        return (f"Applied: {done}.\nAfter apply ({self._after}):\n"
                + (self.after.table().to_text() if self.after else ""))

    @property
    def _after(self) -> str:
        if self.after is not None and {s.action for s in self.after.steps} <= {"keep", "gone"} and self.after.steps:
            return "every row is keep or gone"
        return "every row is ok"


@dataclass
class Reports:
    """Titled tables, shown one under the other."""

    tables: dict[str, Any]

    def _repr_html_(self) -> str:
        return "".join(f"<h3>{html.escape(title)}</h3>{table._repr_html_()}" for title, table in self.tables.items())

    def __repr__(self) -> str:
        return "\n\n".join(f"{title}\n{table.to_text()}" for title, table in self.tables.items())

    def __getitem__(self, title: str):
        return self.tables[title]

    def __iter__(self):
        return iter(self.tables)

    def items(self):
        return self.tables.items()

    def values(self):
        return self.tables.values()


class StageRun:
    """A stage of one site, with what its steps share. Build with :meth:`start` in a notebook."""

    def __init__(self, stage: Stage | str, site: Site, output: Path, *, vcenter=None, progress: bool = True) -> None:
        self.stage = stage_named(stage) if isinstance(stage, str) else stage
        self.site = site
        self.network: NetworkLayout = network_layout(site)  # every stage reads the roles from here
        self.output = Path(output)
        self.vcenter = vcenter  # a VCenterSession once connected
        self.appliance = None  # an SshRunner once connected
        self.sessions: dict[str, Any] = {}  # other sessions a stage opens (a Kubernetes API's), each closed by close()
        self.progress = progress
        self._secrets: dict[str, str] = {}  # read once per run (a person is asked once); never shown
        self._operations: dict[type, object] = {}
        self._facts = None  # the latest read: what the reports show when given no facts
        effects.keep_for_stage(self.output, self.stage.name)  # what it sends is on the run's ledger first

    @classmethod
    def start(cls, stage: str, site_file: str, output_dir: str = "", *, require_clean: bool = True) -> "StageRun":
        """Load the site (a relative path: from the working folder, else the checkout) and the run
        folder; with ``require_clean``, stop on any error finding before anything is touched."""
        site = load_site(paths.site_file_path(site_file))
        name = site.site if SITE_NAME.match(site.site or "") else "site"
        run = cls(stage, site, paths.output_folder(output_dir, name))
        if require_clean:
            raise_for_errors(run.network.findings)
        return run

    def __repr__(self) -> str:
        return f"<StageRun {self.stage.name} site={self.site.site} output={self.output}>"

    def _repr_markdown_(self) -> str:
        return (f"**{self.stage.title}** for site **`{self.site.site}`** from `{self.site.source}`: "
                f"deployment `{self.network.deployment}`; files go to `{self.output}`")

    @cached_property
    def module(self) -> ModuleType:
        return importlib.import_module(self.stage.module)

    # --- connections ------------------------------------------------------------------------------

    def connect_vcenter(self):
        """Log in to vCenter as the site says (TLS verified; the password from its environment
        variable, or a prompt when a person runs the notebook)."""
        from ..vsphere.connection import connect

        if self.vcenter is None:
            self.vcenter = connect(self.site.vcenter)
        return self.vcenter

    @cached_property
    def inventory(self):
        """The site's inventory objects in vCenter, looked up by name on first use."""
        from ..vsphere.inventory import Inventory

        return Inventory(self.require_vcenter(), self.site.vcenter)

    def require_vcenter(self):
        if self.vcenter is None:
            raise TkgsError(f"{self.stage.title} reads vCenter: connect first (run.connect_vcenter()).")
        return self.vcenter

    def connect_supervisor(self):
        """Log in at the Supervisor's ``/wcp/login`` as the site's vCenter user and open its Kubernetes API (TLS
        verified by vCenter's CA: VMCA signs the Supervisor's certificates)."""
        from ..kubernetes.login import supervisor_login
        from ..kubernetes.session import KubernetesSession

        if "supervisor" in self.sessions:
            return self.sessions["supervisor"]
        self.connect_vcenter()
        address, ca_file = self.supervisor_address(), self.supervisor_ca_file()
        vc = self.site.vcenter
        password = self.secret(vc.password_env, "vCenter's password", "vcenter.password_env")
        token = supervisor_login(address, vc.username, password, ca_file,
                                 password_from=f"${vc.password_env} (vcenter.password_env)")
        session = KubernetesSession.with_token(f"the Supervisor {address}", f"https://{address}:6443", ca_file, token)
        session.address, session.token = address, token  # the token only for the kubeconfig, never shown
        self.sessions["supervisor"] = session
        return session

    def supervisor_address(self) -> str:
        """The Supervisor's virtual IP: the enable stage's, else vCenter's ``api_server_cluster_endpoint``."""
        from ..errors import RestError
        from ..vsphere.namespace_management import NamespaceManagement
        from .provided import SupervisorState

        state = self.provided.get(SupervisorState)
        if state is not None and state.endpoint:
            return state.endpoint
        settings = self.network.supervisor
        name = settings.cluster if settings is not None else self.site.vcenter.cluster
        cluster = self.inventory.cluster_named(name, "workload_management.cluster")
        try:
            info = NamespaceManagement(self.require_vcenter().rest).get(cluster._moId)
        except RestError as exc:
            if exc.status == 404:
                raise TkgsError(f"cluster {name} has no Supervisor: run the enable stage with apply first.") from None
            raise
        if not info.api_server_cluster_endpoint:
            raise TkgsError(f"cluster {name}'s Supervisor is {info.config_status} and has no endpoint yet: run the "
                            f"enable stage with apply first.")
        return info.api_server_cluster_endpoint

    def supervisor_ca_file(self) -> str:
        ca_file = self.site.vcenter.ca_file
        if not ca_file:
            raise TkgsError("vcenter.ca_file is null: the Supervisor's certificates are signed by vCenter's CA (VMCA), "
                            "so this stage needs that CA's file to verify them; write vcenter.ca_file.")
        return ca_file

    def connect_appliance(self):
        """Log in to the appliance over SSH as the site says (host key checked): with the site's key file,
        else (and while the appliance refuses that key, before the harden stage put it in place) with the
        root password from its environment variable or a prompt."""
        from ..appliance.ssh import SshRunner
        from ..errors import LoginRefused

        if self.appliance is None:
            hp, known = self.site.haproxy, self.output / "known_hosts"
            if hp.ssh_key_file:
                try:
                    self.appliance = SshRunner.for_site(self.site, self.network, None, known).connect()
                    return self.appliance
                except LoginRefused:
                    pass  # the key is not in place yet: the password, as without a key
            password = self.secret(hp.root_password_env, "the appliance's root password", "haproxy.root_password_env")
            self.appliance = SshRunner.for_site(self.site, self.network, password, known, key=False).connect()
        return self.appliance

    def __enter__(self) -> "StageRun":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Log out of vCenter and the appliance (what this run opened); a closed run may connect again."""
        if self.vcenter is not None:
            self.vcenter.close()
        if self.appliance is not None:
            self.appliance.close()
            self.appliance = None
        for session in self.sessions.values():
            session.close()
        self.sessions.clear()
        self._operations.clear()

    def secret(self, env_name: str, what: str, field: str) -> str:
        """A secret the site names: from its environment variable, else a prompt; read once per run."""
        from ..credentials import read_secret

        if env_name not in self._secrets:
            self._secrets[env_name] = read_secret(env_name, what, field)
        return self._secrets[env_name]

    def operations(self, kind: type):
        """The run's ``kind`` of operations (PortgroupOps, StorageOps, ContentLibraryOps, VmOps,
        RepairOps: each a ``for_run(run)``), bound once to the run's connection; without one, the
        operations of a plan from values, which refuse to run (a dry run before connecting)."""
        from ..planning import VALUES_ONLY

        if kind not in self._operations:
            made = kind.for_run(self)
            if made is None:
                return VALUES_ONLY  # not kept: the run may connect later
            self._operations[kind] = made
        return self._operations[kind]

    # --- the stage's three functions --------------------------------------------------------------

    def read(self):
        """What exists now, as the stage's facts; a stage that provides values for later ones (its optional
        ``provides(run, facts)``) writes them to the run folder's provided.json here."""
        facts = self.module.read_facts(self)
        self._facts = facts
        provides = getattr(self.module, "provides", None)
        if provides is not None:
            values = provides(self, facts)
            if values:
                self.provide(*values)
        return facts

    @property
    def provided(self) -> Provided:
        """What the run folder's earlier stages provided (read afresh: a stage may just have added to it)."""
        return Provided.load(self.output)

    def provide(self, *values) -> Provided:
        """Provide ``values`` (of :mod:`tkgs_lib.stages.provided`) for the stages after this one."""
        return provide(self.output, *values)

    @cached_property
    def appliance_release(self):
        """The appliance's release, as a :class:`~tkgs_lib.appliance.releases.ReleaseChoice`
        (:func:`~tkgs_lib.appliance.releases.release_for`)."""
        from ..appliance.releases import release_for

        recorded = self.provided.get(ApplianceRelease)
        ova, _ = self.site.ova()
        return release_for(None if recorded is None else (recorded.version, recorded.source,
                                                          recorded.declares_additional_workload_networks), ova)

    def appliance_ca(self) -> tuple[Optional[str], str]:
        """The appliance's CA (PEM) and where it came from (:func:`~tkgs_lib.appliance.ca.ca_for`): the one
        the deploy stage collected, else what the VM publishes (read from vCenter), else haproxy.ca_cert_file;
        (None, why) when there is none."""
        from ..appliance.ca import ca_for

        collected = self.provided.get(ApplianceCa)
        return ca_for(self.output, collected.file if collected else None, self.site.haproxy.ca_cert_file,
                      self.published_ca)

    def published_ca(self, vms=None):
        """The CA the appliance's VM publishes in vCenter (``guestinfo.dataplaneapi.cacert``), checked to be
        a CA, and where it was read; (None, why not) when it publishes none or vCenter cannot be asked.
        ``vms``: the VMs of the appliance's name, when just read."""
        from ..appliance.ca import CA_GUESTINFO, decode_published_ca
        from ..vsphere.vm import read_vms

        name = self.site.haproxy.vm_name
        try:
            if vms is None:
                self.connect_vcenter()
                vms = read_vms(self.inventory, name)
            value = vms[0].extra_config.get(CA_GUESTINFO) if len(vms) == 1 else None
            if not value:
                return None, f"VM {name} publishes no CA in vCenter"
            return (decode_published_ca(value, f"{CA_GUESTINFO} of VM {name}"),
                    f"the CA VM {name} publishes in {CA_GUESTINFO} (read from vCenter)")
        except TkgsError as exc:
            return None, f"vCenter could not be asked ({exc.message})"

    def dataplane(self) -> tuple[str, int, str]:
        """The Data Plane API's host, port and where they came from
        (:func:`~tkgs_lib.appliance.dataplane.dataplane_for`)."""
        from ..appliance.dataplane import dataplane_for

        recorded = self.provided.get(DataplaneAddress)
        return dataplane_for(None if recorded is None else (recorded.host, recorded.port),
                             str(self.network.networks["management"].appliance.ip), self.site.haproxy.dataplane_port)

    def plan(self, facts=None) -> Plan:
        """The plan from the site and ``facts`` (read now when not given)."""
        made = self.module.plan(self, self.read() if facts is None else facts)
        made.before_changes = self._forget_latest_read
        return made

    def _forget_latest_read(self) -> None:
        self._facts = None

    def latest_read(self):
        """The facts of the latest read while no plan of this run has changed anything since (after
        carry_out's apply, its read after it), else of a read now."""
        return self._facts if self._facts is not None else self.read()

    def reports(self, facts=None) -> Reports:
        """What the stage finds, as titled tables: of ``facts``, else of :meth:`latest_read`."""
        return Reports(self.module.reports(self, self.latest_read() if facts is None else facts))

    # --- the protocol -----------------------------------------------------------------------------

    def carry_out(self, plan: Plan, apply: bool) -> Outcome:
        """Save ``plan`` as shown (a stage that changes something), check it, and when ``apply`` is
        true run exactly its steps, read again and insist that the new plan is all ok; a dry run
        otherwise."""
        name = self.stage.name
        if self.stage.changes:  # a stage that only reads saves its findings in its own reports
            plan.table().to_csv(self.output / f"{name}-plan.csv")
        plan.raise_for_blockers()  # a conflict or an error finding stops here, before anything changes
        if not apply:
            return Outcome(self.stage, applied=False)
        ran = plan.apply(progress=self.progress)
        after = self.plan()
        after.table().to_csv(self.output / f"{name}-after-apply.csv")
        done = "; ".join(f"{s.action} {s.object}" for s in ran) or "nothing"
        try:
            after.raise_for_blockers()
        except TkgsError as exc:  # someone else changed vCenter meanwhile: say what this apply did
            raise exc.reworded(f"{exc.message}\nThis apply had changed: {done}.") from None
        if not after.is_noop:
            rows = "; ".join(f"{s.object}: {s.action} (found {s.found})" for s in after.steps if s.action != "ok")
            raise TkgsError(f"{self.stage.title}: after apply, {self.stage.changes or 'the system'} does not match "
                            f"the site yet: {rows}. This apply had changed: {done}. See "
                            f"{self.output / f'{name}-after-apply.csv'}.")
        return Outcome(self.stage, applied=True, ran=ran, after=after)
